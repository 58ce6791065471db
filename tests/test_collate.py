"""GraphStore batches against torch_geometric's Batch.from_data_list, and the training loader
that uses it against the plain loader over the same draws."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader

from gnnformer.training.collate import GraphStore


def _graphs(count=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for i in range(count):
        n = 1 + i % 4 + (i == 3) * 5
        e = 0 if i == 2 else 2 * n
        graphs.append(Data(
            x=torch.randn(n, 3, generator=g),
            edge_index=torch.randint(0, n, (2, e), generator=g),
            edge_attr=torch.randn(e, 2, generator=g),
            y=torch.tensor([i % 2]),
            rwse=torch.rand(n, 4, generator=g),
            spd=torch.randint(-1, 5, (n * n,), generator=g),
        ))
    return graphs


def _assert_same(mine: Batch, theirs: Batch):
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for key in theirs.keys():
        assert torch.equal(mine[key], theirs[key]), key
    assert mine.num_graphs == theirs.num_graphs


@pytest.mark.parametrize("ids", [[0, 1, 2, 3, 4, 5, 6], [6, 2, 3, 0], [3], [2, 2, 5]])
def test_batch_equals_from_data_list(ids):
    graphs = _graphs()
    store = GraphStore(graphs)
    batch = store.batch(torch.tensor(ids))
    _assert_same(batch, Batch.from_data_list([graphs[i] for i in ids]))
    # edge_index numbers the batch's nodes: graph k's edges point into its own node range
    assert int(batch.edge_index.max()) < batch.num_nodes


def test_graphs_it_cannot_store_are_refused():
    graphs = _graphs(3)
    graphs[1].name = "a string"
    with pytest.raises(TypeError):
        GraphStore(graphs)
    graphs = _graphs(3)
    del graphs[2].rwse
    with pytest.raises(TypeError):
        GraphStore(graphs)


def test_training_loader_draws_the_plain_loaders_batches():
    import gnnformer.training as T
    from gnnformer.datasets import load_dataset

    mutag = load_dataset("MUTAG")  # the embedded copy
    cfg = T.ExperimentConfig(model="gin", dataset="MUTAG", batch_size=16)
    prep = T.Prepared(dataset=mutag, task=None, graphs=list(mutag.graphs), model_cfg={}, encodings={})
    ev = T.Evaluator(prep, cfg.batch_size, torch.device("cpu"), bucket=False)
    assert ev.store is not None
    idx = torch.arange(0, len(mutag.graphs), 2)
    mine = list(ev.loader(idx, shuffle=True, generator=torch.Generator().manual_seed(3)))
    theirs = list(DataLoader([mutag.graphs[i] for i in idx.tolist()], batch_size=16, shuffle=True,
                             generator=torch.Generator().manual_seed(3)))
    assert len(mine) == len(theirs) > 2
    for a, b in zip(mine, theirs):
        _assert_same(a, b)
