"""Epoch time with one and two processes under PyTorch's launcher (torchrun, gloo on CPU): writes a
table into BENCHMARKS.md.

    python benchmarks/bench_distributed.py --data-root ../shared/datasets [--epochs 3] [--no-write]

Cases: gps (4 layers, 64 channels, GIN local branch, batch 128) on NCI1, graphs sharded over the
processes; difformer-s (2 layers, 64 channels) on a 10^6-node SBM in random node partitions of
100,000 (``node_batch_size``), partitions sharded over the processes. For each case: one process
without the launcher (all cores), one process under torchrun (all cores), and two processes under
torchrun (the cores split between them: ``OMP_NUM_THREADS`` = cores / processes). Each
configuration runs in fresh processes through the trainer's own ``train_one`` (the path
``gnnformer train`` takes); the epoch time is wall time from one epoch's end to the next
(training on the rank's share + the gathered validation pass), the first epoch left out, median of
the rest; every configuration runs ``--repeats`` times, interleaved with the others, and the table
gives the median over those runs with their range.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_graph_epoch import background_load  # noqa: E402
from bench_layers import findings_lines, write_section  # noqa: E402

MARK = "<!-- bench_distributed -->"
CASES = {
    "NCI1, gps": {"model": "gps", "dataset": "NCI1", "batch_size": 128, "lr": 0.001,
                  "model_args": {"layers": 4, "hidden": 64, "heads": 4, "local": "gin", "rwse": 20, "lap_pe": 0}},
    "SBM 10^6 nodes, difformer-s": {"model": "difformer-s", "dataset": "SBM-large",
                                    "dataset_args": {"num_nodes": 1_000_000}, "node_batch_size": 100_000,
                                    "lr": 0.005, "model_args": {"layers": 2, "hidden": 64, "dropout": 0.2}},
}


def worker(args) -> None:
    """One process of one configuration: train, and (rank 0) write the epoch end times."""
    import torch

    import gnnformer.training as T

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)))
    values = {**json.loads(args.case), "epochs": args.epochs + 1, "seed": 0, "runs": 1}
    if args.data_root:
        values["data_root"] = args.data_root
    cfg = T.config_from_mapping(values)
    prep = T.prepare(cfg)
    seed, split = T.make_splits(cfg, prep)[0]
    ends = [time.perf_counter()]
    T.train_one(cfg, prep, split, seed, on_epoch=lambda record: ends.append(time.perf_counter()))
    if int(os.environ.get("RANK", "0")) == 0:
        Path(args.out).write_text(json.dumps({"epoch_s": [b - a for a, b in zip(ends, ends[1:])],
                                              "world": int(os.environ.get("WORLD_SIZE", "1"))}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(case: dict, processes: int, launcher: bool, epochs: int, data_root: str | None) -> dict:
    cores = os.cpu_count() or 1
    threads = max(1, cores // processes)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        me = [str(Path(__file__).resolve()), "--worker", "--case", json.dumps(case), "--epochs", str(epochs),
              "--out", str(out)] + (["--data-root", data_root] if data_root else [])
        head = ([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                 "--master-addr", "127.0.0.1", "--master-port", str(free_port())] if launcher else [sys.executable])
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        start = time.perf_counter()
        subprocess.run(head + me, env=env, check=True, cwd=ROOT)
        wall = time.perf_counter() - start
        times = json.loads(out.read_text())["epoch_s"][1:]  # the first epoch warms up
    return {"processes": processes, "launcher": launcher, "threads": threads, "epoch_s": statistics.median(times),
            "epochs": times, "wall_s": wall}


def render(rows: list, command: str, load: float | None) -> str:
    import torch

    machine = f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    lines = [MARK, "## One and two processes under torchrun: epoch time (cpu)", "",
             f"- command: `{command}`; machine: {machine}; date: {dt.date.today().isoformat()}"
             + (f"; other load on the machine before the run: {100 * load:.0f}% of its CPU" if load is not None else ""),
             "- epoch: training on the process's share (graphs, or node partitions of 100,000) + the validation pass "
             "gathered over all processes; the median of the epochs after the first",
             "- each configuration ran in fresh processes several times, interleaved with the others; s / epoch is the "
             "median over those runs (each run's own value: the median of its timed epochs), with their range", "",
             "| case | processes | launcher | threads per process | s / epoch | range over runs | vs one process, no launcher |",
             "|---|---:|---|---:|---:|---|---:|"]
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]
        base = next(r["epoch_s"] for r in mine if not r["launcher"])
        for r in mine:
            lines.append(f"| {case} | {r['processes']} | {'torchrun' if r['launcher'] else 'none'} | {r['threads']} | "
                         f"{r['epoch_s']:.2f} | {r['range'][0]:.2f}-{r['range'][1]:.2f} | {base / r['epoch_s']:.2f}x |")
    lines.append("")
    lines += findings_lines([
        "Two processes on this 2-core machine share the same two cores that one process with two threads uses: "
        "the table shows the launcher's and DDP's overhead (process start, gloo all-reduce of the gradients every "
        "step, the gathered validation) against splitting the work in processes instead of threads; it cannot show "
        "a speed-up from more hardware. On a machine with N GPUs, or several machines, the same command scales the "
        "hardware: `torchrun --nproc-per-node N -m gnnformer train ...` (one GPU per process, NCCL), and for "
        "several machines `torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT "
        "-m gnnformer train ...` on each machine.",
        "This machine's timings drift: the same configuration, run again minutes later, differed by up to 30% "
        "(the range column). A difference smaller than the ranges is not a difference."])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("GNNFORMER_DATA"))
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--repeats", type=int, default=3, help="fresh runs of every configuration, interleaved")
    ap.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    ap.add_argument("--sbm-nodes", type=int, default=1_000_000, help="reduce the SBM case (a smaller table is not written)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None
    CASES["SBM 10^6 nodes, difformer-s"]["dataset_args"]["num_nodes"] = args.sbm_nodes
    load = background_load()
    rows = []
    configs = ((1, False), (1, True), (2, True))
    for case in args.cases:
        # Round robin over the configurations, so that slow drift of the machine (repeated runs of one
        # configuration differed by up to 30%) spreads over all of them instead of biasing one.
        runs = {c: [] for c in configs}
        for repeat in range(args.repeats):
            for processes, launcher in configs:
                r = measure(CASES[case], processes, launcher, args.epochs, data_root)
                runs[(processes, launcher)].append(r)
                print(f"{case}: {processes} process(es), {'torchrun' if launcher else 'no launcher'}, repeat "
                      f"{repeat + 1}: {r['epoch_s']:.2f} s/epoch (wall {r['wall_s']:.0f} s)", flush=True)
        for (processes, launcher), done in runs.items():
            times = [r["epoch_s"] for r in done]
            rows.append({"case": case, **done[0], "epoch_s": statistics.median(times), "range": (min(times), max(times))})
    text = render(rows, "python " + " ".join([f"benchmarks/{Path(__file__).name}"] + sys.argv[1:]), load)
    print(text)
    if not args.no_write and set(args.cases) == set(CASES) and args.sbm_nodes == 1_000_000:
        write_section(ROOT / "BENCHMARKS.md", MARK, text)


if __name__ == "__main__":
    main()
