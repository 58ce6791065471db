"""The GIN layer of Hu et al. (MolGINConv) by hand, and the few-shot encoder on PyG batches."""
import pytest
import torch
from torch_geometric.data import Batch

from gnnformer.fewshot.featurize import BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, SELF_LOOP, smiles_to_graph
from gnnformer.fewshot.model import create_fewshot_model
from gnnformer.nn import MolGINConv


def _hand_layer() -> MolGINConv:
    conv = MolGINConv(2, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, SELF_LOOP)
    with torch.no_grad():
        conv.bond.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0], [3.0, -1.0]]))
        conv.direction.weight.copy_(torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
        conv.mlp[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [-1.0, 2.0]]))
        conv.mlp[0].bias.zero_()
        conv.mlp[2].weight.copy_(torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, -1.0]]))
        conv.mlp[2].bias.copy_(torch.tensor([0.0, 0.5]))
    return conv


def test_mol_gin_layer_equals_hand_computation_on_three_atoms():
    # chain 0 - 1 - 2 (as C-C=O): bond 0-1 single (type 0) with direction 1, bond 1-2 double (type 1)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    edge_index = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    edge_attr = torch.tensor([[0, 1], [0, 1], [1, 0], [1, 0]])
    # sum over in-edges j -> i and the self-loop (bond 4 = [3, -1], direction 0) of x_j + B[b] + D[d]:
    # atom 0: (x1 + B0 + D1) + (x0 + B4) = [1, 3] + [4, -1] = [5, 2]   (no ReLU on the messages:
    #         with one, as in GINEConv, the self-loop message would count as [4, 0])
    # atom 1: (x0 + B0 + D1) + (x2 + B1) + (x1 + B4) = [2, 2] + [2, 3] + [3, 0] = [7, 5]
    # atom 2: (x1 + B1) + (x2 + B4) = [0, 2] + [5, 1] = [5, 3]
    # MLP: W1 a = [a0, a1, a0 - a1, 2 a1 - a0] -> ReLU -> [sum, h0 - h3] + [0, 0.5]
    # atom 0: [5, 2, 3, -1 -> 0] -> [10, 5.5]; atom 1: [7, 5, 2, 3] -> [17, 4.5]; atom 2: [5, 3, 2, 1] -> [11, 4.5]
    out = _hand_layer()(x, edge_index, edge_attr)
    assert out.tolist() == [[10.0, 5.5], [17.0, 4.5], [11.0, 4.5]]


def test_mol_gin_layer_isolated_atom_sees_only_its_self_loop():
    conv = _hand_layer()
    out = conv(torch.tensor([[1.0, 1.0]]), torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long))
    # a = x + B4 = [4, 0] -> W1 a = [4, 0, 4, -4] -> ReLU [4, 0, 4, 0] -> [8, 4] + [0, 0.5]
    assert out.tolist() == [[8.0, 4.5]]


def test_mol_gin_layer_reset_parameters_draws_new_weights():
    conv = MolGINConv(8, BOND_EMBEDDINGS, NUM_BOND_DIRECTIONS, SELF_LOOP)
    with torch.no_grad():
        for p in conv.parameters():
            p.zero_()
    conv.reset_parameters()
    assert all(bool(p.abs().sum() > 0) for p in conv.parameters())
    bound = (6.0 / (BOND_EMBEDDINGS + 8)) ** 0.5  # Glorot-uniform bound of the bond table
    assert float(conv.bond.weight.detach().abs().max()) <= bound
    with pytest.raises(ValueError, match="self_loop_type"):
        MolGINConv(8, 4, NUM_BOND_DIRECTIONS, 4)


def test_encoder_state_dict_names_are_those_of_stored_checkpoints():
    gin = ["encoder.atom.weight", "encoder.chirality.weight",
           "encoder.layers.0.mlp.0.weight", "encoder.layers.0.mlp.0.bias", "encoder.layers.0.mlp.2.weight",
           "encoder.layers.0.mlp.2.bias", "encoder.layers.0.bond.weight", "encoder.layers.0.direction.weight"]
    # BatchNorm by default (with its running statistics); checkpoints stored with norm=layer keep loading,
    # since a checkpoint's model_config names its norm.
    assert list(create_fewshot_model("fs-gin", hidden=16, layers=1).state_dict()) == gin + [
        "encoder.norms.0.weight", "encoder.norms.0.bias", "encoder.norms.0.running_mean",
        "encoder.norms.0.running_var", "encoder.norms.0.num_batches_tracked", "head.weight", "head.bias"]
    assert list(create_fewshot_model("fs-gin", hidden=16, layers=1, norm="layer").state_dict()) == gin + [
        "encoder.norms.0.weight", "encoder.norms.0.bias", "head.weight", "head.bias"]


def test_batched_embedding_equals_molecules_one_by_one():
    model = create_fewshot_model("fs-gnncvtr", hidden=16, layers=3, tr_dim=8, tr_heads=2, token_kernel=3,
                                 token_stride=2).eval()
    graphs = [smiles_to_graph(s) for s in ["CCO", "c1ccccc1", "F/C=C/F", "[Na+]", "CC(=O)O"]]
    with torch.no_grad():
        batched = model.embed(Batch.from_data_list(graphs))
        # one molecule at a time, pooled by hand: the mean of its atoms' embeddings
        alone = torch.stack([model.encoder(g).mean(dim=0) for g in graphs])
        single = model.embed(graphs[1])  # a plain Data is one molecule
    assert batched.shape == (5, 16)
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(single, alone[1:2], atol=1e-6, rtol=1e-6)
