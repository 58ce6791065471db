"""The CLGT report page: structure, escaping and offline use (html.parser), then in headless Chromium.

The browser tests need the Debian packages ``chromium`` and ``chromium-driver`` and selenium
(``make test-browser`` installs them and runs this file with GNNFORMER_REQUIRE_BROWSER=1, so a
missing browser fails there instead of skipping).
"""
from __future__ import annotations

import io
import os
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest

from gnnformer.clgt.report import layout, render_report, risk_colour

EVIL = "<script>alert(1)</script>"
VOID = {"meta", "link", "br", "img", "input", "hr"}


def member(id_, name, p, activity, peers=(), given=None, label=None):
    return {"id": id_, "name": name, "p_at_risk": p, "predicted": "at risk" if p >= 0.5 else "on track",
            "label": label, "activity": activity,
            "explanation": {"peers": list(peers), "p_at_risk_given": given,
                            "sentence": f"{name}'s risk is driven mostly by " + " and ".join(q["name"] for q in peers)
                            if peers else ""}}


def make_report(risks=(0.91, 0.12, 0.35, 0.62, 0.05)) -> dict:
    """Five members given out of order; p >= 0.5 is at risk. Edges of all four types plus both
    stored directions of a co-edit."""
    ids = ["m-alex", "m-sam", "m-kim", "m-evil", "m-lee"]
    names = ["Alex", "Sam", "Kim", EVIL, "Lee"]
    sam_kim = [{"name": "Sam", "interactions": [{"type": "co-edit", "count": 4, "lines": 120}], "p_value": 0.003},
               {"name": "Kim", "interactions": [{"type": "integrate", "count": 2, "lines": 30}], "p_value": 0.02}]
    members = [member(i, n, p, {"commits": 10 * k + 1, "lines_added": 1000 * k, "active_days": k + 1},
                      peers=sam_kim if n == "Alex" else (), given=0.83 if n == "Alex" else None)
               for k, (i, n, p) in enumerate(zip(ids, names, risks))]
    order = [2, 0, 4, 3, 1]  # not sorted: the page sorts
    edges = [("m-alex", "m-sam", "co-edit"), ("m-sam", "m-alex", "co-edit"), ("m-kim", "m-alex", "integrate"),
             ("m-evil", "m-lee", "co-author"), ("m-lee", "m-evil", "co-author"), ("m-kim", "m-evil", "sign-off")]
    return {"title": "Team report", "source": "/data/team-repo", "window": ["2024-01-01", "2024-07-01"],
            "generated": "2024-07-02T10:00:00", "label_rule": "at risk = fewer than 3 commits in the next window",
            "model": {"name": "clgt", "metrics": {"accuracy": 0.8125, "macro_f1": 0.75, "roc_auc": float("nan")},
                      "evaluated_on": "windows 5-6"},
            "members": [members[i] for i in order],
            "graph": {"nodes": [{"id": i, "name": n, "p_at_risk": p} for i, n, p in zip(ids, names, risks)],
                      "edges": [{"source": s, "target": t, "type": ty, "weight": 1.0 + k, "count": k + 1}
                                for k, (s, t, ty) in enumerate(edges)]}}


class Page(HTMLParser):
    """Every start tag with its attributes and its open ancestors; fails on a misnested end tag."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.text = [], [], []
        self.feed(text)
        self.close()
        assert self.stack == [], f"unclosed tags: {self.stack}"

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), tuple(self.stack)))
        if tag not in VOID:
            self.stack.append((tag, dict(attrs).get("class", "")))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs), tuple(self.stack)))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1][0] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append((data, tuple(self.stack)))

    def inside(self, tag, cls):
        return [(t, a) for t, a, up in self.tags if t == tag and any(c == cls for _, c in up)]

    def row_names(self):
        return [d for d, up in self.text if up and up[-1] == ("th", "") and ("tbody", "") in up]


def render(tmp_path, report, name="r.html"):
    path = render_report(report, tmp_path / name)
    return path, path.read_text(encoding="utf-8")


def test_page_parses_sorts_escapes_and_draws_every_node_and_edge(tmp_path):
    path, text = render(tmp_path, make_report())
    page = Page(text)
    assert page.row_names() == ["Alex", EVIL, "Kim", "Sam", "Lee"]  # 0.91, 0.62, 0.35, 0.12, 0.05
    assert EVIL not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert [t for t, _, _ in page.tags].count("script") == 1  # only the page's own
    assert len(page.inside("circle", "graph")) == 5
    assert len(page.inside("path", "edges")) == 6
    # arrows only on the directed types; one marker each
    markers = [a["id"] for t, a, _ in page.tags if t == "marker"]
    assert markers == ["arrow-1", "arrow-3"]  # types present: co-edit, integrate, co-author, sign-off
    assert sum("marker-end" in a for _, a in page.inside("path", "edges")) == 2
    assert "81.2" not in text and "0.812" in text and "ROC-AUC n/a" in text
    assert "P(Alex at risk | these peers behave as observed) = <strong>83%</strong>" in text
    assert "edited the same files (4 shared files, 120 lines)" in text
    # two explanation blocks, one per member at risk, most at risk first
    assert [a["id"] for t, a, _ in page.tags if t == "section"] == ["why-0", "why-1"]
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_page_references_nothing_outside_itself(tmp_path):
    report = make_report()
    report["source"] = "https://example.org/team.git"  # shown as text, never fetched
    _, text = render(tmp_path, report)
    page = Page(text)
    linked = [(t, k, v) for t, a, _ in page.tags for k, v in a.items()
              if k in {"src", "href", "xlink:href", "action", "poster", "data", "srcset", "marker-end"}]
    assert linked and all(v.startswith(("#", "data:", "url(#")) for _, _, v in linked), linked
    assert re.findall(r"https?://[^\s<\"]*", text) == ["https://example.org/team.git"]
    assert "@import" not in text and not re.search(r"url\((?!#)", text)


def test_one_member_at_risk_and_no_one_at_risk(tmp_path):
    _, one = render(tmp_path, make_report(risks=(0.7, 0.1, 0.2, 0.3, 0.4)), "one.html")
    page = Page(one)
    assert [a["id"] for t, a, _ in page.tags if t == "section"] == ["why-0"]
    assert "Alex&#x27;s risk is driven mostly by Sam and Kim" in one
    assert "No one is predicted at risk" not in one
    report = make_report(risks=(0.4, 0.1, 0.2, 0.3, 0.0))
    del report["graph"]["edges"][:]
    _, none = render(tmp_path, report, "none.html")
    page = Page(none)
    assert [t for t, _, _ in page.tags].count("section") == 0 and "No one is predicted at risk" in none
    assert len(page.inside("circle", "graph")) == 5 and page.inside("path", "edges") == []


def test_a_single_member_and_a_folder_as_the_target(tmp_path):
    report = make_report()
    report["members"] = [m for m in report["members"] if m["id"] == "m-lee"]
    report["graph"] = {"nodes": [{"id": "m-lee", "name": "Lee", "p_at_risk": 0.05}], "edges": []}
    path = render_report(report, tmp_path / "out")
    assert path == tmp_path / "out" / "report.html"
    page = Page(path.read_text(encoding="utf-8"))
    (_, circle), = page.inside("circle", "graph")
    assert (circle["cx"], circle["cy"]) == ("450.0", "280.0")  # the single node sits in the middle
    assert page.row_names() == ["Lee"]


def test_edges_to_unknown_members_are_refused(tmp_path):
    report = make_report()
    report["graph"]["edges"].append({"source": "m-alex", "target": "nobody", "type": "co-edit", "weight": 1.0})
    with pytest.raises(ValueError, match="nobody"):
        render_report(report, tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []


def test_layout_is_deterministic_and_pulls_linked_members_together():
    # two triangles joined by one edge: members of a triangle end up nearer each other than across
    edges = [(0, 1, 1.0), (1, 2, 1.0), (0, 2, 1.0), (3, 4, 1.0), (4, 5, 1.0), (3, 5, 1.0), (2, 3, 1.0)]
    pos = layout(6, edges)
    assert np.array_equal(pos, layout(6, edges))
    assert pos.min() == 0.0 and pos.max() == 1.0
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=2)
    within = [dist[a, b] for a, b, _ in edges[:6]]
    across = [dist[a, b] for a in (0, 1) for b in (4, 5)]
    assert max(within) < min(across)


def test_risk_colours_run_from_green_to_red():
    assert risk_colour(0.0) == "#278545" and risk_colour(0.5) == "#f0b428" and risk_colour(1.0) == "#c0292b"
    # p = 0.1 is a fifth of the way from green (39, 133, 69) to amber (240, 180, 40): (79.2, 142.4, 63.2)
    assert risk_colour(0.1) == "#4f8e3f"
    assert risk_colour(-1) == risk_colour(0.0) and risk_colour(2) == risk_colour(1.0)


# --- in the browser ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    missing = [b for b in ("chromium", "chromedriver") if shutil.which(b) is None]
    try:
        from selenium import webdriver
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        reason = f"headless browser test needs {', '.join(missing)}: run `make test-browser`"
        if os.environ.get("GNNFORMER_REQUIRE_BROWSER"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1200,1800", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def colours(png: bytes) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)


def has_colour(pixels, hex_colour, tolerance=4):
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return bool((np.abs(pixels.astype(int) - target).max(axis=1) <= tolerance).any())


def test_page_in_headless_chromium(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    report = make_report()
    path = render_report(report, tmp_path / "report.html")
    browser.get_log("browser")  # drop anything from before this page
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    svg = browser.find_element(By.CSS_SELECTOR, "svg.graph")
    assert svg.is_displayed() and svg.size["width"] > 400 and svg.size["height"] > 200
    assert len(svg.find_elements(By.CSS_SELECTOR, "circle")) == 5
    rows = browser.find_elements(By.CSS_SELECTOR, "#members tbody tr")
    assert len(rows) == len(report["members"]) and rows[0].find_element(By.TAG_NAME, "th").text == "Alex"
    assert browser.find_element(By.CSS_SELECTOR, "#members").is_displayed()
    # the page's own script: hovering a row highlights that member's circle
    ActionChains(browser).move_to_element(rows[0]).perform()
    assert "hl" in browser.find_element(By.CSS_SELECTOR, 'g[data-m="0"]').get_attribute("class")
    assert [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
    page = colours(browser.get_screenshot_as_png())
    assert len(np.unique(page, axis=0)) > 1
    graph = colours(svg.screenshot_as_png)
    # the graph is drawn: Alex's circle (p = 0.91) and Lee's (p = 0.05) in their colours
    assert has_colour(graph, risk_colour(0.91)) and has_colour(graph, risk_colour(0.05))
