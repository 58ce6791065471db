"""GLEM on a tiny randomly initialised BERT (built here, saved with save_pretrained, loaded from its
folder like any local model) and a small synthetic text graph: the EM schedule, which nodes get
pseudo-labels, the pseudo-label arithmetic, the LM cache, text-only prediction and bad input."""
from __future__ import annotations

import csv
import io
import json
import math
import random

import pytest
import torch

transformers = pytest.importorskip("transformers")

from gnnformer import cli  # noqa: E402
from gnnformer.datasets.splits import Split  # noqa: E402
from gnnformer.datasets.text_graph import TextGraph  # noqa: E402
from gnnformer.glem import em as em_module  # noqa: E402
from gnnformer.glem.em import GLEMRun  # noqa: E402
from gnnformer.glem.lm_stage import cached_infer, freeze_lower_layers, tokenize  # noqa: E402
from gnnformer.glem.predict import predict_probabilities  # noqa: E402
from gnnformer.glem.pseudo import candidates, mixed_loss, soft_labels, training_set  # noqa: E402
from gnnformer.glem.run import run_glem  # noqa: E402
from gnnformer.glem.settings import glem_config  # noqa: E402
from gnnformer.models.lm import TextClassifier, load_tokenizer  # noqa: E402
from gnnformer.progress import Progress  # noqa: E402
from gnnformer.training.checkpoint import load_checkpoint  # noqa: E402
from gnnformer.training.runtime import seed_everything  # noqa: E402

CLASS_WORDS = [["alpha", "beta", "gamma", "delta"], ["kappa", "lambda", "sigma", "omega"],
               ["red", "green", "blue", "yellow"]]
COMMON = ["the", "of", "paper", "method", "graph", "model"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + COMMON + [w for ws in CLASS_WORDS for w in ws]
#: Nodes 0-29 train, 30-39 validation, 40-49 test, 50-59 in no split.
SPLIT = Split(torch.arange(0, 30), torch.arange(30, 40), torch.arange(40, 50))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(str(folder))
    return str(folder)


def text_graph(n: int = 60) -> TextGraph:
    rng = random.Random(0)
    y = [i % 3 for i in range(n)]
    texts = [" ".join(rng.choices(CLASS_WORDS[c], k=5) + rng.choices(COMMON, k=3)) for c in y]
    pairs = set()
    while len(pairs) < 2 * n:
        a, b = rng.randrange(n), rng.randrange(n)
        if a != b and y[a] == y[b]:
            pairs.add((min(a, b), max(a, b)))
    edges = sorted(pairs | {(b, a) for a, b in pairs})
    return TextGraph("tiny", [f"n{i}" for i in range(n)], texts, torch.tensor(y), ["c0", "c1", "c2"],
                     torch.tensor(edges).t().contiguous())


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNFORMER_CACHE", str(tmp_path / "cache"))


def settings(tiny_lm, **kw):
    values = dict(dataset="tiny", lm_path=tiny_lm, max_length=16, lm_batch_size=8, lm_epochs=2, lm_em_epochs=1,
                  lm_lr=1e-3, lm_train_layers=0, gnn_epochs=20, patience=5, em_iterations=2, pseudo="transductive",
                  infer_batch_size=16, model_args={"hidden": 16, "layers": 2})
    values.update(kw)
    return glem_config(values)


def glem_run(tiny_lm, **kw):
    cfg = settings(tiny_lm, **kw)
    graph = text_graph()
    seed_everything(0)
    model = TextClassifier(tiny_lm, 3, cfg.lm_dropout)
    freeze_lower_layers(model, cfg.lm_train_layers)
    tokens = tokenize(load_tokenizer(tiny_lm), graph.texts, cfg.max_length)
    return GLEMRun(cfg, model, tokens, graph.y, graph.edge_index, 3, SPLIT, Progress(enabled=False), seed=0)


def spy_training_sets(monkeypatch, run):
    """Record every training set built: (teacher 'gnn'/'lm'/None, its nodes, its is_gold mask)."""
    calls = []

    def spy(train, y, num_classes, pool, teacher, **kw):
        who = None if teacher is None else "gnn" if teacher is run.gnn_logits else "lm" if teacher is run.lm_logits else "?"
        out = training_set(train, y, num_classes, pool, teacher, **kw)
        calls.append((who, out.nodes.clone(), out.is_gold.clone()))
        return out

    monkeypatch.setattr(em_module, "training_set", spy)
    return calls


@pytest.mark.parametrize("order, expected, teachers", [
    ("lm-first", ["lm-pretrain 0", "lm-infer 0", "gnn-pretrain 0", "lm-train 1", "lm-infer 1", "gnn-train 1",
                  "lm-train 2", "lm-infer 2", "gnn-train 2"], [None, None, "gnn", "lm", "gnn", "lm"]),
    ("gnn-first", ["lm-pretrain 0", "lm-infer 0", "gnn-pretrain 0", "gnn-train 1", "lm-train 1", "lm-infer 1",
                   "gnn-train 2", "lm-train 2", "lm-infer 2"], [None, None, "lm", "gnn", "lm", "gnn"]),
])
def test_em_schedule_and_who_teaches_whom(tiny_lm, monkeypatch, order, expected, teachers):
    run = glem_run(tiny_lm, order=order)
    calls = spy_training_sets(monkeypatch, run)
    res = run.run()
    assert [f"{s.name} {s.iteration}" for s in res.stages] == expected
    assert [c[0] for c in calls] == teachers
    assert len(res.lm) == len(res.gnn) == 3
    assert all(s.seconds >= 0 for s in res.stages)
    # GLEM-LM / GLEM-GNN: the best validation iteration among 1..2, earliest on ties; test never chooses
    for scores, best in ((res.lm, res.best_lm), (res.gnn, res.best_gnn)):
        assert best == max((1, 2), key=lambda i: (scores[i]["val"], -i))


def test_a_fork_after_pretraining_continues_as_a_fresh_run_would(tiny_lm):
    """Settings compared on one seed share the pre-training: forking it under other pseudo-labels
    gives exactly what a fresh run with those settings gives, and leaves the parent untouched."""
    fresh = glem_run(tiny_lm, pseudo="transductive").run()
    base = glem_run(tiny_lm, pseudo="strict").pretrain()
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    forked = base.fork(settings(tiny_lm, pseudo="transductive")).iterate()
    assert forked.lm == fresh.lm and forked.gnn == fresh.gnn
    assert [f"{s.name} {s.iteration}" for s in forked.stages] == [f"{s.name} {s.iteration}" for s in fresh.stages]
    assert all(torch.equal(v, base.model.state_dict()[k]) for k, v in before.items())
    assert len(base.lm_scores) == len(base.gnn_scores) == 1
    other_gnn = base.fork(settings(tiny_lm, gnn="sage", em_iterations=1)).iterate()
    assert [f"{s.name} {s.iteration}" for s in other_gnn.stages] == [
        "lm-pretrain 0", "lm-infer 0", "gnn-pretrain 0", "lm-train 1", "lm-infer 1", "gnn-train 1"]
    assert other_gnn.lm[0] == fresh.lm[0] and len(other_gnn.gnn) == 2


@pytest.mark.parametrize("mode, pool", [("strict", list(range(50, 60))), ("transductive", list(range(30, 60)))])
def test_which_nodes_get_pseudo_labels(tiny_lm, monkeypatch, mode, pool):
    assert candidates(60, SPLIT.train, SPLIT.val, SPLIT.test, mode).tolist() == pool
    run = glem_run(tiny_lm, pseudo=mode, pl_ratio=1.0)
    calls = spy_training_sets(monkeypatch, run)
    run.run()
    for who, nodes, is_gold in calls:
        assert nodes[is_gold].tolist() == list(range(30))  # every step keeps all gold training nodes
        pseudo = nodes[~is_gold].tolist()
        assert len(pseudo) == (0 if who is None else len(pool))  # pl_ratio 1: 30 wanted, the whole pool given
        assert set(pseudo) <= set(pool)
        if mode == "strict":
            assert not set(pseudo) & set(SPLIT.val.tolist() + SPLIT.test.tolist())


def test_pl_ratio_and_pl_filter_counts():
    train, pool = torch.arange(20), torch.arange(20, 50)
    y = torch.arange(50) % 3
    # confidence grows with the node index: node i's logits favour class 0 by i / 10
    teacher = torch.zeros(50, 3)
    teacher[:, 0] = torch.arange(50) / 10
    kw = dict(temperature=0.2, generator=torch.Generator().manual_seed(0))
    half = training_set(train, y, 3, pool, teacher, ratio=0.5, fraction=1.0, **kw)
    assert half.num_pseudo == 10 and half.nodes.numel() == 30
    filtered = training_set(train, y, 3, pool, teacher, ratio=0.25, fraction=0.5, **kw)
    assert filtered.num_pseudo == 5 and set(filtered.nodes[~filtered.is_gold].tolist()) <= set(range(35, 50))
    capped = training_set(train, y, 3, pool, teacher, ratio=2.0, fraction=0.5, **kw)
    assert sorted(capped.nodes[~capped.is_gold].tolist()) == list(range(35, 50))  # 40 wanted, 15 kept
    assert training_set(train, y, 3, pool, None, ratio=1.0, fraction=1.0, **kw).num_pseudo == 0


def test_soft_labels_are_softmax_of_logits_over_temperature():
    p = soft_labels(torch.tensor([[1.0, 0.0, -1.0]]), 0.2)
    # exp(5), exp(0), exp(-5) over their sum 149.4198970
    assert p[0].tolist() == pytest.approx([0.9932624, 0.0066925, 0.0000451], abs=1e-7)
    teacher = torch.tensor([[1.0, 0.0, -1.0]] * 4)
    data = training_set(torch.tensor([0]), torch.tensor([2, 0, 0, 0]), 3, torch.tensor([1, 2, 3]), teacher,
                        ratio=3.0, fraction=1.0, temperature=0.2, generator=torch.Generator().manual_seed(0))
    assert data.targets[0].tolist() == [0.0, 0.0, 1.0]  # gold: one-hot
    assert torch.allclose(data.targets[1:], p.expand(3, 3), atol=1e-7)


def test_mixed_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    is_gold = torch.tensor([True, False])
    # gold: -log(1/2) = 0.693147; pseudo: 0.5 * -log(3/4) + 0.5 * -log(1/4) = 0.836988
    assert mixed_loss(logits, targets, is_gold, 0.3).item() == pytest.approx(0.3 * 0.836988 + 0.7 * 0.693147, abs=1e-6)
    assert mixed_loss(logits, targets, is_gold, 1.0).item() == pytest.approx(0.836988, abs=1e-6)
    gold_only = torch.tensor([True, True])
    assert mixed_loss(logits, torch.tensor([[1.0, 0.0], [0.0, 1.0]]), gold_only, 0.3).item() == \
        pytest.approx((0.693147 + 1.386294) / 2, abs=1e-6)  # pre-training: plain cross-entropy


def test_cache_hit_on_rerun_and_miss_when_texts_or_weights_change(tiny_lm):
    graph = text_graph()
    tokenizer = load_tokenizer(tiny_lm)
    torch.manual_seed(0)
    model = TextClassifier(tiny_lm, 3)
    tokens = tokenize(tokenizer, graph.texts, 16)
    calls = []
    forward = model.forward
    model.forward = lambda *a, **k: (calls.append(1), forward(*a, **k))[1]

    logits, emb, hit = cached_infer(model, tokens, 16, use_cache=True)
    assert not hit and len(calls) == 4 and emb.shape == (60, 16)
    calls.clear()
    again, emb_again, hit = cached_infer(model, tokens, 16, use_cache=True)
    assert hit and calls == [] and torch.equal(again, logits) and torch.equal(emb_again, emb)

    changed = tokenize(tokenizer, graph.texts[:-1] + ["red green blue"], 16)
    new_logits, _, hit = cached_infer(model, changed, 16, use_cache=True)
    assert not hit and len(calls) == 4 and torch.equal(new_logits[:59], logits[:59])
    calls.clear()
    with torch.no_grad():
        model.head.bias += 1.0
    shifted, _, hit = cached_infer(model, tokens, 16, use_cache=True)
    assert not hit and len(calls) == 4 and torch.allclose(shifted, logits + 1.0, atol=1e-5)


def test_text_only_prediction_from_checkpoint(tiny_lm, tmp_path, capsys):
    graph = text_graph()
    graph.split = {"train": SPLIT.train, "val": SPLIT.val, "test": SPLIT.test}
    cfg = settings(tiny_lm, em_iterations=1, split="file")
    metrics = run_glem(cfg, tmp_path / "run", progress=False, graph=graph)
    record = metrics["per_seed"][0]
    ckpt_path = tmp_path / "run" / "checkpoints" / "glem-lm-seed0.pt"
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["glem"]["iteration"] == record["best_lm_iteration"] == 1
    probs = predict_probabilities(ckpt, graph.texts)
    # the saved GLEM-LM gives the accuracies the run measured with the model in memory
    for part, idx in (("val", SPLIT.val), ("test", SPLIT.test)):
        got = (probs[idx].argmax(1) == graph.y[idx]).float().mean().item()
        assert got == pytest.approx(record["lm"][1][part], abs=1e-6)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["rows"][0]["model"] == "LM alone"

    assert cli.main(["predict", "--checkpoint", str(ckpt_path), "--text", graph.texts[3], "--text", graph.texts[7]]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["id", "predicted", "p_c0", "p_c1", "p_c2"]
    for row, i in zip(rows[1:], (3, 7)):
        assert [float(v) for v in row[2:]] == pytest.approx(probs[i].tolist(), abs=1e-6)
        assert row[1] == ["c0", "c1", "c2"][int(probs[i].argmax())]

    table = tmp_path / "new.csv"
    table.write_text("id,text\npaper-a," + graph.texts[0] + "\npaper-b," + graph.texts[1] + "\n")
    assert cli.main(["predict", "--checkpoint", str(ckpt_path), "--input", str(table)]) == 0
    assert [r[0] for r in csv.reader(io.StringIO(capsys.readouterr().out))] == ["id", "paper-a", "paper-b"]


def tiny_checkpoint(tiny_lm, path):
    from gnnformer.training.checkpoint import save_checkpoint

    model = TextClassifier(tiny_lm, 3)
    return save_checkpoint(path, {
        "model": "glem-lm", "model_config": {"lm_path": tiny_lm, "num_classes": 3, "dropout": 0.1, "max_length": 16},
        "state_dict": model.state_dict(), "schema": {"kind": "text", "class_names": ["a", "b", "c"]},
        "task": "node_classification", "dataset": "tiny", "experiment": {}})


@pytest.mark.parametrize("content, args, message", [
    (None, ["--text", "  "], "--text number 1 is empty"),
    (None, [], "give --text"),
    (b"title,body\nx,y\n", ["--input", "{f}.csv"], "{f}.csv:1: no 'text' column"),
    (b"one text\n\xff\xfe bad\n", ["--input", "{f}.txt"], "{f}.txt:2: not UTF-8"),
    (b"one text\n\nthird\n", ["--input", "{f}.txt"], "{f}.txt:2: empty line"),
    (None, ["--input", "{f}.missing"], "does not exist"),
])
def test_predict_bad_input_exits_2(tiny_lm, tmp_path, capsys, content, args, message):
    ckpt = tiny_checkpoint(tiny_lm, tmp_path / "lm.pt")
    stem = str(tmp_path / "in")
    args = [a.replace("{f}", stem) for a in args]
    if content is not None:
        with open(args[-1], "wb") as fh:
            fh.write(content)
    assert cli.main(["predict", "--checkpoint", str(ckpt), *args]) == 2
    err = capsys.readouterr().err
    assert message.replace("{f}", stem) in err and "Traceback" not in err


def test_eval_and_graph_input_refuse_a_glem_checkpoint(tiny_lm, tmp_path, capsys):
    ckpt = str(tiny_checkpoint(tiny_lm, tmp_path / "lm.pt"))
    assert cli.main(["eval", "--checkpoint", ckpt]) == 2
    assert "GLEM-LM checkpoint" in capsys.readouterr().err
    assert cli.main(["predict", "--checkpoint", ckpt, "--text", "a", "--input", "x.txt"]) == 2
    assert "not both" in capsys.readouterr().err


def test_glem_command_bad_input_exits_2(tmp_path, capsys):
    nodes, edges = tmp_path / "nodes.csv", tmp_path / "edges.csv"
    nodes.write_text("id,body,label\na,x,0\nb,y,1\n")
    edges.write_text("source,target\na,b\n")
    assert cli.main(["glem", "--nodes", str(nodes), "--edges", str(edges), "--out", str(tmp_path / "o")]) == 2
    assert "nodes.csv" in capsys.readouterr().err
    assert cli.main(["glem", "pseudo=everything"]) == 2
    assert "pseudo must be one of strict, transductive" in capsys.readouterr().err
    assert cli.main(["glem", "model.hidden=wide"]) == 2
    assert "hidden" in capsys.readouterr().err


@pytest.mark.parametrize("nodes_text, edges_text, where, what", [
    ("id,body,label\na,x,0\n", "a,a\n", "nodes.csv:1:", "no 'text' column"),
    ("id,text,label\na,hello world,x\nb,,y\n", "a,b\n", "nodes.csv:3:", "empty text"),
    ("id,text,label\na,hello,x\nb,bye,y\n", "source,target\na,b\na,zz\n", "edges.csv:3:", "'zz' is not in nodes.csv"),
    (b"id,text,label\na,caf\xe9,x\nb,bye,y\n", "a,b\n", "nodes.csv:2:", "not UTF-8"),
])
def test_glem_bad_text_graph_exits_2_naming_file_and_line_and_writes_nothing(tmp_path, capsys, nodes_text, edges_text,
                                                                             where, what):
    nodes, edges, out = tmp_path / "nodes.csv", tmp_path / "edges.csv", tmp_path / "out"
    nodes.write_bytes(nodes_text if isinstance(nodes_text, bytes) else nodes_text.encode())
    edges.write_text(edges_text)
    assert cli.main(["glem", "--nodes", str(nodes), "--edges", str(edges), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert where in err and what in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("gnn", ["gcn", "gat", "sage", "gps", "difformer-s"])
def test_any_registry_node_model_as_the_gnn_with_best_weights_reloaded(gnn):
    from gnnformer.glem.gnn_stage import GNNSettings, gnn_input, train_gnn

    graph = text_graph()
    torch.manual_seed(0)
    emb = torch.randn(60, 8) + torch.nn.functional.one_hot(graph.y, 8).float()
    lm_logits = torch.randn(60, 3)
    x = gnn_input(emb, lm_logits, SPLIT.train, graph.y, 0.2)  # label_input: 8 + 3 columns
    assert x.shape == (60, 11) and torch.equal(x[:30, 8:], torch.nn.functional.one_hot(graph.y[:30], 3).float())
    assert torch.allclose(x[30:, 8:], soft_labels(lm_logits[30:], 0.2))
    data = training_set(SPLIT.train, graph.y, 3, torch.arange(50, 60), lm_logits, ratio=1.0, fraction=1.0,
                        temperature=0.2, generator=torch.Generator().manual_seed(0))
    s = GNNSettings(gnn, {"hidden": 32, "layers": 2}, epochs=15, patience=5, lr=0.01, weight_decay=0.0, pl_weight=0.5)
    logits, best = train_gnn(x, graph.edge_index, 3, data, s, val=SPLIT.val, y=graph.y,
                             progress=Progress(enabled=False), label="test")
    assert logits.shape == (60, 3)
    # the returned predictions come from the selected (best-validation) weights
    assert (logits[SPLIT.val].argmax(1) == graph.y[SPLIT.val]).float().mean().item() == \
        pytest.approx(best["val_accuracy"], abs=1e-6)
