"""DIFFormer-s fast paths against the plain PyTorch path: time and peak memory of a training step,
one fast path switched off at a time; writes a table and a keep/delete decision per path into
BENCHMARKS.md (and the raw figures to benchmarks/results/difformer_ablation/).

- workload: ``difformer-s`` on one ``large_sbm`` graph (~11 neighbours per node, 128 features,
  10 classes; generated once per size, as in ``bench_difformer_scaling.py``), 2 layers,
  128 -> 64 hidden, 1 head, input graph on, the model's defaults otherwise (dropout 0.2,
  LayerNorm, no value weights); one training step = forward + cross-entropy + backward + Adam
- every configuration runs in a fresh process with one torch thread, ``--jobs`` processes at a
  time: it loads the graph, builds the normalised adjacency (timed alone), runs one warm-up step
  and ``--steps`` timed steps (median). Time is the process's CPU time (user + system) per step:
  with one thread it is the work done, which other load on a shared machine barely changes
  (wall-clock time on a busy 2-core machine varied 3x between identical runs). Memory is the
  process's peak RSS (``ru_maxrss``) and its growth over the loaded graph, which is what the
  paths change (the ratio of two growths is the memory gain)
- a path is kept when, at the largest size, it gains at least ``KEEP_RATIO`` (1.3x) in time or in
  memory over its plain counterpart (see ``COMPARISONS``); otherwise it goes
- inference: difformer-a's ``model.inference(data, chunk)`` (``chunk`` queries at a time, no
  autograd) against ``model(data)`` in eval mode under ``torch.no_grad()``, at the smallest size
- deleted paths: their figures are read back from the stored run they were decided on (``STORED``)
- dropout: the mask variants alone on a ``[N, 64]`` tensor (forward + backward)

    python benchmarks/bench_difformer_ablation.py [--sizes 1e4,1e5,1e6] [--steps 2] [--jobs 2] [--no-write]
    python benchmarks/bench_difformer_ablation.py --quick      # smoke test: tiny sizes, nothing written
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_difformer_scaling import cpu_seconds, fmt_n, graph_files, load_graph, machine_line, rss_gib  # noqa: E402
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
    "blocked": "blocked DIFFormer-s step of the model (attention + propagation + residual, written-out backward)",
    "conv_blocked": "DIFFormerConv on one graph through the blocked kernel (its attention term only)",
    "dropout": "fast dropout: 16-bit mask slices, ReLU fused, in place",
    "low_memory": "`low_memory: true`: LayerNorm inside the op before it (encoder, blocked step), its input "
                  "recomputed in the backward; dropout masks bit-packed",
    "adjacency": "normalised adjacency by SciPy counting sorts, 32-bit indices",
    "inference_a": "DIFFormer-a inference, `rows x N` scores at a time (`model.inference`)",
}
#: name -> (paths switched off, dropout after the norms: 'fast' or 'plain', model options switched
#: on: the opt-in paths, which are configuration rather than defaults).
CONFIGS = {
    "fast": (set(), "fast", {}),
    "unblocked": ({"blocked"}, "fast", {}),
    "unblocked, plain attention": ({"blocked", "conv_blocked"}, "fast", {}),
    "F.dropout": ({"dropout"}, "plain", {}),
    "low memory": (set(), "fast", {"low_memory": True}),
    "PyG adjacency": ({"adjacency"}, "fast", {}),
    "plain": ({"blocked", "conv_blocked", "dropout", "adjacency"}, "plain", {}),
}
#: path -> (configuration with it, configuration with its plain counterpart instead, what is compared).
COMPARISONS = {
    "blocked": ("fast", "unblocked, plain attention", "training step"),
    "conv_blocked": ("unblocked", "unblocked, plain attention", "training step"),
    "dropout": ("fast", "F.dropout", "training step"),
    "low_memory": ("low memory", "fast", "training step"),
    "adjacency": ("fast", "PyG adjacency", "adjacency build"),
    "inference_a": ("inference -a", "inference -a, plain", "inference"),
}
INFERENCE = {"inference -a": ("difformer-a", True), "inference -a, plain": ("difformer-a", False)}

#: The run, with every fast path of the time still in place, that the deleted paths were decided
#: on (``git checkout <its commit> && python benchmarks/bench_difformer_ablation.py`` repeats it).
STORED = RESULTS / "2026-12-03-590cf02.json"
#: Deleted paths: (configuration with it, plain counterpart, what, why) in the stored run's names.
DELETED = {
    "fused simple attention (DIFFormerConv on one graph, its own written-out backward)": (
        "unblocked, plain A^T", "unblocked, plain attention and A^T", "training step",
        "replaced by the blocked kernel, as fast with 2.2x less memory (`unblocked, blocked-kernel attention, "
        "plain A^T`: 20.1 CPU s, 1950 MiB against 20.8 CPU s, 4294 MiB): one written-out backward, not two"),
    "propagation with a prepared A^T for the backward": (
        "unblocked, plain attention", "unblocked, plain attention and A^T", "training step", "under 1.3x"),
    "blocked LayerNorm + ReLU + dropout": (
        "fast", "LayerNorm, then fast dropout", "training step",
        "under 1.3x over a plain LayerNorm and the fast dropout (which alone gives most of its 1.50x memory "
        "gain over LayerNorm + F.dropout)"),
    "DIFFormer-s chunked inference (`model.inference`)": (
        "inference", "inference, plain", "inference", "under 1.3x: its no-grad forward pass is as lean"),
}


# --------------------------------------------------------------------------------------------
# Switching paths off (the plain counterparts)


def dropout_variant(name: str):
    """``f(x, p, training, inplace, relu)``: dropout (after a ReLU) with one of the mask variants:
    ``F.dropout`` (Bernoulli), a float mask from ``uniform_``, or the library's 16-bit slices."""
    import torch
    import torch.nn.functional as F

    from gnnformer.nn.dropout import fast_dropout

    def plain(x, p, training, inplace=False, relu=False, pack=False):  # (pack: the model's low_memory; ignored)
        return F.dropout(torch.relu(x) if relu else x, p, training)

    def uniform(x, p, training, inplace=False, relu=False, pack=False):
        x = torch.relu(x) if relu else x
        return x * torch.empty_like(x).uniform_().ge_(p).mul_(1.0 / (1.0 - p)) if training and p > 0 else x

    return {"plain": plain, "uniform": uniform, "fast": fast_dropout}[name]


def configure(model, off: set, dropout: str) -> None:
    """Switch the paths in ``off`` to their plain counterparts for ``model`` (this process only)."""
    from gnnformer.models import difformer as M
    from gnnformer.nn import difformer as D

    model.blocked = "blocked" not in off
    for conv in model.convs:
        conv.blocked = "conv_blocked" not in off
    M.fast_dropout = dropout_variant(dropout)
    D.SCIPY_ADJACENCY = "adjacency" not in off


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) that ``fn()`` takes."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - t0, cpu_seconds() - c0


def resident_mib() -> float:
    """This process's resident memory now (MiB)."""
    return rss_gib(os.getpid()) * 1024


def build_adjacency(model, g, res: dict, transpose: bool = True, cache: str = "_adjacency") -> None:
    """Build (and cache on ``model``) the normalised adjacency the steps will use; record the CPU
    seconds of a build and the resident memory the matrices take."""
    import torch

    from gnnformer.nn import difformer as D

    def build():
        getattr(model, cache).clear()
        D.cached_adjacency(g.edge_index, g.num_nodes, torch.float32, torch.device("cpu"), getattr(model, cache),
                           transpose=transpose)

    build()  # the first build also pays imports and first use
    getattr(model, cache).clear()
    before = resident_mib()
    res["adjacency_s"] = timed(build)[1]
    res["adjacency_mib"] = resident_mib() - before


def child_step(args) -> dict:
    import torch
    import torch.nn.functional as F

    from gnnformer.models import create_model

    g = load_graph(args.graph)
    res = {"nodes": g.num_nodes, "base_mib": rss_mib()}
    torch.manual_seed(0)
    off, dropout, options = CONFIGS[args.child]
    model = create_model("difformer-s", in_channels=FEATURES, out_channels=CLASSES, level="node", **options, **SIZE)
    configure(model, off, dropout)
    build_adjacency(model, g, res)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step():
        opt.zero_grad()
        F.cross_entropy(model(g), g.y).backward()
        opt.step()

    runs = [timed(step) for _ in range(1 + args.steps)]
    res.update(first=runs[0][1], times=[r[0] for r in runs[1:]], cpu=[r[1] for r in runs[1:]], peak_mib=rss_mib())
    return res


def child_inference(args) -> dict:
    import torch

    from gnnformer.models import create_model

    name, chunked = INFERENCE[args.child]
    g = load_graph(args.graph)
    res = {"nodes": g.num_nodes, "base_mib": rss_mib(), "chunk": args.chunk}
    torch.manual_seed(0)
    model = create_model(name, in_channels=FEATURES, out_channels=CLASSES, level="node", **SIZE).eval()
    build_adjacency(model, g, res, transpose=False, cache="_full_adjacency" if chunked else "_adjacency")

    def run():
        if chunked:
            model.inference(g, chunk_size=res["chunk"])
        else:
            with torch.no_grad():
                model(g)

    runs = [timed(run) for _ in range(2)]
    res.update(first=runs[0][1], times=[r[0] for r in runs[1:]], cpu=[r[1] for r in runs[1:]], peak_mib=rss_mib())
    return res


def child_dropout(args) -> dict:
    """CPU seconds of forward + backward of each dropout variant (alone, and after a ReLU) on
    ``[N, 64]``, the variants interleaved, median of ``3 * steps`` after a warm-up."""
    import torch

    res = {}
    for relu in (False, True):
        fns = {name: dropout_variant(name) for name in ("plain", "uniform", "fast")}
        times = {name: [] for name in fns}
        x = torch.randn(args.nodes, SIZE["hidden"], requires_grad=True)
        for _ in range(1 + args.steps * 3):
            for name, fn in fns.items():
                times[name].append(timed(lambda: fn(x * 1.0, 0.2, True, relu=relu, inplace=True).sum().backward())[1])
        res["relu" if relu else "dropout"] = {name: statistics.median(t[1:]) for name, t in times.items()}
    return res


# --------------------------------------------------------------------------------------------
# Parent


def run_child(kind: str, config: str, args, graph: Path | None = None, nodes: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", config, "--kind", kind, "--steps", str(args.steps),
           "--chunk", str(args.chunk), "--nodes", str(nodes), "--threads", str(args.threads)]
    proc = subprocess.run(cmd + (["--graph", str(graph)] if graph else []), capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        if "MemoryError" in proc.stderr or "DefaultCPUAllocator" in proc.stderr or proc.returncode in (-9, 137):
            return {"failed": "out of memory", "detail": last[-300:]}
        raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated node counts (1e6 or 1000000)")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps after one warm-up step")
    ap.add_argument("--chunk", type=int, default=1000, help="query rows per chunk of difformer-a's inference")
    ap.add_argument("--jobs", type=int, default=2, help="configurations measured at the same time")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of every configuration")
    ap.add_argument("--quick", action="store_true", help="smoke test: sizes 2000,20000, one step, nothing written")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--kind", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--graph", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--nodes", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        child = {"step": child_step, "inference": child_inference, "dropout": child_dropout}[args.kind]
        print(json.dumps(child(args)))
        return
    if args.quick:
        args.sizes, args.steps, args.no_write = "2000,20000", 1, True
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    load_before = background_load()
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="difformer_ablation_"))
    results = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for n in sizes:
                path = graph_files(n, folder)
                jobs = [("step", config) for config in CONFIGS] + [
                    ("inference", config) for config, (name, _) in INFERENCE.items()
                    if name != "difformer-a" or n == sizes[0]]
                running = {pool.submit(run_child, kind, config, args, path): config for kind, config in jobs}
                for done in as_completed(running):
                    results[(n, running[done])] = res = done.result()
                    print(f"[N={n}] {running[done]}: {_summary(res)}", flush=True)
                shutil.rmtree(path, ignore_errors=True)
        results["dropout"] = run_child("dropout", "dropout", args, nodes=max(sizes))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    minutes = (time.perf_counter() - started) / 60
    table = report(args, sizes, results, load_before, background_load(), minutes)
    print(table)
    if not args.no_write:
        import torch

        RESULTS.mkdir(parents=True, exist_ok=True)
        raw = {"date": dt.date.today().isoformat(), "commit": _commit(), "torch": torch.__version__,
               "command": command_of(args), "sizes": sizes,
               "results": {f"{k[0]}|{k[1]}" if isinstance(k, tuple) else k: v for k, v in results.items()}}
        (RESULTS / f"{raw['date']}-{raw['commit']}.json").write_text(json.dumps(raw, indent=1) + "\n")
        write_section(ROOT / "BENCHMARKS.md", f"<!-- {MARK}:cpu -->", table)
        print("wrote BENCHMARKS.md and", RESULTS.relative_to(ROOT))


def _summary(res: dict) -> str:
    if "failed" in res:
        return res["failed"]
    return (f"{statistics.median(res['cpu']):.2f} CPU s ({statistics.median(res['times']):.2f} s), "
            f"adjacency {res['adjacency_s']:.2f} s, peak {res['peak_mib']:.0f} MiB (+{growth(res):.0f})")


def _commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip() or "unknown"


def command_of(args) -> str:
    return "python benchmarks/bench_difformer_ablation.py" + "".join(
        f" --{key} {getattr(args, key)}" for key, default in (("sizes", DEFAULT_SIZES), ("steps", 2), ("jobs", 2),
                                                             ("threads", 1), ("chunk", 1000))
        if getattr(args, key) != default)


def growth(res: dict, key: str = "peak_mib") -> float:
    """Memory a configuration added over its loaded graph (MiB, at least 1)."""
    return max(1.0, res[key] - res["base_mib"])


def ratios(fast: dict, plain: dict, what: str) -> tuple[float, float]:
    """(time gain, memory gain) of ``fast`` over ``plain``: plain / fast, in CPU time and memory growth."""
    if what == "adjacency build":
        return plain["adjacency_s"] / fast["adjacency_s"], plain["adjacency_mib"] / max(1.0, fast["adjacency_mib"])
    return statistics.median(plain["cpu"]) / statistics.median(fast["cpu"]), growth(plain) / growth(fast)


def comparison_row(label: str, comparison: tuple, results: dict, sizes: list, why: str | None = None,
                   source: str = "") -> tuple[str, bool]:
    """One line of the decisions table and whether the path is kept: decided at the largest size
    measured, or deleted for ``why`` (``source``: which run the figures come from)."""
    fast, plain, what = comparison
    compared = f"{what}: `{fast}` vs `{plain}`{source}"
    cells, last = [], None
    for n in sizes:
        f, p = results.get((n, fast)), results.get((n, plain))
        if not f or not p or "failed" in f or "failed" in p:
            cells.append((p or {}).get("failed", "") if f else "")
            continue
        last = (n, *ratios(f, p, what))
        cells.append(f"{last[1]:.2f}x, {last[2]:.2f}x")
    if why or last is None:
        return f"| {label} | {compared} | " + " | ".join(cells) + f" | deleted: {why} |", False
    n, t, m = last
    keep = max(t, m) >= KEEP_RATIO
    decision = f"{'keep' if keep else 'delete'}: {max(t, m):.2f}x {'time' if t >= m else 'memory'} at {fmt_n(n)}"
    return f"| {label} | {compared} | " + " | ".join(cells) + f" | {decision} |", keep


def stored_run() -> tuple[dict, str]:
    """The results of the run in ``STORED``, keyed like this run's, and its commit."""
    raw = json.loads(STORED.read_text())
    results = {}
    for key, value in raw["results"].items():
        n, _, config = key.partition("|")
        results[(int(n), config) if config else key] = value
    return results, raw["commit"]


def report(args, sizes, results, load_before, load_after, minutes) -> str:
    lines = [f"<!-- {MARK}:cpu -->", "## DIFFormer-s fast paths against the plain path: time and memory (cpu)", "",
             f"- date: {dt.date.today().isoformat()}; commit {_commit()}; machine: "
             f"{machine_line(load_before, load_after, args.threads)}; the run took {minutes:.0f} min",
             f"- command: `{command_of(args)}`",
             f"- workload: `difformer-s` on one `large_sbm` graph (~11 neighbours per node, {FEATURES} features, "
             f"{CLASSES} classes), 2 layers, {FEATURES} -> {SIZE['hidden']} hidden, 1 head, input graph on, dropout "
             "0.2, LayerNorm, no value weights; a training step is forward + cross-entropy + backward + Adam. Each "
             f"configuration is a fresh process with {args.threads} torch thread(s), {args.jobs} at a time: the "
             f"adjacency is built first (timed alone), then one warm-up step and {args.steps} timed steps (median; "
             "few repeats to keep the run short). Time is the process's CPU time per step (user + system; with "
             "one thread the work done, which other load on this shared machine barely changes, where wall-clock "
             "time varied 3x between identical runs); `wall` is shown too. Memory: peak RSS and its growth over "
             "the loaded graph (`+MiB`), whose ratio is the memory gain.",
             f"- rule: a fast path is kept when, at the largest size measured, it gains at least {KEEP_RATIO}x in "
             "time or in memory over its plain counterpart; otherwise it is deleted.", "",
             "| configuration | " + " | ".join(f"{fmt_n(n)}: CPU s / step (wall), +MiB" for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    for config in CONFIGS:
        cells = []
        for n in sizes:
            r = results[(n, config)]
            cells.append(r["failed"] if "failed" in r else f"{statistics.median(r['cpu']):.2f} "
                         f"({statistics.median(r['times']):.2f}), {growth(r):.0f}")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    adjacency = ", ".join(f"{fmt_n(n)}: {results[(n, 'fast')]['adjacency_s']:.2f} s / "
                          f"{results[(n, 'fast')]['adjacency_mib']:.0f} MiB against "
                          f"{results[(n, 'PyG adjacency')]['adjacency_s']:.2f} s / "
                          f"{results[(n, 'PyG adjacency')]['adjacency_mib']:.0f} MiB" for n in sizes
                          if (n, "PyG adjacency") in results)
    if adjacency:
        lines += ["", f"Adjacency build (CPU s of one build, resident MiB of the matrices), SciPy against PyG: "
                  f"{adjacency}."]
    lines += ["", "| fast path | compared on | " + " | ".join(f"{fmt_n(n)}: time, memory gain" for n in sizes)
              + " | decision |", "|---|---|" + "---:|" * len(sizes) + "---|"]
    decisions = {}
    for path, comparison in COMPARISONS.items():
        row, decisions[PATHS[path]] = comparison_row(PATHS[path], comparison, results, sizes)
        lines.append(row)
    stored, commit = stored_run()
    for label, (*comparison, why) in DELETED.items():
        row, decisions[label] = comparison_row(label, tuple(comparison), stored, sizes, why=why,
                                               source=f" (run of {commit}, `{STORED.relative_to(ROOT)}`)")
        lines.append(row)
    inf_rows = []
    for fast, plain in (("inference -a", "inference -a, plain"),):
        for n in sizes:
            f, p = results.get((n, fast)), results.get((n, plain))
            if f:
                inf_rows.append(f"| {INFERENCE[fast][0]}, {fmt_n(n)} | {f['chunk']:,} | {_cell(f)} | {_cell(p)} |")
    lines += ["", "Inference (eval, no autograd): `model.inference(data, chunk)` against `model(data)` under "
              "`torch.no_grad()`, the second of 2 runs after the adjacency is built.", "",
              "| model, N | chunk | chunked: CPU s (wall), +MiB | plain: CPU s (wall), +MiB |",
              "|---|---:|---:|---:|"] + inf_rows
    drop = results["dropout"]
    lines += ["", f"Dropout alone (p = 0.2) on a `[{fmt_n(max(sizes))}, {SIZE['hidden']}]` tensor, forward + "
              f"backward, CPU ms, median of {args.steps * 3}: "
              + "; ".join(f"{label}: F.dropout {drop[key]['plain'] * 1e3:.0f}, uniform_ mask "
                          f"{drop[key]['uniform'] * 1e3:.0f}, 16-bit slices {drop[key]['fast'] * 1e3:.0f}"
                          for key, label in (("dropout", "alone"), ("relu", "after a ReLU"))), ""]
    overall = [(n, *ratios(results[(n, "fast")], results[(n, "plain")], "training step")) for n in sizes]
    fastest = {key: min(drop[key], key=drop[key].get) for key in ("dropout", "relu")}
    lines += findings_lines([
        "All kept paths together against the plain path (`fast` vs `plain`, training step): "
        + ", ".join(f"{fmt_n(n)}: {t:.2f}x CPU time, {m:.2f}x memory" for n, t, m in overall) + ".",
        "Kept: " + "; ".join(label for label, k in decisions.items() if k) + ". Deleted: "
        + "; ".join(label for label, k in decisions.items() if not k) + ".",
        "Dropout masks: the fastest alone is " + {"plain": "F.dropout", "uniform": "the uniform_ float mask",
                                                  "fast": "the 16-bit slices"}[fastest["dropout"]]
        + ", after a ReLU " + {"plain": "F.dropout", "uniform": "the uniform_ float mask",
                               "fast": "the 16-bit slices"}[fastest["relu"]]
        + "; the library's one fast dropout (`gnnformer.nn.dropout.fast_dropout`) draws 16-bit slices."])
    return "\n".join(lines) + "\n"


def _cell(res: dict) -> str:
    if "failed" in res:
        return res["failed"]
    return f"{statistics.median(res['cpu']):.2f} ({statistics.median(res['times']):.2f}), {growth(res):.0f}"


if __name__ == "__main__":
    main()
