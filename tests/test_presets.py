"""Paper settings as presets: each equals the config its benchmark row ran, and `train` applies it
by default, names it, and lets every key be overridden."""
from pathlib import Path

import pytest
import yaml

from gnnformer import cli
from gnnformer.training.presets import all_presets, find_preset, with_preset

ROOT = Path(__file__).resolve().parents[1]
PROTOCOL = {"model", "dataset", "split", "per_class", "num_val", "num_test", "runs", "seed", "folds",
            "train_fraction", "split_file", "data_root", "device"}
# The input layer and head of the released Gradformer code (Linear(x) + Linear(RWSE), one Linear).
AUTHORS_LAYOUT = {"model_args.pe_combine": "sum", "model_args.head": "linear"}
# Benchmark rows that deliberately differ from their pair's preset, and exactly how.
VARIANTS = {
    "cora_difformer-s_random_l2.yaml": {"model_args.qk_norm": None, "model_args.feature_norm": None},
    "chickenpox_difformer_s_nograph.yaml": {"model_args.layers": 4, "model_args.use_graph": False, "lr": 0.01},
    "chickenpox_difformer_a_nograph.yaml": {"model_args.layers": 4, "model_args.use_graph": False},
    "covid_difformer_s_nograph.yaml": {"model_args.layers": 4, "model_args.use_graph": False, "lr": 0.01},
    "covid_difformer_a_nograph.yaml": {"model_args.layers": 4, "model_args.use_graph": False},
    "sbm_large_minibatch.yaml": {"epochs": 40, "patience": 10, "node_batch_size": 25000},
    **{f"depth_nci1_{m}_{n}layers.yaml": {"model_args.layers": n, **AUTHORS_LAYOUT}
       for m in ("gps", "gradformer") for n in (12, 24)},
    "depth_nci1_gps_12layers_graphgps_layout.yaml": {"model_args.layers": 12},
    "depth_nci1_gradformer_12layers_graphgps_layout.yaml": {"model_args.layers": 12},
    # The PROTEINS preset is the released code's defaults; these rows ran the NCI1 script's layers and
    # gamma with GraphGPS's input and head.
    **{f"proteins_gradformer_{p}.yaml": {"model_args.layers": 4, "model_args.gamma": 0.6,
                                          "model_args.pe_combine": None, "model_args.head": None}
       for p in ("seeds", "cv", "authors")},
    "depth_nci1_gradformer_24layers_warmup.yaml": {"model_args.layers": 24, **AUTHORS_LAYOUT,
                                                   "scheduler": "cosine", "warmup_epochs": 5},
    **{f"depth_nci1_{m}_24layers_lr3e-4.yaml": {"model_args.layers": 24, **AUTHORS_LAYOUT, "lr": 0.0003,
                                                "model_args.attn_init": "shared"} for m in ("gps", "gradformer")},
}
BENCHMARK_CONFIGS = sorted((ROOT / "configs" / "difformer").glob("*.yaml")) + \
    sorted((ROOT / "configs" / "gradformer").glob("*.yaml"))


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@pytest.mark.parametrize("path", BENCHMARK_CONFIGS, ids=lambda p: p.name)
def test_every_benchmark_config_is_its_pairs_preset_or_a_named_variant(path):
    config = yaml.safe_load(path.read_text())
    preset = find_preset(config["model"], config["dataset"])
    assert preset is not None, f"no preset for {config['model']} on {config['dataset']}"
    ran = {k: v for k, v in flat(config).items() if k.split(".")[0] not in PROTOCOL}
    expected = {**flat(preset.settings), **VARIANTS.get(path.name, {})}
    assert ran == {k: v for k, v in expected.items() if v is not None}


def test_every_preset_names_an_existing_config_of_its_own_pair():
    assert len(all_presets()) >= 30
    for (model, dataset), preset in all_presets().items():
        config = yaml.safe_load((ROOT / preset.config).read_text())
        assert (config["model"].lower(), config["dataset"].lower()) == (model, dataset)
        assert not PROTOCOL & set(preset.settings), preset.config


def test_user_settings_win_key_by_key_inside_model_args():
    values, preset = with_preset({"lr": 0.05, "model_args": {"hidden": 32}}, "gcn", "cora")
    assert preset.config == "configs/difformer/cora_gcn_public.yaml"
    assert values["lr"] == 0.05 and values["weight_decay"] == 5e-4 and values["epochs"] == 500
    assert values["model_args"] == {**preset.settings["model_args"], "hidden": 32}
    assert with_preset({"lr": 0.05}, "gcn", "NoSuchData") == ({"lr": 0.05}, None)


def run_train(capsys, tmp_path, *args):
    out = tmp_path / "run"
    code = cli.main(["train", "--model", "gcn", "--dataset", "Cora", "--epochs", "1", "--out", str(out), "--quiet",
                     *args])
    _, err = capsys.readouterr()
    assert code == 0, err
    return yaml.safe_load((out / "config.yaml").read_text()), err


def test_train_applies_the_preset_says_so_and_keeps_the_users_keys(tmp_path, capsys):
    cfg, err = run_train(capsys, tmp_path, "model.hidden=8")
    assert "using the gcn baseline's Cora settings in the DIFFormer paper" in err
    assert "yours kept: epochs, model.hidden" in err and "lr=0.01" in err
    assert cfg["epochs"] == 1 and cfg["lr"] == 0.01 and cfg["weight_decay"] == 0.0005 and cfg["patience"] == 100
    assert cfg["model_args"] == {"layers": 2, "hidden": 8, "dropout": 0.5, "plain": True, "feature_norm": "row"}


def test_no_preset_and_a_config_file_use_no_preset(tmp_path, capsys):
    cfg, err = run_train(capsys, tmp_path, "--no-preset")
    assert "using" not in err and cfg["lr"] == 0.001 and cfg["model_args"] == {}
    config = tmp_path / "mine.yaml"
    config.write_text("model: gcn\ndataset: Cora\nlr: 0.02\n")
    cfg, err = run_train(capsys, tmp_path, "--config", str(config))
    assert "using" not in err and cfg["lr"] == 0.02 and cfg["weight_decay"] == 0.0 and cfg["model_args"] == {}
