"""DIFFormer: the diffusion attention against a direct O(N^2) computation, locality within graphs,
the linear path's memory, GCN propagation, the registered models and the SGFormer peer."""
import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch_geometric.data import Batch, Data
from torch_geometric.nn.conv.gcn_conv import gcn_norm

import gnnformer
from gnnformer.errors import ConfigError
from gnnformer.models import model_config
from gnnformer.nn import DIFFormerConv, gcn_propagate
from gnnformer.nn.difformer import normalized_adjacency

SIZES = [4, 7, 1, 5]


def _batch(sizes=SIZES, channels=6, dtype=torch.float64):
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.randn(sum(sizes), channels, dtype=dtype), batch


def _reference(conv: DIFFormerConv, x, batch):
    """The formula node by node: out_i = mean_h sum_j f(q_i, k_j) v_j / sum_j f(q_i, k_j), j in i's graph."""
    N, H, C = x.size(0), conv.heads, conv.channels
    q, k = conv.q(x).view(N, H, C), conv.k(x).view(N, H, C)
    v = conv.v(x).view(N, H, C) if conv.v is not None else x.unsqueeze(1).expand(N, H, C)
    out = torch.zeros(N, C, dtype=x.dtype)
    for g in batch.unique():
        idx = (batch == g).nonzero().view(-1)
        qg, kg, vg = q[idx], k[idx], v[idx]
        if conv.qk_norm == "node":
            qg, kg = qg / qg.norm(dim=-1, keepdim=True), kg / kg.norm(dim=-1, keepdim=True)
        elif conv.qk_norm == "graph":
            qg, kg = qg / qg.norm(), kg / kg.norm()  # Frobenius over the graph's nodes and heads
        for a, i in enumerate(idx.tolist()):
            acc = torch.zeros(C, dtype=x.dtype)
            for h in range(H):
                s = kg[:, h] @ qg[a, h]  # [n_g]
                f = 1 + s if conv.kernel == "simple" else torch.sigmoid(s)
                acc += (f[:, None] * vg[:, h]).sum(0) / f.sum()
            out[i] = acc / H
    return out


@pytest.mark.parametrize("kernel, qk_norm", [("simple", "node"), ("simple", "graph"), ("sigmoid", "none"),
                                             ("sigmoid", "node")])
@pytest.mark.parametrize("heads", [1, 3])
def test_conv_matches_direct_quadratic_formula(kernel, qk_norm, heads):
    conv = DIFFormerConv(6, heads, kernel=kernel, qk_norm=qk_norm).double()
    x, batch = _batch()
    expected = _reference(conv, x, batch)
    torch.testing.assert_close(conv(x, batch), expected)
    # One graph (batch None) and a shuffled node order give the same numbers.
    g0 = batch == 0
    torch.testing.assert_close(conv(x[g0]), expected[g0])
    perm = torch.randperm(x.size(0))
    torch.testing.assert_close(conv(x[perm], batch[perm]), expected[perm])


def test_conv_without_value_weight_diffuses_the_input():
    conv = DIFFormerConv(6, 1, kernel="simple", use_weight=False).double()
    x, batch = _batch()
    assert conv.v is None
    torch.testing.assert_close(conv(x, batch), _reference(conv, x, batch))
    _, values = conv(x, batch, return_values=True)
    torch.testing.assert_close(values, x)


@pytest.mark.parametrize("kernel, qk_norm", [("simple", "node"), ("simple", "graph"), ("sigmoid", "none")])
def test_attention_stays_within_each_graph(kernel, qk_norm):
    conv = DIFFormerConv(6, 2, kernel=kernel, qk_norm=qk_norm).double()
    x, batch = _batch()
    out = conv(x, batch)
    x2 = x.clone()
    x2[batch == 1] = 100 * torch.randn_like(x2[batch == 1])  # change graph 1 only
    out2 = conv(x2, batch)
    keep = batch != 1
    torch.testing.assert_close(out2[keep], out[keep])
    assert not torch.allclose(out2[~keep], out[~keep])
    for g in range(len(SIZES)):  # the batch equals every graph run alone
        torch.testing.assert_close(out[batch == g], conv(x[batch == g]))


@pytest.mark.parametrize("kernel", ["simple", "sigmoid"])
def test_gradients_reach_every_projection_and_the_input(kernel):
    conv = DIFFormerConv(6, 2, kernel=kernel)
    x, batch = _batch(dtype=torch.float32)
    x.requires_grad_()
    out = conv(x, batch)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in conv.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_conv_gradcheck_batched_simple_and_sigmoid():
    x, batch = _batch(sizes=[3, 4], channels=3)
    for kernel in ("simple", "sigmoid"):
        conv = DIFFormerConv(3, 2, kernel=kernel).double()
        x_ = x.clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t: conv(t, batch), (x_,))


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any op produces (forward and backward)."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and not t.is_sparse and t.layout == torch.strided:
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("sizes", [[3000], [7, 900, 13, 1000, 1080]])
@pytest.mark.parametrize("fast", [True, False])
def test_simple_kernel_never_builds_an_n_by_n_tensor(sizes, fast):
    x, batch = _batch(sizes=sizes, channels=16, dtype=torch.float32)
    x.requires_grad_()
    model = gnnformer.create_model("difformer-s", in_channels=16, out_channels=3, hidden=16, layers=2, heads=2)
    model.blocked = fast  # one graph: the blocked step, or attention + propagation through autograd
    for conv in model.convs:
        conv.blocked = fast
    n = x.size(0)
    ei = torch.randint(0, n, (2, 4 * n))
    ei = ei[:, batch[ei[0]] == batch[ei[1]]]  # edges within graphs
    data = Batch.from_data_list([Data(x=x[batch == g], edge_index=torch.empty(2, 0, dtype=torch.long))
                                 for g in range(len(sizes))])
    data.edge_index = ei
    with _LargestTensor() as spy:
        model(data).sum().backward()
    assert spy.largest < n * n // 4, spy.largest  # every tensor is O(N): [N, C], [N, H, C], [chunk, H, C, C]


def test_gcn_propagate_matches_gcnconv_normalisation_and_caches():
    n = 6
    ei = torch.tensor([[0, 1, 1, 2, 3, 3, 5], [1, 0, 2, 1, 3, 4, 0]])  # directed, with a self loop on 3
    x = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    ei_norm, w = gcn_norm(ei, None, n, add_self_loops=True, dtype=torch.float64)
    dense = torch.zeros(n, n, dtype=torch.float64).index_put_((ei_norm[1], ei_norm[0]), w, accumulate=True)
    torch.testing.assert_close(gcn_propagate(x, ei, n), dense @ x)
    assert torch.autograd.gradcheck(lambda t: gcn_propagate(t, ei, n), (x,))
    cache = {}
    gcn_propagate(x, ei, n, cache=cache)
    first = cache["adj"][0]
    gcn_propagate(x, ei, n, cache=cache)
    assert cache["adj"][0] is first  # same edge_index object: reused
    gcn_propagate(x, ei.clone(), n, cache=cache)
    assert cache["adj"][0] is not first  # another tensor: rebuilt
    sym = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    a, a_t = normalized_adjacency(sym, 3)
    assert a is a_t and a.layout == torch.sparse_csr  # a symmetric graph keeps one matrix
    isolated = gcn_propagate(x[:3], torch.empty(2, 0, dtype=torch.long), 3)  # no edges: A_hat = I
    torch.testing.assert_close(isolated, x[:3])


def _node_data(n=30, channels=5, edges=True):
    ei = torch.randint(0, n, (2, 3 * n))
    data = Data(x=torch.randn(n, channels), y=torch.randint(0, 3, (n,)))
    if edges:
        data.edge_index = torch.cat([ei, ei.flip(0)], 1)
    return data


@pytest.mark.parametrize("name", ["difformer-s", "difformer-a", "sgformer"])
def test_node_level_models_train_step(name):
    data = _node_data()
    model = gnnformer.create_model(name, in_channels=5, out_channels=3, level="node", hidden=16, layers=2)
    out = model(data)
    assert out.shape == (30, 3) and torch.isfinite(out).all()
    F.cross_entropy(out, data.y).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", ["difformer-s", "difformer-a", "sgformer"])
def test_graph_level_models_pool_and_do_not_mix_graphs(name):
    # PyG's SGFormer attention counts padded positions (see the wrapper), so it gets equal sizes.
    graphs = [_node_data(n) for n in ((5, 9, 3) if name != "sgformer" else (6, 6, 6))]
    model = gnnformer.create_model(name, in_channels=5, out_channels=2, level="graph", hidden=16, layers=2).eval()
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    assert out.shape == (3, 2)
    for i, g in enumerate(graphs):
        torch.testing.assert_close(out[i:i + 1], model(Batch.from_data_list([g])), atol=1e-5, rtol=1e-5)


def test_difformer_without_an_input_graph():
    data = _node_data(edges=False)
    model = gnnformer.create_model("difformer-s", in_channels=5, out_channels=3, use_graph=False, layers=2)
    assert model(data).shape == (30, 3)  # no edge_index needed at all
    with pytest.raises(ConfigError, match="use_graph=false"):
        gnnformer.create_model("difformer-s", in_channels=5, out_channels=3, layers=2)(data)


def test_difformer_update_rule_with_graph_weight_and_without_residual():
    data = _node_data()
    for opts in ({"graph_weight": 0.3}, {"use_residual": False}, {"norm": "none", "alpha": 1.0}, {"heads": 2},
                 {"use_weight": True, "heads": 2}, {"qk_norm": "graph"}):
        model = gnnformer.create_model("difformer-s", in_channels=5, out_channels=3, layers=2, **opts).eval()
        z = torch.relu(model.in_norm(model.encoder(data.x)))
        for conv, norm in zip(model.convs, model.norms):
            attn, values = conv(z, return_values=True)
            prop = gcn_propagate(values, data.edge_index, z.size(0))
            w = model.cfg.graph_weight
            p = attn + prop if w is None else (1 - w) * attn + w * prop
            if model.cfg.use_residual:
                p = model.cfg.alpha * p + (1 - model.cfg.alpha) * z
            z = norm(p)
        torch.testing.assert_close(model(data), model.head(z))


def test_row_feature_norm_equals_normalised_input():
    data = _node_data()
    data.x = data.x.abs()
    model = gnnformer.create_model("difformer-s", in_channels=5, out_channels=3, layers=2, feature_norm="row").eval()
    plain = gnnformer.create_model("difformer-s", in_channels=5, out_channels=3, layers=2).eval()
    plain.load_state_dict(model.state_dict())
    normalised = data.clone()
    normalised.x = data.x / data.x.sum(-1, keepdim=True).clamp(min=1)  # PyG NormalizeFeatures
    torch.testing.assert_close(model(data), plain(normalised))


def test_defaults_and_config_errors():
    cfg = model_config("difformer-s", in_channels=3, out_channels=2)
    assert (cfg.level, cfg.layers, cfg.hidden, cfg.alpha, cfg.use_graph, cfg.use_weight, cfg.dropout) == \
        ("node", 8, 64, 0.5, True, False, 0.2)
    assert model_config("difformer-a", in_channels=3, out_channels=2).dropout == 0.0
    assert gnnformer.create_model("difformer-a", in_channels=3, out_channels=2).convs[0].kernel == "sigmoid"
    bad = [({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"), ({"graph_weight": 2.0}, "graph_weight"),
           ({"qk_norm": "none"}, "qk_norm"), ({"norm": "group"}, "norm"), ({"heads": 0}, "heads"),
           ({"feature_norm": "l2"}, "feature_norm"),
           ({"kernel": "sigmoid"}, "Unknown option")]
    for opts, match in bad:
        with pytest.raises(ConfigError, match=match):
            gnnformer.create_model("difformer-s", in_channels=3, out_channels=2, **opts)
    with pytest.raises(ConfigError, match="qk_norm"):
        gnnformer.create_model("difformer-a", in_channels=3, out_channels=2, qk_norm="graph")
    with pytest.raises(ConfigError, match="aggregate"):
        gnnformer.create_model("sgformer", in_channels=3, out_channels=2, aggregate="max")
    with pytest.raises(ConfigError):
        DIFFormerConv(4, kernel="softmax")


def test_cli_trains_difformer_s_on_cora_with_the_library_defaults(tmp_path, capsys):
    """`gnnformer train --model difformer-s --dataset Cora --no-preset` on the embedded Planetoid
    data: the public split, a model that learns in 30 epochs (above the majority class of the test
    nodes), a checkpoint that `eval` scores the same. (The paper's preset needs its 500 epochs;
    tests/test_presets.py checks that it is applied.)"""
    import json

    from gnnformer import cli
    from gnnformer.datasets import load_dataset

    out = tmp_path / "run"
    assert cli.main(["train", "--model", "difformer-s", "--dataset", "Cora", "--epochs", "30", "--quiet",
                     "--no-preset", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "difformer-s" and "Planetoid public split" in metrics["protocol"]
    graph = load_dataset("Cora").graphs[0]
    majority = graph.y[graph.test_mask].bincount().max().item() / int(graph.test_mask.sum())
    accuracy = metrics["test_accuracy"]["mean"]
    assert accuracy > majority + 0.05, (accuracy, majority)
    capsys.readouterr()
    assert cli.main(["eval", "--checkpoint", str(out / "best.pt")]) == 0
    assert f"{accuracy:.4f}" in capsys.readouterr().out
