import pytest
import torch
from torch_geometric.data import Batch

import gnnformer
from gnnformer.datasets import load_dataset
from gnnformer.errors import ConfigError
from gnnformer.models import model_config
from gnnformer.datasets.encodings import precompute_encodings
from gnnformer.registry import MODELS


@pytest.fixture(scope="module")
def mutag():
    return load_dataset("MUTAG")


def _inputs(ds, name, **cfg):
    mcfg = model_config(name, in_channels=ds.num_features, out_channels=ds.out_dim,
                        edge_dim=ds.num_edge_features, **cfg)
    enc = {k: v for k, v in MODELS.get(name).encodings(mcfg).items() if v}
    graphs = precompute_encodings(ds.graphs[:6], **enc) if enc else ds.graphs[:6]
    return mcfg, graphs


@pytest.mark.parametrize("name", ["gcn", "gin", "gat", "sage", "transformer", "gps", "gradformer", "clgt", "rgcn"])
def test_every_model_builds_and_predicts_per_graph(mutag, name):
    mcfg, graphs = _inputs(mutag, name)
    model = gnnformer.create_model(name, **mcfg.to_dict()).eval()
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    assert out.shape == (6, 2)
    # In eval mode a graph's prediction must not depend on what else is in the batch.
    for i, g in enumerate(graphs):
        alone = model(Batch.from_data_list([g]))
        torch.testing.assert_close(out[i : i + 1], alone, atol=1e-5, rtol=1e-5)


def test_every_registered_model_is_tested():
    # difformer-s, difformer-a and sgformer (node level by default) are tested in test_difformer.py;
    # clgt and rgcn on typed, weighted edges in test_clgt_model.py.
    assert set(MODELS.names()) == {"gcn", "gin", "gat", "sage", "transformer", "gps", "gradformer",
                                   "mlp", "difformer-s", "difformer-a", "sgformer", "clgt", "rgcn"}


def test_gps_with_edge_features(mutag):
    mcfg, graphs = _inputs(mutag, "gps", local="gine")
    model = gnnformer.create_model("gps", **mcfg.to_dict())
    out = model(Batch.from_data_list(graphs))
    assert out.shape == (6, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert model.edge_encoder.weight.grad.abs().sum() > 0  # edge features really reach the model


def test_node_level_model():
    model = gnnformer.create_model("gps", in_channels=5, out_channels=3, level="node", lap_pe=0, rwse=0)
    from torch_geometric.data import Data

    data = Data(x=torch.randn(7, 5), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]))
    assert model(data).shape == (7, 3)


def test_bad_options_are_user_errors():
    with pytest.raises(ConfigError, match="Unknown option.*colour.*Known options"):
        gnnformer.create_model("gin", in_channels=3, out_channels=2, colour="red")
    with pytest.raises(ConfigError, match="Unknown model 'nope'.*gps"):
        gnnformer.create_model("nope", in_channels=3, out_channels=2)
    with pytest.raises(ConfigError, match="divisible by heads"):
        gnnformer.create_model("transformer", in_channels=3, out_channels=2, hidden=30, heads=4)
    with pytest.raises(ConfigError, match="gine.*edge features"):
        gnnformer.create_model("gps", in_channels=3, out_channels=2, local="gine")
    with pytest.raises(ConfigError, match="needs option"):
        gnnformer.create_model("gin", in_channels=3)


def test_head_is_honoured_or_refused_never_ignored():
    """`head` picks the readout MLP or one Linear layer; models whose output layer is fixed refuse a
    head they would otherwise ignore."""
    def head_of(name, **cfg):
        return gnnformer.create_model(name, in_channels=5, out_channels=3, hidden=8, **cfg).head

    mlp, linear = head_of("gin"), head_of("gin", head="linear")
    assert [type(m).__name__ for m in mlp] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert isinstance(linear, torch.nn.Linear) and (linear.in_features, linear.out_features) == (8, 3)
    node = head_of("difformer-s", level="node", head="linear")
    assert isinstance(node, torch.nn.Linear) and node.out_features == 3
    with pytest.raises(ConfigError, match="DIFFormer reads nodes out with one Linear layer.*head: mlp cannot apply"):
        head_of("difformer-s", level="node", head="mlp")
    with pytest.raises(ConfigError, match="SGFormer reads nodes out.*use only head: linear"):
        head_of("sgformer", level="node", head="mlp")
    with pytest.raises(ConfigError, match="plain: true the last convolution.*use no head key"):
        head_of("gcn", level="node", plain=True, head="linear")
    with pytest.raises(ConfigError, match="head must be one of mlp, linear"):
        head_of("gin", head="deep")


def test_checkpoints_that_stored_the_old_head_default_still_load():
    """Before `head` could be left to the model, every checkpoint stored head='mlp', which node-level
    DIFFormer ignored; such a checkpoint loads as the same model, with the same outputs."""
    from torch_geometric.data import Data

    from gnnformer.training.inference import model_from_checkpoint

    config = model_config("difformer-s", in_channels=5, out_channels=3, level="node", hidden=8).to_dict()
    model = gnnformer.create_model("difformer-s", **config).eval()
    old = {"model": "difformer-s", "model_config": {**config, "head": "mlp"}, "state_dict": model.state_dict()}
    data = Data(x=torch.randn(6, 5), edge_index=torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]]))
    with torch.no_grad():
        torch.testing.assert_close(model_from_checkpoint(old)(data), model(data))
    with pytest.raises(ConfigError, match="head: mlp cannot apply"):
        gnnformer.create_model("difformer-s", **old["model_config"])
