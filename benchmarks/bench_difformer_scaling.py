"""DIFFormer-s on large graphs: training time and memory from 10^4 to 10^7 nodes, measured in one
run; writes a table into BENCHMARKS.md and a log-log plot to benchmarks/difformer_scaling.png.

- data: ``large_sbm`` (10 classes, ~11 neighbours per node, 128 features = class mean + noise),
  generated once per size by this process and handed to the children as ``.npy`` files
- ``full``: ``difformer-s`` (2 layers, 128 -> 64 hidden, 1 head, input graph on, the model's other
  options at their defaults) trained on the whole graph: one warm-up step (it also builds the cached normalised
  adjacency), then the median of ``--steps`` steps (forward + backward + Adam, loss on the 80%
  training split)
- ``lowmem``: ``full`` with the model's ``low_memory: true`` (LayerNorm inputs recomputed in the
  backward, dropout masks as bits)
- ``mini``: the same model trained over random node partitions of ``--node-batch-size`` nodes
  (``NodePartitionLoader`` + ``train_partition_epoch``, what ``node_batch_size`` does in the
  trainer): one epoch over all partitions, after a warm-up batch; plus the chunked full-graph
  inference (``full_graph_outputs``, chunks of ``--node-batch-size``) timed once
- ``sgformer``: PyG's ``torch_geometric.nn.models.SGFormer`` of the same size (2 attention
  layers, 2 GCN layers, 64 hidden, 1 head) trained on the whole graph like ``full``
- ``original`` (opt-in, with ``--original-code DIR``): the original DIFFormer model, imported
  unmodified from ``DIR/difformer.py`` (a checkout's ``node classification`` folder), with the
  options of ``full`` and the loss of its ``main.py`` (log-softmax + NLL), trained like ``full``.
  torch_sparse, which it imports, has no wheel here: ``torch_sparse_standin.py`` supplies the two
  calls it makes when the package is missing. A run with this mode writes its own section (the
  speed-up over the original code measured in one run), leaving the scaling table as it is

    python benchmarks/bench_difformer_scaling.py [--sizes 1e4,1e5,1e6,3e6,1e7] [--modes full,mini,sgformer]
                                                 [--steps 3] [--node-batch-size 100000] [--no-write]
    python benchmarks/bench_difformer_scaling.py --quick      # smoke test: tiny sizes, nothing written
    python benchmarks/bench_difformer_scaling.py --sizes 1e5,1e6 --modes full,original \
        --original-code "PATH/DIFFormer/node classification"

Each (size, mode) runs in a fresh subprocess, killed when its resident memory passes
``--mem-limit-gib`` (or what the machine has available, less 1.5 GiB), so that a size too large
fails alone instead of starving the machine; its peak memory is ``ru_maxrss`` at the end, and its
growth over the same process after loading the graph. The float32 matmul peak of this machine is measured in the same run (a 4096^3 matmul, best
of 5) and the training FLOPs are counted analytically (see :func:`step_flops`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_graph_epoch import background_load, matmul_peak, rss_mib  # noqa: E402
from bench_layers import write_section  # noqa: E402

MARK = "bench_difformer_scaling"
MODES = ("full", "lowmem", "mini", "sgformer")
ORIGINAL_MODE = "original"  # opt-in: needs a checkout of the original code
ALL_MODES = MODES + (ORIGINAL_MODE,)
SIZE = dict(hidden=64, layers=2, heads=1, use_graph=True)
FEATURES, CLASSES, DEGREE = 128, 10, 11.0
#: The original DIFFormer code on this workload (2 layers, 128 -> 64, ~11 edges per node), one
#: training step, as measured before this implementation: seconds (and peak memory) per size.
ORIGINAL = {100_000: (1.7, None), 1_000_000: (35.9, 7.0)}
PLOT = ROOT / "benchmarks" / "difformer_scaling.png"
DEFAULT_SIZES = "1e4,1e5,1e6,3e6,1e7"


def step_flops(n: int, nnz: int, f: int = FEATURES, d: int = SIZE["hidden"], layers: int = SIZE["layers"],
               heads: int = SIZE["heads"], c: int = CLASSES, value_weights: bool = False) -> dict:
    """Floating-point operations of one DIFFormer-s training step (forward + backward), counted
    analytically; a multiply-add is 2. ``nnz``: entries of the normalised adjacency (edges + self loops).

    - encoder Linear(f, d): 2 n f d forward + 2 n f d for the weight gradient (x needs no gradient)
    - per layer, the Q and K projections Linear(d, h d) (and V with ``value_weights``; the model's
      default has none): 2 n d (h d) forward each, twice that backward
    - per layer, attention sums: sum_j k_j v_j^T and q_i (sum k v^T), 2 n d^2 h each forward,
      twice that backward (the O(n d) terms -- sum k, sum v, norms, the normaliser -- are left out)
    - per layer, propagation A_hat v: 2 nnz d forward, 2 nnz d backward (to v only)
    - head Linear(d, c): 2 n d c forward, twice that backward
    Element-wise work (norms, LayerNorm, ReLU, dropout, residuals, Adam) is not counted, nor the
    projections the blocked backward recomputes instead of keeping: this is the work the step needs.
    """
    projections = 3 if value_weights else 2
    parts = {
        "encoder": 2 * 2 * n * f * d,
        "projections": layers * projections * 3 * 2 * n * d * heads * d,
        "attention": layers * 3 * 2 * 2 * n * d * d * heads,
        "propagation": layers * 2 * 2 * nnz * d,
        "head": 3 * 2 * n * d * c,
    }
    parts["total"] = sum(parts.values())
    return parts


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------------------------
# Data: generated once per size, read by every child


def graph_files(n: int, folder: Path) -> Path:
    """``folder/sbm_<n>/`` holding x.npy, edge_index.npy, y.npy (generated here if missing)."""
    import numpy as np

    from gnnformer.datasets.synthetic import large_sbm

    out = folder / f"sbm_{n}"
    if (out / "y.npy").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    g = large_sbm(n, DEGREE, FEATURES, CLASSES, seed=0)
    took = time.perf_counter() - t0
    for key in ("x", "edge_index", "y"):
        np.save(out / f"{key}.npy", g[key].numpy())
    (out / "meta.json").write_text(json.dumps({"generate_s": took, "edges": int(g.edge_index.size(1))}))
    return out


def load_graph(folder: str):
    import numpy as np
    import torch
    from torch_geometric.data import Data

    arrays = {k: torch.from_numpy(np.load(Path(folder) / f"{k}.npy")) for k in ("x", "edge_index", "y")}
    return Data(**arrays, num_nodes=arrays["x"].size(0))


# --------------------------------------------------------------------------------------------
# Children: one (size, mode) per process


def child(args) -> dict:
    import torch
    import torch.nn.functional as F

    from gnnformer.datasets import random_split
    from gnnformer.models import create_model
    from gnnformer.tasks import get_task
    from gnnformer.training.minibatch import NodePartitionLoader, full_graph_outputs, train_partition_epoch

    g = load_graph(args.graph)
    n = g.num_nodes
    train = random_split(n, 0).train
    base = rss_mib()
    torch.manual_seed(0)
    res = {"nodes": n, "edges": int(g.edge_index.size(1)), "base_mib": base}
    task = get_task("node_classification")
    if args.child == ORIGINAL_MODE:
        model = original_model(args.original_code)
        res["options"] = {"use_weight": model.convs[0].use_weight, "dropout": model.dropout,
                          "norm": "layer" if model.use_bn else "no", "alpha": model.alpha}
        # Its main.py adds self loops to the input graph before training (data preparation, untimed).
        from torch_geometric.utils import add_self_loops, remove_self_loops

        loops, _ = add_self_loops(remove_self_loops(g.edge_index)[0], num_nodes=n)

        def forward():
            return model(g.x, loops)

        def loss_of(out):
            return F.nll_loss(F.log_softmax(out, dim=1)[train], g.y[train])
    elif args.child == "sgformer":
        from torch_geometric.nn.models import SGFormer

        model = SGFormer(FEATURES, SIZE["hidden"], CLASSES, trans_num_layers=SIZE["layers"],
                         trans_num_heads=SIZE["heads"], gnn_num_layers=SIZE["layers"])
        batch = torch.zeros(n, dtype=torch.long)

        def forward():
            return model(g.x, g.edge_index, batch)

        def loss_of(out):
            return F.nll_loss(out[train], g.y[train])  # SGFormer returns log-probabilities
    else:
        model = create_model("difformer-s", in_channels=FEATURES, out_channels=CLASSES, level="node",
                             low_memory=args.child == "lowmem", **SIZE)
        res["options"] = {k: model.cfg.to_dict()[k] for k in ("use_weight", "dropout", "norm", "alpha")}

        def forward():
            return model(g)

        def loss_of(out):
            return task.loss(out[train], g.y[train])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    res["params"] = sum(p.numel() for p in model.parameters())

    if args.child in ("full", "lowmem", "sgformer", ORIGINAL_MODE):
        times = []
        model.train()
        cpu = []
        for _ in range(1 + args.steps):
            t0, c0 = time.perf_counter(), cpu_seconds()
            opt.zero_grad()
            loss = loss_of(forward())
            loss.backward()
            opt.step()
            loss.item()
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_seconds() - c0)
        res.update(first=times[0], times=times[1:], cpu=cpu[1:])
    else:  # mini
        gen = torch.Generator().manual_seed(0)
        loader = NodePartitionLoader(g, args.node_batch_size, train, generator=gen)
        warm = next(iter(NodePartitionLoader(g, args.node_batch_size, train, generator=torch.Generator().manual_seed(1))))
        model.train()
        opt.zero_grad()
        task.loss(model(warm)[warm.target_mask], warm.y[warm.target_mask]).backward()
        opt.zero_grad()
        del warm
        kept, times, cpu = [], [], []
        for _ in range(args.epochs):
            counting = _CountingLoader(loader)
            t0, c0 = time.perf_counter(), cpu_seconds()
            train_partition_epoch(model, opt, task, counting, torch.device("cpu"))
            times.append(time.perf_counter() - t0)
            cpu.append(cpu_seconds() - c0)
            kept.append(counting.edges)
        res.update(times=times, cpu=cpu, kept_edges=statistics.mean(kept), batches=len(loader))
        t0 = time.perf_counter()
        out = full_graph_outputs(model, g, chunk_size=args.node_batch_size)
        res["inference"] = time.perf_counter() - t0
        res["inference_chunked"] = hasattr(model, "inference")
        del out
    res["peak_mib"] = rss_mib()
    return res


def original_model(folder: str):
    """The original DIFFormer model from ``folder/difformer.py``, unmodified, with the options of
    ``full`` (2 layers, 128 -> 64, 1 head, simple kernel, LayerNorm, residual alpha 0.5, dropout 0.2,
    no value weights, input graph on)."""
    import importlib.util

    import torch

    try:
        import torch_sparse  # noqa: F401
    except ImportError:
        import torch_sparse_standin

        sys.modules["torch_sparse"] = torch_sparse_standin
    spec = importlib.util.spec_from_file_location("original_difformer", Path(folder) / "difformer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.DIFFormer(FEATURES, SIZE["hidden"], CLASSES, num_layers=SIZE["layers"], num_heads=SIZE["heads"],
                            kernel="simple", alpha=0.5, dropout=0.2, use_bn=True, use_residual=True,
                            use_weight=False, use_graph=SIZE["use_graph"])


class _CountingLoader:
    """Wraps a loader and counts the induced edges it yields (for the FLOP count)."""

    def __init__(self, loader) -> None:
        self.loader, self.edges = loader, 0

    def __iter__(self):
        for batch in self.loader:
            self.edges += int(batch.edge_index.size(1))
            yield batch

    def __len__(self) -> int:
        return len(self.loader)


def available_gib() -> float | None:
    """MemAvailable of this machine (GiB), from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return None


def rss_gib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def run_child(mode: str, n: int, folder: Path, args, limit_gib: float) -> dict:
    """One (size, mode) in a fresh process, killed if its resident memory passes ``limit_gib``
    (polled every 50 ms; its address space is capped a little higher as a backstop)."""
    cmd = [sys.executable, __file__, "--child", mode, "--graph", str(folder), "--steps", str(args.steps),
           "--epochs", str(args.epochs), "--node-batch-size", str(args.node_batch_size), "--threads", str(args.threads),
           "--mem-limit-gib", str(limit_gib + 4)] + (["--original-code", args.original_code] if args.original_code else [])
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, cwd=ROOT)
        killed, peak = False, 0.0
        while proc.poll() is None:
            peak = max(peak, rss_gib(proc.pid))
            if peak > limit_gib:
                proc.kill()
                killed = True
                proc.wait()
                break
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = time.perf_counter() - t0
    if killed or proc.returncode != 0:
        lines = stderr.strip().splitlines()
        last = lines[-1] if lines else f"exit code {proc.returncode}"
        if killed or "MemoryError" in stderr or "DefaultCPUAllocator" in stderr or proc.returncode in (-9, 137):
            return {"failed": f"out of memory (> {limit_gib:.0f} GiB)", "detail": "killed at the memory limit" if killed
                    else last[-300:], "wall": wall}
        raise RuntimeError(f"{mode} at N={n} failed:\n{stderr[-3000:]}")
    res = json.loads(stdout.strip().splitlines()[-1])
    res["wall"] = wall
    return res


# --------------------------------------------------------------------------------------------
# Parent


def loglog_slope(points) -> float | None:
    """Least-squares slope of log(time) against log(N) over ``[(N, time), ...]``."""
    pts = [(math.log(n), math.log(t)) for n, t in points if t and t > 0]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def seconds_of(res: dict) -> float | None:
    if not res or "failed" in res:
        return None
    return statistics.median(res["times"])


def plot(results: dict, sizes, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    style = {"full": ("o-", "difformer-s, full graph (s / step)"),
             "lowmem": ("d:", "difformer-s, full graph, low_memory (s / step)"),
             "mini": ("s-", "difformer-s, mini-batch (s / epoch)"),
             "sgformer": ("^--", "PyG SGFormer, full graph (s / step)")}
    for mode, (fmt, label) in style.items():
        pts = [(n, seconds_of(results.get((n, mode)))) for n in sizes]
        pts = [(n, t) for n, t in pts if t]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], fmt, label=label)
    orig = sorted(ORIGINAL.items())
    ax.plot([n for n, _ in orig], [t for _, (t, _) in orig], "x:", color="grey", label="original code (s / step)")
    ref = [(n, seconds_of(results.get((n, "full")))) for n in sizes]
    ref = [(n, t) for n, t in ref if t]
    if ref:
        n0, t0 = ref[-1]
        xs = [min(sizes), max(sizes)]
        ax.plot(xs, [t0 * x / n0 for x in xs], color="lightgrey", lw=1, zorder=0, label="slope 1 (linear)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("nodes N (~11 edges per node, 128 features)")
    ax.set_ylabel("seconds")
    ax.set_title("DIFFormer-s training time vs graph size (CPU, 2 threads)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def section_mark(modes) -> str:
    """A run with the original code writes its own section; every other run the scaling section."""
    return f"<!-- {MARK}:{ORIGINAL_MODE if ORIGINAL_MODE in modes else 'cpu'} -->"


def fmt_n(n: int) -> str:
    e = int(round(math.log10(n)))
    return f"10^{e}" if 10**e == n else f"{n:,}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated node counts (1e6 or 1000000)")
    ap.add_argument("--modes", default=",".join(MODES),
                    help=f"comma-separated, from {', '.join(ALL_MODES)} ({ORIGINAL_MODE}: opt-in)")
    ap.add_argument("--original-code", default=None, metavar="DIR",
                    help="the original DIFFormer code's 'node classification' folder (for the original mode)")
    ap.add_argument("--steps", type=int, default=3, help="timed full-graph steps after one warm-up step")
    ap.add_argument("--epochs", type=int, default=1, help="timed mini-batch epochs")
    ap.add_argument("--node-batch-size", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--mem-limit-gib", type=float, default=22.0,
                    help="resident-memory cap of every child (lowered to what the machine has available)")
    ap.add_argument("--data-dir", default=None, help="keep the generated graphs here (default: a temporary folder)")
    ap.add_argument("--quick", action="store_true", help="smoke test: sizes 2000,20000, one step, nothing written")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--graph", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        limit = int(args.mem_limit_gib * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps(child(args)))
        return

    if args.quick:
        args.sizes, args.steps, args.node_batch_size, args.no_write = "2000,20000", 1, 5000, True
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in ALL_MODES]
    if unknown:
        ap.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(ALL_MODES)}")
    if ORIGINAL_MODE in modes:
        if not args.original_code:
            ap.error("the original mode needs --original-code DIR, the original DIFFormer code's "
                     "'node classification' folder (it holds difformer.py)")
        if not (Path(args.original_code) / "difformer.py").is_file():
            ap.error(f"no difformer.py in {args.original_code}: --original-code takes the 'node "
                     "classification' folder of a DIFFormer checkout")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="difformer_scaling_"))
    load_before = background_load()
    if load_before is not None and load_before > 0.1:
        print(f"warning: the machine is {load_before:.0%} busy before the run; timings will be slower and noisier",
              flush=True)
    avail = available_gib()
    limit = min(args.mem_limit_gib, avail - 1.5) if avail is not None else args.mem_limit_gib
    args.effective_limit = limit
    print(f"memory limit per child: {limit:.1f} GiB resident", flush=True)
    peak = matmul_peak()
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s", flush=True)
    results, generated = {}, {}
    try:
        for n in sizes:
            print(f"[N={n}] generating ...", flush=True)
            path = graph_files(n, folder)
            generated[n] = json.loads((path / "meta.json").read_text())
            for mode in modes:
                print(f"[N={n}] {mode} ...", flush=True)
                res = results[(n, mode)] = run_child(mode, n, path, args, limit)
                if "failed" in res:
                    print(f"[N={n}] {mode}: {res['failed']} ({res['detail']})", flush=True)
                else:
                    print(f"[N={n}] {mode}: {[round(t, 3) for t in res['times']]} s, peak {res['peak_mib']:.0f} MiB",
                          flush=True)
            if not args.data_dir:
                shutil.rmtree(path, ignore_errors=True)
    finally:
        if not args.data_dir:
            shutil.rmtree(folder, ignore_errors=True)
    load_after = background_load()

    table = report(args, sizes, modes, results, generated, peak, load_before, load_after)
    print(table)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", section_mark(modes), table)
        if ORIGINAL_MODE not in modes:  # the plot is the scaling section's
            plot(results, sizes, PLOT)
        print("wrote BENCHMARKS.md" + ("" if ORIGINAL_MODE in modes else f" and {PLOT.relative_to(ROOT)}"))


def machine_line(load_before: float | None, load_after: float | None, threads: int | None = None) -> str:
    """This machine, torch's version and threads (this process's unless given), and the other CPU
    load around the run."""
    import torch

    threads = threads or torch.get_num_threads()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{threads} thread{'s' if threads != 1 else ''}")
    if load_before is not None and load_after is not None:
        machine += f"; other CPU load just before / after the run: {load_before:.0%} / {load_after:.0%}"
    return machine


def report(args, sizes, modes, results, generated, peak, load_before, load_after) -> str:
    machine = machine_line(load_before, load_after)
    command = "python benchmarks/bench_difformer_scaling.py" + (
        f" --sizes {args.sizes}" if args.sizes != DEFAULT_SIZES else "") + (
        f" --modes {args.modes}" if args.modes != ",".join(MODES) else "") + (
        f" --steps {args.steps}" if args.steps != 3 else "") + (
        f" --node-batch-size {args.node_batch_size}" if args.node_batch_size != 100_000 else "") + (
        f" --threads {args.threads}" if args.threads else "") + (
        ' --original-code "<DIFFormer checkout>/node classification"' if ORIGINAL_MODE in modes else "")
    opts = next((r["options"] for r in results.values() if "options" in r), None)
    defaults = (f"the model's other options at their defaults (use_weight {str(opts['use_weight']).lower()}, "
                f"dropout {opts['dropout']:g}, {opts['norm']} norm, alpha {opts['alpha']:g})") if opts else \
        "the model's other options at their defaults"
    label = {"full": "difformer-s, full graph", "lowmem": "difformer-s, full graph, `low_memory: true`",
             "mini": f"difformer-s, mini-batch ({args.node_batch_size:,} nodes)", "sgformer": "PyG SGFormer, full graph",
             ORIGINAL_MODE: "original DIFFormer code, full graph"}
    unit = {"full": "s / step", "lowmem": "s / step", "mini": "s / epoch", "sgformer": "s / step", ORIGINAL_MODE: "s / step"}
    title = ("DIFFormer-s against the original DIFFormer code: one training step, same run (cpu)"
             if ORIGINAL_MODE in modes else "DIFFormer-s on large graphs: time and memory vs N (cpu)")
    lines = [section_mark(modes), f"## {title}", "",
             f"- date: {dt.date.today().isoformat()}; machine: {machine}",
             f"- command: `{command}`",
             f"- workload: `large_sbm` graphs ({CLASSES} classes, ~{DEGREE:g} neighbours per node, {FEATURES} features, "
             f"seed 0); 2 layers, {FEATURES} -> {SIZE['hidden']} hidden, 1 head, input graph on, {defaults}; "
             "Adam, loss on the 80% training split. Full graph (with `low_memory: true` too): median of "
             f"{args.steps} training steps after a warm-up step (the warm-up also builds the cached normalised "
             f"adjacency; its time is the `first` column). Mini-batch: {args.epochs} epoch(s) over random partitions "
             f"of {args.node_batch_size:,} nodes (induced subgraphs), after a warm-up batch; `inference` is the "
             "chunked full-graph forward pass in eval mode. SGFormer: PyG's model, 2 attention + 2 GCN layers, "
             "64 hidden, 1 head. Original DIFFormer code: `difformer.py` of its `node classification` folder, "
             "imported unmodified, the same options (simple kernel, use_weight false, LayerNorm, residual, "
             "alpha 0.5, dropout 0.2), its main.py's self loops and log-softmax + NLL loss; torch_sparse, which it "
             "imports, has no wheel here, so `benchmarks/torch_sparse_standin.py` supplies its two calls "
             "(`SparseTensor` kept as CSR, `matmul` as torch.sparse.mm, both compiled kernels). "
             "Every cell is a fresh process, killed if its resident memory passes "
             f"{args.effective_limit:.0f} GiB; memory is its peak RSS and the growth over the loaded graph; "
             "`CPU s` is the process's user + system time per step/epoch (what the timing costs in CPU, which "
             "other load on the machine does not inflate as much as the wall-clock time).",
             f"- float32 matmul peak measured in this run (4096^3, best of 5): **{peak:.1f} GFLOP/s**; GFLOP counted "
             "analytically per step/epoch (`step_flops`): encoder 2·2·N·128·64 (forward + weight gradient), per layer "
             "Q and K projections 2·3·2·N·64·64 (no value projection: the model's default `use_weight: false`), "
             "attention sums 3·2·2·N·64·64, propagation 2·2·nnz·64 (nnz = edges + N self loops; mini-batch: the "
             "induced edges kept that epoch), head 3·2·N·64·10; element-wise work and recomputed projections not "
             "counted.", "",
             "| N | edges | model | time | CPU s | first | inference (s) | GFLOP | GFLOP/s (% of peak) | peak RSS (MiB) | over graph (MiB) |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        for mode in modes:
            res = results.get((n, mode))
            if res is None:
                continue
            edges = generated[n]["edges"]
            if "failed" in res:
                lines.append(f"| {fmt_n(n)} | {edges:,} | {label[mode]} | {res['failed']} | | | | | | | |")
                continue
            t = seconds_of(res)
            first = f"{res['first']:.2f}" if "first" in res else ""
            inf = f"{res['inference']:.2f}" if "inference" in res else ""
            if mode == "sgformer":
                gf = rate = ""
            else:
                nnz = (res["kept_edges"] if mode == "mini" else edges) + n
                flops = step_flops(n, int(nnz), value_weights=res["options"]["use_weight"])["total"]
                gf, rate = f"{flops / 1e9:.1f}", f"{flops / t / 1e9:.1f} ({flops / t / 1e9 / peak:.0%})"
            cpu = f"{statistics.median(res['cpu']):.2f}" if res.get("cpu") else ""
            lines.append(f"| {fmt_n(n)} | {edges:,} | {label[mode]} | {t:.3f} {unit[mode]} | {cpu} | {first} | {inf} | {gf} | "
                         f"{rate} | {res['peak_mib']:.0f} | {res['peak_mib'] - res['base_mib']:.0f} |")
    lines.append("")
    for mode in modes:
        pts = [(n, seconds_of(results.get((n, mode)))) for n in sizes]
        pts = [(n, t) for n, t in pts if t]
        big = [(n, t) for n, t in pts if n >= 100_000]
        if len(pts) >= 2:
            s_all = loglog_slope(pts)
            s_big = loglog_slope(big) if len(big) >= 2 and len(big) < len(pts) else None
            lines.append(f"- log-log slope of time vs N, {label[mode]}: **{s_all:.2f}** over "
                         f"{fmt_n(pts[0][0])}..{fmt_n(pts[-1][0])}"
                         + (f"; {s_big:.2f} over {fmt_n(big[0][0])}..{fmt_n(big[-1][0])}" if s_big is not None else ""))
    for n, (orig, mem) in sorted(ORIGINAL.items()):
        t = seconds_of(results.get((n, "full")))
        if t and (n, ORIGINAL_MODE) not in results:  # measured in this run instead: the line above
            ours = results[(n, "full")]
            lines.append(f"- training step at {fmt_n(n)}: {t:.2f} s"
                         + (f", peak RSS {ours['peak_mib'] / 1024:.1f} GiB" if mem else "")
                         + f"; the original code's {orig} s" + (f" / {mem} GB" if mem else "")
                         + f" was measured on another machine on another day, not in this run, so the ratio "
                         f"({orig / t:.1f}x) is across machines, not a speed-up measured here")
    orig = [(n, results.get((n, ORIGINAL_MODE)), results.get((n, "full"))) for n in sizes]
    orig = [(n, a, b) for n, a, b in orig if seconds_of(a) and seconds_of(b)]
    if orig:
        lines.append("- original DIFFormer code / difformer-s (full graph, per step, both measured in this run): "
                     + ", ".join(f"{fmt_n(n)}: **{seconds_of(a) / seconds_of(b):.2f}x** the time, "
                                 f"{a['peak_mib'] / b['peak_mib']:.2f}x the peak RSS "
                                 f"({a['peak_mib'] / 1024:.1f} against {b['peak_mib'] / 1024:.1f} GiB)"
                                 for n, a, b in orig))
        lines.append("- these ratios replace the scaling section's comparison with the original code, whose time "
                     "there was measured on another machine on another day: here both ran on this machine in one "
                     "run, in fresh processes one after the other. The original code's time depends on what stands "
                     "in for torch_sparse: the stand-in multiplies in compressed rows, as torch_sparse itself does "
                     "(a scatter with `index_add_` would be slower), so the stand-in does not inflate its time.")
    sg = [(n, seconds_of(results.get((n, "sgformer"))), seconds_of(results.get((n, "full")))) for n in sizes]
    sg = [(n, a, b) for n, a, b in sg if a and b]
    if sg:
        lines.append("- PyG SGFormer / difformer-s (full graph, per step): "
                     + ", ".join(f"{fmt_n(n)}: {a / b:.2f}x" for n, a, b in sg))
    gen = ", ".join(f"{fmt_n(n)}: {generated[n]['generate_s']:.1f} s" for n in sizes)
    lines.append(f"- graph generation (`large_sbm`, once per size): {gen}")
    if ORIGINAL_MODE not in modes:  # the plot is the scaling section's
        lines += ["", f"![DIFFormer-s training time vs N]({PLOT.relative_to(ROOT).as_posix()})"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
