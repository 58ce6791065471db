"""Positional/structural encodings: hand-checked values, batching, caching, encoders."""
import pytest
import torch
from torch_geometric.data import Batch, Data
from torch_geometric.utils import to_dense_batch, to_undirected

import gnnformer.datasets.encodings as dataset_enc
import gnnformer.nn.encodings as enc
from gnnformer.errors import ConfigError
from gnnformer.nn import (
    LapPE,
    LapPEEncoder,
    RWSE,
    RWSEEncoder,
    ShortestPathDistance,
    spd_to_dense,
)
from gnnformer.datasets.encodings import precompute_encodings
from gnnformer.paths import cache_dir


def graph(n, edges):
    ei = torch.tensor(edges, dtype=torch.long).t() if edges else torch.empty(2, 0, dtype=torch.long)
    return Data(x=torch.randn(n, 2), edge_index=to_undirected(ei, num_nodes=n), num_nodes=n)


def path(n):
    return graph(n, [(i, i + 1) for i in range(n - 1)])


def cycle(n):
    return graph(n, [(i, (i + 1) % n) for i in range(n)])


def dense_spd(data):
    spd = ShortestPathDistance()(data).spd
    n = data.num_nodes
    assert spd.dtype == torch.long and spd.shape == (n * n,)
    return spd.view(n, n)


# --------------------------------------------------------------------------------------------
# Shortest-path distances


def test_spd_path_graph():
    expected = torch.tensor([[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]])
    assert torch.equal(dense_spd(path(4)), expected)


def test_spd_cycle():
    expected = torch.tensor(
        [[0, 1, 2, 2, 1], [1, 0, 1, 2, 2], [2, 1, 0, 1, 2], [2, 2, 1, 0, 1], [1, 2, 2, 1, 0]]
    )
    assert torch.equal(dense_spd(cycle(5)), expected)


def test_spd_two_components_unreachable_is_minus_one():
    g = graph(5, [(0, 1), (2, 3), (3, 4)])
    expected = torch.tensor(
        [[0, 1, -1, -1, -1], [1, 0, -1, -1, -1], [-1, -1, 0, 1, 2], [-1, -1, 1, 0, 1], [-1, -1, 2, 1, 0]]
    )
    assert torch.equal(dense_spd(g), expected)


def test_spd_treats_edges_as_undirected_and_does_not_modify_input():
    g = Data(edge_index=torch.tensor([[0, 1], [1, 2]]), num_nodes=3)  # 0 -> 1 -> 2 only
    expected = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    assert torch.equal(dense_spd(g), expected)
    assert "spd" not in g


def test_spd_to_dense_two_graph_batch():
    g1, g2 = path(3), cycle(4)
    b = Batch.from_data_list([ShortestPathDistance()(g1), ShortestPathDistance()(g2)])
    assert b.spd.shape == (9 + 16,)  # flattened per graph, concatenated by PyG
    dense = spd_to_dense(b.spd, b.batch)
    assert dense.shape == (2, 4, 4) and dense.dtype == torch.long
    assert torch.equal(dense[0, :3, :3], dense_spd(g1))
    assert torch.equal(dense[0, 3], torch.full((4,), -1)) and torch.equal(dense[0, :, 3], torch.full((4,), -1))
    assert torch.equal(dense[1], dense_spd(g2))
    # the same positions as to_dense_batch uses for node features
    _, mask = to_dense_batch(b.x, b.batch)
    assert torch.equal(dense.diagonal(dim1=1, dim2=2) == 0, mask)

    truncated = spd_to_dense(b.spd, b.batch, max_nodes=2)
    assert torch.equal(truncated, dense[:, :2, :2])
    padded = spd_to_dense(b.spd, b.batch, max_nodes=6)
    assert padded.shape == (2, 6, 6) and torch.equal(padded[:, :4, :4], dense)
    assert torch.equal(spd_to_dense(dense_spd(g2).flatten(), None), dense[1:])  # batch=None: one graph
    with pytest.raises(ValueError, match="sum of n"):
        spd_to_dense(b.spd[:-1], b.batch)


def test_spd_refuses_huge_graphs(monkeypatch):
    monkeypatch.setattr(enc, "SPD_MAX_NODES", 10)
    with pytest.raises(ConfigError, match="SPD"):
        ShortestPathDistance()(path(11))


# --------------------------------------------------------------------------------------------
# Caching


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path))
    return tmp_path


def test_precompute_spd_is_cached_on_disk(fresh_cache, monkeypatch):
    graphs = [path(4), cycle(5), graph(3, [(0, 1)])]
    first = precompute_encodings(graphs, spd=True)
    key = dataset_enc.graphs_key(graphs)
    cached = cache_dir() / "encodings" / f"spd-{key}.pt"
    assert cached.exists() and cached.parent == fresh_cache / "encodings"
    assert all("spd" not in g for g in graphs)  # inputs untouched, outputs are copies
    assert torch.equal(first[0].spd, dense_spd(path(4)).flatten())

    def boom(data):
        raise AssertionError("SPD was recomputed although it is cached")

    monkeypatch.setattr(dataset_enc, "compute_spd", boom)
    second = precompute_encodings(graphs, spd=True)
    for a, b in zip(first, second):
        assert torch.equal(a.spd, b.spd) and b.spd.dtype == torch.long
        assert torch.equal(a.x, b.x)

    # Different structure -> different key -> computed again.
    changed = [path(4), cycle(5), graph(3, [(1, 2)])]
    assert dataset_enc.graphs_key(changed) != key
    assert dataset_enc.graphs_key([path(4), path(4)]) != dataset_enc.graphs_key([path(4)])
    with pytest.raises(AssertionError, match="recomputed"):
        precompute_encodings(changed, spd=True)
    # cache=False never reads the cache
    with pytest.raises(AssertionError, match="recomputed"):
        precompute_encodings(graphs, spd=True, cache=False)


def test_precompute_lap_pe_and_rwse_cached_and_keyed_by_size(fresh_cache, monkeypatch):
    graphs = [path(5), cycle(6)]
    expected = [(LapPE(3)(g).lap_pe, RWSE(4)(g).rwse) for g in graphs]
    calls = {"lap": 0, "rw": 0}
    real_lap, real_rw = enc.compute_lap_pe, enc.compute_rwse

    def lap(data, k):
        calls["lap"] += 1
        return real_lap(data, k)

    def rw(data, steps):
        calls["rw"] += 1
        return real_rw(data, steps)

    monkeypatch.setattr(dataset_enc, "compute_lap_pe", lap)
    monkeypatch.setattr(dataset_enc, "compute_rwse", rw)
    out = precompute_encodings(graphs, lap_pe=3, rwse=4, progress=True)
    assert calls == {"lap": 2, "rw": 2}
    for d, (lap_pe, rwse) in zip(out, expected):
        assert torch.equal(d.lap_pe, lap_pe) and torch.equal(d.rwse, rwse)
    again = precompute_encodings(graphs, lap_pe=3, rwse=4)
    assert calls == {"lap": 2, "rw": 2}  # loaded from disk
    for a, b in zip(out, again):
        assert torch.equal(a.lap_pe, b.lap_pe) and torch.equal(a.rwse, b.rwse)
    precompute_encodings(graphs, lap_pe=2)  # another k is another file
    assert calls["lap"] == 4
    names = sorted(p.name.split("-")[0] for p in (fresh_cache / "encodings").iterdir())
    assert names == ["lap_pe2", "lap_pe3", "rwse4"]


def test_corrupt_cache_file_is_recomputed(fresh_cache):
    graphs = [path(4)]
    precompute_encodings(graphs, spd=True)
    (file,) = (fresh_cache / "encodings").iterdir()
    file.write_bytes(b"not a torch file")
    out = precompute_encodings(graphs, spd=True)
    assert torch.equal(out[0].spd, dense_spd(path(4)).flatten())


# --------------------------------------------------------------------------------------------
# Laplacian eigenvectors and random-walk encodings


def normalised_laplacian(data):
    n = data.num_nodes
    A = torch.zeros(n, n, dtype=torch.float64)
    A[data.edge_index[0], data.edge_index[1]] = 1.0
    d = A.sum(1).clamp(min=1).rsqrt()
    return torch.eye(n, dtype=torch.float64) - d[:, None] * A * d[None, :]


def test_lap_pe_are_eigenvectors_of_normalised_laplacian():
    g = graph(6, [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5)])  # a small tree, simple spectrum
    k = 3
    pe = LapPE(k)(g).lap_pe
    assert pe.shape == (6, k) and pe.dtype == torch.float
    L = normalised_laplacian(g)
    v = pe.double()
    lam = (v * (L @ v)).sum(0)
    torch.testing.assert_close(L @ v, v * lam, atol=1e-5, rtol=0)
    torch.testing.assert_close(v.norm(dim=0), torch.ones(k, dtype=torch.float64), atol=1e-5, rtol=0)
    # the k smallest non-trivial ones (the trivial eigenvalue 0 is skipped), ascending
    torch.testing.assert_close(lam, torch.linalg.eigvalsh(L)[1 : k + 1], atol=1e-5, rtol=0)


def test_lap_pe_pads_small_graphs_and_is_deterministic():
    g = path(3)
    before = torch.get_rng_state()
    small = LapPE(4)(g).lap_pe
    assert torch.equal(torch.get_rng_state(), before)  # PyG's random signs do not consume our RNG
    assert small.shape == (3, 4)
    assert small[:, :2].abs().sum(0).gt(0).all() and torch.equal(small[:, 2:], torch.zeros(3, 2))
    assert torch.equal(LapPE(4)(graph(1, [])).lap_pe, torch.zeros(1, 4))
    assert LapPE(3)(path(4)).lap_pe.shape == (4, 3)  # k = N - 1: the dense solver
    assert torch.equal(LapPE(4)(path(3)).lap_pe, small)  # canonical signs: same every time
    big = LapPE(3)(cycle(120)).lap_pe  # PyG's sparse (ARPACK) code path
    assert big.shape == (120, 3) and torch.isfinite(big).all()
    # Batching pads nothing extra: every graph has k columns.
    b = Batch.from_data_list([LapPE(4)(path(3)), LapPE(4)(path(7))])
    assert b.lap_pe.shape == (10, 4)


def test_rwse_cycle_hand_computed():
    rw = RWSE(5)(cycle(6)).rwse
    assert rw.shape == (6, 5) and rw.dtype == torch.float
    # From any node of a cycle: 1 step never returns; 2 steps return with prob 1/2 (go and back);
    # odd steps on an even cycle never return; 4 steps: C(4,2) = 6 of 16 walks return.
    torch.testing.assert_close(rw[:, 0], torch.zeros(6))
    torch.testing.assert_close(rw[:, 1], torch.full((6,), 0.5))
    torch.testing.assert_close(rw[:, 2], torch.zeros(6))
    torch.testing.assert_close(rw[:, 3], torch.full((6,), 6 / 16))
    torch.testing.assert_close(RWSE(3)(cycle(3)).rwse[:, 1], torch.full((3,), 0.5))
    torch.testing.assert_close(RWSE(3)(cycle(3)).rwse[:, 2], torch.full((3,), 0.25))  # 2 of 8 walks


# --------------------------------------------------------------------------------------------
# Encoders


def test_lap_pe_encoder_flips_signs_per_graph_only_in_training():
    k = 4
    encoder = LapPEEncoder(k, k)
    with torch.no_grad():
        encoder.lin.weight.copy_(torch.eye(k))
        encoder.lin.bias.zero_()
    b = Batch.from_data_list([LapPE(k)(path(3)), LapPE(k)(cycle(7)), LapPE(k)(path(8))])
    pe = b.lap_pe

    encoder.eval()
    assert torch.equal(encoder(pe, b.batch), pe)

    encoder.train()
    flips = []
    for _ in range(4):
        out = encoder(pe, b.batch)
        assert torch.equal(out.abs(), pe.abs())  # only signs change
        assert torch.equal(out[:, 2:][b.batch == 0], torch.zeros(3, 2))  # padding stays zero
        nz = pe != 0
        sign = torch.where(nz, out / torch.where(nz, pe, torch.ones_like(pe)), torch.zeros_like(pe))
        for g in range(3):
            s = sign[b.batch == g]
            for col in range(k):
                vals = s[:, col][s[:, col] != 0].unique()
                assert vals.numel() <= 1  # one sign per eigenvector per graph
        flips.append(not torch.equal(out, pe))
    assert any(flips)
    assert encoder(pe[b.batch == 1], None).shape == (7, k)  # batch=None: one graph


def test_rwse_encoder():
    encoder = RWSEEncoder(5, 12)
    b = Batch.from_data_list([RWSE(5)(cycle(6)), RWSE(5)(path(4))])
    out = encoder(b.rwse)
    assert out.shape == (10, 12)
    out.sum().backward()
    assert encoder.lin.weight.grad is not None and encoder.norm.weight.grad is not None


# --------------------------------------------------------------------------------------------
# SPD of many graphs at once (batched Seidel) against scipy's BFS, graph by graph


def random_graphs(count, max_nodes, seed):
    gen = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        n = int(torch.randint(0, max_nodes + 1, (1,), generator=gen))
        m = int(torch.randint(0, 2 * n + 1, (1,), generator=gen)) if n else 0
        # One direction only, self loops and repeated edges included; sparse enough that many
        # graphs fall apart into components (unreachable pairs) and have isolated nodes.
        ei = torch.randint(0, max(n, 1), (2, m), generator=gen)
        graphs.append(Data(edge_index=ei, num_nodes=n))
    return graphs


@pytest.mark.parametrize("dense_max,chunk", [(enc.SPD_DENSE_MAX_NODES, enc._SPD_CHUNK_ENTRIES), (12, 200)])
def test_batched_spd_equals_scipy_per_graph(monkeypatch, dense_max, chunk):
    monkeypatch.setattr(enc, "SPD_DENSE_MAX_NODES", dense_max)  # 12: both code paths in one call
    monkeypatch.setattr(enc, "_SPD_CHUNK_ENTRIES", chunk)  # 200: a size group split in chunks
    graphs = random_graphs(150, 40, seed=0) + random_graphs(4, 240, seed=1)
    graphs += [path(30), cycle(17), graph(6, [(0, 1), (2, 3)]), graph(1, []), graph(0, [])]
    got = enc.compute_spd(graphs)
    assert len(got) == len(graphs)
    disconnected = 0
    for g, d in zip(graphs, got):
        expected = enc._spd_scipy(g)
        assert d.dtype == torch.long and torch.equal(d, expected)
        disconnected += bool((d == -1).any())
    assert disconnected > 20  # the comparison covered unreachable pairs
    assert torch.equal(enc.compute_spd(graphs[3]), got[3])  # one graph: the same as in a list


def test_batched_spd_refuses_huge_graphs(monkeypatch):
    monkeypatch.setattr(enc, "SPD_MAX_NODES", 10)
    with pytest.raises(ConfigError, match="SPD"):
        precompute_encodings([path(3), path(11)], spd=True, cache=False)


def test_lap_pe_of_a_graph_over_the_sparse_threshold_is_the_same_bits_every_time():
    # Over 100 nodes the eigenvectors come from ARPACK; from its own random start vector they
    # differ between calls by up to ~1e-4, from the fixed start they are identical.
    from torch_geometric.utils import erdos_renyi_graph, to_undirected

    torch.manual_seed(0)
    data = Data(edge_index=to_undirected(erdos_renyi_graph(300, 0.02)), num_nodes=300)
    first = enc.compute_lap_pe(data, 8)
    assert first.abs().sum() > 0
    for _ in range(3):
        assert torch.equal(enc.compute_lap_pe(data, 8), first)
