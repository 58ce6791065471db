"""`gnnformer train` under PyTorch's own launcher (torch.distributed.run = torchrun): two CPU
processes (gloo) train the parameters one process trains on the same global batches; only the
first writes; a worker killed mid-run ends the job, within a bounded time, never a hang."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

# No dropout, no random sign flips of LapPE, no BatchNorm (its statistics are per process):
# what is left to differ is the order of floating-point sums.
TRAIN = ["train", "--model", "gps", "--dataset", "MUTAG", "--quiet", "--no-preset", "runs=1", "model.hidden=32",
         "model.layers=2", "model.norm=layer", "model.dropout=0", "model.attn_dropout=0", "model.lap_pe=0",
         "model.rwse=0", "batch_size=32"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launcher(processes: int) -> list:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes), "--master-addr",
            "127.0.0.1", "--master-port", str(free_port()), "-m", "gnnformer"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {**os.environ, "OMP_NUM_THREADS": "1", "GNNFORMER_CACHE": str(tmp_path_factory.mktemp("cache"))}


def test_two_processes_train_what_one_trains_on_the_same_global_batches(tmp_path, env):
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, "-m", "gnnformer", *TRAIN, "--epochs", "3", "--out", str(one)], env=env,
                   check=True, capture_output=True, timeout=600)
    done = subprocess.run([*launcher(2), *TRAIN, "--epochs", "3", "--out", str(two)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a = torch.load(one / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(two / "best.pt", weights_only=True)["state_dict"]
    for key in a:  # Adam turns rounding in near-zero gradients into steps of up to lr; 15 steps of lr 1e-3
        torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=2e-4)
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert (m1["world_size"], m2["world_size"]) == (1, 2) and "world_size: 2" in (two / "config.yaml").read_text()
    for part in ("train", "val", "test"):  # gathered over both processes: the whole split
        for metric, value in m1["per_run"][0][part].items():
            assert m2["per_run"][0][part][metric] == pytest.approx(value, abs=1e-3), (part, metric)
    assert sorted(p.name for p in two.iterdir()) == ["best.pt", "config.yaml", "curves.png", "metrics.json"]
    assert done.stdout.count("wrote ") == 1  # one process reports


def workers(parent: int) -> list:
    """Process ids of the launcher's children."""
    kids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(parent):
            kids.append(int(status.parent.name))
    return kids


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_a_worker_killed_mid_run_ends_the_job_within_a_bounded_time(tmp_path, env):
    out = tmp_path / "run"
    proc = subprocess.Popen([*launcher(2), *TRAIN, "--epochs", "200", "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / "resume" / "run0.state.pt").exists():  # training has started on both
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    kids = workers(proc.pid)
    assert len(kids) == 2
    os.kill(kids[1], signal.SIGKILL)
    start = time.monotonic()
    _, err = proc.communicate(timeout=180)
    assert time.monotonic() - start < 180 and proc.returncode != 0
    assert "SIGKILL" in err or "Signal 9" in err  # the launcher names the failed worker
    assert (out / "resume" / "run0.state.pt").exists()  # the finished epochs are kept for a restart
