"""Gradformer: the shortest-path decay mask, multiplicative attention scaling, DropPath, GatedGCN
and the registered model end to end."""
import math

import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

import gnnformer
from gnnformer import cli
from gnnformer.datasets import load_dataset
from gnnformer.errors import ConfigError
from gnnformer.models import model_config
from gnnformer.nn import DropPath, GatedGCNConv, GPSLayer, GraphMultiheadAttention, ShortestPathDecay
from gnnformer.datasets.encodings import precompute_encodings
from gnnformer.nn.encodings import spd_to_dense

C, H = 16, 4
SIZES = [3, 7, 5]

# Path 0-1-2 plus an isolated node 3, padded to 5 positions (position 4 is padding).
SPD = torch.tensor([[
    [0, 1, 2, -1, -1],
    [1, 0, 1, -1, -1],
    [2, 1, 0, -1, -1],
    [-1, -1, -1, 0, -1],
    [-1, -1, -1, -1, -1],
]])
NODE_MASK = torch.tensor([[True, True, True, True, False]])


@pytest.fixture(scope="module")
def mutag():
    return load_dataset("MUTAG")


def make_batch(sizes=SIZES, channels=C):
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.randn(sum(sizes), channels), batch


def union(a: Data, b: Data) -> Data:
    """One graph made of two components (a and b side by side), so its SPD holds -1."""
    return Data(
        x=torch.cat([a.x, b.x]), edge_index=torch.cat([a.edge_index, b.edge_index + a.num_nodes], dim=1),
        edge_attr=torch.cat([a.edge_attr, b.edge_attr]), y=a.y,
    )


# --------------------------------------------------------------------------------------------
# ShortestPathDecay


def test_decay_mask_hand_computed_slope_0():
    decay = ShortestPathDecay(heads=1, gamma=0.5, n_hop=1.0, slope=0.0)
    m = decay(SPD, NODE_MASK)
    # gamma ** relu(d - 1): d = 0, 1 -> 1; d = 2 -> 0.5; unreachable -> 0; padding -> 0.
    expected = torch.tensor([[[
        [1.0, 1.0, 0.5, 0.0, 0.0],
        [1.0, 1.0, 1.0, 0.0, 0.0],
        [0.5, 1.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]]])
    assert m.shape == (1, 1, 5, 5)
    torch.testing.assert_close(m, expected, atol=1e-7, rtol=0)


def test_decay_mask_hand_computed_slope_01():
    decay = ShortestPathDecay(heads=1, gamma=0.5, n_hop=1.0, slope=0.1)
    m = decay(SPD, NODE_MASK)
    # d = 0: 0.5 ** (0.1 * -1) = 2 ** 0.1 = 1.0717734625362931; d = 1 -> 1; d = 2 -> 0.5.
    b = 1.0717734625362931
    expected = torch.tensor([[[
        [b, 1.0, 0.5, 0.0, 0.0],
        [1.0, b, 1.0, 0.0, 0.0],
        [0.5, 1.0, b, 0.0, 0.0],
        [0.0, 0.0, 0.0, b, 0.0],
        [0.0, 0.0, 0.0, 0.0, 0.0],
    ]]])
    torch.testing.assert_close(m, expected, atol=1e-6, rtol=0)


def test_decay_gamma_one_is_no_decay_and_unreachable_is_one():
    m = ShortestPathDecay(heads=2, gamma=1.0, n_hop=0.0)(SPD, NODE_MASK)
    real = (NODE_MASK[:, :, None] & NODE_MASK[:, None, :])[:, None].expand_as(m)
    assert torch.equal(m[real], torch.ones(int(real.sum())))
    assert torch.equal(m[~real], torch.zeros(int((~real).sum())))


def test_decay_hop_is_learnable_per_head():
    decay = ShortestPathDecay(heads=2, gamma=0.5, n_hop=1.0)
    assert decay.hop.shape == (2,) and torch.equal(decay.hop.data, torch.ones(2))
    with torch.no_grad():
        decay.hop.copy_(torch.tensor([0.5, 1.5]))
    m = decay(SPD, NODE_MASK)
    m.sum().backward()
    grad = decay.hop.grad
    # dM/dh = -ln(gamma) * M where d > h: head 0 sees d = 1 and 2 (4 + 2 pairs), head 1 only d = 2.
    ln2 = math.log(2.0)
    expected = torch.tensor([
        ln2 * (4 * 0.5 ** 0.5 + 2 * 0.5 ** 1.5),
        ln2 * (2 * 0.5 ** 0.5),
    ])
    torch.testing.assert_close(grad, expected, atol=1e-6, rtol=1e-6)
    assert grad[0] != grad[1]
    before = decay.hop.detach().clone()
    torch.optim.SGD(decay.parameters(), lr=0.1).step()
    assert not torch.equal(decay.hop.detach(), before)
    assert (decay.hop.detach() - before).abs().min() > 0  # every head moved


def test_decay_validation():
    for gamma in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match="gamma"):
            ShortestPathDecay(4, gamma=gamma)
    with pytest.raises(ConfigError, match="n_hop"):
        ShortestPathDecay(4, n_hop=-1)
    with pytest.raises(ConfigError, match="slope"):
        ShortestPathDecay(4, slope=-0.1)
    with pytest.raises(ValueError, match="node_mask"):
        ShortestPathDecay(4)(SPD, NODE_MASK[:, :3])


# --------------------------------------------------------------------------------------------
# attn_scale in GraphMultiheadAttention


def reference_scaled_attention(attn, x, batch, scale):
    """softmax((q k^T / sqrt(d)) * M with padding keys at -inf), written out plainly."""
    Hh, D = attn.heads, attn.head_dim
    q, k, v = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, mask = to_dense_batch(q, batch)
    k, _ = to_dense_batch(k, batch)
    v, _ = to_dense_batch(v, batch)
    B, N = mask.shape
    q, k, v = (t.view(B, N, Hh, D).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(D)
    scores = scores * (scale if scale.dim() == 4 else scale[:, None])
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    w = torch.softmax(scores, dim=-1)
    out = (w @ v).transpose(1, 2).reshape(B, N, Hh * D)[mask]
    return attn.out_proj(out), w


@pytest.mark.parametrize("per_head", [True, False])
def test_attn_scale_equals_reference(per_head):
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    shape = (len(SIZES), H, max(SIZES), max(SIZES)) if per_head else (len(SIZES), max(SIZES), max(SIZES))
    scale = torch.rand(shape, requires_grad=True)
    out, w = attn(x, batch, attn_scale=scale, return_weights=True)
    out_plain = attn(x, batch, attn_scale=scale)
    ref_scale = scale.detach().clone().requires_grad_()
    ref, ref_w = reference_scaled_attention(attn, x, batch, ref_scale)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_plain, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    # Gradients to the scale (the in-place scaling keeps what autograd needs).
    out_plain.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(scale.grad, ref_scale.grad, atol=1e-5, rtol=1e-4)


def test_attn_scale_of_ones_equals_no_scale_and_combines_with_bias():
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    B, N = len(SIZES), max(SIZES)
    torch.testing.assert_close(attn(x, batch, attn_scale=torch.ones(B, N, N)), attn(x, batch), atol=1e-5, rtol=1e-5)
    bias = torch.randn(B, H, N, N)
    torch.testing.assert_close(
        attn(x, batch, attn_scale=torch.ones(B, H, N, N), attn_bias=bias), attn(x, batch, attn_bias=bias),
        atol=1e-5, rtol=1e-5,
    )


def test_attn_scale_padding_gets_zero_weight_and_unsorted_batch():
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    B, N = len(SIZES), max(SIZES)
    scale = torch.rand(B, H, N, N)
    _, w = attn(x, batch, attn_scale=scale, return_weights=True)
    _, mask = to_dense_batch(x, batch)
    assert torch.equal(w.masked_select(~mask[:, None, None, :]), torch.zeros(int((~mask).sum()) * H * N))
    torch.testing.assert_close(w[mask[:, None, :].expand(B, H, N)].sum(-1), torch.ones(int(mask.sum()) * H))
    # Graphs interleaved round-robin, each keeping its node order (dense positions are "k-th node
    # of graph b", so the scale still lines up): same per-node result.
    local = torch.cat([torch.arange(n) for n in SIZES])
    perm = torch.argsort(local * len(SIZES) + batch)
    assert bool((batch[perm][1:] < batch[perm][:-1]).any())
    out = attn(x, batch, attn_scale=scale)
    torch.testing.assert_close(attn(x[perm], batch[perm], attn_scale=scale), out[perm], atol=1e-5, rtol=1e-5)


def test_attn_scale_errors():
    attn = GraphMultiheadAttention(C, H)
    x, batch = make_batch()
    B, N = len(SIZES), max(SIZES)
    with pytest.raises(ValueError, match="graph='complete'"):
        attn(x, batch, graph="edges", edge_index=torch.zeros(2, 1, dtype=torch.long), attn_scale=torch.ones(B, N, N))
    with pytest.raises(ValueError, match="attn_scale must have shape"):
        attn(x, batch, attn_scale=torch.ones(B, N, N - 1))
    with pytest.raises(TypeError, match="float"):
        attn(x, batch, attn_scale=torch.ones(B, N, N, dtype=torch.long))


def test_unreachable_pairs_get_logit_zero():
    """Two components: M = 0 across them, so every cross-component key has the same weight 1/Z."""
    decay = ShortestPathDecay(heads=H, gamma=0.6, n_hop=0.0)
    m = decay(SPD, NODE_MASK)
    assert torch.equal(m[0, :, :3, 3], torch.zeros(H, 3)) and torch.equal(m[0, :, 3, :3], torch.zeros(H, 3))
    attn = GraphMultiheadAttention(C, H).eval()
    x = torch.randn(4, C)
    _, w = attn(x, None, attn_scale=m[:, :, :4, :4], return_weights=True)
    q, k, _ = torch.nn.functional.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k = q.view(4, H, -1).transpose(0, 1), k.view(4, H, -1).transpose(0, 1)
    logits = (q @ k.transpose(-1, -2)) / math.sqrt(C // H) * m[0, :, :4, :4]
    z = torch.exp(logits).sum(-1)  # [H, 4]
    torch.testing.assert_close(w[0, :, :3, 3], 1.0 / z[:, :3])  # exp(0) / Z
    torch.testing.assert_close(w[0, :, 3, :3], (1.0 / z[:, 3:]).expand(H, 3))


# --------------------------------------------------------------------------------------------
# DropPath


def test_droppath_identity_in_eval_and_drops_whole_graphs_in_training():
    x, batch = make_batch(sizes=[2, 3, 4, 1, 5, 2, 3, 4])
    dp = DropPath(0.5)
    assert torch.equal(dp.eval()(x, batch), x)
    assert torch.equal(DropPath(0.0).train()(x, batch), x)
    dp.train()
    torch.manual_seed(1)
    out = dp(x, batch)
    dropped, kept = 0, 0
    for g in range(8):
        rows = out[batch == g]
        if torch.equal(rows, torch.zeros_like(rows)):
            dropped += 1
        else:
            torch.testing.assert_close(rows, 2.0 * x[batch == g])  # scaled by 1 / (1 - p)
            kept += 1
    assert dropped > 0 and kept > 0
    with pytest.raises(ConfigError, match="drop_path"):
        DropPath(1.0)


def test_gps_layer_drop_path_acts_on_attention_branch_only():
    layer = GPSLayer(C, H, local="gin", norm="layer", attn_dropout=0.0, drop_path=0.5).train()
    sizes = [2, 3, 4, 1, 5, 2, 3, 4]
    x, batch = make_batch(sizes)
    ei = torch.empty(2, 0, dtype=torch.long)
    torch.manual_seed(3)
    with torch.no_grad():
        out = layer(x, ei, batch)
        h_local = layer.norm_local(x + layer.conv(x, ei))
        a = layer.attn(x, batch)

        def finish(c):  # the layer with its attention output multiplied by c
            h = h_local + layer.norm_attn(x + c * a)
            return layer.norm_ffn(h + layer.ffn(h))

        kept, dropped = finish(2.0), finish(0.0)  # 1 / (1 - p) = 2
    fates = []
    for g in range(len(sizes)):
        rows = batch == g
        if torch.allclose(out[rows], kept[rows], atol=1e-5):
            fates.append("kept")
        else:
            torch.testing.assert_close(out[rows], dropped[rows], atol=1e-5, rtol=0)
            fates.append("dropped")
    assert set(fates) == {"kept", "dropped"}


def test_gps_model_takes_drop_path_and_gatedgcn(mutag):
    graphs = precompute_encodings(mutag.graphs[:4], lap_pe=8, rwse=16)
    model = gnnformer.create_model("gps", in_channels=mutag.num_features, out_channels=2,
                                   edge_dim=mutag.num_edge_features, local="gatedgcn", drop_path=0.2, hidden=32)
    assert model.layers[0].drop_path.p == 0.2 and model.edge_encoder is not None
    out = model(Batch.from_data_list(graphs))
    out.sum().backward()
    assert torch.isfinite(out).all() and model.edge_encoder.weight.grad.abs().sum() > 0


# --------------------------------------------------------------------------------------------
# GatedGCN


def test_gatedgcn_matches_formula_and_updates_edges():
    torch.manual_seed(0)
    n, E = 5, 7
    ei = torch.tensor([[0, 1, 2, 3, 4, 0, 2], [1, 2, 3, 4, 0, 2, 1]])
    x, e = torch.randn(n, C), torch.randn(E, C)
    conv = GatedGCNConv(C, edge_dim=C).eval()  # eval: BatchNorm with fresh running stats
    h, e_out = conv(x, ei, e)
    assert h.shape == (n, C) and e_out.shape == (E, C)
    bn = 1.0 / math.sqrt(1.0 + conv.bn_node.eps)
    with torch.no_grad():
        e_hat = torch.stack([conv.A(x[ei[1, k]]) + conv.B(x[ei[0, k]]) + conv.C(e[k]) for k in range(E)])
        gate = torch.sigmoid(e_hat)
        rows = []
        for i in range(n):
            inc = (ei[1] == i).nonzero().flatten()
            num = sum((gate[k] * conv.V(x[ei[0, k]]) for k in inc), torch.zeros(C))
            den = sum((gate[k] for k in inc), torch.zeros(C))
            rows.append(conv.U(x[i]) + num / (den + conv.eps))
        expected_h = x + torch.relu(torch.stack(rows) * bn)
        expected_e = e + torch.relu(e_hat * bn)
    torch.testing.assert_close(h, expected_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(e_out, expected_e, atol=1e-5, rtol=1e-5)


def test_gatedgcn_gradients_reach_edge_features_and_gps_layer_passes_them_on():
    ei = torch.tensor([[0, 1, 1, 2, 3, 4], [1, 0, 2, 1, 4, 3]])
    x = torch.randn(5, C)
    e = torch.randn(6, C, requires_grad=True)
    conv = GatedGCNConv(C, edge_dim=C)
    h, e_out = conv(x, ei, e)
    (h.square().sum() + e_out.square().sum()).backward()
    assert e.grad is not None and e.grad.abs().sum() > 0 and conv.C.weight.grad.abs().sum() > 0

    batch = torch.tensor([0, 0, 0, 1, 1])
    layer = GPSLayer(C, H, local="gatedgcn", edge_dim=C)
    out, e_new = layer(x, ei, batch, edge_attr=e, return_edge_attr=True)
    assert out.shape == (5, C) and e_new.shape == (6, C) and not torch.allclose(e_new, e)
    assert isinstance(layer(x, ei, batch, edge_attr=e), torch.Tensor)  # plain call returns x only
    gin = GPSLayer(C, H, local="gin")
    assert gin(x, ei, batch, edge_attr=e, return_edge_attr=True)[1] is e  # other convs: unchanged
    # Without edge features the gate uses the endpoints only and nothing is returned for edges.
    h2, none = GatedGCNConv(C)(x, ei)
    assert h2.shape == (5, C) and none is None
    with pytest.raises(ConfigError, match="edge_dim"):
        GPSLayer(C, H, local="gatedgcn", edge_dim=3)


# --------------------------------------------------------------------------------------------
# The model


def _gradformer(ds, **cfg):
    mcfg = model_config("gradformer", in_channels=ds.num_features, out_channels=ds.out_dim,
                        edge_dim=ds.num_edge_features, hidden=32, **cfg)
    return gnnformer.create_model("gradformer", **mcfg.to_dict()), mcfg


def test_gradformer_config_and_encodings(mutag):
    model, mcfg = _gradformer(mutag)
    assert type(model).encodings(mcfg) == {"lap_pe": 0, "rwse": 16, "spd": True}
    assert (mcfg.gamma, mcfg.n_hop, mcfg.slope, mcfg.layers) == (0.6, 5.0, 0.0, 4)
    # One set of per-head hop thresholds for the whole model, shared by every layer.
    hops = [name for name, _ in model.named_parameters() if "hop" in name]
    assert hops == ["decay.hop"] and model.decay.hop.shape == (mcfg.heads,)
    from torch_geometric.nn import global_add_pool

    from gnnformer.models.base import POOLS

    assert POOLS[_gradformer(mutag, pool="add")[1].pool] is global_add_pool  # PyG's name for sum pooling
    with pytest.raises(ConfigError, match="gamma"):
        _gradformer(mutag, gamma=0.0)
    with pytest.raises(ConfigError, match="complete"):
        _gradformer(mutag, attention_graph="edges")
    with pytest.raises(ConfigError, match="gatedgcn"):
        _gradformer(mutag, local="none")
    with pytest.raises(ConfigError, match="drop_path"):
        _gradformer(mutag, drop_path=1.0)


@pytest.mark.parametrize("local", ["gin", "gatedgcn"])
def test_gradformer_forward_backward_and_no_cross_graph_leak(mutag, local):
    graphs = list(mutag.graphs[:5]) + [union(mutag.graphs[5], mutag.graphs[6])]  # sizes differ; one disconnected
    graphs = precompute_encodings(graphs, spd=True, rwse=16)
    assert (graphs[-1].spd == -1).any()
    model, _ = _gradformer(mutag, local=local, drop_path=0.1, layers=2)
    batch = Batch.from_data_list(graphs)
    out = model(batch)
    assert out.shape == (6, 2) and torch.isfinite(out).all()
    out.sum().backward()
    grad = model.decay.hop.grad
    assert grad is not None and grad.abs().sum() > 0
    if local == "gatedgcn":
        assert model.edge_encoder.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model(batch)
        for i, g in enumerate(graphs):
            torch.testing.assert_close(out[i : i + 1], model(Batch.from_data_list([g])), atol=1e-5, rtol=1e-5)
    # The mask is in to_dense_batch layout and decays exactly where SPD says.
    dense = spd_to_dense(batch.spd, batch.batch)
    m = model.decay_mask(batch)
    assert m.shape == (6, model.cfg.heads) + dense.shape[1:]
    torch.testing.assert_close(m[0, 0, 0, 0], torch.tensor(1.0))


def test_gradformer_per_group_decay_equals_the_whole_batch_mask(mutag):
    """The model hands the attention its decay per size group; the result and the hop gradient
    are those of the whole-batch mask tensor used in every layer."""
    graphs = precompute_encodings(list(mutag.graphs[:40]), spd=True, rwse=16)
    batch = Batch.from_data_list(graphs)
    assert len(set(batch.batch.bincount().tolist())) > 4  # several size groups
    model, _ = _gradformer(mutag, layers=2)
    model.eval()
    out = model(batch)
    out.square().sum().backward()
    hop_grad = model.decay.hop.grad.clone()
    model.zero_grad()
    whole = model.decay_mask(batch)
    model.decay_scale = lambda data: whole  # the plain tensor, sliced per group by the attention
    ref = model(batch)
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hop_grad, model.decay.hop.grad, atol=1e-5, rtol=1e-4)
    assert hop_grad.abs().sum() > 0


def test_authors_tu_input_and_head(mutag):
    """pe_combine='sum', head='linear': the Gradformer code's TU layout, Linear(x) + Linear(rwse) at full
    width (the probabilities not batch-normalised), sum readout, one Linear to the classes."""
    graphs = precompute_encodings(list(mutag.graphs[:3]), spd=True, rwse=20)
    batch = Batch.from_data_list(graphs)
    model, _ = _gradformer(mutag, rwse=20, pe_combine="sum", head="linear", layers=1)
    model.eval()
    enc = model.encoder
    by_hand = batch.x @ enc.feature.weight.T + enc.feature.bias + batch.rwse @ enc.rw.lin.weight.T + enc.rw.lin.bias
    torch.testing.assert_close(enc(batch), by_hand)
    assert enc.feature.out_features == enc.rw.lin.out_features == 32
    assert isinstance(model.head, torch.nn.Linear) and model.head.in_features == 32
    with torch.no_grad():
        from torch_geometric.nn import global_add_pool

        pooled = global_add_pool(model.embed(batch), batch.batch)
        torch.testing.assert_close(model(batch), pooled @ model.head.weight.T + model.head.bias)
    # The default stays GraphGPS's: concatenated encodings (pe_dim of hidden each) and an MLP head.
    default, _ = _gradformer(mutag, rwse=20)
    assert default.encoder.feature.out_features == 32 - 8 and isinstance(default.head, torch.nn.Sequential)
    with pytest.raises(ConfigError, match="pe_combine must be one of concat, sum"):
        _gradformer(mutag, pe_combine="add")
    with pytest.raises(ConfigError, match="head must be one of mlp, linear"):
        _gradformer(mutag, head="mlp2")


def test_shared_attention_init_is_the_released_codes_copied_linear(mutag):
    """attn_init='shared': Q, K, V and the output projection start as copies of one torch-default
    Linear (the code's clones(nn.Linear(C, C), 4)), so queries equal keys at the start."""
    torch.manual_seed(3)
    model, _ = _gradformer(mutag, attn_init="shared", layers=2)
    for layer in model.layers:
        attn = layer.attn
        q, k, v = attn.in_proj_weight.detach().chunk(3)
        assert torch.equal(q, k) and torch.equal(k, v) and torch.equal(v, attn.out_proj.weight)
        assert torch.equal(attn.in_proj_bias.detach().view(3, -1), attn.out_proj.bias.detach().expand(3, -1))
        bound = 1 / math.sqrt(attn.channels)  # torch's Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert float(q.abs().max()) <= bound and float(q.abs().max()) > 0.9 * bound
        x = torch.randn(5, attn.channels)
        torch.testing.assert_close(x @ q.T, x @ k.T)
    default, _ = _gradformer(mutag, layers=1)
    q, k, _ = default.layers[0].attn.in_proj_weight.detach().chunk(3)
    assert not torch.equal(q, k) and float(default.layers[0].attn.in_proj_bias.abs().max()) == 0.0
    with pytest.raises(ConfigError, match="attn_init must be one of xavier, shared"):
        _gradformer(mutag, attn_init="orthogonal")


def test_gradformer_needs_spd(mutag):
    model, _ = _gradformer(mutag)
    graphs = precompute_encodings(mutag.graphs[:2], rwse=16)
    with pytest.raises(ValueError, match="spd=True"):
        model(Batch.from_data_list(graphs))


def test_cli_trains_gradformer(tmp_path):
    code = cli.main(["train", "--model", "gradformer", "--dataset", "MUTAG", "--epochs", "2", "--quiet",
                     "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "metrics.json").is_file()
