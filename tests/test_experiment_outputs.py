"""What `gnnformer train` does with its output folder and its progress, and the layering of the package."""
import ast
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gnnformer import cli
from gnnformer.progress import Progress, iterate
from gnnformer.training.checkpoint import load_checkpoint

PACKAGE = Path(__file__).resolve().parents[1] / "gnnformer"
SMALL = ["--model", "gin", "--dataset", "MUTAG", "--epochs", "2", "--quiet", "model.hidden=8", "model.layers=1"]


def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_refused_before_training(tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    trained = []
    monkeypatch.setattr("gnnformer.training.experiment._run", lambda *a, **k: trained.append(1))
    try:
        code, _, err = run(capsys, "train", *SMALL, "--out", str(locked / "run"))
    finally:
        locked.chmod(0o700)
    assert code == 2 and "Cannot write into the output folder" in err and "--out" in err
    assert trained == []


def test_out_below_a_file_is_refused_before_training(tmp_path, capsys, monkeypatch):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    trained = []
    monkeypatch.setattr("gnnformer.training.experiment._run", lambda *a, **k: trained.append(1))
    code, _, err = run(capsys, "train", *SMALL, "--out", str(target / "run"))
    assert code == 2 and f"Cannot write into the output folder {target / 'run'}" in err
    assert target.read_text() == "not a folder" and trained == []


def test_a_failed_run_leaves_no_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()  # a data root without PROTEINS: the run fails after the folder check
    out = tmp_path / "new" / "run"
    code, _, err = run(capsys, "train", "--model", "gin", "--dataset", "PROTEINS", "--data-root", str(tmp_path / "empty"),
                       "--epochs", "1", "--quiet", "--out", str(out))
    assert code == 2 and "PROTEINS" in err
    assert not out.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("x")
    code, _, _ = run(capsys, "train", "--model", "gin", "--dataset", "PROTEINS", "--data-root", str(tmp_path / "empty"),
                     "--epochs", "1", "--quiet", "--out", str(kept))
    assert code == 2 and (kept / "mine.txt").read_text() == "x"  # a folder it did not make is left alone


def test_rerun_into_the_same_folder_says_it_replaces_results(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", *SMALL, "--out", str(out), "--data-root", "relative/../")
    assert code == 2  # MUTAG is not in that root; nothing written, nothing said about replacing
    assert "replaced" not in err
    code, _, err = run(capsys, "train", *SMALL, "--out", str(out))
    assert code == 0 and "replaced" not in err
    code, _, err = run(capsys, "train", *SMALL, "--out", str(out))
    assert code == 0 and "holds an earlier run; its metrics.json, config.yaml, best.pt, curves.png will be replaced" in err


def test_checkpoint_stores_the_data_root_resolved(tmp_path, capsys, monkeypatch):
    from gnnformer.paths import EMBEDDED_ROOT

    monkeypatch.chdir(EMBEDDED_ROOT.parent)
    code, _, err = run(capsys, "train", *SMALL, "--out", str(tmp_path / "r"), "--data-root", EMBEDDED_ROOT.name)
    assert code == 0, err
    stored = load_checkpoint(tmp_path / "r" / "best.pt")["experiment"]["data_root"]
    assert stored == str(EMBEDDED_ROOT.resolve())
    assert f"data_root: {EMBEDDED_ROOT.resolve()}" in (tmp_path / "r" / "config.yaml").read_text()


def test_progress_without_a_terminal_prints_plain_lines():
    stream = io.StringIO()
    with Progress(stream=stream) as progress:
        task = progress.add("gin on MUTAG fold 1/2", total=20)
        for i in range(20):
            task.advance(status=f"loss {1 / (i + 1):.3f}")
        task.done()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "gin on MUTAG fold 1/2  started"
    # a line every 2 epochs (a tenth of 20) up to 18, then the end line
    assert [ln.split("  ")[1] for ln in lines[1:-1]] == [f"{k}/20" for k in range(2, 20, 2)]
    assert lines[1].endswith("loss 0.500")
    assert lines[-1].startswith("gin on MUTAG fold 1/2  done  20/20 in ") and lines[-1].endswith("loss 0.050")
    assert "\x1b" not in stream.getvalue()  # no terminal control codes in a log
    quiet = io.StringIO()
    assert list(iterate(range(3), "x", enabled=False, stream=quiet)) == [0, 1, 2] and quiet.getvalue() == ""


def test_train_into_a_log_reports_every_fold(tmp_path):
    # stderr is a pipe here, not a terminal: the plain lines must be there while the run goes on.
    proc = subprocess.run([sys.executable, "-m", "gnnformer", "train", "--model", "gin", "--dataset", "MUTAG",
                           "--epochs", "2", "--folds", "3", "--out", str(tmp_path / "r"), "model.hidden=8"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for fold in (1, 2, 3):
        assert f"gin on MUTAG fold {fold}/3  started" in proc.stderr
        assert f"gin on MUTAG fold {fold}/3  done  2/2 in " in proc.stderr


def test_plotting_never_changes_matplotlib_backend(tmp_path):
    code = ("import matplotlib; matplotlib.use('svg'); import gnnformer.training as T; "
            "from gnnformer.training.plots import plot_curves; "
            f"plot_curves([[{{'epoch': 1, 'train_loss': 1.0, 'val_loss': 1.0, 'val_accuracy': 0.5}}]], 'accuracy', "
            f"r'{tmp_path / 'c.png'}'); print(matplotlib.get_backend())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "svg"
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# Which top-level parts of the package each part may import: only the ones below it.
ALLOWED = {
    "nn": {"nn", "errors", "registry"},
    "tasks": {"tasks", "errors"},
    "datasets": {"datasets", "nn", "errors", "paths", "registry", "progress", "config"},
    "models": {"models", "nn", "errors", "registry", "config"},
    "training": {"training", "models", "datasets", "tasks", "nn", "errors", "paths", "registry", "progress",
                 "config"},
    "glem": {"glem", "training", "models", "datasets", "tasks", "nn", "errors", "paths", "registry", "progress",
             "config"},
    "explain": {"explain", "training", "models", "datasets", "tasks", "nn", "errors", "paths", "registry",
                "progress", "config"},
    "clgt": {"clgt", "explain", "training", "models", "datasets", "tasks", "nn", "errors", "paths", "registry",
             "progress", "config"},
}


def _imports(path: Path):
    """The top-level parts of the package (``nn``, ``training``, ``errors``...) that ``path`` imports."""
    package = list(path.relative_to(PACKAGE).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            modules = [base + node.module.split(".")] if node.module else [base + [a.name] for a in node.names]
            # a name that is no module of the package (``from .. import __version__``) is an attribute
            yield from (m[0] for m in modules if m and ((PACKAGE / m[0]).is_dir() or (PACKAGE / f"{m[0]}.py").exists()))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gnnformer."):
            yield node.module.split(".")[1]
        elif isinstance(node, ast.Import):
            yield from (a.name.split(".")[1] for a in node.names if a.name.startswith("gnnformer."))


def test_imports_only_go_down_the_layers():
    wrong = [f"{path.relative_to(PACKAGE)} imports {target}"
             for layer, allowed in ALLOWED.items() for path in sorted((PACKAGE / layer).rglob("*.py"))
             for target in _imports(path) if target not in allowed]
    assert wrong == []
