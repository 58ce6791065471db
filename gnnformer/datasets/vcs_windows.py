"""Interaction graphs of a team, one per time window, from its commits (the computations of ``vcs``).

The graph follows CLGT (Peng et al., "CLGT: A Graph Transformer for Student Performance Prediction
in Collaborative Learning", AAAI 2023, arXiv:2308.02038): members are nodes, interactions are
typed, weighted edges with features. What a git history shows of those interactions:

* ``co-edit`` (both directions): two members changed the same file in the window (a file keeps
  its identity across renames). count = shared files, lines = both members' changed lines in
  them, overlap = shared files / files either touched (Jaccard).
* ``integrate`` (integrator -> author): the committer of a commit is not its author (a patch
  applied, a rebase or cherry-pick by a maintainer), and merges: the merge's author -> the authors
  of the commits the merge brings in (reachable from a later parent, not from the first).
  count = commits integrated, lines = their changed lines. A merge that brings in more than
  ``MAX_BROUGHT_IN`` commits is a branch sync (main merged into a branch, a release branch
  merged back), not the integration of someone's work, and adds no edges.
* ``co-author`` (both directions): the author and the ``Co-authored-by`` people of a commit.
* ``sign-off`` (signer -> author): a ``Signed-off-by`` that is not the author's own.

Times: authoring (commits, co-edits, co-authorship) counts at the author time; integration and
sign-off at the commit time. Recency of an event at time ``t`` is ``0.5 ** ((ref - t) / half_life)``
with ``ref`` = the window's end (or the end of the history, for the last, partial window), so a
recent interaction weighs 1 and one a half-life earlier 0.5. ``edge_weight = log1p(sum of the
recencies of the edge's events)``: more and more recent interactions weigh more, growth saturates.

Members: every id with any role in the window (author, integrator, integrated, co-author, signer).
Node features (``FEATURE_NAMES``, per member in the window): commits and merges authored, lines
added and removed, distinct files and directories touched, active days (UTC days with an authored
commit), regularity (the fraction of the window's weeks with an authored commit), commits of
others integrated, commits co-authored, sign-offs given, days since the member's last event (to
``ref``) and tenure (days since the member's first event in the history, up to ``ref``: nothing
from the future). Heavy-tailed counts: ``x = log1p(x_raw)`` and ``edge_attr = log1p(edge_attr_raw)``;
the raw values are kept for reports.
"""
from __future__ import annotations

import heapq
import math
import posixpath
from collections import defaultdict

import torch
from torch_geometric.data import Data

EDGE_TYPES = ("co-edit", "integrate", "co-author", "sign-off")
FEATURE_NAMES = ("commits", "merges", "lines_added", "lines_removed", "files", "directories", "active_days",
                 "regularity", "integrated", "coauthored", "signed_off", "days_since_last", "tenure_days")
EDGE_FEATURE_NAMES = ("count", "lines", "recency", "overlap")
MAX_BROUGHT_IN = 100  # more than this in one merge is a branch sync, not integration of a member's work
MAX_WALK = 20_000     # commits visited per merge at most (the walk is exact up to there)
DAY = 86_400
_A, _B = 1, 2         # reachable from the first parent / from a later parent


def generations(parents: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """Generation number of every commit: 1 + the largest of its parents' (parents not in the history: 0)."""
    gen: dict[str, int] = {}
    for root in parents:
        stack = [root]
        while stack:  # iterative depth-first: histories are deeper than Python's recursion limit
            sha = stack[-1]
            if sha in gen:
                stack.pop()
                continue
            todo = [p for p in parents[sha] if p in parents and p not in gen]
            if todo:
                stack.extend(todo)
            else:
                gen[sha] = 1 + max((gen.get(p, 0) for p in parents[sha]), default=0)
                stack.pop()
    return gen


def brought_in(merge_parents: tuple[str, ...], parents: dict[str, tuple[str, ...]], gen: dict[str, int]) -> list[str]:
    """The commits reachable from a merge's later parents but not from its first (``git rev-list p1..p2``).

    Both sides are walked together, highest generation first, so a commit's flags are final when
    it is taken from the queue; the walk stops once no commit only reachable from a later parent
    is left. Returns [] for a branch sync (more than ``MAX_BROUGHT_IN``)."""
    flags: dict[str, int] = {}
    heap: list[tuple[int, str]] = []
    pending = 0  # queued commits flagged _B only

    def mark(sha: str, flag: int) -> None:
        nonlocal pending
        if sha not in parents:
            return
        old = flags.get(sha, 0)
        new = old | flag
        if new == old:
            return
        flags[sha] = new
        if old == 0:
            heapq.heappush(heap, (-gen[sha], sha))
            pending += new == _B
        elif old == _B:
            pending -= 1

    mark(merge_parents[0], _A)
    for p in merge_parents[1:]:
        mark(p, _B)
    out: list[str] = []
    steps = 0
    while pending and heap and steps < MAX_WALK:
        _, sha = heapq.heappop(heap)
        steps += 1
        flag = flags[sha]
        if flag == _B:
            pending -= 1
            out.append(sha)
            if len(out) > MAX_BROUGHT_IN:
                return []
        for p in parents[sha]:
            mark(p, flag)
    return out


def file_ids(files: dict) -> dict[str, str]:
    """path -> one name per file across its renames (union of every ``old_path`` -> ``path``); a path
    missing from the result is its own name."""
    root: dict[str, str] = {}

    def find(p: str) -> str:
        while root.get(p, p) != p:
            root[p] = root.get(root[p], root[p])
            p = root[p]
        return p

    for changes in files.values():
        for ch in changes:
            old = getattr(ch, "old_path", None)
            if old:
                a, b = find(old), find(ch.path)
                if a != b:
                    root[max(a, b)] = min(a, b)
    return {p: find(p) for p in root}


class _Window:
    """Events of one window, accumulated; ``graph()`` turns them into a ``Data``."""

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end
        self.members: set[str] = set()
        self.stats: dict[str, dict] = defaultdict(lambda: defaultdict(float))
        self.times: dict[str, list[int]] = defaultdict(list)        # member -> authored commit times
        self.last: dict[str, int] = {}                              # member -> last event time, any role
        self.edits: dict[str, dict[str, list]] = defaultdict(dict)  # file -> member -> [last time, lines]
        self.dirs: dict[str, set[str]] = defaultdict(set)
        self.edges: dict[tuple[int, str, str], list] = {}           # (type, src, dst) -> [count, lines, last, decay sum]

    def seen(self, member: str, t: int) -> None:
        self.members.add(member)
        self.last[member] = max(t, self.last.get(member, t))

    def event(self, kind: int, src: str, dst: str, t: int, lines: float, both: bool) -> None:
        for a, b in ((src, dst), (dst, src)) if both else ((src, dst),):
            e = self.edges.setdefault((kind, a, b), [0.0, 0.0, t, []])
            e[0] += 1
            e[1] += lines
            e[2] = max(e[2], t)
            e[3].append(t)

    def graph(self, ref: int, half_life: float, first_seen: dict[str, int], window_days: int) -> Data:
        order = sorted(self.members)
        index = {m: i for i, m in enumerate(order)}
        weeks = max(1, math.ceil(window_days / 7))
        files_of: dict[str, set[str]] = defaultdict(set)
        for f, by in self.edits.items():
            for m in by:
                files_of[m].add(f)
            for a in by:  # co-edit pairs
                for b in by:
                    if a < b:
                        t = max(by[a][0], by[b][0])
                        self.event(0, a, b, t, by[a][1] + by[b][1], both=True)
        raw = torch.zeros(len(order), len(FEATURE_NAMES), dtype=torch.float64)
        for m, i in index.items():
            s, times = self.stats[m], self.times[m]
            raw[i] = torch.tensor([
                s["commits"], s["merges"], s["added"], s["deleted"], len(files_of[m]), len(self.dirs[m]),
                len({t // DAY for t in times}), len({(t - self.start) // (7 * DAY) for t in times}) / weeks,
                s["integrated"], s["coauthored"], s["signed_off"],
                (ref - self.last[m]) / DAY, (ref - first_seen[m]) / DAY], dtype=torch.float64)
        keys = sorted(self.edges, key=lambda k: (k[0], index[k[1]], index[k[2]]))
        attr = torch.zeros(len(keys), len(EDGE_FEATURE_NAMES), dtype=torch.float64)
        weight = torch.zeros(len(keys), dtype=torch.float64)
        for j, (kind, a, b) in enumerate(keys):
            count, lines, last, times = self.edges[(kind, a, b)]
            overlap = count / len(files_of[a] | files_of[b]) if kind == 0 else 0.0
            attr[j] = torch.tensor([count, lines, 0.5 ** ((ref - last) / half_life), overlap], dtype=torch.float64)
            weight[j] = math.log1p(sum(0.5 ** ((ref - t) / half_life) for t in times))
        edge_index = torch.tensor([[index[k[1]] for k in keys], [index[k[2]] for k in keys]],
                                  dtype=torch.long).reshape(2, -1)
        return Data(x=torch.log1p(raw).float(), x_raw=raw.float(), edge_index=edge_index,
                    edge_type=torch.tensor([k[0] for k in keys], dtype=torch.long),
                    edge_attr=torch.log1p(attr).float(), edge_attr_raw=attr.float(), edge_weight=weight.float(),
                    y=torch.full((len(order),), -1, dtype=torch.long), members=order,
                    window=(self.start, self.end), feature_names=list(FEATURE_NAMES),
                    edge_feature_names=list(EDGE_FEATURE_NAMES), edge_types=list(EDGE_TYPES),
                    num_nodes=len(order))


def window_graphs(commits: list, files: dict, is_member, start: int, window_days: int,
                  half_life_days: float) -> tuple[list[Data], int]:
    """One graph per window that has any event, oldest first, members kept by ``is_member(id)``.

    Returns the graphs and the index of the window holding the history's last event."""
    width = window_days * DAY
    parents = {c.sha: c.parents for c in commits}
    gen = generations(parents)
    by_sha = {c.sha: c for c in commits}
    alias = file_ids(files)
    windows: dict[int, _Window] = {}
    first_seen: dict[str, int] = {}
    t_end = max(max(c.author_time, c.commit_time) for c in commits)

    def at(t: int) -> _Window | None:
        k = (t - start) // width
        if k < 0:
            return None
        if k not in windows:
            windows[k] = _Window(start + k * width, start + (k + 1) * width)
        return windows[k]

    def seen(w: _Window, t: int, *people: str) -> bool:
        if not all(is_member(p) for p in people):
            return False
        for p in people:
            w.seen(p, t)
            first_seen[p] = min(t, first_seen.get(p, t))
        return True

    for c in commits:
        lines = c.added + c.deleted
        w = at(c.author_time)
        if w is not None and seen(w, c.author_time, c.author):
            s = w.stats[c.author]
            s["merges" if len(c.parents) > 1 else "commits"] += 1
            s["added"] += c.added
            s["deleted"] += c.deleted
            w.times[c.author].append(c.author_time)
            for ch in files.get(c.sha, ()):
                f = alias.get(ch.path, ch.path)
                e = w.edits[f].setdefault(c.author, [c.author_time, 0])
                e[0] = max(e[0], c.author_time)
                e[1] += (ch.added or 0) + (ch.deleted or 0)
                w.dirs[c.author].add(posixpath.dirname(ch.path) or ".")
            group = [c.author] + [p for p in dict.fromkeys(c.coauthors) if p != c.author and is_member(p)]
            for i, a in enumerate(group):
                if i:
                    seen(w, c.author_time, a)
                    w.stats[a]["coauthored"] += 1
                for b in group[i + 1:]:
                    w.event(2, a, b, c.author_time, lines, both=True)
        w = at(c.commit_time)
        if w is None:
            continue
        if c.committer != c.author and seen(w, c.commit_time, c.committer, c.author):
            w.event(1, c.committer, c.author, c.commit_time, lines, both=False)
            w.stats[c.committer]["integrated"] += 1
        for signer in dict.fromkeys(c.signoffs):
            if signer != c.author and seen(w, c.commit_time, signer, c.author):
                w.event(3, signer, c.author, c.commit_time, lines, both=False)
                w.stats[signer]["signed_off"] += 1
        if len(c.parents) > 1:
            for sha in brought_in(c.parents, parents, gen):
                other = by_sha[sha]
                if other.author != c.author and seen(w, c.commit_time, c.author, other.author):
                    w.event(1, c.author, other.author, c.commit_time, other.added + other.deleted, both=False)
                    w.stats[c.author]["integrated"] += 1
    half_life = half_life_days * DAY
    graphs = [w.graph(min(w.end, t_end), half_life, first_seen, window_days)
              for _, w in sorted(windows.items())]
    return graphs, (t_end - start) // width


def proxy_labels(windows: list[Data], *, min_commits: int = 2, only_active: bool = True) -> list[Data]:
    """Copies of ``windows`` with ``y`` = the proxy "at risk" label: an early warning of dropping out.

    A member's contributions in a window = commits + merges authored + commits co-authored. The
    label of a member of window ``w`` is 1 ("at risk") when the member makes fewer than
    ``min_commits`` contributions (default 2; absent = 0) in the window that starts where ``w``
    ends, else 0 ("still active and productive"). Unknown (-1): every member of the last window,
    of a window whose next one is not in ``windows`` (it had too few members to be built), and,
    with ``only_active``, members with no contribution in ``w`` itself (a member only integrated or
    signed off by others has nothing to drop out of). Needs no private data, only the history."""
    def contributions(d: Data) -> dict[str, float]:
        cols = [d.feature_names.index(n) for n in ("commits", "merges", "coauthored")]
        return dict(zip(d.members, d.x_raw[:, cols].sum(1).tolist()))

    by_start = {int(d.window[0]): d for d in windows}
    out = []
    for d in windows:
        d = d.clone()
        nxt = by_start.get(int(d.window[1]))
        if nxt is not None:
            now, later = contributions(d), contributions(nxt)
            d.y = torch.tensor([-1 if only_active and now[m] == 0 else int(later.get(m, 0.0) < min_commits)
                                for m in d.members], dtype=torch.long)
        else:
            d.y = torch.full((len(d.members),), -1, dtype=torch.long)
        out.append(d)
    return out
