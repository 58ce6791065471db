"""Encoders in Hu et al.'s checkpoint format: a round trip on a tiny model, and the real GCN and
GraphSAGE files of ../shared/pretrained/ against a forward pass written from their keys."""
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.nn import global_mean_pool

from gnnformer.errors import ConfigError, DataError
from gnnformer.fewshot.featurize import smiles_to_graph
from gnnformer.fewshot.hu_weights import encoder_state_from_hu, hu_state_from_encoder, load_hu_encoder
from gnnformer.fewshot.model import MolEncoder, fewshot_model_config

PRETRAINED = Path(__file__).resolve().parents[2] / "shared" / "pretrained"
SMALL = dict(hidden=8, token_kernel=3, token_stride=2)  # a head that fits 8 dims
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "C[C@H](N)C(=O)O", "c1ccncc1", "O=C=O"]


def molecules():
    return Batch.from_data_list([smiles_to_graph(s) for s in SMILES])


def tiny(seed: int, conv: str = "gin") -> MolEncoder:
    torch.manual_seed(seed)
    enc = MolEncoder(fewshot_model_config(**SMALL, layers=2, norm="batch", conv=conv, dropout=0.0))
    for norm in enc.norms:  # running statistics other than the defaults, so that they are checked too
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
    return enc.eval()


@pytest.mark.parametrize("conv", ["gin", "gcn", "graphsage"])
def test_round_trip_through_their_key_layout(conv):
    a, b = tiny(0, conv), tiny(1, conv)
    theirs = hu_state_from_encoder(a)
    inner = ["mlp.0", "mlp.2"] if conv == "gin" else ["linear"]
    expected = {"x_embedding1.weight", "x_embedding2.weight"} | {
        f"gnns.{i}.{k}" for i in range(2) for k in [f"{m}.{p}" for m in inner for p in ("weight", "bias")]
        + ["edge_embedding1.weight", "edge_embedding2.weight"]} | {
        f"batch_norms.{i}.{k}" for i in range(2)
        for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    assert set(theirs) == expected
    assert theirs["x_embedding2.weight"].shape == (3, 8) and theirs["gnns.1.edge_embedding1.weight"].shape == (6, 8)
    own_chi_other = b.chirality.weight[3].clone()
    b.load_state_dict(encoder_state_from_hu(theirs, b))
    data = molecules()
    torch.testing.assert_close(b(data), a(data))  # none of these atoms has the CHI_OTHER tag
    torch.testing.assert_close(b.chirality.weight[3], own_chi_other)
    assert torch.equal(theirs["gnns.0.edge_embedding1.weight"][5], torch.zeros(8))  # their mask row


def reference_embedding(state, data, conv):
    """Hu et al.'s GNN (JK last, eval mode) + mean pooling, from their keys, in plain torch."""
    src, dst = data.edge_index
    n = data.num_nodes
    loops = torch.arange(n)
    src, dst = torch.cat([src, loops]), torch.cat([dst, loops])
    bond = torch.cat([data.edge_attr[:, 0], torch.full((n,), 4)])
    direction = torch.cat([data.edge_attr[:, 1], torch.zeros(n, dtype=torch.long)])
    h = state["x_embedding1.weight"][data.x[:, 0]] + state["x_embedding2.weight"][data.x[:, 1]]
    for i in range(5):
        e = state[f"gnns.{i}.edge_embedding1.weight"][bond] + state[f"gnns.{i}.edge_embedding2.weight"][direction]
        lin = h @ state[f"gnns.{i}.linear.weight"].T + state[f"gnns.{i}.linear.bias"]
        msg = lin[src] + e
        if conv == "gcn":
            deg = torch.zeros(n).index_add_(0, src, torch.ones(len(src)))
            msg = msg * (deg[src] * deg[dst]).rsqrt().unsqueeze(-1)
            h = torch.zeros(n, h.size(1)).index_add_(0, dst, msg)
        else:
            count = torch.zeros(n).index_add_(0, dst, torch.ones(len(dst)))
            h = F.normalize(torch.zeros(n, h.size(1)).index_add_(0, dst, msg) / count.unsqueeze(-1), dim=-1)
        bn = {k: state[f"batch_norms.{i}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
        h = (h - bn["running_mean"]) / torch.sqrt(bn["running_var"] + 1e-5) * bn["weight"] + bn["bias"]
        if i < 4:
            h = torch.relu(h)
    return global_mean_pool(h, data.batch)


@pytest.mark.parametrize("name,conv", [("gcn_supervised_contextpred.pth", "gcn"),
                                       ("graphsage_supervised_contextpred.pth", "graphsage")])
def test_their_pre_trained_files_load_and_compute_what_their_model_computes(name, conv):
    path = PRETRAINED / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    cfg = fewshot_model_config(conv=conv, norm="batch", hidden=300, layers=5)
    state, notes = load_hu_encoder(path, cfg)
    enc = MolEncoder(cfg)
    enc.load_state_dict(state)
    enc.eval()
    data = molecules()
    with torch.no_grad():
        ours = global_mean_pool(enc(data), data.batch)
    theirs = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(ours, reference_embedding(theirs, data, conv), rtol=1e-4, atol=1e-4)
    assert ours.abs().sum() > 0 and "CHI_OTHER" in notes[0]


def test_mismatched_options_and_foreign_files_are_refused_with_what_to_set(tmp_path):
    theirs = hu_state_from_encoder(tiny(0, "gin"))
    with pytest.raises(ConfigError, match="norm=batch"):
        encoder_state_from_hu(theirs, MolEncoder(fewshot_model_config(**SMALL, layers=2, norm="layer")))
    with pytest.raises(ConfigError, match="layers=2"):
        encoder_state_from_hu(theirs, MolEncoder(fewshot_model_config(**SMALL, layers=3, norm="batch")))
    with pytest.raises(ConfigError, match="conv=gin"):
        encoder_state_from_hu(theirs, tiny(1, "gcn"))
    cfg = fewshot_model_config(**SMALL, layers=2, norm="batch")
    with pytest.raises(DataError, match="no such file"):
        load_hu_encoder(tmp_path / "missing.pth", cfg)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="cannot be read"):
        load_hu_encoder(tmp_path / "junk.pth", cfg)
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(DataError, match="not an encoder in Hu et al.'s format"):
        load_hu_encoder(tmp_path / "other.pth", cfg)
