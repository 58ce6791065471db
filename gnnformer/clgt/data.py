"""The windows of a CLGT run: read the history, cut it into interaction graphs, label them, and
split them chronologically, as an in-memory dataset the library's trainer takes.

Labels. With a labels file (``member,label``) every member's label is their outcome, the same in
every window they appear in (members without a row: unknown, -1), so each window asks "from this
period's collaboration, how will this member end up?". Without one, the stated proxy of
:func:`gnnformer.datasets.vcs.proxy_labels`: a member of a window is at risk when they make fewer
than ``min_commits`` contributions in the next window. A next window the history has not
finished yet (the history ends inside it) would count a member who simply has not committed
*yet* as at risk, so its previous window's labels are unknown too.

Split (Peng et al. 2023 evaluate on later cohorts; here: later windows). Of the windows with any
known label, the latest ``test_windows`` test, the ``val_windows`` before them validate, all
earlier ones train: no test window starts before a training window ends. Unknown labels (-1)
are left out of the loss and every metric (``tasks.Classification``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch_geometric.data import Data

from ..datasets.schema import FeatureSchema, GraphDataset
from ..datasets.splits import Split
from ..datasets.vcs import (EDGE_FEATURE_NAMES, EDGE_TYPES, FEATURE_NAMES, TABLE_SALT, Activity, build_windows,
                            proxy_labels, pseudonym, read_activity_tables, read_git, read_labels)
from ..errors import DataError, UserError
from .settings import CLGTConfig

CLASS_NAMES = ("on track", "at risk")
TRAIN_KEYS = ("x", "edge_index", "edge_type", "edge_attr", "edge_weight", "y")


@dataclass
class Windows:
    """A history cut into labelled windows. ``graphs``: every window, oldest first, with members,
    raw counts and dates (for reports); ``dataset``: the labelled ones reduced to what the models
    read, with the chronological ``split`` as its fixed split; ``labelled[i]``: the index in
    ``graphs`` of ``dataset.graphs[i]``; ``latest``: the window predicted (the history's last)."""

    source: str
    graphs: list[Data]
    dataset: GraphDataset
    split: Split
    labelled: list[int]
    label_rule: str
    names: dict[str, str]
    user_labels: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def latest(self) -> Data:
        return self.graphs[-1]

    def windows_of(self, part: str) -> list[Data]:
        """The full windows of ``part`` ('train', 'val' or 'test')."""
        return [self.graphs[self.labelled[i]] for i in getattr(self.split, part).tolist()]


def day(t: int) -> str:
    return datetime.fromtimestamp(int(t), timezone.utc).date().isoformat()


def span(graphs: list[Data]) -> str:
    """'2024-01-01 to 2024-12-30' for the windows ``graphs`` (oldest first)."""
    return f"{day(graphs[0].window[0])} to {day(graphs[-1].window[1])}"


def read_activity(cfg: CLGTConfig) -> Activity:
    return read_git(cfg.repo) if cfg.repo is not None else read_activity_tables(cfg.activity)


def display_names(members, tables: bool, show_names: bool) -> dict[str, str]:
    """member -> the name shown: the id itself with ``show_names`` or for the exported tables (whose ids
    already are pseudonyms), else its stable pseudonym (the one the tables would give that address)."""
    return {m: m if show_names or tables else pseudonym(m.lower(), TABLE_SALT) for m in members}


def load_windows(cfg: CLGTConfig, activity: Activity | None = None, require_last: bool = False) -> Windows:
    """Read ``cfg``'s history (or use ``activity``), build, label and split its windows.

    Bad input is a UserError: not a git repository, an empty history, a latest window with one
    member (with ``require_last``: it is to be predicted), a labels file that is malformed or names
    unknown members, too few labelled windows."""
    activity = activity if activity is not None else read_activity(cfg)
    graphs = build_windows(activity, window_days=cfg.window_days, start=aligned_start(activity, cfg.window_days),
                           min_members=cfg.min_members, require_last=require_last)
    members = sorted({m for g in graphs for m in g.members})
    names = display_names(members, cfg.activity is not None, cfg.show_names)
    user = None
    if cfg.labels is not None:
        aliases = {n: m for m, n in names.items() if n != m}
        user = read_labels(cfg.labels, members, aliases=aliases)
        graphs = [_with_labels(g, user) for g in graphs]
        rule = f"labels from {Path(cfg.labels).name}: each member's outcome, the same in every window"
    else:
        graphs = unfinished_next_unknown(proxy_labels(graphs, min_commits=cfg.min_commits), activity, cfg.window_days)
        rule = (f"proxy: at risk = fewer than {cfg.min_commits} contributions (commits, merges or co-authored "
                f"commits) in the next {cfg.window_days}-day window; members with no contribution in a window, "
                "and windows whose next one the history has not finished, are unlabelled")
    labelled = [i for i, g in enumerate(graphs) if bool((g.y >= 0).any())]
    need = cfg.val_windows + cfg.test_windows + 1
    if len(labelled) < need:
        raise UserError(f"{activity.source}: {len(labelled)} window(s) of {cfg.window_days} days have known labels; "
                        f"a chronological split needs {need} (training, {cfg.val_windows} validation, "
                        f"{cfg.test_windows} test). Use a shorter --window-days or fewer val_windows/test_windows.")
    n = len(labelled)
    n_train = n - cfg.val_windows - cfg.test_windows
    split = Split(torch.arange(n_train), torch.arange(n_train, n - cfg.test_windows),
                  torch.arange(n - cfg.test_windows, n))
    classes = torch.cat([graphs[i].y for i in labelled])
    classes = classes[classes >= 0]
    out_dim = max(2, int(classes.max()) + 1)
    train_y = torch.cat([graphs[labelled[i]].y for i in split.train.tolist()])
    if torch.unique(train_y[train_y >= 0]).numel() < 2:
        raise UserError(f"{activity.source}: the training windows ({span([graphs[labelled[i]] for i in split.train])}) "
                        "hold one class only; a classifier needs both. Give more history or other labels.")
    counts = torch.bincount(classes, minlength=out_dim).tolist()
    balance = ", ".join(f"{CLASS_NAMES[c] if out_dim == 2 else f'class {c}'} {k} ({k / sum(counts):.0%})"
                        for c, k in enumerate(counts))
    rule += f"; class balance over the labelled member-windows: {balance}"
    dataset = GraphDataset(
        name=Path(activity.source).name, task="node_classification",
        graphs=[strip(graphs[i]) for i in labelled], num_features=len(FEATURE_NAMES),
        num_edge_features=len(EDGE_FEATURE_NAMES), out_dim=out_dim,
        schema=FeatureSchema("vcs", len(FEATURE_NAMES), len(EDGE_FEATURE_NAMES), "team activity windows",
                             {"features": list(FEATURE_NAMES), "edge_features": list(EDGE_FEATURE_NAMES),
                              "edge_types": list(EDGE_TYPES), "window_days": cfg.window_days}),
        root=Path(activity.source), fixed_split=split)
    return Windows(activity.source, graphs, dataset, split, labelled, rule, names, user)


def aligned_start(activity: Activity, window_days: int) -> int:
    """The start that makes the last window end with the history's last event: the latest window is
    the whole last period (say, the last semester), not the few days after the last boundary."""
    times = [t for c in activity.commits for t in (c.author_time, c.commit_time)]
    width = window_days * 86_400
    first, end = min(times), max(times) + 1
    return end - -(-(end - first) // width) * width


def _with_labels(g: Data, labels: dict[str, int]) -> Data:
    g = g.clone()
    g.y = torch.tensor([labels.get(m, -1) for m in g.members], dtype=torch.long)
    return g


def unfinished_next_unknown(graphs: list[Data], activity: Activity, window_days: int) -> list[Data]:
    """``graphs`` with y = -1 in every window whose next window ends after the history does."""
    end = max(max(c.author_time, c.commit_time) for c in activity.commits) + 1
    width = window_days * 86_400
    out = []
    for g in graphs:
        if int(g.window[1]) + width > end:
            g = g.clone()
            g.y = torch.full_like(g.y, -1)
        out.append(g)
    return out


def strip(g: Data) -> Data:
    """What the models read of a window (no member ids, dates or raw counts: they do not batch)."""
    return Data(**{k: g[k] for k in TRAIN_KEYS}, num_nodes=g.num_nodes)

