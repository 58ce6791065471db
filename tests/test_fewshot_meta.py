"""The torch.func inner loop, the outer loop's two learning rates, test-time adaptation, the model."""
import copy

import pytest
import torch
from torch.func import functional_call
from torch_geometric.data import Batch

from gnnformer.errors import ConfigError
from gnnformer.fewshot.featurize import smiles_to_graph
from gnnformer.fewshot.meta import (ADAPT, AdaptSpec, Adapter, adapt_to_support, bce, inner_loop, outer_optimizer)
from gnnformer.fewshot.model import create_fewshot_model

TINY = {"hidden": 16, "layers": 2, "tr_dim": 8, "tr_heads": 2, "token_kernel": 3, "token_stride": 2, "dropout": 0.0}
SMILES = ["CCO", "c1ccccc1", "F/C=C/F", "CC(=O)O", "CCN", "CCCl", "C#N", "OCCO"]


@pytest.fixture
def batch():
    return Batch.from_data_list([smiles_to_graph(s) for s in SMILES])


@pytest.fixture
def labels():
    return torch.tensor([1, 0, 1, 0, 1, 0, 1, 0])


@pytest.mark.parametrize("kind", ["fs-gnncvtr", "fs-gin"])
@pytest.mark.parametrize("adapt", ADAPT)
def test_inner_loop_adapts_copies_and_leaves_the_model_alone(kind, adapt, batch, labels):
    # In evaluation mode, as test-time adaptation runs it: BatchNorm's running statistics stay as they are
    # too (in meta-training they follow the batches, as BatchNorm's do).
    model = create_fewshot_model(kind, **TINY).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, adapt)
    adapted = inner_loop(adapter, adapter.features(batch), labels, steps=3, lr=0.05)
    own = adapter.initial()
    assert set(adapted) == set(own)
    if adapt == "encoder":
        assert all(n.startswith("encoder.") for n in adapted)
    changed = [n for n in adapted if not torch.equal(adapted[n], own[n])]
    assert len(changed) >= len(adapted) // 2  # the adapted parameters moved ...
    for k, v in model.state_dict().items():  # ... the module's own did not
        assert torch.equal(v, before[k]), k
    loss_before = bce(adapter.logits(own, adapter.features(batch)), labels)
    loss_after = bce(adapter.logits(adapted, adapter.features(batch)), labels)
    assert loss_after < loss_before  # the support loss went down


@pytest.mark.parametrize("kind", ["fs-gnncvtr", "fs-gin"])
@pytest.mark.parametrize("adapt", ["encoder", "all"])
def test_inner_loop_in_training_mode_normalises_with_the_batch_and_keeps_running_statistics(kind, adapt, batch,
                                                                                            labels):
    # Meta-training adapts the GIN in training mode, where BatchNorm would update its running statistics in
    # place: inside torch.func's transform that is an error, so the inner loop runs on copies of them.
    model = create_fewshot_model(kind, **TINY, tr_dropout=0.0).train()
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapter = Adapter(model, adapt)
    adapted = inner_loop(adapter, adapter.features(batch), labels, steps=1, lr=0.1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # The same SGD step by ordinary autograd on a copy in training mode (batch statistics).
    twin = copy.deepcopy(model)
    own = dict(twin.named_parameters())
    grads = torch.autograd.grad(bce(twin(batch).view(-1), labels), [own[n] for n in adapter.names])
    for n, g in zip(adapter.names, grads):
        torch.testing.assert_close(adapted[n], before[n] - 0.1 * g)


def test_first_order_outer_gradient_is_query_gradient_at_adapted_params(batch, labels):
    torch.manual_seed(0)
    model = create_fewshot_model("fs-gin", **TINY)
    adapter = Adapter(model, "head")
    feats = adapter.features(batch).detach()
    adapted = inner_loop(adapter, feats, labels, steps=2, lr=0.5, first_order=True)
    bce(adapter.logits(adapted, feats), 1 - labels).backward()
    point = {n: p.detach().requires_grad_(True) for n, p in adapted.items()}
    bce(adapter.logits(point, feats), 1 - labels).backward()
    for n, p in model.head.named_parameters():
        torch.testing.assert_close(p.grad, point[n].grad)


def test_second_order_differs_from_first_order(batch, labels):
    grads = []
    for first in (True, False):
        torch.manual_seed(0)
        model = create_fewshot_model("fs-gin", **TINY)
        adapter = Adapter(model, "head")
        feats = adapter.features(batch).detach()
        adapted = inner_loop(adapter, feats, labels, steps=2, lr=0.5, first_order=first)
        bce(adapter.logits(adapted, feats), 1 - labels).backward()
        grads.append(model.head.weight.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_outer_optimizer_has_separate_rates_for_gnn_and_head(batch, labels):
    model = create_fewshot_model("fs-gnncvtr", **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = outer_optimizer(model, lr_gnn=1e-2, lr_head=1e-9)
    bce(model(batch).view(-1), labels).backward()
    opt.step()
    moved = {k: float((v - before[k]).abs().max()) for k, v in model.state_dict().items()}
    assert max(v for k, v in moved.items() if k.startswith("encoder.")) > 1e-3
    assert max(v for k, v in moved.items() if k.startswith("head.")) < 1e-7


@pytest.mark.parametrize("method,adapt", [("maml", "head"), ("maml", "all"), ("finetune", "head"),
                                          ("finetune", "encoder")])
def test_adapt_to_support_keeps_the_model(method, adapt, batch, labels):
    kind = "fs-gin" if method == "finetune" else "fs-gnncvtr"
    model = create_fewshot_model(kind, **TINY)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = AdaptSpec(method, adapt, 5, 0.1 if method == "maml" else 1e-2)
    adapted = adapt_to_support(model, spec, batch, labels, torch.Generator().manual_seed(0))
    probs = adapted.predict(batch)
    assert probs.shape == (len(SMILES),) and bool(((probs > 0) & (probs < 1)).all())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    again = adapt_to_support(model, spec, batch, labels, torch.Generator().manual_seed(0)).predict(batch)
    torch.testing.assert_close(probs, again)  # deterministic given the generator


def test_score_does_not_depend_on_the_batch():
    model = create_fewshot_model("fs-gnncvtr", **TINY).eval()
    graphs = [smiles_to_graph(s) for s in SMILES]
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs)).view(-1)
        alone = torch.cat([model(Batch.from_data_list([g])).view(-1) for g in graphs])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_conv_transformer_tokens_and_literature_defaults():
    model = create_fewshot_model("fs-gnncvtr")
    assert model.cfg.hidden == 300 and model.cfg.layers == 5 and len(model.encoder.layers) == 5
    assert model.cfg.num_tokens == 30  # (300 + 2*7 - 15) // 10 + 1 overlapping patches of the embedding
    tokens = model.head.tokens(torch.randn(2, 1, 300))
    assert tokens.shape == (2, 32, 30)
    assert isinstance(create_fewshot_model("fs-gin").head, torch.nn.Linear)
    with pytest.raises(ConfigError, match="Unknown option"):
        create_fewshot_model("fs-gin", colour="red")
    with pytest.raises(ConfigError, match="divisible"):
        create_fewshot_model("fs-gnncvtr", tr_dim=10, tr_heads=4)
    with pytest.raises(ConfigError, match="Unknown few-shot model"):
        create_fewshot_model("fs-nope")


def test_functional_call_matches_module(batch):
    model = create_fewshot_model("fs-gnncvtr", **TINY).eval()
    params = dict(model.named_parameters())
    torch.testing.assert_close(functional_call(model, params, (batch,)), model(batch))
