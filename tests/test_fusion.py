"""Local MPNNs and the GPS layer (local MPNN + global attention)."""
import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import MessagePassing

from gnnformer.errors import ConfigError
from gnnformer.nn import GPSLayer, GraphTransformerLayer, build_local_conv
from gnnformer.nn.local import LOCAL_CONVS

C, H, EDGE_DIM = 16, 4, 3
SIZES = [4, 6, 5]


def ring(n, channels=C):
    src = torch.arange(n)
    dst = (src + 1) % n
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return Data(x=torch.randn(n, channels), edge_index=ei, edge_attr=torch.randn(ei.size(1), EDGE_DIM))


def make_batch(sizes=SIZES):
    return Batch.from_data_list([ring(n) for n in sizes])


def run(layer, b, x=None):
    return layer(b.x if x is None else x, b.edge_index, b.batch, edge_attr=b.edge_attr)


# --------------------------------------------------------------------------------------------
# build_local_conv


@pytest.mark.parametrize("name", ["gin", "gine", "gcn", "gat", "GIN"])
def test_build_local_conv(name):
    conv = build_local_conv(name, C, edge_dim=EDGE_DIM)
    assert isinstance(conv, MessagePassing)
    b = make_batch()
    if name in ("gine", "gat"):
        out = conv(b.x, b.edge_index, edge_attr=b.edge_attr)
    else:
        out = conv(b.x, b.edge_index)
    assert out.shape == (b.num_nodes, C)


def test_build_local_conv_none_and_errors():
    assert build_local_conv("none", C) is None
    with pytest.raises(ConfigError) as err:
        build_local_conv("sage", C)
    for name in LOCAL_CONVS:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="edge_dim"):
        build_local_conv("gine", C)
    assert build_local_conv("gat", 12).heads == 4
    assert build_local_conv("gat", 10).heads == 1


# --------------------------------------------------------------------------------------------
# GPSLayer


def test_gps_without_local_branch_is_a_transformer_layer():
    """local='none', norm='layer': GPS computes exactly a post-norm GraphTransformerLayer."""
    gps = GPSLayer(C, H, local="none", norm="layer", attn_dropout=0.0).eval()
    tf = GraphTransformerLayer(C, H, ffn_channels=2 * C, dropout=0.0, norm="layer").eval()
    tf.self_attn.load_state_dict(gps.attn.state_dict())
    tf.norm1.load_state_dict(gps.norm_attn.state_dict())
    tf.linear1.load_state_dict(gps.ffn[0].state_dict())
    tf.linear2.load_state_dict(gps.ffn[3].state_dict())
    tf.norm2.load_state_dict(gps.norm_ffn.state_dict())
    b = make_batch()
    with torch.no_grad():
        torch.testing.assert_close(run(gps, b), tf(b.x, b.batch), atol=1e-6, rtol=0)


def test_gps_without_attention_is_an_mpnn_layer():
    gps = GPSLayer(C, H, local="gin", attention_graph="none", norm="layer").eval()
    assert gps.attn is None and gps.norm_attn is None
    b = make_batch()
    with torch.no_grad():
        h = gps.norm_local(b.x + gps.conv(b.x, b.edge_index))
        expected = gps.norm_ffn(h + gps.ffn(h))
        torch.testing.assert_close(run(gps, b), expected)
    with pytest.raises(ConfigError, match="both 'none'"):
        GPSLayer(C, H, local="none", attention_graph="none")
    with pytest.raises(ConfigError, match="complete, edges, none"):
        GPSLayer(C, H, attention_graph="global")
    with pytest.raises(ConfigError, match="gin"):
        GPSLayer(C, H, local="mpnn")


@pytest.mark.parametrize("norm", ["batch", "layer"])
@pytest.mark.parametrize("attention_graph", ["complete", "edges"])
def test_gps_gradients_reach_all_three_norms(norm, attention_graph):
    gps = GPSLayer(C, H, local="gine", attention_graph=attention_graph, norm=norm, edge_dim=EDGE_DIM)
    b = make_batch()
    out = run(gps, b)
    assert out.shape == (b.num_nodes, C)
    (out * torch.randn_like(out)).sum().backward()
    for norm_module in (gps.norm_local, gps.norm_attn, gps.norm_ffn):
        assert norm_module.weight.grad is not None and norm_module.weight.grad.abs().sum() > 0
    for name, p in gps.named_parameters():
        assert p.grad is not None, name


def test_gps_ffn_norm_is_applied():
    gps = GPSLayer(C, H, norm="layer").eval()
    b = make_batch()
    with torch.no_grad():
        before = run(gps, b)
        gps.norm_ffn.weight.mul_(2.0)
        gps.norm_ffn.bias.add_(1.0)
        after = run(gps, b)
    torch.testing.assert_close(after, 2 * before + 1, atol=1e-5, rtol=0)
    # and the output really is layer-normalised per node
    with torch.no_grad():
        gps.norm_ffn.reset_parameters()
        out = run(gps, b)
    torch.testing.assert_close(out.mean(-1), torch.zeros(b.num_nodes), atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention_graph", ["complete", "edges"])
@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_gps_no_cross_graph_leakage(attention_graph, norm):
    gps = GPSLayer(C, H, local="gin", attention_graph=attention_graph, norm=norm)
    b = make_batch()
    gps.train()
    run(gps, b)  # populate BatchNorm running statistics
    gps.eval()
    x2 = b.x.clone()
    x2[b.batch == 1] = torch.randn(int((b.batch == 1).sum()), C) * 5
    with torch.no_grad():
        a, c = run(gps, b), run(gps, b, x2)
    for g in (0, 2):
        assert torch.equal(a[b.batch == g], c[b.batch == g])
    assert not torch.allclose(a[b.batch == 1], c[b.batch == 1])


def test_gps_eval_is_deterministic_and_train_uses_dropout():
    gps = GPSLayer(C, H, dropout=0.2)  # attn_dropout defaults to 0.5
    b = make_batch()
    gps.eval()
    with torch.no_grad():
        assert torch.equal(run(gps, b), run(gps, b))
    gps.train()
    assert not torch.allclose(run(gps, b), run(gps, b))


def test_gps_one_graph_batch_equals_graph_alone():
    gps = GPSLayer(C, H, local="gat", edge_dim=EDGE_DIM).eval()
    graphs = [ring(n) for n in SIZES]
    b = Batch.from_data_list(graphs)
    with torch.no_grad():
        out = run(gps, b)
        for g, d in enumerate(graphs):
            alone = gps(d.x, d.edge_index, edge_attr=d.edge_attr)  # batch=None
            single = run(gps, Batch.from_data_list([d]))
            torch.testing.assert_close(out[b.batch == g], alone, atol=1e-5, rtol=0)
            torch.testing.assert_close(single, alone, atol=1e-6, rtol=0)


def test_gps_passes_attention_bias_and_mask():
    gps = GPSLayer(C, H, norm="layer").eval()
    b = make_batch()
    B, Nmax = len(SIZES), max(SIZES)
    with torch.no_grad():
        plain = run(gps, b)
        zero_bias = gps(b.x, b.edge_index, b.batch, attn_bias=torch.zeros(B, Nmax, Nmax))
        biased = gps(b.x, b.edge_index, b.batch, attn_bias=torch.randn(B, H, Nmax, Nmax))
        masked = gps(b.x, b.edge_index, b.batch, attn_mask=torch.rand(B, Nmax, Nmax) < 0.5)
    torch.testing.assert_close(zero_bias, plain)
    assert not torch.allclose(biased, plain)
    assert torch.isfinite(masked).all() and not torch.allclose(masked, plain)


def test_gps_gine_requires_edge_attr():
    gps = GPSLayer(C, H, local="gine", edge_dim=EDGE_DIM)
    b = make_batch()
    with pytest.raises(ValueError, match="edge_attr"):
        gps(b.x, b.edge_index, b.batch)


def test_gps_reset_parameters_keeps_attention_init():
    gps = GPSLayer(C, H)
    nn.init.normal_(gps.attn.out_proj.bias)
    gps.reset_parameters()
    assert torch.equal(gps.attn.out_proj.bias, torch.zeros(C))  # MultiheadAttention's init


# --------------------------------------------------------------------------------------------
# GPSLayer against PyG's GPSConv


#: Our GPSLayer's parameter names -> those of torch_geometric.nn.GPSConv (PyG wraps BatchNorm1d in
#: a ``module`` attribute and calls the FFN ``mlp``); the local conv and the attention match as is.
PYG_GPS_NAMES = {"norm_local.": "norm1.module.", "norm_attn.": "norm2.module.", "norm_ffn.": "norm3.module.",
                 "ffn.": "mlp."}


def pyg_gps_state(ours: GPSLayer) -> dict:
    state = {}
    for key, value in ours.state_dict().items():
        prefix = next((p for p in PYG_GPS_NAMES if key.startswith(p)), "")
        state[PYG_GPS_NAMES.get(prefix, "") + key[len(prefix):]] = value
    return state


def scrambled_batch_norms(layer: GPSLayer, gen: torch.Generator) -> None:
    """Affine weights and running statistics far from the identity, so eval-mode BN matters."""
    with torch.no_grad():
        for bn in (layer.norm_local, layer.norm_attn, layer.norm_ffn):
            bn.weight.copy_(torch.rand(C, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(C, generator=gen))
            bn.running_mean.copy_(torch.randn(C, generator=gen))
            bn.running_var.copy_(torch.rand(C, generator=gen) * 2 + 0.1)
        layer.conv.eps.fill_(0.3)  # GIN's (1 + eps) x_i term, not the default eps = 0


@pytest.mark.parametrize("sizes", [[3, 7, 5], [6, 2]])
def test_gps_equals_pyg_gpsconv(sizes):
    """Same weights, GIN local branch, batch norm: GPSLayer and PyG's GPSConv give the same output,
    in eval mode (running statistics) and in training mode without dropout (batch statistics, and
    the same updated running statistics)."""
    from torch_geometric.nn import GINConv, GPSConv

    gen = torch.Generator().manual_seed(0)
    ours = GPSLayer(C, H, local="gin", norm="batch", dropout=0.0, attn_dropout=0.0)
    scrambled_batch_norms(ours, gen)
    mlp = nn.Sequential(nn.Linear(C, C), nn.ReLU(), nn.Linear(C, C))
    theirs = GPSConv(C, GINConv(mlp), heads=H, dropout=0.0, norm="batch_norm")
    theirs.load_state_dict(pyg_gps_state(ours))  # strict: every parameter and buffer has its pair
    b = make_batch(sizes)
    x = torch.randn(b.num_nodes, C, generator=gen) * 2

    ours.eval(), theirs.eval()
    with torch.no_grad():
        expected = theirs(x, b.edge_index, b.batch)
        torch.testing.assert_close(ours(x, b.edge_index, b.batch), expected, atol=1e-5, rtol=1e-5)
    assert expected.std() > 0.5  # a real output, not a collapsed one

    ours.train(), theirs.train()
    torch.testing.assert_close(ours(x, b.edge_index, b.batch), theirs(x, b.edge_index, b.batch),
                               atol=1e-5, rtol=1e-5)
    for key, value in pyg_gps_state(ours).items():
        torch.testing.assert_close(value, theirs.state_dict()[key], atol=1e-6, rtol=1e-6, msg=key)
