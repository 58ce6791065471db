"""The report's data: the latest window predicted, the members most at risk explained with
PGM-Explainer (Vu & Thai, NeurIPS 2020) and put in plain words (the dict ``report.render_report``
draws; its layout is in the module docstring of ``report.py``).

A member's explanation: the peers whose perturbation the member's prediction depends on
(PGM-Explainer's chi-square selection over the member's n-hop neighbourhood; a perturbed peer's
activity is replaced by the window's average member), the interactions between the member and
each of them (counted from the window's typed edges), and P(at risk | those peers as observed),
the Bayesian network's answer with every explaining peer unperturbed. Names are pseudonyms unless
``show_names``; member ids never enter the report otherwise.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import torch
from torch_geometric.data import Data

from ..datasets.vcs import EDGE_TYPES
from .data import CLASS_NAMES, Windows, span, strip
from .settings import CLGTConfig

SYMMETRIC = {"co-edit", "co-author"}  # stored in both directions; counted once
PERTURBATION = "mean"
PEERS_IN_WORDS = 3


def iso(t: int) -> str:
    return datetime.fromtimestamp(int(t), timezone.utc).isoformat()


def activity_counts(g: Data, i: int) -> Dict[str, Any]:
    """The member's raw activity in the window, whole numbers where the feature is a count."""
    out = {}
    for name, value in zip(g.feature_names, g.x_raw[i].tolist()):
        out[name] = round(value, 2) if name == "regularity" else int(round(value))
    return out


def interactions(g: Data, a: int, b: int) -> List[Dict[str, Any]]:
    """Interactions between members ``a`` and ``b``: one entry per type (and direction, for integrate
    and sign-off: ``by`` = 'member' when ``a`` did it to ``b``, 'peer' for the other way)."""
    src, dst = g.edge_index
    out = []
    for j in ((src == a) & (dst == b) | (src == b) & (dst == a)).nonzero().view(-1).tolist():
        kind = EDGE_TYPES[int(g.edge_type[j])]
        mine = int(src[j]) == a
        if kind in SYMMETRIC and not mine:
            continue
        entry = {"type": kind, "count": int(g.edge_attr_raw[j, 0]), "lines": int(g.edge_attr_raw[j, 1])}
        if kind not in SYMMETRIC:
            entry["by"] = "member" if mine else "peer"
        out.append(entry)
    return out


def _clause(entry: Dict[str, Any], peer: str) -> str:
    n, kind = entry["count"], entry["type"]
    s = "" if n == 1 else "s"
    if kind == "co-edit":
        return f"edited {n} of the same file{s} as {peer} ({entry['lines']} lines changed between them)"
    if kind == "co-author":
        return f"co-authored {n} commit{s} with {peer}"
    verb = "integrated" if kind == "integrate" else "signed off"
    return f"{verb} {n} of {peer}'s commit{s}" if entry["by"] == "member" else f"had {n} commit{s} {verb} by {peer}"


def sentence(name: str, p: float, counts: Dict[str, Any], peers: List[Dict[str, Any]],
             p_given: Optional[float], window_days: int) -> str:
    """What a teacher reads about one member."""
    verdict = (f"{name} is predicted at risk (probability {p:.2f})" if p >= 0.5
               else f"{name} looks on track (probability of being at risk {p:.2f})")
    days = counts.get("active_days", 0)
    own = (f"In this {window_days}-day period they made {counts.get('commits', 0)} commit(s) on {days} day(s), "
           f"adding {counts.get('lines_added', 0)} and removing {counts.get('lines_removed', 0)} lines.")
    if not peers:
        return f"{verdict}. {own} The prediction rests on their own activity, not on their work with others."
    parts = []
    for peer in peers[:PEERS_IN_WORDS]:
        said = "; ".join(_clause(e, peer["name"]) for e in peer["interactions"])
        parts.append(said or f"worked near {peer['name']} in the team (no direct interaction)")
    why = f"The prediction depends most on how they work with others: they {'; and they '.join(parts)}."
    tail = ""
    if p_given is not None:
        tail = (f" If these peers keep working as they do now, the warning holds with probability {p_given:.2f}."
                if p >= 0.5 else "")
    return f"{verdict}. {own} {why}{tail}"


def explain_member(explainer, g: Data, i: int, names: List[str], p: float, window_days: int) -> Dict[str, Any]:
    """One member's explanation (see the module docstring)."""
    exp = explainer.explain_node(strip(g), i)
    chosen = sorted((n for n in exp.nodes if n != i), key=lambda n: (exp.p_values[n], n))
    peers = [{"name": names[n], "interactions": interactions(g, i, n), "p_value": float(exp.p_values[n])}
             for n in chosen]
    p_given = None
    if exp.network is not None and p >= 0.5:
        in_net = {int(v) for v in exp.network.nodes() if v != "target"}
        evidence = {n: False for n in chosen if n in in_net}
        if evidence:
            p_given = float(exp.query(evidence))
    return {"peers": peers, "p_at_risk_given": p_given,
            "sentence": sentence(names[i], p, activity_counts(g, i), peers, p_given, window_days)}


def evaluation(cfg: CLGTConfig, windows: Windows, row: Dict[str, Any]) -> Dict[str, Any]:
    """How well the model did on the later windows it was tested on: the report's "model" entry."""
    test = windows.windows_of("test")
    return {"name": cfg.model,
            "metrics": {m: row[f"test_{m}"]["mean"] for m in ("accuracy", "macro_f1", "roc_auc")},
            "evaluated_on": f"{len(test)} later window(s), {span(test)}, "
                            f"{sum(int((w.y >= 0).sum()) for w in test)} members with a known outcome; "
                            f"trained on earlier windows; mean over seed(s) {', '.join(map(str, cfg.seeds))}"}


def build_report(cfg: CLGTConfig, windows: Windows, model, evaluated: Dict[str, Any]) -> Dict[str, Any]:
    """The report dict for the latest window (layout: ``report.render_report``); ``evaluated``:
    the model's test scores, from `evaluation`."""
    from ..explain.pgm import PGMExplainer

    g = windows.latest
    model = model.cpu().eval()
    with torch.no_grad():
        p_risk = torch.softmax(model(strip(g)), -1)[:, 1].tolist()
    names = [windows.names[m] for m in g.members]
    order = sorted(range(g.num_nodes), key=lambda i: (-p_risk[i], names[i]))
    # A drop of more than 0.1 as the outcome: on team graphs, whose models flip hard when a driving
    # peer changes, it finds the planted drivers better than the top-eighth coding (BENCHMARKS.md).
    explainer = PGMExplainer(model, num_samples=cfg.explain_samples, perturbation=PERTURBATION, seed=0,
                             outcome="threshold")
    members = []
    for rank, i in enumerate(order):
        label = None
        if windows.user_labels is not None and g.members[i] in windows.user_labels:
            label = CLASS_NAMES[windows.user_labels[g.members[i]]]
        counts = activity_counts(g, i)
        if rank < cfg.explain:
            explanation = explain_member(explainer, g, i, names, p_risk[i], cfg.window_days)
        else:
            explanation = {"peers": [], "p_at_risk_given": None,
                           "sentence": sentence(names[i], p_risk[i], counts, [], None, cfg.window_days).split(
                               " The prediction rests")[0] + f" (only the {cfg.explain} most at risk are explained)."}
        members.append({"id": names[i], "name": names[i], "p_at_risk": p_risk[i],
                        "predicted": CLASS_NAMES[int(p_risk[i] >= 0.5)], "label": label,
                        "activity": counts, "explanation": explanation})
    src, dst = g.edge_index.tolist()
    edges = [{"source": names[a], "target": names[b], "type": EDGE_TYPES[int(t)], "weight": float(w),
              "count": int(c)}
             for a, b, t, w, c in zip(src, dst, g.edge_type.tolist(), g.edge_weight.tolist(), g.edge_attr_raw[:, 0])
             if not (EDGE_TYPES[int(t)] in SYMMETRIC and a > b)]
    return {
        "title": f"Early warning for {windows.dataset.name}",
        "source": windows.dataset.name,
        "window": [iso(g.window[0]), iso(g.window[1])],
        "generated": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "label_rule": windows.label_rule,
        "model": evaluated,
        "members": members,
        "graph": {"nodes": [{"id": names[i], "name": names[i], "p_at_risk": p_risk[i]} for i in range(g.num_nodes)],
                  "edges": edges},
    }
