"""A run that dies loses nothing: killed (SIGKILL) at a random epoch and started again, `train`
ends with the metrics of a run never interrupted; Ctrl-C stops with exit 130 and keeps the
finished epochs; the same seed gives the same metrics twice."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

EPOCHS = 20


def command(out: Path) -> list:
    return [sys.executable, "-m", "gnnformer", "train", "--model", "gps", "--dataset", "MUTAG", "--epochs",
            str(EPOCHS), "--out", str(out), "--quiet", "--no-preset", "runs=2", "model.hidden=32", "model.layers=2",
            "batch_size=16"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "OMP_NUM_THREADS": "1", "GNNFORMER_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("whole")
    subprocess.run(command(out), env=env, check=True, capture_output=True, timeout=600)
    return json.loads((out / "metrics.json").read_text())


def epoch_of(path: Path) -> int:
    try:  # written atomically: a file that exists is complete
        return torch.load(path, map_location="cpu", weights_only=True)["epoch"]
    except FileNotFoundError:
        return 0


def start_and_wait(out: Path, env, run: int, epoch: int, timeout: float = 300) -> subprocess.Popen:
    """Start `train` and return once run ``run`` has saved epoch ``epoch`` or later."""
    # A shell starts background jobs with SIGINT ignored, and a child inherits that: restore the default so
    # that Python installs its KeyboardInterrupt handler in `train` wherever the tests run.
    proc = subprocess.Popen(command(out), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    state = out / "resume" / f"run{run}.state.pt"
    deadline = time.monotonic() + timeout
    while epoch_of(state) < epoch:
        assert proc.poll() is None, f"finished before it could be stopped: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_the_same_seed_gives_the_same_metrics(tmp_path, env, uninterrupted):
    subprocess.run(command(tmp_path), env=env, check=True, capture_output=True, timeout=600)
    assert json.loads((tmp_path / "metrics.json").read_text()) == uninterrupted


def test_killed_at_a_random_epoch_and_started_again_ends_as_if_never_killed(tmp_path, env, uninterrupted):
    run, epoch = 1, random.Random(2024).randint(3, EPOCHS // 2)  # the second run: the first one's result is kept
    proc = start_and_wait(tmp_path, env, run, epoch)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    kept = sorted(p.name for p in (tmp_path / "resume").iterdir() if not p.name.startswith("."))
    assert kept == ["run0.done.pt", "run1.state.pt", "settings.json"]
    for name in kept[:2]:  # complete files, whatever moment the kill hit
        torch.load(tmp_path / "resume" / name, map_location="cpu", weights_only=True)
    assert not (tmp_path / "metrics.json").exists()
    again = subprocess.run(command(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "continuing the interrupted run" in again.stderr and "1 run(s) finished, run1 after epoch" in again.stderr
    assert json.loads((tmp_path / "metrics.json").read_text()) == uninterrupted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "config.yaml", "curves.png", "metrics.json"]


def test_ctrl_c_stops_with_130_and_keeps_the_finished_epochs(tmp_path, env):
    proc = start_and_wait(tmp_path, env, 0, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "the same command continues" in err
    assert epoch_of(tmp_path / "resume" / "run0.state.pt") >= 2


def test_an_attention_that_cannot_fit_is_refused_before_any_work_naming_the_linear_model(tmp_path, monkeypatch,
                                                                                          capsys):
    from gnnformer import cli
    from gnnformer.training import config_from_mapping, experiment

    cfg = config_from_mapping({"model": "gps", "dataset": "Cora", "model_args": {"heads": 4, "layers": 3}})
    prep = experiment.prepare(cfg)
    # 4 heads x 2708^2 cells x (2 x 3 layers + 1) x 4 bytes
    assert experiment.attention_bytes(cfg, prep) == 4 * 4 * 2708 ** 2 * 7
    monkeypatch.setattr(experiment, "available_memory", lambda device: 100 * 2 ** 20)
    code = cli.main(["train", "--model", "gps", "--dataset", "Cora", "--no-preset", "--out", str(tmp_path / "o"),
                     "--quiet", "model.heads=4", "model.layers=3"])
    err = capsys.readouterr().err
    assert code == 2 and "0.8 GiB of attention" in err and "--model difformer-s" in err
    assert not (tmp_path / "o").exists()
    # mini-batches of 500 nodes fit in the same memory: 4 x 500^2 x 7 x 4 bytes = 28 MB
    small = config_from_mapping({**cfg.to_dict(), "node_batch_size": 500})
    experiment.check_attention_memory(small, prep)
