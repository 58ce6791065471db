"""The DIFFormer reproduction scripts keep a finished result and continue a reduced one."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from difformer_runs import cached, partial_path  # noqa: E402


def _saved(tmp_path: Path, done: int, total: int) -> Path:
    out = tmp_path / "row.json"
    per_run = [{"seed": s, "test": {"acc": 0.8 + s / 100}} for s in range(done)]
    out.write_text(json.dumps({"settings": {"lr": 0.01}, "per_run": per_run, "runs_done": done,
                               "runs_in_protocol": total}))
    return out


@pytest.mark.parametrize("runs", [None, 3])
def test_reduced_result_is_continued_from_its_saved_seeds(tmp_path, runs):
    out = _saved(tmp_path, done=2, total=5)
    seen = {}

    def make():
        seen["partial"] = json.loads(partial_path(out).read_text())
        return {"runs_done": runs or 5, "runs_in_protocol": 5}

    res = cached(out, make, runs)
    # run_config finds the two saved seeds there and trains only the others
    assert [r["seed"] for r in seen["partial"]["per_run"]] == [0, 1]
    assert seen["partial"]["settings"] == {"lr": 0.01}
    assert res["runs_done"] == (runs or 5)
    assert json.loads(out.read_text())["runs_done"] == (runs or 5)
    assert not partial_path(out).exists()


@pytest.mark.parametrize("done,runs", [(2, 2), (2, 1), (5, None)])
def test_result_with_enough_seeds_is_kept(tmp_path, done, runs):
    out = _saved(tmp_path, done=done, total=5)

    def make():
        raise AssertionError("a result with enough seeds must not be run again")

    assert cached(out, make, runs)["runs_done"] == done
