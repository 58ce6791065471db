"""Graph-level training speed on NCI1 against PyG's GPSConv, measured in one run: writes a table
into BENCHMARKS.md.

- ours: ``gps`` and ``gradformer`` (4 layers, 64 channels, 4 heads, GIN local branch, batch 128),
  trained through the trainer's own data path (``Evaluator.loader``) and epoch loop
  (``train_epoch``), on random batches (the default: attention pads per size group inside the
  batch) and on size-bucketed batches (``bucket: true``); and compiled by ``torch.compile(model)``
  (the compilation falls in the untimed warm-up epoch, and recompiles for new batch shapes in the
  timed ones)
- peer: PyG's ``GPSConv`` in a small model written as a PyG user would (Linear encoder,
  4 x GPSConv(64, GINConv(MLP), heads=4, attn_type='multihead'), mean pool, MLP head), fed by
  PyG's ``DataLoader(shuffle=True)``
- SPD preprocessing of NCI1 (``precompute_encodings(spd=True)``), cold (empty cache) and cached

    python benchmarks/bench_graph_epoch.py [--epochs 3] [--rounds 3] [--data-root /work/shared/datasets] [--no-write]

The models take turns (``--rounds``), each turn in a fresh subprocess: one warm-up epoch, then
``--epochs`` timed epochs (forward + backward + Adam over the whole training split, 80% of
NCI1); the median over all rounds is reported. Peak
memory is ``ru_maxrss`` of that process at the end, and its increase over the same process
after loading the data and its encodings (before the model exists).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_layers import write_section  # noqa: E402

MARK = "bench_graph_epoch"
# "name:bucket" trains the same model on size-bucketed batches instead of random ones; "name:compile"
# trains it compiled by torch.compile.
MODELS = ("gps", "gradformer", "gps:bucket", "gradformer:bucket", "gps:compile", "gradformer:compile", "pyg_gps")
SIZE = dict(layers=4, hidden=64, heads=4, local="gin")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def background_load(seconds: float = 2.0) -> float | None:
    """Share of the machine's CPU time in use (by anything) over ``seconds``, from /proc/stat:
    other work on this machine slows every timing here, so the table records it."""
    def snapshot():
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = snapshot()
        time.sleep(seconds)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def matmul_peak(size: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of the best of ``repeats`` float32 ``size^3`` matmuls (torch's threads): the machine's
    peak against which the benchmarks put their achieved rates."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def epoch_gflop(run_epoch) -> float:
    """Floating-point operations (GFLOP) of one call of ``run_epoch``, forward and backward, as
    torch's ``FlopCounterMode`` counts them: matrix products (mm, bmm, addmm, baddbmm, fused
    attention) only; gathers, scatters and element-wise work are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        run_epoch()
    return counter.get_total_flops() / 1e9


def load(data_root: str | None):
    from gnnformer.datasets import load_dataset

    return load_dataset("NCI1", data_root)


# --------------------------------------------------------------------------------------------
# Children: one model per process


def child_ours(name: str, args) -> dict:
    import torch

    from gnnformer.models import create_model
    from gnnformer.registry import MODELS as REGISTRY
    import gnnformer.training as T
    from gnnformer.training.optim import build_optimizer

    name, _, variant = name.partition(":")
    if name not in REGISTRY:
        return {"skipped": f"model {name!r} is not registered in this checkout"}
    cfg = T.ExperimentConfig(model=name, dataset="NCI1", data_root=args.data_root, batch_size=args.batch_size,
                             bucket=variant == "bucket", model_args=dict(SIZE))
    prep = T.prepare(cfg)  # encodings come from the cache (the parent computed them)
    split = T.make_splits(cfg, prep)[0][1]
    base = rss_mib()
    T.seed_everything(0)
    model = create_model(cfg.model, **prep.model_cfg)
    opt = build_optimizer("adam", model.parameters(), cfg.lr, cfg.weight_decay)  # the trainer's (fused) Adam
    if variant == "compile":  # default dynamism: shapes that vary are made symbolic after a recompile
        model = torch.compile(model)
    ev = T.Evaluator(prep, cfg.batch_size, torch.device("cpu"), bucket=cfg.bucket and prep.dense_attention)
    gen = torch.Generator().manual_seed(0)
    def run_epoch():
        T.train_epoch(model, opt, prep.task, ev.loader(split.train, shuffle=True, generator=gen), torch.device("cpu"))

    times = []
    for _ in range(1 + args.epochs):
        t0 = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - t0)
    peak = rss_mib()  # before the counted epoch, whose bookkeeping is not the model's
    enc = ", ".join(f"{k}={v}" for k, v in prep.encodings.items()) or "none"
    return {"times": times[1:], "warmup": times[0], "base_mib": base, "peak_mib": peak,
            "gflop": epoch_gflop(run_epoch) if args.flops and variant != "compile" else None,
            "params": sum(p.numel() for p in model.parameters()), "graphs": len(split.train), "encodings": enc}


def child_pyg(args) -> dict:
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch_geometric.loader import DataLoader
    from torch_geometric.nn import GINConv, GPSConv, global_mean_pool

    from gnnformer.datasets import random_split

    class PygGPS(nn.Module):
        def __init__(self, in_channels: int, hidden: int, out_channels: int, layers: int, heads: int) -> None:
            super().__init__()
            self.encoder = nn.Linear(in_channels, hidden)
            self.convs = nn.ModuleList(
                GPSConv(hidden, GINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))),
                        heads=heads, attn_type="multihead", attn_kwargs={"dropout": 0.5})
                for _ in range(layers)
            )
            self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_channels))

        def forward(self, data):
            h = self.encoder(data.x)
            for conv in self.convs:
                h = conv(h, data.edge_index, data.batch)
            return self.head(global_mean_pool(h, data.batch))

    ds = load(args.data_root)
    split = random_split(len(ds.graphs), 0)
    train = [ds.graphs[i] for i in split.train.tolist()]
    base = rss_mib()
    torch.manual_seed(0)
    model = PygGPS(ds.num_features, SIZE["hidden"], ds.out_dim, SIZE["layers"], SIZE["heads"])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True)
    def run_epoch():
        model.train()
        for batch in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(batch), batch.y.view(-1))
            loss.backward()
            opt.step()
            loss.item()

    times = []
    for _ in range(1 + args.epochs):
        t0 = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - t0)
    peak = rss_mib()
    return {"times": times[1:], "warmup": times[0], "base_mib": base, "peak_mib": peak,
            "gflop": epoch_gflop(run_epoch) if args.flops else None,
            "params": sum(p.numel() for p in model.parameters()), "graphs": len(train), "encodings": "none"}


def padding(args) -> dict:
    """Attention cells per epoch of the training split: dense batches (sum of B * Nmax^2) against
    the graphs themselves (sum of n^2), for random batches (padded whole, or per size group as the
    attention does) and for size-bucketed ones."""
    import torch

    from gnnformer.nn.attention import SIZE_GROUPS, plan_size_groups

    from gnnformer.datasets import random_split
    from gnnformer.training.sampler import SizeBucketSampler, attention_cells

    ds = load(args.data_root)
    sizes = torch.tensor([int(g.num_nodes) for g in ds.graphs])[random_split(len(ds.graphs), 0).train]
    gen = torch.Generator().manual_seed(0)
    sampler = SizeBucketSampler(sizes, args.batch_size, gen)
    rand = [attention_cells(sizes, torch.randperm(len(sizes), generator=gen).split(args.batch_size)) for _ in range(5)]
    bucket = [attention_cells(sizes, sampler.batches()) for _ in range(5)]
    grouped = []
    for _ in range(5):
        batches = torch.randperm(len(sizes), generator=gen).split(args.batch_size)
        groups = [b[g] for b in batches for g in plan_size_groups(sizes[b], SIZE_GROUPS)]
        grouped.append(attention_cells(sizes, groups)[0])
    return {"needed": rand[0][1], "random": sum(p for p, _ in rand) / 5, "bucketed": sum(p for p, _ in bucket) / 5,
            "grouped": sum(grouped) / 5, "groups": SIZE_GROUPS}


def child_spd(args) -> dict:
    from gnnformer.datasets.encodings import precompute_encodings

    ds = load(args.data_root)
    cold, cached = [], []
    for _ in range(args.spd_repeats):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["GNNFORMER_CACHE"] = tmp
            t0 = time.perf_counter()
            precompute_encodings(ds.graphs, spd=True)
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            precompute_encodings(ds.graphs, spd=True)
            cached.append(time.perf_counter() - t0)
    sizes = [int(g.num_nodes) for g in ds.graphs]
    return {"cold": cold, "cached": cached, "graphs": len(sizes), "pairs": sum(n * n for n in sizes)}


# --------------------------------------------------------------------------------------------
# Parent


def run_child(what: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--spd-repeats", str(args.spd_repeats), "--threads", str(args.threads)] + (["--no-flops"] if not args.flops else [])
    if args.data_root:
        cmd += ["--data-root", args.data_root]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def warm_caches(args) -> None:
    """Compute every encoding once, so that the timed children only load them from the cache."""
    from gnnformer.registry import MODELS as REGISTRY
    import gnnformer.training as T

    for name in ("gps", "gradformer"):
        if name in REGISTRY:
            T.prepare(T.ExperimentConfig(model=name, dataset="NCI1", data_root=args.data_root, model_args=dict(SIZE)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per model and round (after one warm-up epoch)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="the models take turns, a fresh process each, this many times (noise on a shared machine "
                         "comes in phases: turns spread it over every model)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data-root", default=None, help="data root holding TU/NCI1 (default: gnnformer's resolution)")
    ap.add_argument("--spd-repeats", type=int, default=5)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-flops", dest="flops", action="store_false",
                    help="skip the extra epoch per model that counts its floating-point operations")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        import torch  # (the import cost stays outside the timings)

        if args.threads:
            torch.set_num_threads(args.threads)

        res = (child_spd(args) if args.child == "spd" else child_pyg(args) if args.child == "pyg_gps"
               else child_ours(args.child, args))
        print(json.dumps(res))
        return

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    warm_caches(args)
    load_before = background_load()
    peak = matmul_peak() if args.flops else None
    if load_before is not None and load_before > 0.1:
        print(f"warning: the machine is {load_before:.0%} busy before the run; timings will be slower and noisier",
              flush=True)
    if args.rounds < 1 or args.epochs < 1:
        ap.error("--rounds and --epochs must be at least 1")
    results = {}
    for turn in range(args.rounds):
        for name in args.models.split(","):
            if "skipped" in results.get(name, {}):
                continue
            print(f"[{name}] round {turn + 1} of {args.rounds}: training ...", flush=True)
            # Operations are counted once (the first round); they do not change between rounds.
            res = run_child(name, args if turn == 0 else argparse.Namespace(**{**vars(args), "flops": False}))
            if "skipped" in res:
                print(f"[{name}] skipped: {res['skipped']}", flush=True)
                results[name] = res
                continue
            print(f"[{name}] epochs {[round(t, 2) for t in res['times']]} s", flush=True)
            if name not in results:
                results[name] = res
            else:  # every round's epochs; the largest peak memory
                results[name]["times"] += res["times"]
                results[name]["peak_mib"] = max(results[name]["peak_mib"], res["peak_mib"])
    print("[spd] timing ...", flush=True)
    spd = run_child("spd", args)
    pad = padding(args)
    load_after = background_load()

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads")
    if load_before is not None and load_after is not None:
        machine += f"; other CPU load just before / after the run: {load_before:.0%} / {load_after:.0%}"
    peer = results.get("pyg_gps")
    peer_t = statistics.median(peer["times"]) if peer and "times" in peer else None
    label = {"gps": "gnnformer gps (random batches, size groups)",
             "gradformer": "gnnformer gradformer (random batches, size groups)",
             "gps:bucket": "gnnformer gps (size-bucketed batches)",
             "gradformer:bucket": "gnnformer gradformer (size-bucketed batches)",
             "gps:compile": "gnnformer gps, torch.compile (random batches)",
             "gradformer:compile": "gnnformer gradformer, torch.compile (random batches)",
             "pyg_gps": "PyG GPSConv model (DataLoader shuffle)"}
    command = "python benchmarks/bench_graph_epoch.py" + (f" --epochs {args.epochs}" if args.epochs != 3 else "") + (
        f" --rounds {args.rounds}" if args.rounds != 3 else "") + (
        f" --threads {args.threads}" if args.threads else "") + (f" --data-root {args.data_root}" if args.data_root else "") + (
        "" if args.flops else " --no-flops")
    graphs = next((r["graphs"] for r in results.values() if "graphs" in r), "?")
    mark = f"<!-- {MARK}:cpu -->"
    lines = [mark, "## Graph-level training epoch, NCI1 (cpu)", "",
             f"- date: {dt.date.today().isoformat()}; machine: {machine}",
             f"- command: `{command}`",
             f"- workload: NCI1 training split ({graphs} graphs, random 80/10/10, seed 0), batch {args.batch_size}; "
             f"4 layers, 64 channels, 4 heads, GIN local branch, attention dropout 0.5, Adam; forward + backward + "
             f"Adam step. The models take turns, {args.rounds} round(s), each turn a fresh process: one warm-up "
             f"epoch, then {args.epochs} timed; `s / epoch` is the median of all {args.rounds * args.epochs} timed "
             "epochs, `range` their fastest and slowest (this machine's two cores are shared, and its speed "
             "comes and goes in phases of seconds to minutes: turns spread the phases over every model). "
             "Memory is a process's peak RSS (the largest of the rounds), and its growth over the same process "
             "after loading the data and encodings."]
    if peak:
        lines.append(f"- arithmetic: float32 matmul peak measured in this run (4096^3, best of 5) **{peak:.1f} GFLOP/s**; "
                     "GFLOP per epoch counted by torch's `FlopCounterMode` over one more epoch, forward and backward "
                     "(matrix products only: projections, attention score and value products, MLPs; message-passing "
                     "gathers and scatters, softmax and other element-wise work are not counted), divided by the "
                     "median epoch time for the achieved rate.")
    lines += ["", "| model | encodings | s / epoch | range | PyG / ours | GFLOP / epoch | GFLOP/s (% of peak) "
              "| peak RSS (MiB) | over data (MiB) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, res in results.items():
        if "skipped" in res:
            lines.append(f"| {label.get(name, name)} | - | skipped: {res['skipped']} | | | | | | |")
            continue
        t = statistics.median(res["times"])
        ratio = f"{peer_t / t:.2f}" if peer_t and name != "pyg_gps" else "1.00" if name == "pyg_gps" else "-"
        gflop = res.get("gflop")
        rate = f"{gflop / t:.1f} ({100 * gflop / t / peak:.0f}%)" if gflop and peak else "-"
        lines.append(f"| {label.get(name, name)} | {res['encodings']} | {t:.2f} | "
                     f"{min(res['times']):.2f}-{max(res['times']):.2f} | {ratio} | "
                     f"{f'{gflop:.1f}' if gflop else '-'} | {rate} | {res['peak_mib']:.0f} | "
                     f"{res['peak_mib'] - res['base_mib']:.0f} |")
    lines += ["",
              f"Attention cells per epoch (dense batches, sum of B * Nmax^2, mean of 5 epochs) against the "
              f"graphs' own sum of n^2 = {pad['needed']:,}: random batches padded whole {pad['random']:,.0f} "
              f"({pad['random'] / pad['needed']:.2f}x), random batches padded per size group (at most {pad['groups']} "
              f"groups, the attention default) {pad['grouped']:,.0f} ({pad['grouped'] / pad['needed']:.2f}x), "
              f"size-bucketed batches {pad['bucketed']:,.0f} ({pad['bucketed'] / pad['needed']:.2f}x).",
              "",
              f"SPD preprocessing of all {spd['graphs']} NCI1 graphs ({spd['pairs']:,} node pairs), "
              f"`precompute_encodings(graphs, spd=True)`, median of {len(spd['cold'])}: "
              f"cold (empty cache) {statistics.median(spd['cold']):.3f} s, "
              f"cached {statistics.median(spd['cached']):.3f} s."]
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", mark, table)


if __name__ == "__main__":
    main()
