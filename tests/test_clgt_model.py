"""CLGT's layer against its update rule, its pipelines and ablations, and the clgt / rgcn models."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from gnnformer import cli
from gnnformer.errors import ConfigError, DataError
from gnnformer.models import create_model
from gnnformer.nn import CLGTConv, GraphMultiheadAttention

# 3 members: 0 -> 1 (type 0), 2 -> 1 (type 1), 1 -> 0 (type 2), 0 -> 2 (type 1, weight 0)
EDGES = torch.tensor([[0, 2, 1, 0], [1, 1, 0, 2]])
TYPES = torch.tensor([0, 1, 2, 1])
WEIGHTS = torch.tensor([1.0, 0.5, 2.0, 0.0])


def _conv(seed=0, **kw):
    torch.manual_seed(seed)
    conv = CLGTConv(4, heads=2, num_edge_types=3, **kw)
    with torch.no_grad():
        for p in conv.parameters():  # every weight set, LayerNorm affine included, none at its default
            p.uniform_(-0.6, 0.6)
    return conv.eval()


def _inputs(seed=1, n=3, e=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, generator=g), torch.randn(e, 4, generator=g)


def _hand(conv, x, e, w):
    """The documented update rule, one node, one edge and one head at a time."""
    q_w, k_w, v_w = conv.attn.in_proj_weight.chunk(3)
    q_b, k_b, v_b = conv.attn.in_proj_bias.chunk(3)
    et = e + conv.type_emb.weight[TYPES]
    bias = et @ conv.bias.weight.T + conv.bias.bias
    u = et @ conv.edge_value.weight.T
    d = 2
    agg = torch.zeros(3, 4)
    for i in range(3):
        incoming = [k for k in range(EDGES.size(1)) if EDGES[1, k] == i]
        for h in range(2):
            cols = slice(h * d, (h + 1) * d)
            q = q_w[cols] @ x[i] + q_b[cols]
            logits = [float((q @ (k_w[cols] @ x[EDGES[0, k]] + k_b[cols])) / math.sqrt(d) + bias[k, h])
                      for k in incoming]
            z = sum(math.exp(s) for s in logits)
            for k, s in zip(incoming, logits):
                agg[i, cols] += w[k] * math.exp(s) / z * (v_w[cols] @ x[EDGES[0, k]] + v_b[cols] + u[k, cols])
    a = agg @ conv.attn.out_proj.weight.T + conv.attn.out_proj.bias

    def ln(t, norm):
        return F.layer_norm(t, (4,), norm.weight, norm.bias)

    h1 = ln(x + a, conv.norm1)
    h2 = ln(h1 + conv.ffn2(torch.relu(conv.ffn1(h1))), conv.norm2)
    e_new = torch.stack([
        ln(et[k] + torch.relu(conv.edge_lin.weight @ torch.cat([x[EDGES[1, k]], x[EDGES[0, k]], et[k]])
                              + conv.edge_lin.bias), conv.norm_e)
        for k in range(EDGES.size(1))
    ])
    return h2, e_new


def test_conv_equals_its_update_rule_by_hand():
    conv = _conv()
    x, e = _inputs()
    with torch.no_grad():
        out, e_out = conv(x, EDGES, e, WEIGHTS, TYPES)
        ref, e_ref = _hand(conv, x, e, WEIGHTS)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_out, e_ref, atol=1e-5, rtol=1e-5)


def test_conv_is_permutation_equivariant():
    torch.manual_seed(3)
    n, m = 6, 14
    conv = CLGTConv(8, heads=2, num_edge_types=4).eval()
    x, e = torch.randn(n, 8), torch.randn(m, 8)
    edge_index = torch.randint(0, n, (2, m))
    w, t = torch.rand(m), torch.randint(0, 4, (m,))
    perm, eperm = torch.randperm(n), torch.randperm(m)  # new node k is old node perm[k]
    inv = torch.argsort(perm)
    with torch.no_grad():
        out, e_out = conv(x, edge_index, e, w, t)
        out_p, e_out_p = conv(x[perm], inv[edge_index][:, eperm], e[eperm], w[eperm], t[eperm])
    torch.testing.assert_close(out_p, out[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_out_p, e_out[eperm], atol=1e-5, rtol=1e-5)


def test_edge_features_bias_the_attention_and_the_ablation_removes_exactly_that():
    conv = _conv()
    x, e = _inputs()
    off = CLGTConv(4, heads=2, num_edge_types=3, use_edge_pipeline=False).eval()
    missing = off.load_state_dict(conv.state_dict(), strict=False)
    assert sorted(missing.unexpected_keys) == ["bias.bias", "bias.weight", "edge_lin.bias", "edge_lin.weight",
                                               "edge_value.weight", "norm_e.bias", "norm_e.weight",
                                               "type_emb.weight"]
    with torch.no_grad():
        full, _ = conv(x, EDGES, e, WEIGHTS, TYPES)
        other, _ = conv(x, EDGES, e.flip(0), WEIGHTS, TYPES)
        ablated, e_none = off(x, EDGES, e, WEIGHTS, TYPES)
        assert e_none is None
        torch.testing.assert_close(off(x, EDGES, -e, WEIGHTS, TYPES.flip(0))[0], ablated)  # nothing of the edges
        assert (full - other).abs().max() > 1e-2  # edge features move the output
        conv.edge_value.weight.zero_()  # edges now act through the attention bias only
        biased = conv(x, EDGES, e, WEIGHTS, TYPES)[0]
        moved = (biased - conv(x, EDGES, 4 * e.flip(0), WEIGHTS, TYPES)[0]).abs().amax(dim=1)
        # Only member 1 has two interactions to weigh against each other; one edge gets softmax 1.
        assert moved[1] > 1e-3 and moved[0] == 0 and moved[2] == 0
        gap = (biased - ablated).abs().amax(dim=1)
        assert gap[1] > 1e-3 and gap[0] == 0 and gap[2] == 0
        conv.bias.weight.zero_()
        conv.bias.bias.zero_()  # no bias and no edge value: the full layer's nodes are the ablated layer's
        torch.testing.assert_close(conv(x, EDGES, e, WEIGHTS, TYPES)[0], ablated, atol=1e-6, rtol=1e-6)


def test_edge_weights_scale_the_messages_as_documented():
    conv = _conv()
    x, e = _inputs()
    ones = torch.ones(4)
    with torch.no_grad():
        # Weight 1 everywhere = no weights = the ablated weight pipeline.
        base = conv(x, EDGES, e, ones, TYPES)[0]
        torch.testing.assert_close(conv(x, EDGES, e, None, TYPES)[0], base)
        unweighted = _conv(use_weight_pipeline=False)
        torch.testing.assert_close(unweighted(x, EDGES, e, WEIGHTS, TYPES)[0], base)
        # Every incoming weight of member 1 at 0 = member 1 has no incoming edge at all.
        zero_in = torch.tensor([0.0, 0.0, 1.0, 1.0])
        keep = EDGES[1] != 1
        torch.testing.assert_close(conv(x, EDGES, e, zero_in, TYPES)[0], conv(x, EDGES[:, keep], e[keep], None,
                                                                             TYPES[keep])[0], atol=1e-6, rtol=1e-6)
        # One weight 0 among two: the message is dropped, its attention share not handed on.
        one_zero = torch.tensor([1.0, 0.0, 1.0, 1.0])
        drop = torch.tensor([True, False, True, True])
        assert (conv(x, EDGES, e, one_zero, TYPES)[0][1] - conv(x, EDGES[:, drop], e[drop], None,
                                                                TYPES[drop])[0][1]).abs().max() > 1e-3
    # Doubling every weight doubles the attention message.
    attn = GraphMultiheadAttention(4, 2).eval()
    with torch.no_grad():
        b = attn.out_proj.bias
        once = attn(x, graph="edges", edge_index=EDGES, edge_scale=WEIGHTS) - b
        twice = attn(x, graph="edges", edge_index=EDGES, edge_scale=2 * WEIGHTS) - b
    torch.testing.assert_close(twice, 2 * once)


def test_edge_types_change_the_output():
    conv = _conv()
    x, e = _inputs()
    with torch.no_grad():
        typed = conv(x, EDGES, e, WEIGHTS, TYPES)[0]
        assert (typed - conv(x, EDGES, e, WEIGHTS, torch.tensor([2, 0, 1, 0]))[0]).abs().max() > 1e-2
        torch.testing.assert_close(conv(x, EDGES, e, WEIGHTS, None)[0],
                                   conv(x, EDGES, e, WEIGHTS, torch.zeros(4, dtype=torch.long))[0])


def _team_graphs(count=8, n=12, seed=0):
    """Each member has one incoming interaction, from a random peer; its label is that edge's type.
    Every member has the same features and weights, so only the edge types carry the label."""
    g = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        dst = torch.arange(n)
        src = (dst + torch.randint(1, n, (n,), generator=g)) % n
        t = torch.randint(0, 2, (n,), generator=g)
        graphs.append(Data(x=torch.ones(n, 3), edge_index=torch.stack([src, dst]), edge_type=t, y=t))
    return Batch.from_data_list(graphs)


def _train(name, steps=30, **kw):
    torch.manual_seed(0)
    batch = _team_graphs()
    model = create_model(name, in_channels=3, out_channels=2, level="node", hidden=16, layers=2, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(batch), batch.y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_clgt_learns_a_label_carried_by_edge_types_only():
    losses = _train("clgt", num_edge_types=2)
    assert losses[0] > 0.6 and losses[-1] < 0.05  # from chance (ln 2 = 0.69) to fitted in 30 steps
    # Without the edge pipeline the types never reach the model: every member looks alike, chance stays.
    assert _train("clgt", num_edge_types=2, use_edge_pipeline=False, steps=20)[-1] > 0.6


def test_rgcn_runs_on_typed_edges_and_learns_them():
    losses = _train("rgcn", num_edge_types=2)
    assert losses[0] > 0.6 and losses[-1] < 0.05  # one weight matrix per type: fitted in 30 steps
    with pytest.raises(ConfigError, match="num_edge_types=2"):
        create_model("rgcn", in_channels=3, out_channels=2, level="node")(_team_graphs(count=1))


def test_model_defaults_for_graphs_without_edge_attributes():
    torch.manual_seed(0)
    model = create_model("clgt", in_channels=3, out_channels=2, level="node", hidden=8, heads=2, layers=2,
                         edge_dim=2, num_edge_types=3).eval()
    x, edge_index = torch.randn(4, 3), torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    bare = model(Data(x=x, edge_index=edge_index))
    explicit = model(Data(x=x, edge_index=edge_index, edge_attr=torch.zeros(4, 2), edge_weight=torch.ones(4),
                          edge_type=torch.zeros(4, dtype=torch.long)))
    torch.testing.assert_close(bare, explicit)
    # Weights are rescaled per graph: raw counts and the same counts / 10 predict the same.
    w = torch.tensor([3.0, 10.0, 1.0, 5.0])
    torch.testing.assert_close(model(Data(x=x, edge_index=edge_index, edge_weight=w)),
                               model(Data(x=x, edge_index=edge_index, edge_weight=w / 10)))
    no_edges = Data(x=x, edge_index=torch.empty(2, 0, dtype=torch.long), edge_attr=torch.empty(0, 2),
                    edge_weight=torch.empty(0), edge_type=torch.empty(0, dtype=torch.long))
    assert torch.isfinite(model(no_edges)).all()  # a window where nobody interacted
    with pytest.raises(DataError, match="negative"):
        model(Data(x=x, edge_index=edge_index, edge_weight=-w))
    with pytest.raises(ConfigError, match="edge_dim=2"):
        model(Data(x=x, edge_index=edge_index, edge_attr=torch.zeros(4, 5)))
    with pytest.raises(ConfigError, match="num_edge_types=4"):
        model(Data(x=x, edge_index=edge_index, edge_type=torch.tensor([0, 3, 1, 2])))


def test_clgt_and_rgcn_are_listed(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "clgt " in out and "Peng et al. 2023" in out and "rgcn " in out and "RGCNConv" in out
