"""Interaction graphs from version control: a small git repository made here, the shared tables,
proxy labels, user labels and bad input. Every expected number below is worked out by hand."""
from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data

from gnnformer.datasets.vcs import (EDGE_TYPES, FEATURE_NAMES, TABLE_SALT, FileChange, build_windows, is_service,
                                    proxy_labels, pseudonym, read_activity_tables, read_git, read_labels)
from gnnformer.datasets.vcs_windows import MAX_BROUGHT_IN, brought_in, file_ids, generations
from gnnformer.errors import ConfigError, DataError, UserError

T0 = 1_600_000_000  # 2020-09-13 12:26:40 UTC
DAY = 86_400
COLLAB = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "collab"
BOT = "49699333+dependabot[bot]@users.noreply.github.com"


class Repo:
    def __init__(self, path: Path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.env = {"PATH": os.environ["PATH"], "HOME": str(path), "GIT_CONFIG_GLOBAL": os.devnull,
                    "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, who: str = "alice", committer: str | None = None, day: float = 0.0) -> None:
        when = f"@{T0 + int(day * DAY)} +0000"
        email = who if "@" in who else f"{who}@x.org"
        cemail = (committer or email) if "@" in (committer or email) else f"{committer}@x.org"
        env = {**self.env, "GIT_AUTHOR_NAME": who.split("@")[0], "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": when,
               "GIT_COMMITTER_NAME": cemail.split("@")[0], "GIT_COMMITTER_EMAIL": cemail, "GIT_COMMITTER_DATE": when}
        subprocess.run(["git", "-C", str(self.path), *args], env=env, check=True, capture_output=True)

    def commit(self, files: dict[str, str], message: str, **who) -> None:
        for name, text in files.items():
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            (self.path / name).write_text(text)
        self.git("add", *files)
        self.git("commit", "-q", "-m", message, **who)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """alice and bob co-edit two files; carol commits bob's patch and merges erin's branch; dave
    co-authors with alice; bob signs off erin's work; a dependabot commit arrives through GitHub's web-flow."""
    r = Repo(tmp_path_factory.mktemp("team"))
    r.commit({"src/app.py": "a1\na2\na3\n"}, "app", who="alice", day=0)                              # +3
    r.commit({"src/app.py": "a1\nb2\na3\n", "docs/readme.md": "r1\nr2\n"}, "bob's patch",
             who="bob", committer="carol", day=1)                                                    # +3 -1
    r.commit({"docs/readme.md": "r1\nr2\nr3\n"}, "docs\n\nCo-authored-by: Dave <Dave@X.org>\n", who="alice", day=2)
    r.commit({"docs/readme.md": "r1\nr2\nr3\nr4\n"}, "bump", who=BOT, committer="noreply@github.com", day=2.5)
    r.git("checkout", "-q", "-b", "feature")
    r.commit({"src/feature.py": "f1\nf2\nf3\nf4\nf5\n"},
             "feature\n\nSigned-off-by: Bob <bob@x.org>\nSigned-off-by: Erin <erin@x.org>\n", who="erin", day=3)
    r.commit({"src/feature.py": "f1\nf2\nF3\nf4\nf5\n"}, "fix", who="erin", day=4)                   # +1 -1
    r.git("checkout", "-q", "main")
    r.commit({"src/app.py": "a1\nb2\na3\na4\na5\n"}, "more", who="alice", day=5)                    # +2
    r.git("merge", "-q", "--no-ff", "feature", "-m", "Merge feature", who="carol", day=6)
    return r.path


def test_read_git_reads_every_commit_with_its_trailers_and_line_counts(repo):
    activity = read_git(repo)
    commits = {c.author_time: c for c in activity.commits}
    assert len(activity.commits) == 8
    patch = commits[T0 + DAY]
    assert (patch.author, patch.committer, patch.added, patch.deleted) == ("bob@x.org", "carol@x.org", 3, 1)
    assert sorted((f.path, f.added, f.deleted) for f in activity.files[patch.sha]) == [
        ("docs/readme.md", 2, 0), ("src/app.py", 1, 1)]
    assert commits[T0 + 2 * DAY].coauthors == ("dave@x.org",)
    assert commits[T0 + 3 * DAY].signoffs == ("bob@x.org", "erin@x.org")
    merge = commits[T0 + 6 * DAY]
    assert len(merge.parents) == 2 and merge.sha not in activity.files and merge.added == 0
    assert commits[T0 + int(2.5 * DAY)].committer == "noreply@github.com"


def test_graph_of_the_small_repository_has_the_edges_and_features_worked_out_by_hand(repo):
    (g,) = build_windows(read_git(repo), start=T0)
    assert g.members == ["alice@x.org", "bob@x.org", "carol@x.org", "dave@x.org", "erin@x.org"]  # no bot
    assert g.window == (T0, T0 + 182 * DAY)
    week = 1 / 26  # one active week of the window's 26
    rows = {  # commits merges added removed files dirs days regularity integrated coauthored signed last tenure
        "alice@x.org": [3, 0, 6, 0, 2, 2, 3, week, 0, 0, 0, 1, 6],
        "bob@x.org": [1, 0, 3, 1, 2, 2, 1, week, 0, 0, 1, 3, 5],    # last seen signing off erin's commit
        "carol@x.org": [0, 1, 0, 0, 0, 0, 1, week, 3, 0, 0, 0, 5],  # bob's patch + erin's two merged commits
        "dave@x.org": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 4, 4],
        "erin@x.org": [2, 0, 6, 1, 1, 1, 2, week, 0, 0, 0, 0, 3],   # her own sign-off is no edge
    }
    assert list(g.feature_names) == list(FEATURE_NAMES)
    assert torch.allclose(g.x_raw, torch.tensor([rows[m] for m in g.members]), atol=1e-6)
    assert torch.allclose(g.x, torch.log1p(g.x_raw))
    a, b, c, d, e = range(5)
    assert g.edge_index.tolist() == [[a, b, c, c, a, d, b], [b, a, b, e, d, a, e]]
    assert [EDGE_TYPES[t] for t in g.edge_type] == ["co-edit", "co-edit", "integrate", "integrate",
                                                    "co-author", "co-author", "sign-off"]

    def rec(days_before_end: float) -> float:  # half-life 91 days; the history ends at the merge, day 6
        return 0.5 ** (days_before_end / 91)

    # count, lines, recency of the last event, overlap; co-edit lines: app.py 5 + 2, readme.md 1 + 2
    expected = [[2, 10, rec(1), 1.0], [2, 10, rec(1), 1.0], [1, 4, rec(5), 0], [2, 7, rec(0), 0],
                [1, 1, rec(4), 0], [1, 1, rec(4), 0], [1, 5, rec(3), 0]]
    assert torch.allclose(g.edge_attr_raw, torch.tensor(expected), atol=1e-6)
    weights = [rec(1) + rec(4), rec(1) + rec(4), rec(5), 2.0, rec(4), rec(4), rec(3)]
    assert torch.allclose(g.edge_weight, torch.log1p(torch.tensor(weights)), atol=1e-6)
    assert (g.y == -1).all()


def test_merge_brings_in_only_the_commits_not_reachable_from_its_first_parent():
    #  r - m1 - m2 - merge;  r - s1 - s2 (side) merged
    parents = {"r": (), "m1": ("r",), "m2": ("m1",), "s1": ("r",), "s2": ("s1",), "merge": ("m2", "s2")}
    gen = generations(parents)
    assert gen == {"r": 1, "m1": 2, "m2": 3, "s1": 2, "s2": 3, "merge": 4}
    assert sorted(brought_in(parents["merge"], parents, gen)) == ["s1", "s2"]
    # a branch of MAX_BROUGHT_IN + 1 commits merged at once is a branch sync: nothing integrated
    chain = {"r": (), "m": ("r",)}
    prev = "r"
    for i in range(MAX_BROUGHT_IN + 1):
        chain[f"s{i}"] = (prev,)
        prev = f"s{i}"
    assert brought_in(("m", prev), chain, generations(chain)) == []
    chain.pop(f"s{MAX_BROUGHT_IN}")
    assert len(brought_in(("m", f"s{MAX_BROUGHT_IN - 1}"), chain, generations(chain))) == MAX_BROUGHT_IN


def test_a_file_keeps_its_identity_across_renames():
    files = {"c1": [FileChange("b.py", 1, 0, "a.py")], "c2": [FileChange("c.py", 0, 0, "b.py")]}
    assert file_ids(files) == {"b.py": "a.py", "c.py": "a.py"}


def test_pseudonyms_are_the_ids_of_the_shared_tables():
    # reference ids from shared/datasets/collab/README.md (GitHub web-flow, dependabot)
    assert pseudonym("noreply@github.com", TABLE_SALT) == "444b4c2b56f4"
    assert pseudonym(BOT, TABLE_SALT) == "a9a883dfdd08"
    assert pseudonym("alice@x.org", "s1") != pseudonym("alice@x.org", "s2")
    assert is_service("444b4c2b56f4") and is_service("noreply@github.com") and is_service("x[bot]@y")
    assert is_service("41898282+github-actions[bot]@users.noreply.github.com")
    assert not is_service("alice@x.org")


@pytest.mark.skipif(not (COLLAB / "pallets__flask").is_dir(), reason="shared tables not present")
def test_shared_tables_load_with_the_counts_of_their_readme():
    activity = read_activity_tables(COLLAB / "pallets__flask")
    assert len(activity.commits) == 5_531
    assert sum(len(c.parents) > 1 for c in activity.commits) == 1_725
    assert len({c.author for c in activity.commits}) == 871
    assert sum(len(v) for v in activity.files.values()) == 9_246
    assert sum(c.added for c in activity.commits) == 116_365
    assert sum(c.deleted for c in activity.commits) == 79_457
    assert sum(bool(c.coauthors) for c in activity.commits) == 27
    assert sum(bool(c.signoffs) for c in activity.commits) == 161
    graphs = build_windows(activity)
    members = {m for g in graphs for m in g.members}
    assert "444b4c2b56f4" not in members and not any(is_service(m) for m in members)
    assert all(g.num_nodes >= 2 and g.edge_weight.min() > 0 for g in graphs)


def _window(start: int, members: dict[str, tuple[int, int, int]]) -> Data:
    """A hand-made window: member -> (commits, merges, coauthored)."""
    raw = torch.zeros(len(members), len(FEATURE_NAMES))
    for i, (c, m, co) in enumerate(members.values()):
        raw[i, [FEATURE_NAMES.index("commits"), FEATURE_NAMES.index("merges"), FEATURE_NAMES.index("coauthored")]] = \
            torch.tensor([c, m, co], dtype=torch.float)
    return Data(x=raw, x_raw=raw, members=list(members), window=(start, start + 10), feature_names=list(FEATURE_NAMES),
                y=torch.full((len(members),), -1), num_nodes=len(members))


def test_proxy_label_is_at_risk_when_fewer_than_two_contributions_follow():
    w1 = _window(0, {"a": (5, 0, 0), "b": (3, 0, 0), "c": (1, 0, 0), "d": (0, 0, 0)})
    w2 = _window(10, {"a": (1, 1, 0), "b": (1, 0, 0), "d": (0, 0, 2)})
    w3 = _window(20, {"a": (9, 0, 0), "e": (1, 0, 0)})
    out = proxy_labels([w1, w2, w3])
    # a: 1 commit + 1 merge = 2 -> 0; b: 1 -> at risk; c: absent -> at risk; d: nothing in w1 -> unknown
    assert out[0].y.tolist() == [0, 1, 1, -1]
    # a: 9 -> 0; b: absent -> 1; d: co-authored in w2, absent in w3 -> 1
    assert out[1].y.tolist() == [0, 1, 1]
    assert out[2].y.tolist() == [-1, -1]  # the last window has no future
    assert w1.y.tolist() == [-1, -1, -1, -1]  # the inputs are not changed
    assert proxy_labels([w1, w2], min_commits=1)[0].y.tolist() == [0, 0, 1, -1]
    assert proxy_labels([w1, w3])[0].y.tolist() == [-1, -1, -1, -1]  # the next window is missing


def test_labels_file_is_read_and_checked(tmp_path):
    good = tmp_path / "labels.csv"
    good.write_text("member,label\nAlice@x.org,pass\nbob@x.org,at-risk\n\nps-carol,2\n")
    members = ["alice@x.org", "bob@x.org", "carol@x.org"]
    assert read_labels(good, members, aliases={"ps-carol": "carol@x.org"}) == {
        "alice@x.org": 0, "bob@x.org": 1, "carol@x.org": 2}
    bad = {
        "member,label\nalice@x.org,1\nzed@x.org,0\n": ":3: member 'zed@x.org' is not in the data",
        "alice@x.org,1\n": ":1: the first line must be the header",
        "member,label\nalice@x.org,maybe\n": ":2: label 'maybe'",
        "member,label\nalice@x.org,1,2\n": ":2: 3 fields",
        "member,label\nalice@x.org,1\nALICE@x.org,0\n": ":3: member 'ALICE@x.org' already has a label (line 2)",
        "member,label\n": "no labels after the header",
        "": ":1: the first line must be the header",
    }
    for text, message in bad.items():
        good.write_text(text)
        with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_labels(good, members)


def test_bad_repositories_and_windows_are_user_errors(tmp_path, repo):
    with pytest.raises(UserError, match="not a git repository"):
        read_git(tmp_path)
    with pytest.raises(UserError, match="no such folder"):
        read_git(tmp_path / "missing")
    empty = Repo(tmp_path / "empty").path
    with pytest.raises(UserError, match="history is empty"):
        read_git(empty)
    solo = Repo(tmp_path / "solo")
    solo.commit({"a.txt": "1\n"}, "one", who="alice")
    solo.commit({"a.txt": "2\n"}, "two", who="alice", day=1)
    with pytest.raises(UserError, match="no window of 182 days has 2 or more members"):
        build_windows(read_git(solo.path))
    activity = read_git(repo)
    with pytest.raises(ConfigError, match="at least 2 members"):
        build_windows(activity, min_members=1)
    # one-day windows: day 0 (alice), 4 (erin) and 5 (alice) have one member each and are skipped
    days = build_windows(activity, window_days=1, start=T0)
    assert [(g.window[0] - T0) // DAY for g in days] == [1, 2, 3, 6]
    assert days[-1].members == ["carol@x.org", "erin@x.org"]
    # without erin, the latest window (the merge) has carol alone: asked for, it is an error
    assert len(build_windows(activity, window_days=1, start=T0, exclude={"Erin@x.org"})) == 2
    with pytest.raises(UserError, match="latest window .* has 1 member"):
        build_windows(activity, window_days=1, start=T0, exclude={"erin@x.org"}, require_last=True)


def test_malformed_tables_name_file_and_line(tmp_path):
    with pytest.raises(DataError, match="commits.tsv.gz and files.tsv.gz missing"):
        read_activity_tables(tmp_path)
    header = ("commit\tauthor_id\tcommitter_id\tauthor_time\tcommit_time\tn_parents\tparents\tlines_added\t"
              "lines_deleted\tn_files\tcoauthor_ids\treviewed_by_ids\tsigned_off_by_ids\tsubject\n")
    row = "c1\taaa\taaa\t{t}\t10\t0\t\t1\t0\t1\t\t\t\thello\n"
    with gzip.open(tmp_path / "commits.tsv.gz", "wt") as fh:
        fh.write(header + row.format(t=10) + row.format(t="soon"))
    with gzip.open(tmp_path / "files.tsv.gz", "wt") as fh:
        fh.write("commit\tpath\tlines_added\tlines_deleted\told_path\nc1\ta.py\t1\t0\t\n")
    with pytest.raises(DataError, match=r"commits.tsv.gz:3: author_time 'soon' is not an integer"):
        read_activity_tables(tmp_path)
    with gzip.open(tmp_path / "commits.tsv.gz", "wt") as fh:
        fh.write(header + row.format(t=10))
    with gzip.open(tmp_path / "files.tsv.gz", "wt") as fh:
        fh.write("commit\tpath\tlines_added\tlines_deleted\told_path\nc9\ta.py\t1\t0\t\n")
    with pytest.raises(DataError, match=r"files.tsv.gz:2: commit c9 is not in commits.tsv.gz"):
        read_activity_tables(tmp_path)
    (tmp_path / "files.tsv.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot be read as gzip"):
        read_activity_tables(tmp_path)
