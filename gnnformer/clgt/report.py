"""The CLGT report: one self-contained HTML page an educator can read offline.

It renders plain data (the report dict that ``run.py`` builds) into a page with no external file,
no CDN and no third-party script: a header (source, window, label rule, model and test metrics),
the interaction graph as inline SVG, the members most at risk first, and for each member predicted
at risk the peers and interactions that explain it (PGM-Explainer, Vu & Thai, NeurIPS 2020) with
P(at risk | these peers behave as observed). Every string from the data goes through
``html.escape``; names are pseudonyms unless the user asked for the repository's names.

The layout is Fruchterman & Reingold's force-directed placement ("Graph drawing by force-directed
placement", Software: Practice and Experience, 1991), started from a circle and cooled on a fixed
schedule, so the same graph always gives the same picture.
"""
from __future__ import annotations

import html
import math
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["render_report", "layout"]

WIDTH, HEIGHT, MARGIN, RADIUS = 900, 560, 60, 10
# Colour and dash per interaction type; directed types get an arrow (integrator/signer -> author).
EDGE_STYLE = {"co-edit": ("#7a7a7a", ""), "integrate": ("#1f6fb4", "7 4"),
              "co-author": ("#8e44ad", ""), "sign-off": ("#d35400", "2 4")}
DIRECTED = {"integrate": "integrator → author", "sign-off": "signer → author"}
OTHER_STYLE = ("#999999", "1 3")
# Undirected types are drawn straight (both stored directions coincide); directed ones bend so that
# a -> b and b -> a stay apart, and apart from the straight line of the same pair.
BEND = {"co-edit": 0.0, "co-author": 0.0, "integrate": 18.0, "sign-off": 30.0}
# Interactions in plain words: (what it is, unit of its count).
WORDS = {"co-edit": ("edited the same files", "shared files"), "integrate": ("integrated work", "commits"),
         "co-author": ("co-authored commits", "commits"), "sign-off": ("signed off commits", "sign-offs")}
METRIC_NAMES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "roc_auc": "ROC-AUC"}
LABEL_ALL_BELOW = 40  # above this many members only those at risk are labelled (names would overlap)

CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#222;margin:0 auto;max-width:1000px;padding:0 16px 40px}
h1{font-size:1.6em;margin:.8em 0 .2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px}dl.meta dt{font-weight:600}
dl.meta dd{margin:0}.muted{color:#666;font-size:.9em}
svg.graph{width:100%;height:auto;border:1px solid #ddd;border-radius:6px;background:#fcfcfc}
svg text{font-size:12px;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg .hl circle,svg circle.hl{stroke:#000;stroke-width:3}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:6px 0;font-size:.9em}
.legend span{display:inline-flex;align-items:center;gap:6px}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{padding:4px 8px;border-bottom:1px solid #eee}
thead th,tbody th{text-align:left}thead th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.hl{background:#fff4cc}.bar{display:inline-block;width:90px;height:10px;background:#eee;
border-radius:3px;vertical-align:middle;margin-right:6px}.bar span{display:block;height:100%;border-radius:3px}
.risk{color:#a61c1c;font-weight:600}.ok{color:#276738}
section.why{border-left:4px solid #c0392b;padding:2px 14px;margin:14px 0;background:#fdf6f5}
section.why h3{margin:.4em 0}
"""
# Hovering a member in the table or the graph highlights it in both; no data goes into the script.
SCRIPT = """
function mark(m,on){document.querySelectorAll('[data-m="'+m+'"]').forEach(function(e){e.classList.toggle('hl',on);});}
document.querySelectorAll('[data-m]').forEach(function(el){
el.addEventListener('mouseenter',function(){mark(el.getAttribute('data-m'),true);});
el.addEventListener('mouseleave',function(){mark(el.getAttribute('data-m'),false);});});
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def pct(p) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{100 * p:.0f}%"


def risk_colour(p: float) -> str:
    """Green (on track) through amber to red (at risk)."""
    stops = [(0.0, (39, 133, 69)), (0.5, (240, 180, 40)), (1.0, (192, 41, 43))]
    p = min(max(float(p), 0.0), 1.0)
    (p0, c0), (p1, c1) = (stops[0], stops[1]) if p <= 0.5 else (stops[1], stops[2])
    t = (p - p0) / (p1 - p0)
    return "#" + "".join(f"{round(a + t * (b - a)):02x}" for a, b in zip(c0, c1))


def layout(n: int, edges: list[tuple[int, int, float]], iterations: int = 250) -> np.ndarray:
    """Positions in [0, 1]^2 for ``n`` nodes: Fruchterman-Reingold, deterministic (circle start)."""
    if n == 1:
        return np.full((1, 2), 0.5)
    angle = 2 * np.pi * np.arange(n) / max(n, 1)
    pos = 0.5 + 0.4 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    attract = np.zeros((n, n))
    for a, b, w in edges:
        if a != b:
            attract[a, b] = attract[b, a] = max(attract[a, b], math.log1p(max(w, 0.0)) + 0.5)
    attract /= max(attract.max(), 1e-9)
    k = math.sqrt(1.0 / n)
    temperature = 0.1
    for _ in range(iterations):
        dx, dy = pos[:, :1] - pos[:, 0], pos[:, 1:] - pos[:, 1]
        dist = np.maximum(np.sqrt(dx * dx + dy * dy), 1e-3)
        # along pos_i - pos_j: repulsion k^2/d, attraction d^2/k; sum_j c_ij (p_i - p_j) without an [n, n, 2] array
        coef = k * k / dist**2 - attract * dist / k
        np.fill_diagonal(coef, 0.0)
        disp = coef.sum(axis=1, keepdims=True) * pos - coef @ pos
        disp -= 0.3 * n * k * (pos - 0.5)  # weak gravity keeps components on the canvas
        length = np.maximum(np.linalg.norm(disp, axis=1, keepdims=True), 1e-9)
        pos += disp / length * np.minimum(length, temperature)
        temperature = max(temperature * 0.98, 0.002)
    span = np.maximum(pos.max(axis=0) - pos.min(axis=0), 1e-9)
    return (pos - pos.min(axis=0)) / span


def graph_svg(graph: dict, members_by_id: dict[str, int]) -> str:
    nodes, edges = graph.get("nodes", []), graph.get("edges", [])
    index = {node["id"]: i for i, node in enumerate(nodes)}
    missing = {e[end] for e in edges for end in ("source", "target") if e[end] not in index}
    if missing:
        raise ValueError(f"report graph: edges name members that are not nodes: {sorted(missing)[:5]}")
    pairs = [(index[e["source"]], index[e["target"]], float(e.get("weight", 1.0))) for e in edges]
    unit = layout(len(nodes), pairs) if nodes else np.zeros((0, 2))
    xy = np.round(MARGIN + unit * [WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN], 1)
    present = {e["type"] for e in edges}
    types = [t for t in EDGE_STYLE if t in present] + sorted(present - set(EDGE_STYLE))
    top = max((float(e.get("weight", 1.0)) for e in edges), default=1.0)
    out = [f'<svg class="graph" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="g-title g-desc">',
           '<title id="g-title">Interaction graph of the team</title>',
           f'<desc id="g-desc">{len(nodes)} members as circles coloured by their probability of being at risk '
           f'(green on track, red at risk); {len(edges)} interactions as lines styled by type.</desc><defs>']
    for t in types:
        if t in DIRECTED:
            out.append(f'<marker id="arrow-{types.index(t)}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" '
                       f'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto"><path d="M0 0L10 5L0 10z" fill="{style(t)[0]}"/></marker>')
    out.append('</defs><g class="edges">')
    names = [node.get("name", node["id"]) for node in nodes]
    for e, (a, b, w) in zip(edges, pairs):
        t = e["type"]
        colour, dash = style(t)
        width = 1.0 + 2.5 * math.log1p(max(w, 0.0)) / max(math.log1p(max(top, 0.0)), 1e-9)
        d = edge_path(xy[a], xy[b], BEND.get(t, 8.0), shorten=t in DIRECTED)
        extra = (f' stroke-dasharray="{dash}"' if dash else "") + \
                (f' marker-end="url(#arrow-{types.index(t)})"' if t in DIRECTED else "")
        count = e.get("count")
        label = f"{names[a]} – {names[b]}: {t}" + (f", {count} times" if count is not None else "")
        out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="{width:.1f}" '
                   f'stroke-opacity="0.75"{extra}><title>{esc(label)}</title></path>')
    out.append('</g><g class="nodes">')
    for i, node in enumerate(nodes):
        p = float(node.get("p_at_risk", 0.0))
        m = members_by_id.get(node["id"])
        data = f' data-m="{m}"' if m is not None else ""
        out.append(f'<g{data}><circle cx="{xy[i, 0]}" cy="{xy[i, 1]}" r="{RADIUS}" fill="{risk_colour(p)}" '
                   f'stroke="#333" stroke-width="1"><title>{esc(names[i])}: {pct(p)} at risk</title></circle>')
        if len(nodes) <= LABEL_ALL_BELOW or p >= 0.5:
            left = xy[i, 0] > 0.7 * WIDTH  # names on the right half would run off the canvas
            x = xy[i, 0] - RADIUS - 3 if left else xy[i, 0] + RADIUS + 3
            anchor = ' text-anchor="end"' if left else ""
            out.append(f'<text x="{x:.1f}" y="{xy[i, 1] + 4}"{anchor} aria-hidden="true">{esc(names[i])}</text>')
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + legend(types)


def style(edge_type: str) -> tuple[str, str]:
    return EDGE_STYLE.get(edge_type, OTHER_STYLE)


def edge_path(a, b, bend: float, shorten: bool) -> str:
    """A path from ``a`` to ``b``, bent by ``bend`` pixels; an arrow's path stops at the target's circle."""
    delta = b - a
    dist = max(float(np.hypot(*delta)), 1e-9)
    control = (a + b) / 2 + np.array([-delta[1], delta[0]]) / dist * bend
    if shorten:
        towards = b - control
        b = b - towards / max(float(np.hypot(*towards)), 1e-9) * (RADIUS + 2)
    if bend == 0:
        return f"M{a[0]:.1f} {a[1]:.1f}L{b[0]:.1f} {b[1]:.1f}"
    return f"M{a[0]:.1f} {a[1]:.1f}Q{control[0]:.1f} {control[1]:.1f} {b[0]:.1f} {b[1]:.1f}"


def legend(types: list[str]) -> str:
    items = [f'<span><svg width="34" height="10" aria-hidden="true"><line x1="0" y1="5" x2="34" y2="5" '
             f'stroke="{style(t)[0]}" stroke-width="3"' + (f' stroke-dasharray="{style(t)[1]}"' if style(t)[1] else "")
             + f'/></svg>{esc(t)}{f" (arrow: {DIRECTED[t]})" if t in DIRECTED else ""}</span>'
             for t in types]
    # squares, not circles: the graph's circles are its members and nothing else
    scale = "".join(f'<span><svg width="12" height="12" aria-hidden="true"><rect width="12" height="12" rx="6" '
                    f'fill="{risk_colour(p)}"/></svg>{pct(p)} at risk</span>' for p in (0.0, 0.5, 1.0))
    return f'<div class="legend" aria-label="Legend">{"".join(items)}{scale}</div>'


def metrics_text(model: dict) -> str:
    parts = []
    for key, value in (model.get("metrics") or {}).items():
        shown = "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"
        parts.append(f"{esc(METRIC_NAMES.get(key, key))} {shown}")
    where = model.get("evaluated_on")
    return ", ".join(parts) + (f" <span class=\"muted\">(tested on {esc(where)})</span>" if where else "")


def number(value) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.2f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else esc(value)


def members_table(members: list[dict]) -> str:
    keys = list(dict.fromkeys(k for m in members for k in (m.get("activity") or {})))
    with_label = any(m.get("label") is not None for m in members)
    head = ['<th scope="col">#</th>', '<th scope="col">Member</th>', '<th scope="col">P(at risk)</th>',
            '<th scope="col">Predicted</th>'] + (['<th scope="col">Known outcome</th>'] if with_label else []) + \
           [f'<th scope="col">{esc(k.replace("_", " "))}</th>' for k in keys]
    rows = []
    for i, m in enumerate(members):
        p = float(m["p_at_risk"])
        predicted = m.get("predicted", "at risk" if p >= 0.5 else "on track")
        cells = [f'<td class="num">{i + 1}</td>', f'<th scope="row">{esc(m.get("name", m["id"]))}</th>',
                 f'<td><span class="bar" aria-hidden="true"><span style="width:{100 * min(max(p, 0), 1):.0f}%;'
                 f'background:{risk_colour(p)}"></span></span>{pct(p)}</td>',
                 f'<td class="{"risk" if predicted == "at risk" else "ok"}">{esc(predicted)}</td>']
        if with_label:
            cells.append(f'<td>{esc(m.get("label") or "unknown")}</td>')
        cells += [f'<td class="num">{number((m.get("activity") or {}).get(k, 0))}</td>' for k in keys]
        rows.append(f'<tr data-m="{i}">{"".join(cells)}</tr>')
    return (f'<table id="members"><caption class="muted">Members, most at risk first. Activity counts are '
            f'for this window.</caption><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def interactions_text(interactions: list[dict]) -> str:
    parts = []
    for it in interactions:
        what, unit = WORDS.get(it.get("type"), (it.get("type", "interacted"), "times"))
        detail = f'{it.get("count", 0)} {unit}' + (f', {it["lines"]:,} lines' if it.get("lines") else "")
        parts.append(f"{esc(what)} ({esc(detail)})")
    return "; ".join(parts) or "no direct interaction in this window"


def fallback_sentence(name: str, peers: list[dict]) -> str:
    if not peers:
        return f"No peer's behaviour changes this prediction: it rests on {name}'s own activity."
    return f"{name}'s risk is driven mostly by " + " and ".join(p["name"] for p in peers[:3]) + "."


def explanations(members: list[dict]) -> str:
    at_risk = [(i, m) for i, m in enumerate(members) if m.get("predicted") == "at risk"]
    if not at_risk:
        return '<p id="nobody">No one is predicted at risk in this window.</p>'
    blocks = []
    for i, m in at_risk:
        name = m.get("name", m["id"])
        why = m.get("explanation") or {}
        peers = why.get("peers") or []
        sentence = why.get("sentence") or fallback_sentence(name, peers)
        items = "".join(f'<li><strong>{esc(p["name"])}</strong>: {interactions_text(p.get("interactions") or [])}'
                        + (f' <span class="muted">(significance p = {float(p["p_value"]):.3g})</span>'
                           if p.get("p_value") is not None else "") + "</li>" for p in peers)
        given = why.get("p_at_risk_given")
        cond = (f"P({esc(name)} at risk | these peers behave as observed) = <strong>{pct(given)}</strong>"
                if given is not None else "No conditional probability: the explanation found no peer to condition on.")
        blocks.append(f'<section class="why" id="why-{i}" data-m="{i}"><h3>{esc(name)}: {pct(m["p_at_risk"])} '
                      f'at risk</h3><p>{esc(sentence)}</p>' + (f"<ul>{items}</ul>" if items else "")
                      + f"<p>{cond}</p></section>")
    return "\n".join(blocks)


def page(report: dict) -> str:
    members = report.get("members") or []
    members = sorted(members, key=lambda m: -float(m["p_at_risk"]))  # stable: equal risks keep their order
    members_by_id = {m["id"]: i for i, m in enumerate(members)}
    model = report.get("model") or {}
    window = report.get("window") or ["?", "?"]
    n_risk = sum(m.get("predicted") == "at risk" for m in members)
    title = report.get("title") or "Team report"
    meta = [("Source", esc(report.get("source", ""))), ("Window", f"{esc(window[0])} to {esc(window[-1])}"),
            ("What “at risk” means", esc(report.get("label_rule", ""))),
            ("Model", f'{esc(model.get("name", "?"))}: {metrics_text(model)}'),
            ("Members", f"{len(members)}, of whom {n_risk} predicted at risk")]
    if report.get("generated"):
        meta.append(("Generated", esc(report["generated"])))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{esc(title)}</title><link rel="icon" href="data:,"><style>{CSS}</style></head><body>
<header><h1>{esc(title)}</h1><dl class="meta">{"".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)}</dl>
<p class="muted">Predictions are an early warning to start a conversation, not a grade. Names are pseudonyms
unless the report was made with the repository's names.</p></header>
<main><h2>Who works with whom</h2>{graph_svg(report.get("graph") or {}, members_by_id)}
<h2>Members</h2>{members_table(members)}
<h2>Why these members are at risk</h2>{explanations(members)}</main>
<script>{SCRIPT}</script></body></html>
"""


def render_report(report: dict, path) -> Path:
    """Write the report page to ``path`` (a ``.html`` file, or a folder that gets ``report.html``).

    The page is written to a temporary file beside it and moved into place, so a failure leaves
    no half-written report.
    """
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        path = path / "report.html"
    text = page(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-", suffix=".html")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
