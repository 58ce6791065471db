"""Layer speed against real peers, measured in one run: writes a table into BENCHMARKS.md.

- GraphTransformerLayer (complete graph) vs torch.nn.TransformerEncoderLayer on the same padded batch
- GPSLayer vs PyG's GPSConv (GIN local branch, multi-head attention, batch norm)

    python benchmarks/bench_layers.py [--repeats 30] [--device cpu|cuda] [--no-write]

Times are medians of forward+backward passes over a batch of random graphs of 10-40 nodes
(the size of molecules in MUTAG/ZINC), after warm-up.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch_geometric.data import Batch, Data
from torch_geometric.nn import GINConv, GPSConv
from torch_geometric.utils import to_dense_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gnnformer.nn import GPSLayer, GraphTransformerLayer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MARK = "bench_layers"


def random_batch(graphs: int, channels: int, device, seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(graphs):
        n = int(torch.randint(10, 41, (1,), generator=gen))
        src = torch.randint(0, n, (3 * n,), generator=gen)
        dst = torch.randint(0, n, (3 * n,), generator=gen)
        ei = torch.stack([torch.cat([src, dst]), torch.cat([dst, src])])
        data.append(Data(x=torch.randn(n, channels, generator=gen), edge_index=ei))
    return Batch.from_data_list(data).to(device)


def timeit(fn, repeats: int, device) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fwd_bwd(module, call):
    def run():
        module.zero_grad(set_to_none=True)
        call().sum().backward()
    return run


def bench(repeats: int, device: torch.device, graphs: int, channels: int, heads: int):
    batch = random_batch(graphs, channels, device)
    rows = []

    # Transformer layer: ours on the complete graph of each graph vs torch on the padded batch.
    torch_layer = torch.nn.TransformerEncoderLayer(channels, heads, 2 * channels, dropout=0.0, batch_first=True).to(device)
    ours = GraphTransformerLayer.from_torch(torch_layer).to(device)
    x_dense, mask = to_dense_batch(batch.x, batch.batch)
    t_torch = timeit(fwd_bwd(torch_layer, lambda: torch_layer(x_dense, src_key_padding_mask=~mask)[mask]), repeats, device)
    t_ours = timeit(fwd_bwd(ours, lambda: ours(batch.x, batch.batch)), repeats, device)
    rows.append(("GraphTransformerLayer (complete) vs nn.TransformerEncoderLayer", t_ours, t_torch))

    # GPS layer: ours vs PyG's GPSConv with the same branches.
    def gin():
        return GINConv(torch.nn.Sequential(torch.nn.Linear(channels, channels), torch.nn.ReLU(),
                                           torch.nn.Linear(channels, channels)))
    pyg = GPSConv(channels, gin(), heads=heads, dropout=0.0, attn_type="multihead", norm="batch_norm").to(device)
    ours_gps = GPSLayer(channels, heads, local="gin", dropout=0.0, attn_dropout=0.0, norm="batch").to(device)
    t_pyg = timeit(fwd_bwd(pyg, lambda: pyg(batch.x, batch.edge_index, batch.batch)), repeats, device)
    t_gps = timeit(fwd_bwd(ours_gps, lambda: ours_gps(batch.x, batch.edge_index, batch.batch)), repeats, device)
    rows.append(("GPSLayer vs PyG GPSConv", t_gps, t_pyg))
    return rows, batch.num_nodes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--graphs", type=int, default=128)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows, nodes = bench(args.repeats, device, args.graphs, args.channels, args.heads)

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device))
    mark = f"<!-- {MARK}:{device.type} -->"
    lines = [mark, f"## Layer speed ({device.type})", "",
             f"- date: {dt.date.today().isoformat()}; machine: {machine}",
             f"- command: `python benchmarks/bench_layers.py --device {args.device} --repeats {args.repeats}`",
             f"- workload: {args.graphs} random graphs of 10-40 nodes ({nodes} nodes), {args.channels} channels, "
             f"{args.heads} heads; median forward+backward time over {args.repeats} repeats", "",
             "| layer vs peer | ours (ms) | peer (ms) | ours / peer |", "|---|---:|---:|---:|"]
    for name, ours, peer in rows:
        lines.append(f"| {name} | {ours * 1e3:.2f} | {peer * 1e3:.2f} | {ours / peer:.2f} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if not args.no_write:
        write_section(ROOT / "BENCHMARKS.md", mark, table)


def findings_lines(findings) -> list:
    """A section's "Findings:" list, as Markdown lines (none when there are no findings)."""
    return ["Findings:"] + [f"- {f}" for f in findings] + [""] if findings else []


def write_section(path: Path, mark: str, text: str) -> None:
    """Replace this benchmark's section (from its marker to the next marker) or append it."""
    body = path.read_text() if path.exists() else "# Benchmarks\n\nEach section names the command that produced it.\n\n"
    start = body.find(mark)
    if start >= 0:
        end = body.find("<!-- ", start + len(mark))
        body = body[:start] + text + ("\n" + body[end:] if end >= 0 else "")
    else:
        body = body.rstrip("\n") + "\n\n" + text
    path.write_text(body)


if __name__ == "__main__":
    main()
