"""The ``gnnformer`` command. Thin: it parses arguments and calls the library.

Exit codes: 0 success, 2 user error (bad flag, bad file, missing data), 1 internal error.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import click

from .config import merge_settings
from .errors import ConfigError, UserError

DEMO_MODELS = ("gps", "gin", "transformer")


def _console():
    from rich.console import Console

    # Piped or logged, a table keeps its full width instead of wrapping at rich's default 80 columns.
    return Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 200)


def _fmt(stat: Optional[Dict[str, Any]]) -> str:
    if not stat or stat.get("mean") is None or math.isnan(stat["mean"]):
        return "n/a"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def _results_table(title: str, rows: List[Dict[str, Any]], keys: List[str]):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("model")
    for key in keys:
        table.add_column(key, justify="right")
    for row in rows:
        table.add_row(row["model"], *(_fmt(row.get(k)) for k in keys))
    return table


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gnnformer")
def cli() -> None:
    """Graph transformers: GNN message passing fused with Transformer attention."""


@cli.command("list")
def list_cmd() -> None:
    """List every model and dataset, one line each."""
    from .catalog import SECTIONS

    # Plain lines, never wrapped: headings are bold on a terminal and unstyled when piped.
    for heading, entries in SECTIONS:
        click.echo(click.style(heading, bold=True))
        for name, summary in entries:
            click.echo(f"  {name:<14} {summary}")


@cli.command(context_settings={"ignore_unknown_options": False})
@click.option("--model", "model", help="Model name (see `gnnformer list`).")
@click.option("--dataset", "dataset", help="Dataset name (see `gnnformer list`).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of settings.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding the datasets (else $GNNFORMER_DATA, else the embedded data).")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs per run.")
@click.option("--seed", type=int, help="Random seed (splits, initialisation, batches).")
@click.option("--folds", type=click.IntRange(min=0), help="Stratified k-fold cross-validation (0 = off).")
@click.option("--split-file", type=click.Path(dir_okay=False),
              help='JSON {"train": [...], "valid": [...], "test": [...]} of indices, used for every run (split=file).')
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output folder [runs/<model>-<dataset>].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--no-preset", is_flag=True, help="The library's defaults, not the paper's settings for this model and dataset.")
@click.argument("overrides", nargs=-1)
def train(model, dataset, config_file, data_root, epochs, seed, folds, split_file, out_dir, quiet, no_preset,
          overrides) -> None:
    """Train a model; write metrics.json, config.yaml, best.pt and curves.png.

    Where a paper gives settings for the model and dataset (and no --config is given), they are
    used and named; OVERRIDES are key=value settings over them, e.g. lr=0.001 runs=3 model.hidden=128.
    """
    from .training import config_from_mapping, run_experiment
    from .training.experiment import continue_info, earlier_results
    from .training.presets import with_preset
    from .training.settings import ExperimentConfig

    values = merge_settings(config_file, dict(model=model, dataset=dataset, data_root=data_root, epochs=epochs,
                                              seed=seed, folds=folds, split_file=split_file,
                                              split="file" if split_file else None), overrides)
    preset, given = None, values
    if config_file is None and not no_preset:
        values, preset = with_preset(values, values.get("model", ExperimentConfig.model),
                                     values.get("dataset", ExperimentConfig.dataset))
    cfg = config_from_mapping(values)
    first = os.environ.get("RANK", "0") == "0"  # under torchrun the first process speaks for all
    if preset is not None and first:
        click.echo(f"using {preset.source} for {preset.model}: {preset.describe(given)} "
                   "(key=value overrides any of them; --no-preset: the library's defaults)", err=True)
    out = Path(out_dir or f"runs/{cfg.model}-{cfg.dataset}")
    replaced = earlier_results(out) if first else []
    if replaced:
        click.echo(f"note: {out} holds an earlier run; its {', '.join(replaced)} will be replaced "
                   "when this one finishes (--out chooses another folder).", err=True)
    resumed = continue_info(cfg, out) if first else None
    if resumed:
        click.echo(f"continuing the interrupted run in {out}: {resumed}", err=True)
    try:
        metrics = run_experiment(cfg, out, progress=not quiet)
    except KeyboardInterrupt:
        if (out / "resume").is_dir():
            click.echo(f"stopped; the finished epochs are kept in {out}/resume/: the same command continues.", err=True)
        raise
    if not first:
        return
    console = _console()
    for note in metrics["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    keys = [k for k in metrics if k.startswith("test_")]
    console.print(_results_table(metrics["dataset"], [metrics], keys))
    console.print(f"protocol: {metrics['protocol']}")
    console.print(f"wrote {out}/metrics.json, config.yaml, best.pt, curves.png")


@cli.command("eval")
@click.option("--checkpoint", required=True, type=click.Path(), help="A best.pt written by `gnnformer train`.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding the datasets.")
def eval_cmd(checkpoint, data_root) -> None:
    """Evaluate a checkpoint on the test split it was selected with."""
    from .training.checkpoint import load_checkpoint
    from .training.inference import evaluate_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("model") == "glem-lm":
        raise UserError(f"{checkpoint} is a GLEM-LM checkpoint: its scores are in the metrics.json of `gnnformer glem`; "
                        "score new texts with `gnnformer predict --checkpoint C --text \"...\"`.")
    if isinstance(ckpt.get("fewshot"), dict):
        raise UserError(f"{checkpoint} is a few-shot checkpoint: its test results come from `gnnformer fewshot` "
                        "(metrics.json); apply it to a new task with `gnnformer predict --support`.")
    res = evaluate_checkpoint(checkpoint, data_root)
    for note in res["notes"]:
        click.echo(f"note: {note}", err=True)
    console = _console()
    console.print(f"{res['model']} on {res['dataset']} (test split of the checkpoint)")
    for key, value in res["test"].items():
        stored = res["stored_test"].get(key)
        extra = f"   (at save time: {stored:.4f})" if isinstance(stored, float) else ""
        console.print(f"  test_{key:<10} {value:.4f}{extra}")


@cli.command()
@click.option("--checkpoint", required=True, type=click.Path(),
              help="A best.pt of `gnnformer train`, a few-shot checkpoint of `gnnformer fewshot`, or a GLEM-LM checkpoint of `gnnformer glem`.")
@click.option("--input", "input_path", type=click.Path(),
              help="Graphs to predict: a TU raw folder, a Planetoid raw folder, or a SMILES file; "
                   "for GLEM: texts, one per line (.txt) or a 'text' column (.csv).")
@click.option("--text", "texts", multiple=True, help="GLEM checkpoints: a text to classify (repeatable).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write CSV here instead of standard output.")
@click.option("--support", type=click.Path(dir_okay=False),
              help="Few-shot checkpoints only (required there): CSV of labelled molecules (smiles,label) to adapt to.")
@click.option("--invalid", type=click.Choice(["skip", "error"]), default=None,
              help="Few-shot checkpoints only: skip SMILES RDKit cannot encode (reported with file:line) or stop [error].")
def predict(checkpoint, input_path, texts, output, support, invalid) -> None:
    """Predict with a checkpoint; prints one CSV row per graph (or node).

    A few-shot checkpoint is first adapted to the labelled --support set, then scores every
    SMILES of --input (one probability per molecule). A GLEM-LM checkpoint scores texts alone
    (--text or --input): id, predicted class, one probability per class.
    """
    from .fewshot.predict import is_fewshot
    from .training.checkpoint import load_checkpoint
    from .training.inference import prediction_table, predict_file

    ckpt = load_checkpoint(checkpoint)
    if ckpt.get("model") == "glem-lm":
        from .glem.predict import prediction_rows, texts_to_score

        _write_csv(*prediction_rows(ckpt, texts_to_score(texts, input_path), where=checkpoint), output)
        return
    if texts:
        raise UserError(f"--text is for GLEM-LM checkpoints; {checkpoint} is a {ckpt['model']} checkpoint: give --input.")
    if input_path is None:
        raise UserError("--input is required: the graphs (or SMILES) to predict.")
    if is_fewshot(ckpt):
        if support is None:
            raise UserError(f"{checkpoint} is a few-shot checkpoint ({ckpt['fewshot'].get('name', ckpt['model'])} "
                            f"on {ckpt['dataset']}); it needs --support FILE: a CSV with 'smiles' and 'label' (0/1) columns, e.g. "
                            f"{ckpt['fewshot'].get('shots', 5)} positives and as many negatives of the new task.")
        _predict_fewshot(checkpoint, ckpt, support, input_path, output, invalid or "error")
        return
    if support is not None:
        raise UserError(f"--support is for few-shot checkpoints; {checkpoint} is a normal checkpoint "
                        f"({ckpt['model']} trained on {ckpt['dataset']}). Drop --support.")
    if invalid is not None:
        raise UserError("--invalid is for few-shot checkpoints; a normal checkpoint refuses any SMILES it cannot encode.")
    header, rows = prediction_table(predict_file(checkpoint, input_path))
    _write_csv(header, rows, output)


def _predict_fewshot(checkpoint, ckpt, support, input_path, output, invalid) -> None:
    from .fewshot.predict import predict_fewshot

    res = predict_fewshot(checkpoint, support, input_path, invalid=invalid, ckpt=ckpt)
    for bad in res["skipped"]:
        click.echo(f"skipped {bad}", err=True)
    for note in res["notes"]:
        click.echo(f"note: {note}", err=True)
    _write_csv(["line", "smiles", "probability"],
               [[line, smiles, f"{prob:.6f}"] for line, smiles, prob in res["rows"]], output)


def _write_csv(header: List[str], rows: List[list], output: Optional[str]) -> None:
    """Prediction rows as CSV to ``output``, or to standard output when none is given."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    if output:
        Path(output).write_text(buf.getvalue())
        click.echo(f"wrote {len(rows)} predictions to {output}")
    else:
        click.echo(buf.getvalue(), nl=False)


@cli.command()
@click.option("--dataset", type=click.Choice(["tox21", "sider"], case_sensitive=False),
              help="Few-shot tasks: tox21 (9 meta-train / 3 meta-test tasks) or sider (21 / 6).")
@click.option("--shots", type=click.IntRange(min=1), help="k: k positives + k negatives per support set [5].")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of settings.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding FewShotMol/ and MoleculeNet/.")
@click.option("--seed", type=int, help="Seed of initialisation, episodes and support draws.")
@click.option("--invalid", type=click.Choice(["skip", "error"]),
              help="SMILES RDKit cannot encode: skip them (reported with file:line) or stop [skip].")
@click.option("--quick", is_flag=True, help="Smoke-scale run (few steps, 5 draws, no pre-training): minutes, not hours.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder [runs/fewshot-<dataset>-<k>shot].")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.argument("overrides", nargs=-1)
def fewshot(dataset, shots, config_file, data_root, seed, invalid, quick, out_dir, quiet, overrides) -> None:
    """Meta-train FS-GNNCvTR and its baselines on few-shot tasks and evaluate them (ROC-AUC).

    Writes metrics.json, per_task.csv, config.yaml and checkpoints/<method>-<pretrain>.pt.
    OVERRIDES are key=value settings, e.g. episodes=200 draws=30 adapt=all model.hidden=128.
    """
    from .fewshot.run import results_table, run_fewshot
    from .fewshot.settings import QUICK, fewshot_config

    values = merge_settings(config_file, dict(dataset=dataset, shots=shots, data_root=data_root, seed=seed,
                                              invalid=invalid), overrides, QUICK if quick else None)
    cfg = fewshot_config(values)
    out = Path(out_dir or f"runs/fewshot-{cfg.dataset}-{cfg.shots}shot")
    metrics = run_fewshot(cfg, out, progress=not quiet)
    reduced = [f"[yellow]reduced:[/yellow] {'; '.join(metrics['reduced'])}"] if metrics["reduced"] else []
    _report(metrics, results_table(metrics), reduced + [f"wrote {out}/metrics.json, per_task.csv, config.yaml, checkpoints/"])


def _report(metrics: Dict[str, Any], table, closing: List[str]) -> None:
    """A run's notes, results table and protocol, then the ``closing`` lines."""
    console = _console()
    for note in metrics["notes"]:
        console.print(f"[yellow]note:[/yellow] {note}")
    console.print(table)
    console.print(f"protocol: {metrics['protocol']}")
    for line in closing:
        console.print(line)


@cli.command()
@click.option("--dataset", help="A text-attributed graph: citeseer-tag [default], or give --nodes and --edges.")
@click.option("--nodes", type=click.Path(dir_okay=False), help="Node table (id, text, label[, split]), CSV or TSV.")
@click.option("--edges", type=click.Path(dir_okay=False), help="Edge list of the node table (source, target).")
@click.option("--split", type=click.Choice(["random", "low-label", "file"]),
              help="random (seeded 60/20/20), low-label (20 per class / 500 / 1000) or file (split_file=PATH, a JSON "
                   "of node indices, else the split column) [random].")
@click.option("--gnn", help="GNN of the M-step: any node model of `gnnformer list` (gcn, gat, sage, gps, difformer-s) [gcn].")
@click.option("--seed", type=int, help="One seed (seeds=0,1,2 runs several).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of settings.")
@click.option("--data-root", type=click.Path(file_okay=False), help="Folder holding TAG/CiteSeer-Orig.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Output folder [runs/glem-<dataset>-<gnn>].")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.argument("overrides", nargs=-1)
def glem(dataset, nodes, edges, split, gnn, seed, config_file, data_root, out_dir, quiet, overrides) -> None:
    """GLEM: a language model and a GNN that teach each other on a text-attributed graph.

    Writes metrics.json, config.yaml and checkpoints/glem-lm-seed<k>.pt (text-only `predict`).
    OVERRIDES are key=value settings, e.g. em_iterations=2 pseudo=transductive max_length=64 model.hidden=128.
    """
    from .glem.run import run_glem
    from .glem.settings import glem_config

    values = merge_settings(config_file, dict(dataset=dataset, nodes=nodes, edges=edges, split=split, gnn=gnn,
                                              seeds=seed, data_root=data_root), overrides)
    cfg = glem_config(values)
    out = Path(out_dir or f"runs/glem-{Path(cfg.nodes).stem if cfg.nodes else cfg.dataset}-{cfg.gnn}")
    metrics = run_glem(cfg, out, progress=not quiet)
    table = _results_table(metrics["dataset"], metrics["rows"], ["val_accuracy", "test_accuracy", "seconds"])
    _report(metrics, table, [f"wrote {out}/metrics.json, config.yaml, checkpoints/"])


@cli.group()
def clgt() -> None:
    """CLGT: who in a team may be at risk, from its version-control history (train, report)."""


def _clgt_options(func):
    """The options `clgt train` and `clgt report` share (applied bottom-up, shown top-down)."""
    options = [
        click.option("--repo", type=click.Path(), help="A local git repository."),
        click.option("--activity", type=click.Path(), help="A folder of activity tables (commits.tsv.gz, files.tsv.gz)."),
        click.option("--labels", type=click.Path(), help="CSV 'member,label' (pass / at-risk, or a class number); "
                                                         "without it: the proxy (active in the next window or not)."),
        click.option("--window-days", type=click.IntRange(min=1), help="Days per window [182]."),
        click.option("--seed", type=int, help="One seed (seeds=0,1,2 runs several)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="YAML file of settings."),
        click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        func = option(func)
    return click.argument("overrides", nargs=-1)(func)


def _clgt_settings(config_file, overrides, **flags):
    from .clgt.settings import clgt_config

    seed = flags.pop("seed")
    return clgt_config(merge_settings(config_file, {**flags, "seeds": seed}, overrides))


@clgt.command("train")
@_clgt_options
def clgt_train(repo, activity, labels, window_days, seed, config_file, out_dir, quiet, overrides) -> None:
    """Train CLGT and its baselines (adaboost, rgcn, gat, transformer) on earlier windows, test on later ones.

    Writes metrics.json, config.yaml and best.pt. OVERRIDES are key=value settings, e.g.
    epochs=50 baselines=rgcn,gat seeds=0,1,2 min_commits=3 model.hidden=32.
    """
    from .clgt.run import run_train

    cfg = _clgt_settings(config_file, overrides, repo=repo, activity=activity, labels=labels,
                         window_days=window_days, seed=seed)
    metrics = run_train(cfg, out_dir, progress=not quiet)
    table = _results_table(metrics["source"], metrics["rows"], ["test_accuracy", "test_macro_f1", "test_roc_auc"])
    _report({**metrics, "protocol": f"{metrics['protocol']}\nlabels: {metrics['label_rule']}"}, table,
            [f"wrote {out_dir}/metrics.json, config.yaml, best.pt"])


@clgt.command("report")
@_clgt_options
@click.option("--show-names", is_flag=True, default=None, help="The repository's member ids instead of pseudonyms.")
@click.option("--checkpoint", type=click.Path(), help="best.pt of `clgt train`: reuse its model instead of training.")
def clgt_report(repo, activity, labels, window_days, seed, config_file, out_dir, quiet, overrides, show_names,
                checkpoint) -> None:
    """Predict the latest window, explain the members most at risk, write report.html (works offline).

    OVERRIDES are key=value settings, e.g. explain=10 epochs=50 model.hidden=32.
    """
    from .clgt.run import run_report

    cfg = _clgt_settings(config_file, overrides, repo=repo, activity=activity, labels=labels,
                         window_days=window_days, seed=seed, show_names=show_names, checkpoint=checkpoint)
    report = run_report(cfg, out_dir, progress=not quiet)
    at_risk = sum(m["predicted"] == "at risk" for m in report["members"])
    click.echo(f"{report['source']}, window {report['window'][0][:10]} to {report['window'][1][:10]}: "
               f"{at_risk} of {len(report['members'])} members predicted at risk")
    click.echo(f"wrote {out_dir}/report.html, report.json, metrics.json, config.yaml")


@cli.command()
@click.option("--epochs", type=click.IntRange(min=1), default=40, show_default=True)
@click.option("--folds", type=click.IntRange(min=3), default=10, show_default=True,
              help="Stratified k-fold cross-validation, the usual protocol for MUTAG.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="runs/demo", show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(epochs, folds, out_dir, quiet) -> None:
    """The main job: GPS vs GIN vs plain Transformer on the embedded MUTAG."""
    from .datasets import load_dataset
    from .training import config_from_mapping, run_experiment

    dataset = load_dataset("MUTAG")
    rows = []
    for name in DEMO_MODELS:
        cfg = config_from_mapping({"model": name, "dataset": "MUTAG", "epochs": epochs, "folds": folds})
        rows.append(run_experiment(cfg, Path(out_dir) / name, progress=not quiet, dataset=dataset))
    console = _console()
    console.print(_results_table("MUTAG (embedded data)", rows, ["test_accuracy", "test_roc_auc"]))
    console.print(f"protocol: {rows[0]['protocol']}, {epochs} epochs, mean ± std over folds")
    console.print(f"runs, checkpoints and curves in {out_dir}/<model>/")


@cli.command()
@click.option("--quick", is_flag=True, help="Smoke size, nothing written: a check before a commit (a few minutes).")
@click.option("--only", "only", multiple=True, metavar="PIECE",
              help="Run only this piece (repeatable): layers, graph-epoch, difformer-scaling, difformer-ablation, "
                   "explainers, distributed.")
@click.option("--data-root", type=click.Path(file_okay=False), envvar="GNNFORMER_DATA",
              help="Folder holding NCI1, for the graph-epoch and distributed pieces (else $GNNFORMER_DATA).")
@click.option("--dry-run", is_flag=True, help="Print the commands, run nothing.")
def bench(quick, only, data_root, dry_run) -> int:
    """The speed and memory suite of every model family; rewrites its tables in BENCHMARKS.md."""
    import shlex

    from . import bench as suite

    pieces = suite.select(only)
    suite.check_available(pieces, data_root)
    if dry_run:
        for piece in pieces:
            click.echo(f"{piece.name}: {shlex.join(piece.command(quick, data_root))}")
        return 0
    done = suite.run_suite(pieces, quick, data_root, echo=click.echo)
    for name, seconds, status in done:
        click.echo(f"{name:20s} {seconds:8.1f} s  {'ok' if status == 0 else f'FAILED (exit {status})'}")
    if any(status != 0 for _, _, status in done):
        return 1
    click.echo("tables rewritten in BENCHMARKS.md" if not quick else "quick check passed (nothing written)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: maps every failure to a clear message and an exit code."""
    try:
        status = cli.main(args=argv, prog_name="gnnformer", standalone_mode=False)
        return status if isinstance(status, int) else 0  # a command may return its exit status
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except click.ClickException as exc:  # bad flag or argument
        exc.show()
        return 2
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except OSError as exc:
        if exc.filename is None:
            return _internal(exc)
        # A path the user gave cannot be read or written (permissions, a folder where a file is due...).
        click.echo(f"error: cannot use {exc.filename}: {exc.strerror or exc}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    if os.environ.get("GNNFORMER_DEBUG"):
        traceback.print_exc()
    click.echo(f"internal error: {type(exc).__name__}: {exc}\n"
               "This is a bug in gnnformer; set GNNFORMER_DEBUG=1 to see the traceback.", err=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
