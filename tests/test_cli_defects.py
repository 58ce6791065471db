"""What a new user of the `gnnformer` command meets first: start-up, `list`, checkpoint paths,
SMILES predictions and checkpoints moved away from the folder they were trained in."""
import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gnnformer import catalog, cli
from gnnformer.training.checkpoint import load_checkpoint, save_checkpoint
from gnnformer.training.inference import model_from_checkpoint

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def python(code: str) -> list:
    """The lines ``python -c code`` prints in a fresh interpreter (which must exit 0)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "GNNFORMER_DEBUG": "1"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


# ----------------------------------------------------------------------------- start-up and `list`


def test_help_and_list_do_not_import_torch():
    lines = python(
        "import sys\n"
        "from gnnformer.cli import main\n"
        "codes = [main(['--help']), main(['train', '--help']), main(['predict', '--help']), main(['list'])]\n"
        "heavy = sorted(m for m in ('torch', 'torch_geometric', 'rdkit', 'rich') if m in sys.modules)\n"
        "print('RESULT', codes, heavy)\n")
    assert lines[-1] == "RESULT [0, 0, 0, 0] []"


def test_package_exposes_create_model_on_first_use():
    lines = python(
        "import sys, gnnformer\n"
        "before = 'torch' in sys.modules\n"
        "import gnnformer.models as M\n"
        "same = gnnformer.create_model is M.create_model and gnnformer.list_models is M.list_models\n"
        "print('RESULT', before, same, 'create_model' in dir(gnnformer))\n")
    assert lines == ["RESULT False True True"]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        import gnnformer

        gnnformer.nope


def test_catalog_matches_the_registries():
    from gnnformer.datasets import list_datasets
    from gnnformer.datasets.text_graph import TEXT_DATASETS
    from gnnformer.fewshot import list_fewshot_models
    from gnnformer.models import list_models

    registered = {"MODELS": tuple(list_models()), "FEWSHOT_MODELS": tuple(list_fewshot_models()),
                  "DATASETS": tuple(list_datasets()), "TEXT_DATASETS": tuple(sorted(TEXT_DATASETS.items()))}
    for name, entries in registered.items():
        table = "\n".join(f"    ({n!r}, {s!r})," for n, s in entries)
        assert getattr(catalog, name) == entries, f"update gnnformer/catalog.py: {name} = (\n{table}\n)"


def test_list_piped_prints_whole_plain_lines():
    lines = python("from gnnformer.cli import main; raise SystemExit(main(['list']))")
    expected = []
    for heading, entries in catalog.SECTIONS:
        expected += [heading, *(f"  {name:<14} {summary}" for name, summary in entries)]
    assert lines == expected  # one line per entry, no ANSI codes, nothing wrapped
    assert max(len(line) for line in lines) > 120  # wrapping at 80 columns would have split some


# ----------------------------------------------------------------------------- a folder as --checkpoint


@pytest.mark.parametrize("files, suggested", [
    (["best.pt", "checkpoints/x.pt"], ["best.pt"]),
    (["checkpoints/fs-gin-none.pt", "checkpoints/fs-gnncvtr-none.pt"],
     ["checkpoints/fs-gin-none.pt", "checkpoints/fs-gnncvtr-none.pt"]),
    (["metrics.json"], []),
])
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_folder_as_checkpoint_names_the_files_inside(tmp_path, capsys, command, files, suggested):
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    extra = ["--input", str(tmp_path)] if command == "predict" else []
    code, _, err = run(capsys, command, "--checkpoint", str(tmp_path), *extra)
    assert code == 2 and "Traceback" not in err
    assert f"Checkpoint {tmp_path} is a folder, not a checkpoint file" in err and "does not exist" not in err
    named = sorted(line.strip() for line in err.splitlines() if line.strip().endswith(".pt"))
    if len(suggested) == 1:
        assert f"did you mean {tmp_path / suggested[0]}?" in err
    elif suggested:
        assert named == [str(tmp_path / s) for s in suggested]
    else:
        assert "holds none" in err


# ----------------------------------------------------------------------------- SMILES predictions

TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


def tiny_tox21(root: Path) -> None:
    """A 40-molecule tox21.csv in MoleculeNet's layout: 12 label columns, mol_id, smiles."""
    stems = ["C" * n for n in range(2, 12)]
    smiles = [s for stem in stems for s in (stem, stem + "O", stem + "N", "c1ccccc1" + stem)]
    rows = [",".join(TOX21_TASKS + ["mol_id", "smiles"])]
    for i, sm in enumerate(smiles):
        labels = ["" if (i * t) % 7 == 3 else str((i + t) % 2) for t in range(12)]
        rows.append(",".join(labels + [f"TOX{i}", sm]))
    raw = root / "MoleculeNet" / "tox21" / "raw"
    raw.mkdir(parents=True)
    (raw / "tox21.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def tox21_run(tmp_path_factory):
    """GIN trained for one epoch on a tiny Tox21 from inside its project folder, with a relative --data-root."""
    project = tmp_path_factory.mktemp("project")
    tiny_tox21(project / "data")
    cwd = os.getcwd()
    os.chdir(project)
    try:
        code = cli.main(["train", "--model", "gin", "--dataset", "Tox21", "--data-root", "data", "--epochs", "1",
                         "--out", "runs/tiny", "--quiet", "model.hidden=16", "model.layers=1"])
    finally:
        os.chdir(cwd)
    assert code == 0
    # Store the data root as older versions did: as given, relative to where training ran.
    ckpt = load_checkpoint(project / "runs" / "tiny" / "best.pt")
    ckpt["experiment"]["data_root"] = "data"
    save_checkpoint(project / "runs" / "tiny" / "best.pt", {k: v for k, v in ckpt.items() if k != "format"})
    return project


def expected_probabilities(ckpt_path: Path, smiles: list) -> torch.Tensor:
    """The model applied to each molecule on its own (PyG's from_smiles, one-hot as in training)."""
    from torch_geometric.data import Batch
    from torch_geometric.utils import from_smiles

    from gnnformer.datasets.molecules import ATOM_VOCAB, BOND_VOCAB, one_hot_columns

    model = model_from_checkpoint(load_checkpoint(ckpt_path))
    out = []
    with torch.no_grad():
        for sm in smiles:
            g = from_smiles(sm)
            g.x, g.edge_attr = one_hot_columns(g.x, ATOM_VOCAB), one_hot_columns(g.edge_attr, BOND_VOCAB)
            out.append(model(Batch.from_data_list([g])).sigmoid())
    return torch.cat(out)


@pytest.mark.parametrize("name, text, lines", [
    ("new.smi", "CCO\n\nc1ccccc1C\n\n\nCC(=O)O extra-token\n", [1, 3, 6]),
    ("new.csv", "id,smiles\n\na,CCO\nb,c1ccccc1C\n\n\nc,CC(=O)O\n", [3, 4, 7]),
])
def test_predict_smiles_rows_name_line_smiles_and_tasks(tox21_run, tmp_path, capsys, name, text, lines):
    ckpt = tox21_run / "runs" / "tiny" / "best.pt"
    src = tmp_path / name
    src.write_text(text)
    code, out, err = run(capsys, "predict", "--checkpoint", str(ckpt), "--input", str(src))
    assert code == 0, err
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["line", "smiles", *TOX21_TASKS]
    assert [(int(r[0]), r[1]) for r in table[1:]] == list(zip(lines, ["CCO", "c1ccccc1C", "CC(=O)O"]))
    got = torch.tensor([[float(v) for v in r[2:]] for r in table[1:]])
    torch.testing.assert_close(got, expected_probabilities(ckpt, ["CCO", "c1ccccc1C", "CC(=O)O"]),
                               atol=1e-6, rtol=0)


def test_task_names_match_the_moleculenet_csv_headers(shared_root):
    from torch_geometric.datasets import MoleculeNet

    from gnnformer.datasets.molecules import KNOWN_MOLECULES, TASK_NAMES
    from gnnformer.datasets.validate import validate_molecule_csv

    assert set(TASK_NAMES) == set(KNOWN_MOLECULES)
    for name, (lower, _) in KNOWN_MOLECULES.items():
        _, _, _, smiles_col, label_cols = MoleculeNet.names[lower]
        rows = validate_molecule_csv(shared_root / "MoleculeNet" / lower / "raw" / f"{lower}.csv", smiles_col, label_cols)
        assert list(TASK_NAMES[name]) == rows.tasks


# ----------------------------------------------------------------------------- relative data roots


def test_eval_finds_a_relative_data_root_from_another_folder(tox21_run, tmp_path, capsys, monkeypatch):
    ckpt = tox21_run / "runs" / "tiny" / "best.pt"
    stored = load_checkpoint(ckpt)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "eval", "--checkpoint", str(ckpt))
    assert code == 0, err
    assert f"using {tox21_run / 'data'}" in err
    auc = stored["metrics"]["test"]["roc_auc"]
    assert auc == auc  # a defined ROC-AUC, so the comparison below means something
    assert f"test_roc_auc    {auc:.4f}   (at save time: {auc:.4f})" in out


def test_eval_without_the_stored_data_root_says_what_to_pass(tox21_run, tmp_path, capsys, monkeypatch):
    moved = tmp_path / "moved"
    ckpt = moved / "runs" / "tiny" / "best.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes((tox21_run / "runs" / "tiny" / "best.pt").read_bytes())
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "eval", "--checkpoint", str(ckpt))
    assert code == 2 and "Traceback" not in err
    assert "The checkpoint's data root 'data' (stored at training time" in err
    assert "Pass --data-root" in err and "from --data-root" not in err
    for tried in (tmp_path / "data", moved / "runs" / "tiny" / "data", moved / "runs" / "data", moved / "data"):
        assert f"  {tried}\n" in err
    # Pointing --data-root at the data works again.
    code, out, err = run(capsys, "eval", "--checkpoint", str(ckpt), "--data-root", str(tox21_run / "data"))
    assert code == 0, err
    assert "test_roc_auc" in out
