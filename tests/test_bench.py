"""`gnnformer bench`: the one list of benchmark pieces, run in order, failures reported, bad input refused."""
from pathlib import Path

from gnnformer import bench, cli


def test_dry_run_lists_every_piece_with_its_quick_arguments_and_an_absolute_data_root(capsys, tmp_path):
    assert cli.main(["bench", "--quick", "--dry-run", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [p.name for p in bench.SUITE]
    epoch = next(line for line in lines if line.startswith("graph-epoch"))
    assert str(bench.BENCHMARKS / "bench_graph_epoch.py") in epoch
    assert epoch.endswith(f"--no-write --data-root {tmp_path.resolve()}")
    assert all((bench.BENCHMARKS / p.script).is_file() for p in bench.SUITE)


def test_bad_requests_are_refused_before_anything_runs(capsys, monkeypatch, tmp_path):
    assert cli.main(["bench", "--only", "layers", "--only", "nope", "--dry-run"]) == 2
    assert "unknown benchmark piece(s) nope; the pieces are layers, graph-epoch" in capsys.readouterr().err
    monkeypatch.delenv("GNNFORMER_DATA", raising=False)
    assert cli.main(["bench", "--only", "graph-epoch", "--dry-run"]) == 2
    assert "graph-epoch needs NCI1 from a data root: pass --data-root" in capsys.readouterr().err
    assert cli.main(["bench", "--dry-run"]) == 2
    assert "graph-epoch and distributed need NCI1 from a data root" in capsys.readouterr().err
    assert cli.main(["bench", "--only", "distributed", "--dry-run", "--data-root", str(tmp_path / "nope")]) == 2
    assert f"distributed needs NCI1 from a data root, and {tmp_path / 'nope'} is not a folder" in capsys.readouterr().err
    monkeypatch.setattr(bench, "BENCHMARKS", tmp_path / "benchmarks")
    assert cli.main(["bench", "--only", "layers", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "source checkout" in err and "lacks bench_layers.py" in err


def test_a_failing_piece_is_reported_and_the_rest_still_run(capsys, monkeypatch, tmp_path):
    scripts = tmp_path / "benchmarks"
    scripts.mkdir()
    log = tmp_path / "ran.txt"
    (scripts / "fails.py").write_text(f"open({str(log)!r}, 'a').write('fails\\n'); raise SystemExit(3)\n")
    (scripts / "works.py").write_text("import sys\n"
                                      f"open({str(log)!r}, 'a').write('works ' + ' '.join(sys.argv[1:]) + '\\n')\n")
    monkeypatch.setattr(bench, "BENCHMARKS", scripts)
    monkeypatch.setattr(bench, "SUITE", (bench.Piece("first", "fails.py", "exits 3"),
                                         bench.Piece("second", "works.py", "fine", full=("--full",),
                                                     quick=("--quick",))))
    assert cli.main(["bench"]) == 1
    assert log.read_text() == "fails\nworks --full\n"
    out = capsys.readouterr().out
    assert "FAILED (exit 3)" in out.splitlines()[-2] and out.splitlines()[-1].split()[-1] == "ok"
    log.unlink()
    assert cli.main(["bench", "--quick", "--only", "second"]) == 0
    assert log.read_text() == "works --quick\n"
    assert capsys.readouterr().out.rstrip().endswith("quick check passed (nothing written)")
