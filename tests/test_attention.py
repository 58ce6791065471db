"""GraphMultiheadAttention and GraphTransformerLayer: a Transformer is a GNN on the complete graph."""
import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch

from gnnformer.errors import ConfigError
from gnnformer.nn import GraphMultiheadAttention, GraphTransformerLayer

C, H, FFN = 16, 4, 24
SIZES = [3, 7, 5]


def make_batch(sizes=SIZES, channels=C):
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.randn(sum(sizes), channels), batch


def complete_edges(batch, self_loops=True):
    """Edge list of the block-diagonal complete graph (each graph complete, no edges between)."""
    blocks = []
    for g in batch.unique():
        nodes = (batch == g).nonzero().flatten()
        ei = torch.cartesian_prod(nodes, nodes).t()  # rows: (source j, target i)
        if not self_loops:
            ei = ei[:, ei[0] != ei[1]]
        blocks.append(ei)
    return torch.cat(blocks, dim=1)


def torch_layer(norm_first, activation="relu"):
    return nn.TransformerEncoderLayer(
        C, H, FFN, dropout=0.1, activation=activation, batch_first=True, norm_first=norm_first
    ).eval()


# --------------------------------------------------------------------------------------------
# The Transformer layer is the GNN layer on the complete graph


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_from_torch_equals_torch_per_graph_and_padded(norm_first, activation):
    ref = torch_layer(norm_first, activation)
    layer = GraphTransformerLayer.from_torch(ref).eval()
    assert layer.norm_first == norm_first and not layer.training
    x, batch = make_batch()
    with torch.no_grad():
        out = layer(x, batch)
        per_graph = torch.cat([ref(x[batch == g].unsqueeze(0)).squeeze(0) for g in range(len(SIZES))])
        dense, mask = to_dense_batch(x, batch)
        padded = ref(dense, src_key_padding_mask=~mask)
    assert out.shape == x.shape
    torch.testing.assert_close(out, per_graph, atol=1e-5, rtol=0)
    # torch's fast path may return a shorter padded tensor; compare the real nodes only.
    padded = padded[mask[:, : padded.size(1)]]
    torch.testing.assert_close(out, padded, atol=1e-5, rtol=0)


@pytest.mark.parametrize("norm_first", [False, True])
def test_state_dicts_are_interchangeable(norm_first):
    ref = torch_layer(norm_first)
    layer = GraphTransformerLayer(C, H, FFN, dropout=0.1, norm_first=norm_first)
    assert set(layer.state_dict()) == set(ref.state_dict())
    for name, tensor in ref.state_dict().items():
        assert layer.state_dict()[name].shape == tensor.shape, name
    # ours -> torch, strict: the torch layer then computes our function
    ref.load_state_dict(layer.state_dict(), strict=True)
    x, batch = make_batch()
    layer.eval()
    with torch.no_grad():
        out = layer(x, batch)
        expected = torch.cat([ref(x[batch == g].unsqueeze(0)).squeeze(0) for g in range(len(SIZES))])
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # torch -> ours, strict
    other = torch_layer(norm_first)
    layer.load_state_dict(other.state_dict(), strict=True)
    for name, tensor in other.state_dict().items():
        assert torch.equal(layer.state_dict()[name], tensor)


def test_attention_alone_matches_torch_multihead_attention():
    mha = nn.MultiheadAttention(C, H, batch_first=True).eval()
    attn = GraphMultiheadAttention(C, H)
    assert {k: v.shape for k, v in attn.state_dict().items()} == {k: v.shape for k, v in mha.state_dict().items()}
    attn.load_state_dict(mha.state_dict(), strict=True)
    mha.load_state_dict(attn.state_dict(), strict=True)
    x, batch = make_batch()
    dense, mask = to_dense_batch(x, batch)
    with torch.no_grad():
        out, w = attn(x, batch, return_weights=True)
        ref, ref_w = mha(dense, dense, dense, key_padding_mask=~mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref[mask], atol=1e-5, rtol=0)
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=0)


def test_from_torch_copies_hyperparameters():
    ref = nn.TransformerEncoderLayer(8, 2, 40, dropout=0.3, activation="gelu", batch_first=True, layer_norm_eps=1e-6)
    layer = GraphTransformerLayer.from_torch(ref)
    assert layer.training  # follows the source layer's mode
    assert (layer.channels, layer.heads, layer.ffn_channels) == (8, 2, 40)
    assert layer.dropout.p == layer.dropout1.p == layer.dropout2.p == 0.3
    assert layer.self_attn.dropout == 0.3
    assert layer.norm1.eps == 1e-6 and layer.activation_name == "gelu"
    # a copy, not shared storage
    assert layer.linear1.weight.data_ptr() != ref.linear1.weight.data_ptr()


# --------------------------------------------------------------------------------------------
# Sparse ('edges') vs dense ('complete') attention


def test_edges_on_complete_graph_equals_complete():
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    ei = complete_edges(batch)
    with torch.no_grad():
        dense, w_dense = attn(x, batch, return_weights=True)
        sparse, w_sparse = attn(x, batch, graph="edges", edge_index=ei, return_weights=True)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=0)
    # the same weights, read off the dense tensor at each edge's (graph, target, source) position
    _, mask = to_dense_batch(x, batch)
    pos = torch.cat([torch.arange(n) for n in SIZES])
    src, dst = ei
    torch.testing.assert_close(w_sparse, w_dense[batch[dst], :, pos[dst], pos[src]], atol=1e-6, rtol=0)


def test_layer_edges_on_complete_graph_equals_complete():
    layer = GraphTransformerLayer(C, H, norm_first=True).eval()
    x, batch = make_batch()
    with torch.no_grad():
        a = layer(x, batch)
        b = layer(x, batch, graph="edges", edge_index=complete_edges(batch))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_attn_bias_equals_edge_bias_and_mask_equals_edge_subset():
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    _, mask = to_dense_batch(x, batch)
    B, Nmax = mask.shape
    pos = torch.cat([torch.arange(n) for n in SIZES])
    ei = complete_edges(batch)
    src, dst = ei
    bias = torch.randn(B, H, Nmax, Nmax)
    with torch.no_grad():
        dense = attn(x, batch, attn_bias=bias)
        sparse = attn(x, batch, graph="edges", edge_index=ei, edge_bias=bias[batch[dst], :, pos[dst], pos[src]])
    torch.testing.assert_close(dense, sparse, atol=1e-5, rtol=0)

    # A supplied mask restricts the complete graph to a subgraph: same as attention on its edges.
    keep = torch.rand(ei.size(1)) < 0.5
    keep[dst == 0] = False  # node 0 has no admissible key at all
    blocked = torch.ones(B, Nmax, Nmax, dtype=torch.bool)
    blocked[batch[dst[keep]], pos[dst[keep]], pos[src[keep]]] = False
    with torch.no_grad():
        dense = attn(x, batch, attn_mask=blocked)
        sparse = attn(x, batch, graph="edges", edge_index=ei[:, keep])
    assert torch.isfinite(dense).all()
    torch.testing.assert_close(dense, sparse, atol=1e-5, rtol=0)
    torch.testing.assert_close(dense[0], attn.out_proj.bias)


def test_node_without_neighbours_outputs_out_proj_bias():
    attn = GraphMultiheadAttention(C, H)
    nn.init.normal_(attn.out_proj.bias)
    x = torch.randn(4, C)
    ei = torch.tensor([[0, 1, 2], [1, 2, 1]])  # nodes 0 and 3 receive nothing
    out = attn(x, graph="edges", edge_index=ei)
    torch.testing.assert_close(out[0], attn.out_proj.bias)
    torch.testing.assert_close(out[3], attn.out_proj.bias)


def test_fully_masked_rows_have_finite_gradients():
    attn = GraphMultiheadAttention(C, H)
    x, batch = make_batch()
    x.requires_grad_(True)
    _, mask = to_dense_batch(x, batch)
    blocked = torch.zeros(len(SIZES), mask.size(1), mask.size(1), dtype=torch.bool)
    blocked[1, 2, :] = True  # the third node of graph 1 may attend to nothing
    attn(x, batch, attn_mask=blocked).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


# --------------------------------------------------------------------------------------------
# Graphs in a batch never see each other


@pytest.mark.parametrize("graph", ["complete", "edges"])
def test_changing_one_graph_leaves_the_others_bit_identical(graph):
    layer = GraphTransformerLayer(C, H).eval()
    x, batch = make_batch()
    ei = complete_edges(batch, self_loops=False)
    x2 = x.clone()
    x2[batch == 1] = torch.randn(int((batch == 1).sum()), C) * 10
    with torch.no_grad():
        a = layer(x, batch, graph=graph, edge_index=ei)
        b = layer(x2, batch, graph=graph, edge_index=ei)
    for g in (0, 2):
        assert torch.equal(a[batch == g], b[batch == g])
    assert not torch.allclose(a[batch == 1], b[batch == 1])


def test_attention_weights_put_no_mass_on_other_graphs():
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    with torch.no_grad():
        _, w = attn(x, batch, return_weights=True)  # [B, H, Nmax, Nmax]
    _, mask = to_dense_batch(x, batch)
    # Lift to a node-level [H, N, N] matrix: entry (i, j) is i's weight on node j.
    N = x.size(0)
    pos = torch.cat([torch.arange(n) for n in SIZES])
    full = torch.zeros(H, N, N)
    for i in range(N):
        row = w[batch[i], :, pos[i]]  # [H, Nmax]
        same = (batch == batch[i]).nonzero().flatten()
        full[:, i, same] = row[:, pos[same]]
        # whatever is not a node of i's graph (padding columns) carries exactly zero weight
        assert torch.equal(row[:, ~mask[batch[i]]], torch.zeros_like(row[:, ~mask[batch[i]]]))
    torch.testing.assert_close(full.sum(-1), torch.ones(H, N))  # all the mass is inside the graph
    first = batch == 0
    assert torch.all(full[:, first][:, :, ~first] == 0)

    ei = complete_edges(batch)
    _, w_e = attn(x, batch, graph="edges", edge_index=ei, return_weights=True)
    assert torch.equal(batch[ei[0]], batch[ei[1]])
    per_target = torch.zeros(N, H).index_add_(0, ei[1], w_e)
    torch.testing.assert_close(per_target, torch.ones(N, H))


def test_unsorted_batch_returns_original_node_order():
    layer = GraphTransformerLayer(C, H).eval()
    x, batch = make_batch()
    perm = torch.randperm(x.size(0))
    with torch.no_grad():
        a = layer(x, batch)
        b = layer(x[perm], batch[perm])
    torch.testing.assert_close(b, a[perm], atol=1e-6, rtol=0)


def test_batch_none_is_one_graph():
    layer = GraphTransformerLayer(C, H).eval()
    x = torch.randn(6, C)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer(x, torch.zeros(6, dtype=torch.long)))


def test_works_on_a_pyg_batch():
    data = [Data(x=torch.randn(n, C), edge_index=torch.empty(2, 0, dtype=torch.long)) for n in SIZES]
    b = Batch.from_data_list(data)
    layer = GraphTransformerLayer(C, H).eval()
    with torch.no_grad():
        out = layer(b.x, b.batch)
        for g, d in enumerate(data):
            torch.testing.assert_close(out[b.batch == g], layer(d.x), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------------------------
# Dropout, norms, errors


def test_attention_dropout_only_in_training():
    attn = GraphMultiheadAttention(C, H, dropout=0.5)
    plain = GraphMultiheadAttention(C, H)
    plain.load_state_dict(attn.state_dict())
    x, batch = make_batch()
    attn.eval()
    assert torch.equal(attn(x, batch), attn(x, batch))
    torch.testing.assert_close(attn(x, batch), plain(x, batch))
    attn.train()
    _, w = attn(x, batch, return_weights=True)
    assert (w == 0).any() and w.max() > 1.0  # dropped and rescaled
    assert not torch.allclose(attn(x, batch), plain(x, batch))


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_norm_options_train_and_backprop(norm, norm_first):
    layer = GraphTransformerLayer(C, H, norm=norm, norm_first=norm_first)
    x, batch = make_batch()
    out = layer(x, batch)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None for p in layer.parameters())
    if norm == "batch":
        assert isinstance(layer.norm1, nn.BatchNorm1d)


def test_invalid_arguments():
    x, batch = make_batch()
    with pytest.raises(ConfigError, match="layer, batch, none"):
        GraphTransformerLayer(C, H, norm="group")
    with pytest.raises(ConfigError, match="relu"):
        GraphTransformerLayer(C, H, activation="swish")
    with pytest.raises(ValueError, match="divisible"):
        GraphMultiheadAttention(10, 3)
    attn = GraphMultiheadAttention(C, H)
    with pytest.raises(ValueError, match="edge_index"):
        attn(x, batch, graph="edges")
    with pytest.raises(ValueError, match="complete, edges"):
        attn(x, batch, graph="knn")
    with pytest.raises(ValueError, match="shape"):
        attn(x, batch, attn_bias=torch.zeros(3, 4, 4))
    with pytest.raises(TypeError, match="bool"):
        attn(x, batch, attn_mask=torch.zeros(3, 7, 7))


def test_fused_kernel_path_equals_explicit_softmax():
    """Without returned weights the layer uses PyTorch's fused attention; it must agree."""
    attn = GraphMultiheadAttention(C, H).eval()
    x, batch = make_batch()
    bias = torch.randn(len(SIZES), H, max(SIZES), max(SIZES))
    for kwargs in ({}, {"attn_bias": bias}, {"attn_bias": bias[:, 0]}):
        fused = attn(x, batch, **kwargs)
        explicit, _ = attn(x, batch, return_weights=True, **kwargs)
        torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    # A -inf bias row (nothing to attend to) falls back to the explicit path: out_proj.bias, no NaN.
    blocked = torch.zeros(len(SIZES), max(SIZES), max(SIZES))
    blocked[0, 0, :] = float("-inf")
    out = attn(x, batch, attn_bias=blocked)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], attn.out_proj.bias)


# ---------------------------------------------------------------------------------------------
# Size groups: a random batch padded per group of similar sizes, not to its largest graph


def _brute_force_cells(sizes, max_groups):
    import itertools

    s = sorted(sizes)
    n, best = len(s), float("inf")
    for k in range(max_groups):
        for cuts in itertools.combinations(range(1, n), k):
            b = [0, *cuts, n]
            best = min(best, sum((b[i + 1] - b[i]) * s[b[i + 1] - 1] ** 2 for i in range(len(b) - 1)))
    return best


def test_plan_size_groups_is_optimal_and_covers_every_nonempty_graph():
    from gnnformer.nn.attention import plan_size_groups

    # By hand: sizes 5,0,30,3,12,111,7,30 in 3 groups -> {3,5,7,12} {30,30} {111}:
    # 4*144 + 2*900 + 12321 = 14697 cells, against 7*111^2 = 86247 padded whole.
    groups = plan_size_groups(torch.tensor([5, 0, 30, 3, 12, 111, 7, 30]), 3)
    assert [g.tolist() for g in groups] == [[0, 3, 4, 6], [2, 7], [5]]
    gen = torch.Generator().manual_seed(0)
    for _ in range(100):
        n = int(torch.randint(1, 8, (), generator=gen))
        counts = torch.randint(1, 20, (n,), generator=gen)
        k = int(torch.randint(1, 5, (), generator=gen))
        groups = plan_size_groups(counts, k)
        assert len(groups) <= k
        assert sorted(torch.cat(groups).tolist()) == list(range(n))
        assert sum(len(g) * int(counts[g].max()) ** 2 for g in groups) == _brute_force_cells(counts.tolist(), k)


@pytest.mark.parametrize("extra", ["none", "scale", "bias", "scale+bias+mask"])
def test_size_groups_give_the_same_output_as_one_dense_batch(extra):
    gen = torch.Generator().manual_seed(1)
    sizes = torch.randint(1, 40, (24,), generator=gen)
    sizes[5] = 0  # an empty graph in the middle
    batch = torch.repeat_interleave(torch.arange(24), sizes)
    perm = torch.randperm(batch.numel(), generator=gen)  # nodes out of graph order
    x = torch.randn(batch.numel(), 16, generator=gen)
    B, N = 24, int(sizes.max())
    kw = {}
    if "scale" in extra:
        kw["attn_scale"] = torch.rand(B, 4, N, N, generator=gen)
    if "bias" in extra:
        kw["attn_bias"] = torch.randn(B, N, N, generator=gen)
    if "mask" in extra:
        kw["attn_mask"] = torch.rand(B, N, N, generator=gen) < 0.3
    torch.manual_seed(0)
    att = GraphMultiheadAttention(16, 4)
    outs, grads = [], []
    for groups in (1, 8):
        att.size_groups = groups
        xi = x[perm].clone().requires_grad_(True)
        out = att(xi, batch[perm], **kw)
        out.square().sum().backward()
        outs.append(out)
        grads.append(xi.grad)
    assert torch.allclose(outs[0], outs[1], atol=1e-5)
    assert torch.allclose(grads[0], grads[1], atol=1e-4)


def test_size_group_layout_places_every_node_in_its_groups_dense_block_and_is_reused():
    from gnnformer.nn.attention import size_group_layout

    sizes = torch.tensor([4, 1, 0, 9, 9, 2, 30, 3])
    batch = torch.repeat_interleave(torch.arange(8), sizes)
    layout = size_group_layout(batch, 3)
    assert layout.rows == sum(len(g) * n for g, n in zip(layout.groups, layout.sizes))
    x = torch.arange(batch.numel(), dtype=torch.float).unsqueeze(1)
    padded = torch.full((layout.rows, 1), -1.0).index_copy(0, layout.slot, x)
    start = 0
    for ids, n, mask in zip(layout.groups, layout.sizes, layout.masks):
        in_group = torch.isin(batch, ids)
        rank = torch.empty(8, dtype=torch.long)
        rank[ids] = torch.arange(ids.numel())
        dense, expected_mask = to_dense_batch(x[in_group], rank[batch[in_group]], max_num_nodes=n,
                                              batch_size=ids.numel(), fill_value=-1.0)
        assert torch.equal(padded[start:start + ids.numel() * n].view(ids.numel(), n, 1), dense)
        assert torch.equal(mask, expected_mask)
        start += ids.numel() * n
    assert size_group_layout(batch.clone(), 3) is layout  # same sizes: built once, shared by every layer


def test_a_scale_function_equals_the_scale_tensor_with_size_groups():
    gen = torch.Generator().manual_seed(2)
    sizes = torch.randint(1, 30, (20,), generator=gen)
    batch = torch.repeat_interleave(torch.arange(20), sizes)
    x = torch.randn(batch.numel(), 16, generator=gen)
    full = torch.rand(20, 4, int(sizes.max()), int(sizes.max()), generator=gen)
    calls = []

    def scale_of(graphs, n):
        calls.append(n)
        return full[graphs, :, :n, :n]

    att = GraphMultiheadAttention(16, 4).eval()
    torch.testing.assert_close(att(x, batch, attn_scale=scale_of), att(x, batch, attn_scale=full))
    assert len(calls) > 1 and max(calls) == int(sizes.max())  # asked per size group, never for more
    _, weights = att(x, batch, attn_scale=scale_of, return_weights=True)  # one dense batch: asked once, whole
    assert calls[-1] == int(sizes.max()) and weights.shape[0] == 20


def test_fast_dropout_matches_dropout_semantics():
    from gnnformer.nn.dropout import fast_dropout as dropout_weights

    w = torch.rand(200, 500) + 0.1
    assert dropout_weights(w, 0.3, training=False) is w and dropout_weights(w, 0.0, training=True) is w
    torch.manual_seed(0)
    out = dropout_weights(w, 0.3, training=True)
    dropped = out == 0
    assert abs(dropped.float().mean().item() - 0.3) < 0.01  # 100k draws: 0.3 +- 0.0015 (1 std)
    torch.testing.assert_close(out[~dropped], w[~dropped] / 0.7)  # the rest scaled by 1 / (1 - p)
    assert torch.equal(dropout_weights(w, 1.0, training=True), torch.zeros_like(w))


@pytest.mark.parametrize("p, byte", [(0.5, True), (0.25, True), (0.3, False)])
def test_keep_mask_draws_a_byte_per_entry_when_p_is_a_multiple_of_one_256th(p, byte):
    """p = k / 256: each entry compares one random byte with k (half the random numbers of the
    16-bit slices, the same distribution); other p: a 16-bit slice against round(p * 2^16)."""
    from gnnformer.nn.dropout import keep_mask

    like = torch.empty(300, 333)
    torch.manual_seed(5)
    mask, scale = keep_mask(like, p)
    torch.manual_seed(5)
    n = like.numel()
    if byte:
        bits = torch.randint(-2**63, 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64).view(torch.uint8)[:n]
        expected = bits >= round(p * 256)
    else:
        bits = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64).view(torch.int16)[:n]
        expected = bits >= round(p * 65536) - 32768
    assert torch.equal(mask.view(-1), expected)
    assert abs(1 - mask.double().mean().item() - p) < 0.006  # 100k draws: +- 0.0015 (1 std)
    assert scale == pytest.approx(1 / (1 - round(p * 65536) / 65536), rel=1e-12)
    floats, _ = keep_mask(like, p, out=torch.empty_like(like))  # 0 / 1 written as floats
    assert floats.dtype == torch.float32 and set(floats.unique().tolist()) == {0.0, 1.0}
