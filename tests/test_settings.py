"""Settings, one way for every entry point: file + flags + key=value -> a typed, checked config."""
import math

import pytest
import torch

from gnnformer.config import apply_overrides, build_config, merge_settings
from gnnformer.errors import ConfigError
from gnnformer.training import config_from_mapping
from gnnformer.training.optim import build_optimizer, build_scheduler, lr_factor


def test_merge_order_file_then_preset_then_flags_then_overrides(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("\ufeffepochs: 5\nlr: 0.1\nbatch_size: 8\nmodel: gin\n")  # a BOM is fine
    values = merge_settings(path, {"epochs": 7, "seed": None}, ["lr=1e-2", "model.hidden=16"], preset={"batch_size": 4})
    assert values == {"epochs": 7, "lr": 0.01, "batch_size": 4, "model": "gin", "model_args": {"hidden": 16}}
    assert "seed" not in values  # a flag not given does not override anything


def test_overrides_parse_scalars_and_nest():
    v = apply_overrides({}, ["a=3", "b=1e-3", "c=true", "d=text", "e=[x, y]", "dataset.lags=4", "model.local=gine"])
    assert v == {"a": 3, "b": 0.001, "c": True, "d": "text", "e": ["x", "y"], "dataset_args": {"lags": 4},
                 "model_args": {"local": "gine"}}
    with pytest.raises(ConfigError, match="not of the form key=value"):
        apply_overrides({}, ["=3"])
    with pytest.raises(ConfigError, match="model_args must be a mapping"):
        apply_overrides({"model_args": [1]}, ["model.hidden=3"])


def test_config_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 3\nlr: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML at line 3"):
        merge_settings(bad, {})
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        merge_settings(listing, {})
    with pytest.raises(ConfigError, match="does not exist"):
        merge_settings(tmp_path / "none.yaml", {})


@pytest.mark.parametrize("values, message", [
    ({"lr": -1}, "lr must be positive, got -1"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"patience": -2}, "patience must not be negative, got -2"),
    ({"weight_decay": -0.1}, "weight_decay must not be negative"),
    ({"optimizer": "sgd"}, "optimizer must be one of adam, adamw, got 'sgd'"),
    ({"scheduler": "step"}, "scheduler must be one of constant, cosine, got 'step'"),
    ({"warmup_epochs": 10, "epochs": 10}, r"warmup_epochs \(10\) must be fewer than epochs \(10\)"),
    ({"epochs": "ten"}, "the experiment setting epochs must be an integer, got 'ten'"),
    ({"bucket": [1]}, "bucket must be true or false"),
    ({"dataset_args": 3}, "dataset_args must be a mapping, got 3"),
    ({"colour": "red"}, "Unknown setting.*colour"),
    ({"folds": 2}, "folds must be 0 .no cross-validation. or at least 3"),
    ({"grad_clip": 0}, "grad_clip must be a positive gradient norm, or null"),
    ({"grad_clip": "big"}, "grad_clip must be a number, got 'big'"),
])
def test_each_bad_setting_has_its_own_message(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(values)


def test_build_config_converts_number_text_and_keeps_types():
    cfg = config_from_mapping({"lr": "1e-3", "epochs": "7", "train_fraction": 1, "num_test": None})
    assert cfg.lr == 0.001 and isinstance(cfg.lr, float) and cfg.epochs == 7 and cfg.num_test is None
    with pytest.raises(ConfigError, match="needs option.*in_channels"):
        from gnnformer.models import model_config

        model_config("gin", out_channels=2)


def test_validate_does_not_rewrite_settings():
    from gnnformer.models import model_config

    gps = model_config("gps", in_channels=3, out_channels=2, attention_graph="none")
    assert gps.attention_graph == "none"
    grad = model_config("gradformer", in_channels=3, out_channels=2, pool="add")
    assert grad.pool == "add"  # PyG's name for sum pooling is accepted as it is
    with pytest.raises(ConfigError, match="attention_graph must be 'complete' or 'edges', got 'none'"):
        model_config("transformer", in_channels=3, out_channels=2, attention_graph="none")


def test_cosine_schedule_with_warmup_by_hand():
    # 10 epochs, 2 of warm-up: 0, 1/2, then half a cosine over the 8 remaining epochs.
    got = [lr_factor("cosine", e, 10, 2) for e in range(10)]
    want = [0.0, 0.5] + [0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert got == pytest.approx(want)
    assert lr_factor("cosine", 10, 10, 2) == pytest.approx(0.0)
    assert [lr_factor("constant", e, 10) for e in (0, 9)] == [1.0, 1.0]
    w = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer("adamw", [w], lr=0.2, weight_decay=0.01)
    assert isinstance(opt, torch.optim.AdamW)
    sched = build_scheduler("cosine", opt, 10, 2)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.2 * f for f in want[:4]])


def test_training_follows_the_schedule(tmp_path):
    from gnnformer.training import prepare, make_splits, train_one

    cfg = config_from_mapping({"model": "gin", "dataset": "MUTAG", "epochs": 4, "lr": 0.01, "optimizer": "adamw",
                               "scheduler": "cosine", "warmup_epochs": 1, "model_args": {"hidden": 16}})
    prep = prepare(cfg)
    seed, split = make_splits(cfg, prep)[0]
    _, history, _ = train_one(cfg, prep, split, seed)
    want = [0.01 * lr_factor("cosine", e, 4, 1) for e in range(4)]
    assert [h["lr"] for h in history] == pytest.approx(want)


def test_grad_clip_scales_the_gradient_to_the_norm_before_each_step():
    import torch

    from gnnformer.training.optim import build_optimizer

    w = torch.nn.Parameter(torch.zeros(2))
    b = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer("adam", [w, b], lr=0.1, weight_decay=0.0, grad_clip=1.0)
    w.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    opt.step()
    # scaled by 1/5 before Adam read them: its first moment holds the clipped gradient
    assert w.grad.tolist() == pytest.approx([0.6, 0.0]) and b.grad.tolist() == pytest.approx([0.8])
    assert opt.state[w]["exp_avg"].tolist() == pytest.approx([0.1 * 0.6, 0.0])
    w.grad, b.grad = torch.tensor([0.3, 0.0]), torch.tensor([0.4])  # norm 0.5: under the limit, untouched
    opt.step()
    assert w.grad.tolist() == pytest.approx([0.3, 0.0]) and b.grad.tolist() == pytest.approx([0.4])


def test_grad_clip_is_left_out_of_the_settings_while_off():
    # settings saved before the key existed must still match the same experiment (resume keys)
    assert "grad_clip" not in config_from_mapping({"model": "gin", "dataset": "MUTAG"}).to_dict()
    assert config_from_mapping({"model": "gin", "dataset": "MUTAG", "grad_clip": 2}).to_dict()["grad_clip"] == 2.0


def test_training_with_grad_clip_differs_from_training_without(tmp_path):
    from gnnformer.training import prepare, make_splits, train_one

    base = {"model": "gin", "dataset": "MUTAG", "epochs": 2, "lr": 0.05, "model_args": {"hidden": 16}}
    states = []
    for clip in (None, 1e-3):
        cfg = config_from_mapping({**base, "grad_clip": clip})
        prep = prepare(cfg)
        seed, split = make_splits(cfg, prep)[0]
        model, history, _ = train_one(cfg, prep, split, seed)
        states.append(flat_params(model))
    assert not states[0].allclose(states[1])


def flat_params(model):
    import torch

    return torch.cat([p.detach().flatten() for p in model.parameters()])
