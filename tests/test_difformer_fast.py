"""The DIFFormer kernels against the plain autograd computation (values and gradients): the
row-blocked step with its written-out backward (whole model steps, and DIFFormerConv on one
graph), DIFFormer-a's chunked attention, the counting-sort adjacency; and the fast dropout."""
import itertools

import pytest
import torch

import gnnformer
from gnnformer.datasets.synthetic import large_sbm
from gnnformer.nn import DIFFormerConv
from gnnformer.nn import difformer as D
from gnnformer.nn import difformer_kernels as K
from gnnformer.nn import dropout as DR


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so that every blocked loop runs several times on small inputs."""
    monkeypatch.setattr(K, "BLOCK_ELEMENTS", 48)
    monkeypatch.setattr(DR, "BLOCK_ELEMENTS", 48)


def _graph(n=37, m=120, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, m), generator=gen)
    return torch.cat([ei, ei.flip(0), torch.tensor([[1, 2, 2], [4, 5, 2]])], 1)  # not symmetric, a self loop


def _grads(out, inputs):
    g = torch.randn_like(out)
    return torch.autograd.grad((out * g).sum(), inputs, allow_unused=True), g


@pytest.mark.parametrize("heads,use_weight", [(1, True), (1, False), (3, True), (2, False)])
def test_conv_on_one_graph_by_the_blocked_kernel_matches_plain_path_and_gradcheck(small_blocks, heads, use_weight):
    conv = DIFFormerConv(5, heads, use_weight=use_weight).double()
    x = torch.randn(23, 5, dtype=torch.float64, requires_grad=True)
    params = [x] + list(conv.parameters())
    fast_out, fast_vals = conv(x, return_values=True)
    conv.blocked = False
    ref_out, ref_vals = conv(x, return_values=True)
    torch.testing.assert_close(fast_out, ref_out)
    torch.testing.assert_close(fast_vals, ref_vals)
    g = torch.randn_like(ref_out)
    ref = torch.autograd.grad((ref_out * g).sum() + ref_vals.sum(), params)
    conv.blocked = True
    out, vals = conv(x, return_values=True)
    for a, b in zip(torch.autograd.grad((out * g).sum() + vals.sum(), params), ref):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda t: conv(t, return_values=True), (x,))


@pytest.mark.parametrize("heads,use_weight,graph,coef", list(itertools.product(
    (1, 2), (True, False), (True, False), ((0.5, 0.5, 0.5), (0.35, 0.15, 0.5), (1.0, 1.0, 0.0)))))
def test_blocked_step_matches_attention_plus_propagation(small_blocks, heads, use_weight, graph, coef):
    n = 37
    ei = _graph(n)
    conv = DIFFormerConv(4, heads, use_weight=use_weight).double()
    z = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    adj = D.normalized_adjacency(ei, n, dtype=torch.float64) if graph else None
    r_a, r_p, r_z = coef
    out = K.blocked_simple_step(z, conv, adj, r_a, r_p, r_z)
    conv.blocked = False
    attn, values = conv(z, return_values=True)
    ref = r_a * attn + r_z * z + (r_p * D.gcn_propagate(values, ei, n) if graph else 0.0)
    torch.testing.assert_close(out, ref)
    params = [z] + list(conv.parameters())
    got, g = _grads(out, params)
    want = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    if heads == 2 and r_z:
        assert torch.autograd.gradcheck(lambda t: K.blocked_simple_step(t, conv, adj, r_a, r_p, r_z), (z,))


@pytest.mark.parametrize("opts", [{}, {"heads": 2, "use_weight": True}, {"graph_weight": 0.3},
                                  {"use_residual": False}, {"use_graph": False}, {"norm": "none"},
                                  {"norm": "batch"}, {"low_memory": True}, {"low_memory": True, "heads": 2,
                                                                            "use_weight": True, "graph_weight": 0.3}])
def test_model_blocked_path_equals_generic_path_in_training(small_blocks, opts):
    n = 40
    data = large_sbm(n, avg_degree=5, num_features=6, num_classes=3, seed=2)
    data.x = data.x.double()

    def run(blocked):
        torch.manual_seed(0)
        model = gnnformer.create_model("difformer-s", in_channels=6, out_channels=3, layers=2, hidden=8,
                                       dropout=0.0, **opts).double()
        model.blocked = blocked
        for conv in model.convs:
            conv.blocked = blocked
        out = model(data)
        loss = torch.nn.functional.cross_entropy(out, data.y)
        return out, torch.autograd.grad(loss, list(model.parameters()))

    out, grads = run(True)
    ref_out, ref_grads = run(False)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("heads,use_weight,graph,affine", [(1, False, True, "both"), (2, True, True, "both"),
                                                       (1, True, True, "weight"), (2, False, False, "none")])
def test_blocked_step_with_its_norm_inside_matches_step_then_layer_norm(small_blocks, heads, use_weight, graph,
                                                                        affine):
    n, coef = 37, (0.35, 0.15, 0.5)
    conv = DIFFormerConv(4, heads, use_weight=use_weight).double()
    norm = torch.nn.LayerNorm(4, elementwise_affine=affine != "none", bias=affine == "both").double()
    with torch.no_grad():
        for p in norm.parameters():
            p.uniform_(-1.0, 2.0)
    adj = D.normalized_adjacency(_graph(n), n, dtype=torch.float64, transpose=True) if graph else None
    z = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    out = K.blocked_simple_step(z, conv, adj, *coef, norm=norm)
    ref = norm(K.blocked_simple_step(z, conv, adj, *coef))
    torch.testing.assert_close(out, ref)
    params = [z] + list(conv.parameters()) + list(norm.parameters())
    got, g = _grads(out, params)
    for a, b in zip(got, torch.autograd.grad((ref * g).sum(), params)):
        torch.testing.assert_close(a, b)
    if heads == 2:
        assert torch.autograd.gradcheck(lambda t: K.blocked_simple_step(t, conv, adj, *coef, norm=norm), (z,))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_layer_norm_matches_linear_then_layer_norm(small_blocks, bias):
    lin, norm = torch.nn.Linear(6, 5, bias=bias).double(), torch.nn.LayerNorm(5).double()
    with torch.no_grad():
        norm.weight.uniform_(-1.0, 2.0)
        norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(29, 6, dtype=torch.float64, requires_grad=True)
    out, ref = K.linear_layer_norm(x, lin, norm), norm(lin(x))
    torch.testing.assert_close(out, ref)
    params = [x] + list(lin.parameters()) + list(norm.parameters())
    got, g = _grads(out, params)
    for a, b in zip(got, torch.autograd.grad((ref * g).sum(), params)):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda t: K.linear_layer_norm(t, lin, norm), (x,))
    # Data that needs no gradient gets none, and the weights' gradients are unchanged.
    got_w = torch.autograd.grad((K.linear_layer_norm(x.detach(), lin, norm) * g).sum(), list(lin.parameters()))
    for a, b in zip(got_w, got[1:]):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("low_memory", [False, True])
def test_model_blocked_path_equals_generic_path_with_dropout(small_blocks, low_memory):
    """Same seed, same masks: the blocked path (fused norms, packed masks) draws its dropout masks
    in the same order."""
    data = large_sbm(40, avg_degree=5, num_features=6, num_classes=3, seed=2)
    data.x = data.x.double()

    def run(blocked):
        torch.manual_seed(0)
        model = gnnformer.create_model("difformer-s", in_channels=6, out_channels=3, layers=2, hidden=8,
                                       dropout=0.3, low_memory=low_memory).double()
        model.blocked = blocked
        out = model(data)
        loss = torch.nn.functional.cross_entropy(out, data.y)
        return out, torch.autograd.grad(loss, list(model.parameters()))

    (out, grads), (ref_out, ref_grads) = run(True), run(False)
    torch.testing.assert_close(out, ref_out)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_low_memory_training_step_keeps_one_node_state_tensor_per_layer():
    """What a full-graph DIFFormer-s step with ``low_memory`` keeps for its backward, counted by
    storage: the input features, and per layer (and for the encoder) one [N, C] float tensor and
    its dropout mask, bit-packed (N C / 8 bytes); the norms' inputs are recomputed, not kept.
    Without it: twice the float tensors and boolean masks."""
    n, hidden, layers = 300, 16, 3
    data = large_sbm(n, avg_degree=5, num_features=6, num_classes=3, seed=1)

    def kept(low_memory):
        torch.manual_seed(0)
        model = gnnformer.create_model("difformer-s", in_channels=6, out_channels=3, layers=layers, hidden=hidden,
                                       dropout=0.2, level="node", low_memory=low_memory)
        storages = {}

        def pack(t):
            if t.layout == torch.strided:  # (the generic path also keeps the sparse adjacency)
                storages[t.untyped_storage().data_ptr()] = (tuple(t.shape), t.dtype)
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(data)
        return sorted(str(v) for v in storages.values() if v[0] in ((n, hidden), (n * hidden // 8,)))

    state, bits = str(((n, hidden), torch.float32)), str(((n * hidden // 8,), torch.uint8))
    assert kept(True) == [state] * (layers + 1) + [bits] * (layers + 1)
    assert kept(False) == [str(((n, hidden), torch.bool))] * (layers + 1) + [state] * (2 * (layers + 1))


@pytest.mark.parametrize("heads,use_weight,qk_norm", [(1, False, "none"), (2, True, "none"), (2, False, "node")])
def test_chunked_attention_matches_dense_sigmoid_attention(heads, use_weight, qk_norm):
    conv = DIFFormerConv(6, heads, kernel="sigmoid", use_weight=use_weight, qk_norm=qk_norm).double()
    x = torch.randn(50, 6, dtype=torch.float64)
    with torch.no_grad():
        dense = conv(x)
    for rows in (1, 7, 50, 64):  # one query per chunk, several uneven chunks, all of them at once
        torch.testing.assert_close(K.chunked_attention(conv, x, rows), dense)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 64, 1001])
def test_pack_bits_round_trip_and_layout(n):
    mask = torch.rand(n, generator=torch.Generator().manual_seed(n)) > 0.4
    packed = DR.pack_bits(mask)
    assert packed.dtype == torch.uint8 and packed.numel() == (n + 7) // 8
    assert torch.equal(DR.unpack_bits(packed, n), mask)
    # first entry in the lowest bit: [1, 0, 1, 1, 0, 0, 0, 0] -> 1 + 4 + 8
    assert DR.pack_bits(torch.tensor([True, False, True, True, False, False, False, False])).tolist() == [13]
    assert DR.pack_bits(torch.tensor([False, True])).tolist() == [2]


@pytest.mark.parametrize("shape", [(37, 7), (5, 3, 9), (13,)])
def test_dropout_gradient_through_a_packed_or_boolean_mask_over_many_blocks(small_blocks, shape):
    x = torch.randn(*shape, requires_grad=True, generator=torch.Generator().manual_seed(1))
    g = torch.randn(*shape)
    scale = 65536 / (65536 - round(0.3 * 65536))
    for relu in (False, True):
        outs = []
        for pack in (True, False):
            torch.manual_seed(1)
            y = DR.fast_dropout(x * 1.0, 0.3, training=True, relu=relu, pack=pack)
            (grad,) = torch.autograd.grad((y * g).sum(), x)
            torch.testing.assert_close(grad, g * (y != 0) * scale)
            assert bool((y != 0).any()) and bool((y == 0).any())
            outs.append((y, grad))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_dropout_rate_scale_seed_and_gradient():
    torch.manual_seed(0)
    x = torch.randn(400, 500, requires_grad=True)
    y = DR.fast_dropout(x * 1.0, 0.2, training=True, inplace=True)
    dropped = float((y == 0).double().mean())
    assert abs(dropped - 0.2) < 0.005
    scale = 65536 / (65536 - round(0.2 * 65536))
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] * scale)
    y.sum().backward()
    torch.testing.assert_close(x.grad, kept.float() * scale)
    torch.manual_seed(3)
    a = DR.fast_dropout(x.detach(), 0.5, True)
    torch.manual_seed(3)
    b = DR.fast_dropout(x.detach(), 0.5, True)
    assert torch.equal(a, b)
    assert DR.fast_dropout(x, 0.5, training=False) is x
    r = DR.fast_dropout(x.detach(), 0.5, True, relu=True)
    assert bool((r >= 0).all()) and bool((r[x.detach() <= 0] == 0).all())


def _dense_gcn_matrix(ei, n):
    """A_hat by the definition: self loops replaced by one per node, in-degree normalisation, row = target."""
    src, dst = ei
    keep = src != dst
    loop = torch.arange(n)
    s, d = torch.cat([src[keep], loop]), torch.cat([dst[keep], loop])
    dinv = torch.bincount(d, minlength=n).double().pow(-0.5)
    return torch.zeros(n, n, dtype=torch.float64).index_put_((d, s), dinv[s] * dinv[d], accumulate=True)


@pytest.mark.parametrize("scipy", [True, False])
def test_normalized_adjacency_matches_definition(monkeypatch, scipy):
    monkeypatch.setattr(D, "SCIPY_ADJACENCY", scipy)
    n = 30
    for ei in (_graph(n), torch.randint(0, n, (2, 90)), torch.empty(2, 0, dtype=torch.long)):
        a, a_t = D.normalized_adjacency(ei, n, dtype=torch.float64)
        ref = _dense_gcn_matrix(ei, n)
        torch.testing.assert_close(a.to_dense(), ref)
        torch.testing.assert_close(a_t.to_dense(), ref.t())
        only, none = D.normalized_adjacency(ei, n, dtype=torch.float64, transpose=False)
        assert none is None and torch.equal(only.to_dense(), a.to_dense())
    sym = _graph(n)[:, :-3]
    a, a_t = D.normalized_adjacency(sym, n)
    assert a is a_t


def test_cached_adjacency_reuse_and_transpose_upgrade():
    ei = _graph()
    cache = {}
    a, none = D.cached_adjacency(ei, 37, torch.float32, torch.device("cpu"), cache, transpose=False)
    assert none is None
    assert D.cached_adjacency(ei, 37, torch.float32, torch.device("cpu"), cache, transpose=False)[0] is a
    a2, a2_t = D.cached_adjacency(ei, 37, torch.float32, torch.device("cpu"), cache)  # needs A^T: rebuilt
    assert a2_t is not None and D.cached_adjacency(ei, 37, torch.float32, torch.device("cpu"), cache)[0] is a2


@pytest.mark.parametrize("name,opts", [("difformer-a", {}), ("difformer-s", {"qk_norm": "graph"})])
def test_low_memory_is_refused_where_steps_are_not_blocked(name, opts):
    with pytest.raises(gnnformer.errors.ConfigError, match="low_memory applies to difformer-s"):
        gnnformer.create_model(name, in_channels=4, out_channels=2, low_memory=True, **opts)
    gnnformer.create_model(name, in_channels=4, out_channels=2, low_memory=False, **opts)
