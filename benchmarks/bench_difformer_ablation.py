"""DIFFormer-s fast paths against the plain PyTorch path: time and peak memory of a training step,
one fast path switched off at a time; writes a table and a keep/delete decision per path into
BENCHMARKS.md (and the raw figures to benchmarks/results/difformer_ablation/).

- workload: ``difformer-s`` on one ``large_sbm`` graph (~11 neighbours per node, 128 features,
  10 classes; generated once per size, as in ``bench_difformer_scaling.py``), 2 layers,
  128 -> 64 hidden, 1 head, input graph on, the model's defaults otherwise (dropout 0.2,
  LayerNorm, no value weights); one training step = forward + cross-entropy + backward + Adam
- every configuration runs in a fresh process: it loads the graph, builds the normalised
  adjacency (timed alone), runs one warm-up step and ``--steps`` timed steps (median). Memory is
  the process's peak RSS (``ru_maxrss``) and its growth over the loaded graph, which is what the
  paths change (the ratio of two growths is the memory gain)
- a path is kept when, at the largest size, it gains at least ``KEEP_RATIO`` (1.3x) in time or in
  memory over its plain counterpart (see ``COMPARISONS``); otherwise it goes
- inference: ``model.inference(data, chunk)`` (chunked, no autograd) against ``model(data)`` in
  eval mode under ``torch.no_grad()``, for difformer-s at every size and difformer-a at the smallest
- dropout: the mask variants alone on a ``[N, 64]`` tensor (forward + backward)

    python benchmarks/bench_difformer_ablation.py [--sizes 1e4,1e5,1e6] [--steps 2] [--no-write]
    python benchmarks/bench_difformer_ablation.py --quick      # smoke test: tiny sizes, nothing written
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
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
from bench_difformer_scaling import cpu_seconds, fmt_n, graph_files, load_graph, machine_line  # noqa: E402
from bench_graph_epoch import background_load, rss_mib  # noqa: E402
from bench_layers import findings_lines, write_section  # noqa: E402

MARK = "bench_difformer_ablation"
RESULTS = ROOT / "benchmarks" / "results" / "difformer_ablation"
SIZE = dict(hidden=64, layers=2, heads=1, use_graph=True)
FEATURES, CLASSES = 128, 10
KEEP_RATIO = 1.3
DEFAULT_SIZES = "1e4,1e5,1e6"

#: The fast paths a configuration can switch off (all on = the library's default).
PATHS = {
    "blocked": "blocked DIFFormer-s step (attention + propagation + residual, written-out backward)",
    "fused": "fused simple attention (DIFFormerConv on one graph, written-out backward)",
    "fused_by_blocked": "DIFFormerConv on one graph by the blocked kernel instead of the fused one",
    "spmm_t": "propagation with a prepared A^T for the backward (torch transposes A otherwise)",
    "norm_dropout": "blocked LayerNorm + ReLU + dropout",
    "dropout": "dropout mask from 16-bit random slices, fused ReLU, in place",
    "adjacency": "normalised adjacency by SciPy counting sorts, 32-bit indices",
}
#: name -> (paths switched off, dropout variant where a plain LayerNorm runs, attention variant).
CONFIGS = {
    "fast": (set(), None, None),
    "unblocked": ({"blocked"}, None, None),
    "unblocked, plain attention": ({"blocked", "fused"}, None, None),
    "unblocked, plain A^T": ({"blocked", "spmm_t"}, None, None),
    "unblocked, blocked-kernel attention, plain A^T": ({"blocked", "spmm_t"}, None, "blocked"),
    "unblocked, plain attention and A^T": ({"blocked", "fused", "spmm_t"}, None, None),
    "LayerNorm, then fast dropout": ({"norm_dropout"}, "int16", None),
    "LayerNorm, then uniform_ dropout": ({"norm_dropout", "dropout"}, "uniform", None),
    "LayerNorm, then F.dropout": ({"norm_dropout", "dropout"}, "plain", None),
    "PyG adjacency": ({"adjacency"}, None, None),
    "plain": (set(PATHS), "plain", None),
}
#: path -> (configuration with it, configuration with its plain counterpart instead, what is compared).
COMPARISONS = {
    "blocked": ("fast", "unblocked, plain attention and A^T", "training step"),
    "fused": ("unblocked, plain A^T", "unblocked, plain attention and A^T", "training step"),
    "fused_by_blocked": ("unblocked, blocked-kernel attention, plain A^T", "unblocked, plain attention and A^T",
                         "training step"),
    "spmm_t": ("unblocked, plain attention", "unblocked, plain attention and A^T", "training step"),
    "norm_dropout": ("fast", "LayerNorm, then F.dropout", "training step"),
    "dropout": ("LayerNorm, then fast dropout", "LayerNorm, then F.dropout", "training step"),
    "adjacency": ("fast", "PyG adjacency", "adjacency build"),
}
INFERENCE = {"inference": ("difformer-s", True), "inference, plain": ("difformer-s", False),
             "inference -a": ("difformer-a", True), "inference -a, plain": ("difformer-a", False)}
A_CHUNK = 1000  # rows per chunk of difformer-a's chunked inference (chunk x N scores)


# --------------------------------------------------------------------------------------------
# Switching paths off (the plain counterparts)


def dropout_variant(name: str):
    """``f(x, p, training, relu, inplace)``: dropout (after a ReLU) with one of the mask variants:
    ``F.dropout`` (Bernoulli), a float mask from ``uniform_``, or the library's 16-bit slices."""
    import torch
    import torch.nn.functional as F

    from gnnformer.nn.dropout import fast_dropout

    def plain(x, p, training, relu=False, inplace=False):
        return F.dropout(torch.relu(x) if relu else x, p, training)

    def uniform(x, p, training, relu=False, inplace=False):
        x = torch.relu(x) if relu else x
        return x * torch.empty_like(x).uniform_().ge_(p).mul_(1.0 / (1.0 - p)) if training and p > 0 else x

    return {"plain": plain, "uniform": uniform, "int16": fast_dropout}[name]


def configure(model, off: set, dropout: str | None, attention: str | None) -> None:
    """Switch the paths in ``off`` to their plain counterparts for ``model`` (this process only)."""
    from gnnformer.models import difformer as M
    from gnnformer.nn import difformer as D
    from gnnformer.nn import difformer_kernels as K

    model.blocked = "blocked" not in off
    for conv in model.convs:
        conv.fused = "fused" not in off
    if attention == "blocked":
        def attention_by_blocked_kernel(conv, x, return_values=False):
            out = K.blocked_simple_step(x, conv, None, 1.0, 0.0, 0.0)
            return (out, x if conv.v is None else conv.values(x).mean(dim=1)) if return_values else out

        D.fused_simple_attention = attention_by_blocked_kernel
    if "spmm_t" in off:
        D.sparse_matmul = lambda a, a_t, x: a @ x
    if "norm_dropout" in off:
        drop = dropout_variant(dropout)

        def norm_dropout(x, norm, p, training, relu=False, inplace=False):
            return drop(norm(x), p, training, relu=relu, inplace=inplace)

        M.norm_dropout = norm_dropout
    D.SCIPY_ADJACENCY = "adjacency" not in off


def build_adjacency(model, g, transpose: bool = True, cache: str = "_adjacency") -> float:
    """Build (and cache on ``model``) the normalised adjacency the steps will use; the seconds of a build."""
    import torch

    from gnnformer.nn import difformer as D

    took = []
    for _ in range(2):  # the second build is timed: the first one also pays imports and first use
        getattr(model, cache).clear()
        t0 = time.perf_counter()
        D.cached_adjacency(g.edge_index, g.num_nodes, torch.float32, torch.device("cpu"), getattr(model, cache),
                           transpose=transpose)
        took.append(time.perf_counter() - t0)
    return took[-1]


# --------------------------------------------------------------------------------------------
# Children: one configuration per process


def child_step(args) -> dict:
    import torch
    import torch.nn.functional as F

    from gnnformer.models import create_model

    g = load_graph(args.graph)
    base = rss_mib()
    torch.manual_seed(0)
    model = create_model("difformer-s", in_channels=FEATURES, out_channels=CLASSES, level="node", **SIZE)
    configure(model, *CONFIGS[args.child])
    res = {"nodes": g.num_nodes, "base_mib": base, "adjacency_s": build_adjacency(model, g)}
    res["adjacency_mib"] = rss_mib()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    times, cpu = [], []
    for _ in range(1 + args.steps):
        t0, c0 = time.perf_counter(), cpu_seconds()
        opt.zero_grad()
        F.cross_entropy(model(g), g.y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(cpu_seconds() - c0)
    res.update(first=times[0], times=times[1:], cpu=cpu[1:], peak_mib=rss_mib())
    return res


def child_inference(args) -> dict:
    import torch

    from gnnformer.models import create_model

    name, chunked = INFERENCE[args.child]
    g = load_graph(args.graph)
    base = rss_mib()
    torch.manual_seed(0)
    model = create_model(name, in_channels=FEATURES, out_channels=CLASSES, level="node", **SIZE).eval()
    chunk = A_CHUNK if name == "difformer-a" else args.chunk
    res = {"nodes": g.num_nodes, "base_mib": base, "chunk": chunk,
           "adjacency_s": build_adjacency(model, g, transpose=not chunked,
                                          cache="_full_adjacency" if chunked else "_adjacency")}
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        if chunked:
            model.inference(g, chunk_size=chunk)
        else:
            with torch.no_grad():
                model(g)
        times.append(time.perf_counter() - t0)
    res.update(first=times[0], times=times[1:], peak_mib=rss_mib())
    return res


def child_dropout(args) -> dict:
    """Forward + backward of each dropout variant (after a ReLU) on ``[N, 64]``, interleaved, median."""
    import torch

    n = args.nodes
    res = {}
    for relu in (False, True):
        fns = {name: dropout_variant(name) for name in ("plain", "uniform", "int16")}
        times = {name: [] for name in fns}
        x = torch.randn(n, SIZE["hidden"], requires_grad=True)
        for _ in range(1 + args.steps * 3):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn(x * 1.0, 0.2, True, relu=relu, inplace=True).sum().backward()
                times[name].append(time.perf_counter() - t0)
        res["relu" if relu else "dropout"] = {name: statistics.median(t[1:]) for name, t in times.items()}
    return res


# --------------------------------------------------------------------------------------------
# Parent


def run_child(kind: str, config: str, args, graph: Path | None = None, nodes: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", config, "--kind", kind, "--steps", str(args.steps),
           "--chunk", str(args.chunk), "--nodes", str(nodes)] + (["--graph", str(graph)] if graph else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        if "MemoryError" in proc.stderr or "DefaultCPUAllocator" in proc.stderr or proc.returncode in (-9, 137):
            return {"failed": "out of memory", "detail": last[-300:]}
        raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["wall"] = time.perf_counter() - t0
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated node counts (1e6 or 1000000)")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up step")
    ap.add_argument("--chunk", type=int, default=100_000, help="nodes per chunk of difformer-s's chunked inference")
    ap.add_argument("--quick", action="store_true", help="smoke test: sizes 2000,20000, one step, nothing written")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--graph", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--nodes", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child = {"step": child_step, "inference": child_inference, "dropout": child_dropout}[args.kind]
        print(json.dumps(child(args)))
        return
    if args.quick:
        args.sizes, args.steps, args.chunk, args.no_write = "2000,20000", 1, 5000, True
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    load_before = background_load()
    print(f"other CPU load before the run: {load_before:.0%}" if load_before is not None else "", flush=True)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="difformer_ablation_"))
    results = {}
    try:
        for n in sizes:
            path = graph_files(n, folder)
            for config in CONFIGS:
                results[(n, config)] = res = run_child("step", config, args, path)
                print(f"[N={n}] {config}: {_summary(res)}", flush=True)
            for config, (name, _) in INFERENCE.items():
                if name == "difformer-a" and n != sizes[0]:
                    continue
                results[(n, config)] = res = run_child("inference", config, args, path)
                print(f"[N={n}] {config}: {_summary(res)}", flush=True)
            shutil.rmtree(path, ignore_errors=True)
        results["dropout"] = run_child("dropout", "dropout", args, nodes=max(sizes))
        print(f"dropout variants: {results['dropout']}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    minutes = (time.perf_counter() - started) / 60
    load_after = background_load()
    table = report(args, sizes, results, load_before, load_after, minutes)
    print(table)
    if not args.no_write:
        import torch

        RESULTS.mkdir(parents=True, exist_ok=True)
        raw = {"date": dt.date.today().isoformat(), "commit": _commit(), "torch": torch.__version__,
               "sizes": sizes, "steps": args.steps,
               "results": {f"{k[0]}|{k[1]}" if isinstance(k, tuple) else k: v for k, v in results.items()}}
        (RESULTS / f"{raw['date']}-{raw['commit']}.json").write_text(json.dumps(raw, indent=1) + "\n")
        write_section(ROOT / "BENCHMARKS.md", f"<!-- {MARK}:cpu -->", table)
        print("wrote BENCHMARKS.md and", RESULTS.relative_to(ROOT))


def _summary(res: dict) -> str:
    if "failed" in res:
        return res["failed"]
    return (f"{statistics.median(res['times']):.3f} s, adjacency {res['adjacency_s']:.2f} s, "
            f"peak {res['peak_mib']:.0f} MiB (+{res['peak_mib'] - res['base_mib']:.0f})")


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def growth(res: dict, key: str = "peak_mib") -> float:
    """Memory a configuration added over its loaded graph (MiB, at least 1)."""
    return max(1.0, res[key] - res["base_mib"])


def ratios(fast: dict, plain: dict, what: str) -> tuple[float, float]:
    """(time gain, memory gain) of ``fast`` over ``plain``: plain / fast."""
    if what == "adjacency build":
        return plain["adjacency_s"] / fast["adjacency_s"], growth(plain, "adjacency_mib") / growth(fast, "adjacency_mib")
    if what == "inference":
        return best(plain) / best(fast), growth(plain) / growth(fast)
    return statistics.median(plain["times"]) / statistics.median(fast["times"]), growth(plain) / growth(fast)


def report(args, sizes, results, load_before, load_after, minutes) -> str:
    machine = machine_line(load_before, load_after)
    command = "python benchmarks/bench_difformer_ablation.py" + (
        f" --sizes {args.sizes}" if args.sizes != DEFAULT_SIZES else "") + (
        f" --steps {args.steps}" if args.steps != 2 else "")
    big = sizes[-1]
    lines = [f"<!-- {MARK}:cpu -->", "## DIFFormer-s fast paths against the plain path: time and memory (cpu)", "",
             f"- date: {dt.date.today().isoformat()}; commit {_commit()}; machine: {machine}; the run took "
             f"{minutes:.0f} min",
             f"- command: `{command}`",
             f"- workload: `difformer-s` on one `large_sbm` graph (~11 neighbours per node, {FEATURES} features, "
             f"{CLASSES} classes), 2 layers, {FEATURES} -> {SIZE['hidden']} hidden, 1 head, input graph on, dropout "
             "0.2, LayerNorm, no value weights; a training step is forward + cross-entropy + backward + Adam. Each "
             f"configuration is a fresh process: the adjacency is built first (timed alone), then one warm-up step "
             f"and {args.steps} timed steps (median; few repeats to keep the run short, so differences under "
             "~10% are noise). Memory: peak RSS, and its growth over the loaded graph (`+MiB`), whose ratio is "
             "the memory gain. `CPU s`: the process's user + system time per step.",
             f"- rule: a fast path is kept when, at {fmt_n(big)} nodes, it gains at least {KEEP_RATIO}x in time or "
             "in memory over its plain counterpart; otherwise it is deleted.", "",
             "| configuration | " + " | ".join(f"{fmt_n(n)}: s / step, CPU s, +MiB" for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for config in CONFIGS:
        cells = []
        for n in sizes:
            r = results.get((n, config))
            cells.append(r["failed"] if "failed" in r else
                         f"{statistics.median(r['times']):.3f}, {statistics.median(r['cpu']):.2f}, {growth(r):.0f}")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    lines += ["", "| fast path | compared on | " + " | ".join(f"{fmt_n(n)}: time, memory gain" for n in sizes)
              + " | decision |", "|---|---|" + "---:|" * len(sizes) + "---|"]
    decisions = {}
    for path, (fast, plain, what) in COMPARISONS.items():
        cells = [ratios(results[(n, fast)], results[(n, plain)], what) for n in sizes]
        t, m = cells[-1]
        keep = max(t, m) >= KEEP_RATIO
        decisions[path] = keep
        reason = f"{'keep' if keep else 'delete'} ({max(t, m):.2f}x {'time' if t >= m else 'memory'} at {fmt_n(big)})"
        lines.append(f"| {PATHS[path]} | {what}: `{fast}` vs `{plain}` | "
                     + " | ".join(f"{a:.2f}x, {b:.2f}x" for a, b in cells) + f" | {reason} |")
    inf_rows = []
    for name, fast, plain in (("difformer-s", "inference", "inference, plain"),
                              ("difformer-a", "inference -a", "inference -a, plain")):
        for n in sizes:
            f, p = results.get((n, fast)), results.get((n, plain))
            if not f:
                continue
            chunk = f["chunk"]
            if "failed" in p or "failed" in f:
                inf_rows.append(f"| {name}, {fmt_n(n)} | chunks of {chunk:,} | {_cell(f)} | {_cell(p)} | | |")
                continue
            t, m = ratios(f, p, "inference")
            inf_rows.append(f"| {name}, {fmt_n(n)} | chunks of {chunk:,} | {_cell(f)} | {_cell(p)} | "
                            f"{t:.2f}x | {m:.2f}x |")
    lines += ["", "Inference (eval, no autograd): `model.inference(data, chunk)` against `model(data)` under "
              "`torch.no_grad()`, best of 2 runs after the adjacency is built.", "",
              "| model, N | chunked | chunked: s, +MiB | plain: s, +MiB | time gain | memory gain |",
              "|---|---|---:|---:|---:|---:|"] + inf_rows
    drop = results["dropout"]
    lines += ["", f"Dropout alone (p = 0.2) on a `[{fmt_n(big)}, {SIZE['hidden']}]` tensor, forward + backward, "
              f"median of {args.steps * 3}: "
              + "; ".join(f"{label}: F.dropout {drop[key]['plain'] * 1e3:.0f} ms, uniform_ mask "
                          f"{drop[key]['uniform'] * 1e3:.0f} ms, 16-bit slices {drop[key]['int16'] * 1e3:.0f} ms"
                          for key, label in (("dropout", "plain"), ("relu", "after a ReLU"))), ""]
    lines += findings_lines([f"{PATHS[p]}: **{'kept' if k else 'deleted'}**" for p, k in decisions.items()])
    return "\n".join(lines) + "\n"


def best(res: dict) -> float:
    return min(res["times"] + [res["first"]])


def _cell(res: dict) -> str:
    return res["failed"] if "failed" in res else f"{best(res):.2f}, {growth(res):.0f}"


if __name__ == "__main__":
    main()
