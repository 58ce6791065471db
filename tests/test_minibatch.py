"""Mini-batch training of one large graph over random node partitions; chunked full-graph inference."""
import pytest
import torch
from run_helpers import correct_on, load_run
from torch_geometric.data import Data

from gnnformer import cli
from gnnformer.datasets import load_dataset
from gnnformer.datasets.synthetic import large_sbm
from gnnformer.models import create_model
from gnnformer.tasks import get_task
from gnnformer.training.minibatch import (NodePartitionLoader, batch_bounds, full_graph_outputs, partition_edges,
                                          train_partition_epoch)


def random_graph(n=200, m=1500, seed=0, edge_dim=3):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=gen)  # repeated edges and self loops included
    return Data(x=torch.randn(n, 5, generator=gen), edge_index=ei, y=torch.randint(0, 3, (n,), generator=gen),
                edge_attr=torch.randn(m, edge_dim, generator=gen), num_nodes=n)


@pytest.mark.parametrize("n,size", [(200, 32), (200, 200), (200, 1000), (101, 10), (7, 3)])
def test_batch_bounds_cover_all_nodes_evenly(n, size):
    b = batch_bounds(n, size)
    sizes = b.diff()
    assert b[0] == 0 and b[-1] == n and len(sizes) == -(-n // size)
    assert int(sizes.max()) <= size and int(sizes.max() - sizes.min()) <= 1


def test_every_node_exactly_once_per_epoch():
    g = random_graph()
    loader = NodePartitionLoader(g, 32, generator=torch.Generator().manual_seed(1))
    assert len(loader) == 7
    for _ in range(3):  # every epoch a new partition, always a partition
        batches = list(loader)
        assert len(batches) == 7
        ids = torch.cat([b.n_id for b in batches])
        assert torch.equal(ids.sort().values, torch.arange(g.num_nodes))
        assert all(b.num_nodes <= 32 and b.x.size(0) == b.num_nodes for b in batches)


def test_induced_edges_match_brute_force():
    g = random_graph()
    loader = NodePartitionLoader(g, 45, generator=torch.Generator().manual_seed(2))
    for b in loader:
        members = set(b.n_id.tolist())
        local = {int(v): i for i, v in enumerate(b.n_id)}
        want = sorted((local[int(u)], local[int(v)], tuple(a.tolist()))
                      for (u, v), a in zip(g.edge_index.t(), g.edge_attr) if int(u) in members and int(v) in members)
        got = sorted((int(u), int(v), tuple(a.tolist())) for (u, v), a in zip(b.edge_index.t(), b.edge_attr))
        assert got == want
        assert torch.equal(b.x, g.x[b.n_id]) and torch.equal(b.y, g.y[b.n_id])
        assert b.edge_index.dtype == torch.long and b.edge_index.size(1) == len(want)


def test_partition_edges_grouped_by_batch():
    g = random_graph(300, 4000)
    perm = torch.randperm(300, generator=torch.Generator().manual_seed(3))
    bounds, local, counts, ids = partition_edges(g.edge_index, perm, 50, need_ids=True)
    assert int(counts.sum()) == local.size(1) == ids.numel()
    offsets = [0] + counts.cumsum(0).tolist()
    for b in range(len(counts)):
        nodes = perm[bounds[b]:bounds[b + 1]]
        part = local[:, offsets[b]:offsets[b + 1]]
        assert torch.equal(nodes[part[0]], g.edge_index[0, ids[offsets[b]:offsets[b + 1]]])
        assert torch.equal(nodes[part[1]], g.edge_index[1, ids[offsets[b]:offsets[b + 1]]])
        assert bool((part[0][1:] >= part[0][:-1]).all())  # sorted by local source


def test_partitions_are_deterministic_given_seed():
    g = random_graph()

    def epochs(seed):
        loader = NodePartitionLoader(g, 40, generator=torch.Generator().manual_seed(seed))
        return [[(b.n_id, b.edge_index) for b in loader] for _ in range(2)]

    a, b, c = epochs(5), epochs(5), epochs(6)
    for ea, eb in zip(a, b):
        assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(ea, eb))
    assert not torch.equal(a[0][0][0], c[0][0][0])
    assert not torch.equal(a[0][0][0], a[1][0][0])  # a new partition every epoch


def test_target_mask_marks_training_nodes():
    g = random_graph()
    train = torch.arange(0, 200, 3)
    for b in NodePartitionLoader(g, 64, train, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(b.target_mask, b.n_id % 3 == 0)


@pytest.mark.parametrize("name,extra", [
    ("difformer-s", {}),
    ("difformer-s", {"heads": 2, "graph_weight": 0.3, "norm": "batch"}),
    ("difformer-s", {"qk_norm": "graph", "use_residual": False}),
    ("difformer-s", {"use_graph": False}),
    ("difformer-a", {"heads": 2}),
])
def test_chunked_inference_equals_full_forward(name, extra):
    g = large_sbm(700, avg_degree=6, num_features=16, num_classes=4, seed=1)
    model = create_model(name, in_channels=16, out_channels=4, level="node", hidden=24, layers=3, **extra)
    # one training step so that batch norm has running statistics that are not the identity
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    torch.nn.functional.cross_entropy(model(g), g.y).backward()
    opt.step()
    model.eval()
    with torch.no_grad():
        full = model(g)
    for chunk in (1, 64, 333, 700, 5000):
        out = full_graph_outputs(model, g, chunk_size=chunk)
        torch.testing.assert_close(out, full, rtol=1e-4, atol=1e-5)


def test_chunked_inference_without_inference_method_runs_whole_graph():
    g = large_sbm(300, avg_degree=6, num_features=8, num_classes=3, seed=0)
    model = create_model("gcn", in_channels=8, out_channels=3, level="node", hidden=16, layers=2).eval()
    torch.testing.assert_close(full_graph_outputs(model, g, chunk_size=50), model(g))


def test_minibatch_training_reduces_loss_on_sbm():
    torch.manual_seed(0)
    g = large_sbm(3000, avg_degree=11, num_features=32, num_classes=4, seed=0, feature_signal=0.3)
    model = create_model("difformer-s", in_channels=32, out_channels=4, level="node", hidden=32, layers=2,
                         dropout=0.0)
    task = get_task("node_classification")
    train = torch.arange(0, 3000, 2)
    loader = NodePartitionLoader(g, 500, train, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    with torch.no_grad():
        before = task.loss(model(g)[train], g.y[train]).item()
    losses = [train_partition_epoch(model, opt, task, loader, torch.device("cpu")) for _ in range(15)]
    after = task.loss(full_graph_outputs(model, g, chunk_size=500)[train], g.y[train]).item()
    assert losses[-1] < 0.7 * losses[0]
    assert after < 0.7 * before


def test_trainer_node_batch_size(tmp_path, capsys):
    out = tmp_path / "sbm"
    code = cli.main(["train", "--model", "difformer-s", "--dataset", "SBM-large", "--epochs", "3", "--quiet",
                     "--out", str(out), "dataset.num_nodes=2000", "node_batch_size=500", "model.hidden=16",
                     "model.layers=2"])
    assert code == 0, capsys.readouterr().err
    metrics, ckpt, model = load_run(out)
    assert "mini-batches of 500 random nodes" in metrics["protocol"]
    assert metrics["protocol"].startswith("random 80/10/10")
    # Training and evaluation went by chunks of 500 nodes; one whole-graph forward of the saved model
    # must classify exactly as many test nodes right as the reported accuracy says.
    (g,) = load_dataset("SBM-large", options={"num_nodes": 2000}).graphs
    test = ckpt["split"]["test"]
    assert len(test) == 200
    assert correct_on(model, g, test) == round(metrics["test_accuracy"]["mean"] * len(test))

    code = cli.main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "bad"), "node_batch_size=-1"])
    assert code == 2 and "node_batch_size" in capsys.readouterr().err
    code = cli.main(["train", "--model", "gin", "--dataset", "MUTAG", "--epochs", "1", "--quiet",
                     "--out", str(tmp_path / "mutag"), "node_batch_size=8"])
    assert code == 2 and "one large graph" in capsys.readouterr().err
