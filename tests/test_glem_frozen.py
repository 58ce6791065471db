"""The LM's frozen lower blocks run once: the split pass (stored states after the frozen blocks,
then the trained blocks) equals the full pass, in values and in the gradients of what is trained."""
from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")

from gnnformer.glem.lm_stage import freeze_lower_layers, frozen_states, infer_lm, tokenize  # noqa: E402
from gnnformer.models.lm import TextClassifier, load_tokenizer  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "graph", "text", "node", "edge", "model", "paper", "word"]
TEXTS = ["graph text node", "edge", "model paper word graph text node edge model", "paper paper",
         "word node", "text edge graph model paper"]


@pytest.fixture(scope="module")
def three_block_lm(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bert-3")
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    transformers.BertModel(config).save_pretrained(str(folder))
    return str(folder)


def setup(path):
    torch.manual_seed(1)
    model = TextClassifier(path, 3, dropout=0.0)
    tokens = tokenize(load_tokenizer(path), TEXTS, 12)
    return model, tokens


def test_split_pass_equals_full_pass_and_restores_the_encoder(three_block_lm):
    model, tokens = setup(three_block_lm)
    keys = list(model.state_dict())
    model.eval()
    ids, mask, _ = tokens.batch(torch.arange(len(TEXTS)))  # texts of different lengths: padding inside
    with torch.no_grad():
        full_logits, full_cls = model(ids, mask)
        for blocks in (1, 2, 3):
            logits, cls = model(ids, mask, hidden=model.hidden_after(ids, mask, blocks), start=blocks)
            torch.testing.assert_close(logits, full_logits, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(cls, full_cls, rtol=1e-5, atol=1e-6)
    assert list(model.state_dict()) == keys and len(model.layers()) == 3
    assert model.encoder.embeddings.__class__.__name__ == "BertEmbeddings"


def test_trained_blocks_get_the_same_gradients_through_the_split_pass(three_block_lm):
    grads = []
    for split in (False, True):
        model, tokens = setup(three_block_lm)
        frozen = freeze_lower_layers(model, 1)
        assert frozen == 2
        if split:
            tokens, why = frozen_states(model, tokens, frozen, batch_size=4, budget_mb=100)
            assert why == "" and tokens.hidden.shape == (len(TEXTS), 12, 16) and tokens.start == 2
        model.train()
        logits, _ = tokens.forward(model, torch.arange(len(TEXTS)))
        torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
    assert grads[0].keys() == grads[1].keys() and any("layer.2" in n for n in grads[0])
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-6)


def test_inference_from_stored_states_and_the_memory_budget(three_block_lm):
    model, tokens = setup(three_block_lm)
    frozen = freeze_lower_layers(model, 1)
    plain = infer_lm(model, tokens, batch_size=4)
    stored, why = frozen_states(model, tokens, frozen, batch_size=4, budget_mb=100)
    for a, b in zip(infer_lm(model, stored, batch_size=4), plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # 6 texts x 12 tokens x 16 floats = 4.5 KiB: a smaller budget keeps the full pass, and says why
    same, why = frozen_states(model, tokens, frozen, batch_size=4, budget_mb=0.004)
    assert same is tokens and same.hidden is None and "lm_state_cache_mb" in why
