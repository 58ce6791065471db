"""Hu et al. (2020) molecule features, checked by hand on small molecules, and invalid SMILES."""
import json

import pytest
from torch_geometric.data import Batch

from gnnformer.errors import DataError
from gnnformer.fewshot.featurize import (MASK_ATOM, NUM_ATOM_TYPES, OTHER_ATOM, SELF_LOOP, FeaturizeError, Entry,
                                         featurize_entries, read_labelled_csv, read_smiles_file, read_task_json,
                                         smiles_to_graph)


def test_lactaldehyde_atoms_bonds_and_chirality():
    # C[C@H](O)C=O: C C(chiral, '@' = counter-clockwise) O C O; bonds C-C, C-O, C-C single, C=O double
    g = smiles_to_graph("C[C@H](O)C=O")
    assert g.num_nodes == 5
    # atom type = atomic number - 1 (C 6 -> 5, O 8 -> 7); chirality CCW = 2
    assert g.x.tolist() == [[5, 0], [5, 2], [7, 0], [5, 0], [7, 0]]
    assert g.edge_index.tolist() == [[0, 1, 1, 2, 1, 3, 3, 4], [1, 0, 2, 1, 3, 1, 4, 3]]  # 4 bonds, both ways
    assert g.edge_attr.tolist() == [[0, 0]] * 6 + [[1, 0]] * 2  # single x3, double x1; no direction
    assert smiles_to_graph("C[C@@H](O)C=O").x[1].tolist() == [5, 1]  # '@@' = clockwise


def test_directional_bonds_trans_and_cis():
    trans = smiles_to_graph("F/C=C/F")
    assert trans.x.tolist() == [[8, 0], [5, 0], [5, 0], [8, 0]]  # F 9 -> 8
    # F/C: single, ENDUPRIGHT (1); C=C: double, none; C/F: single, ENDUPRIGHT
    assert trans.edge_attr.tolist() == [[0, 1], [0, 1], [1, 0], [1, 0], [0, 1], [0, 1]]
    cis = smiles_to_graph("F/C=C\\F")
    assert cis.edge_attr.tolist() == [[0, 1], [0, 1], [1, 0], [1, 0], [0, 2], [0, 2]]  # '\' = ENDDOWNRIGHT (2)


def test_aromatic_triple_other_atoms_and_other_chirality():
    benzene = smiles_to_graph("c1ccccc1")
    assert benzene.num_nodes == 6 and benzene.edge_index.size(1) == 12
    assert set(map(tuple, benzene.edge_attr.tolist())) == {(3, 0)}
    assert smiles_to_graph("C#N").edge_attr.tolist() == [[2, 0], [2, 0]] and smiles_to_graph("C#N").x[1, 0] == 6
    assert smiles_to_graph("*C").x[0, 0] == OTHER_ATOM == NUM_ATOM_TYPES - 1
    assert smiles_to_graph("F[Pt@SP1](Cl)(Br)I").x[1].tolist() == [77, 3]  # square planar -> CHI_OTHER
    assert MASK_ATOM == NUM_ATOM_TYPES and SELF_LOOP == 4


def test_unencodable_molecules_say_why():
    with pytest.raises(FeaturizeError, match="syntax"):
        smiles_to_graph("C1CC")
    with pytest.raises(FeaturizeError, match="valence"):
        smiles_to_graph("C(C)(C)(C)(C)C")
    with pytest.raises(FeaturizeError, match="DATIVE"):
        smiles_to_graph("[NH3]->[Cu]")
    with pytest.raises(FeaturizeError, match="empty"):
        smiles_to_graph("  ")


def test_batch_offsets_edges():
    b = Batch.from_data_list([smiles_to_graph("CCO"), smiles_to_graph("F/C=C/F")])
    assert b.num_graphs == 2 and b.batch.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert b.edge_index.size(1) == 4 + 6 and int(b.edge_index[:, 4:].min()) == 3


def _smi(tmp_path):
    path = tmp_path / "query.smi"
    path.write_text("CCO first\nC1CC\n\nC(C)(C)(C)(C)C\nc1ccccc1\n")
    return path


def test_invalid_smiles_error_names_file_and_line(tmp_path):
    path = _smi(tmp_path)
    with pytest.raises(DataError) as err:
        featurize_entries(read_smiles_file(path), "error")
    msg = str(err.value)
    assert f"{path}:2:" in msg and "syntax" in msg
    assert f"{path}:4:" in msg and "valence" in msg
    assert "--invalid skip" in msg


def test_invalid_smiles_skip_keeps_the_rest(tmp_path):
    good, bad = featurize_entries(read_smiles_file(_smi(tmp_path)), "skip")
    assert [e.line for e, _ in good] == [1, 5]
    assert [(r.entry.line, r.entry.smiles) for r in bad] == [(2, "C1CC"), (4, "C(C)(C)(C)(C)C")]
    assert str(bad[0]).startswith(f"{tmp_path / 'query.smi'}:2:")


def test_task_json_lines_and_labels(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps([["CCO", "C1CC"], ["c1ccccc1"]], indent=1))  # one SMILES per line
    entries = read_task_json(path)
    assert [(e.smiles, e.label, e.line) for e in entries] == [("CCO", 0, 3), ("C1CC", 0, 4), ("c1ccccc1", 1, 7)]
    good, bad = featurize_entries(entries, "skip")
    assert bad[0].entry.locate() == f"{path}:4 (negatives #2)"
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="two lists"):
        read_task_json(tmp_path / "bad.json")


def test_labelled_support_csv(tmp_path):
    path = tmp_path / "support.csv"
    path.write_text("smiles,label\nCCO,1\nCCN,0\n")
    assert [(e.smiles, e.label, e.line) for e in read_labelled_csv(path)] == [("CCO", 1, 2), ("CCN", 0, 3)]
    path.write_text("smiles,label\nCCO,1\nCCN,maybe\n")
    with pytest.raises(DataError, match=r"support.csv:3: label 'maybe'"):
        read_labelled_csv(path)
    path.write_text("smiles\nCCO\n")
    with pytest.raises(DataError, match="no label column"):
        read_labelled_csv(path)


def test_cache_parses_each_smiles_once():
    cache = {}
    entries = [Entry("CCO", "f", 1), Entry("CCO", "g", 7), Entry("C1CC", "f", 2)]
    good, bad = featurize_entries(entries, "skip", cache)
    assert len(good) == 2 and good[0][1] is good[1][1] and set(cache) == {"CCO", "C1CC"}
    assert bad[0].entry.line == 2
