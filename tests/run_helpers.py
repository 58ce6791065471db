"""Reading back what `gnnformer train` wrote, through public entry points only, so a test can
recompute a reported metric by hand from the saved model and split."""
import json
from pathlib import Path

import torch

from gnnformer.models import create_model


def load_run(out: Path) -> tuple[dict, dict, torch.nn.Module]:
    """``(metrics.json, checkpoint, model)``: the model rebuilt with `create_model`, in eval mode."""
    metrics = json.loads((out / "metrics.json").read_text())
    ckpt = torch.load(out / "best.pt", weights_only=False)
    assert not ckpt["encodings"], "recomputing by hand assumes a model without precomputed encodings"
    model = create_model(ckpt["model"], **ckpt["model_config"])
    model.load_state_dict(ckpt["state_dict"])
    return metrics, ckpt, model.eval()


def correct_on(model: torch.nn.Module, graph, index: list[int]) -> int:
    """How many of the nodes ``index`` of one graph the model classifies right (one full forward)."""
    with torch.no_grad():
        pred = model(graph).argmax(-1)
    index = torch.as_tensor(index)
    return int((pred[index] == graph.y[index]).sum())
