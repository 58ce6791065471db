"""The papers' plain GCN / GAT stacks (``plain: true``) against hand computation."""
import pytest
import torch
from torch_geometric.data import Data

import gnnformer
from gnnformer.errors import ConfigError


def _graph():
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])  # a path 0-1-2-3
    x = torch.rand(4, 5)
    return Data(x=x, edge_index=edge_index)


def _norm_adj() -> torch.Tensor:
    a = torch.zeros(4, 4)
    a[[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]] = 1.0
    a = a + torch.eye(4)  # self-loops, as GCNConv adds
    d = a.sum(1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_plain_gcn_is_kipf_and_welling_two_layer_formula():
    data = _graph()
    model = gnnformer.create_model("gcn", in_channels=5, out_channels=3, level="node", layers=2, hidden=4,
                                   dropout=0.5, plain=True).eval()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    c1, c2 = model.convs
    a = _norm_adj()
    hidden = torch.relu(a @ data.x @ c1.lin.weight.T + c1.bias)
    expected = a @ hidden @ c2.lin.weight.T + c2.bias  # logits straight from the last convolution
    assert torch.allclose(model(data), expected, atol=1e-6)
    # parameters: exactly the two weight matrices and biases, nothing else
    assert sum(p.numel() for p in model.parameters()) == 5 * 4 + 4 + 4 * 3 + 3


def test_row_feature_norm_divides_by_the_row_sum():
    data = _graph()
    model = gnnformer.create_model("gcn", in_channels=5, out_channels=3, level="node", layers=2, hidden=4,
                                   plain=True, feature_norm="row").eval()
    plain = Data(x=data.x / data.x.sum(1, keepdim=True), edge_index=data.edge_index)
    model.cfg.feature_norm = "none"
    expected = model(plain)
    model.cfg.feature_norm = "row"
    assert torch.allclose(model(data), expected, atol=1e-6)


def test_plain_gat_has_concatenated_hidden_heads_and_one_output_head():
    model = gnnformer.create_model("gat", in_channels=5, out_channels=3, level="node", layers=2, hidden=8,
                                   heads=4, plain=True).eval()
    first, last = model.convs
    assert (first.heads, first.out_channels, last.heads, last.out_channels) == (4, 2, 1, 3)
    assert model(_graph()).shape == (4, 3)


def test_plain_sage_is_hamilton_mean_aggregator_formula():
    data = _graph()
    model = gnnformer.create_model("sage", in_channels=5, out_channels=3, level="node", layers=2, hidden=4,
                                   plain=True).eval()
    a = _norm_adj() > 0
    a.fill_diagonal_(False)
    mean = a.float() / a.sum(1, keepdim=True)  # path 0-1-2-3: ends have one neighbour, the middle two
    assert mean[1].tolist() == [0.5, 0.0, 0.5, 0.0]

    def sage(conv, h):  # x'_i = W_l mean_{j in N(i)} h_j + b + W_r h_i
        return (mean @ h) @ conv.lin_l.weight.T + conv.lin_l.bias + h @ conv.lin_r.weight.T

    c1, c2 = model.convs
    expected = sage(c2, torch.relu(sage(c1, data.x)))
    assert torch.allclose(model(data), expected, atol=1e-6)
    assert sum(p.numel() for p in model.parameters()) == (2 * 5 * 4 + 4) + (2 * 4 * 3 + 3)


@pytest.mark.parametrize("name, options, message", [
    ("gin", {"plain": True}, "gcn, gat and sage"),
    ("gat", {"plain": True, "hidden": 10, "heads": 4}, "divisible"),
    ("gcn", {"feature_norm": "l1"}, "feature_norm"),
])
def test_bad_plain_settings_are_config_errors(name, options, message):
    with pytest.raises(ConfigError, match=message):
        gnnformer.create_model(name, in_channels=5, out_channels=3, level="node", **options)
