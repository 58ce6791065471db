"""Meta-test evaluation: adapt to every support draw of every test task, score the rest.

For each meta-test task and each of ``draws`` support sets (k positives + k negatives, drawn
independently with a fixed seed per task and draw, identical for every method), the model is
adapted to the support set and every other molecule of the task is scored, in two metrics per
draw (``METRICS``): ROC-AUC of the probabilities, and the "ROC-AUC" FS-GNNCvTR's code reports,
computed on the predictions thresholded at 0.5 (a balanced accuracy; ``thresholded_roc_auc``),
so that its published numbers can be compared like for like. Every draw counts: a task's result
is the mean and standard deviation over all draws, and the mean over tasks is the mean of the
task means.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

import torch

from ..tasks.metrics import mean_std, roc_auc, thresholded_roc_auc
from .meta import AdaptSpec, adapt_to_support, embed_molecules, predict_molecules
from .tasks import FewShotData, check_task_fits, episode_generator, pool_ids, sample_episode

#: metric name -> score of one draw (probabilities, labels); ``roc_auc`` is the headline.
METRICS = {"roc_auc": roc_auc, "thresholded": thresholded_roc_auc}


def evaluate(model, spec: AdaptSpec, data: FewShotData, draws: int, seed: int, batch_size: int = 256,
             on_draw: Optional[Callable[[], None]] = None,
             tasks: Optional[list] = None) -> Dict[str, Dict[str, List[float]]]:
    """``{metric: {task: [score of every draw]}}`` over the test tasks (or ``tasks``); the draws
    depend on the seed and the task only, not on the model."""
    model.eval()
    tasks = data.test_tasks if tasks is None else tasks
    for task in tasks:
        check_task_fits(task, spec.shots)
    emb, row = None, {}
    if spec.adapt == "head":  # the GIN is not adapted: embed each molecule once
        ids = pool_ids(tasks)
        emb = embed_molecules(model, [data.molecules[i] for i in ids.tolist()], batch_size)
        row = {int(m): r for r, m in enumerate(ids.tolist())}
    results: Dict[str, Dict[str, List[float]]] = {name: {} for name in METRICS}
    for task in tasks:
        scores: Dict[str, List[float]] = {name: [] for name in METRICS}
        for draw in range(draws):
            gen = episode_generator(seed, 1_000 + task.index, draw)
            ep = sample_episode(task, spec.shots, None, gen)
            if emb is not None:
                sup = emb[torch.tensor([row[int(m)] for m in ep.support_ids.tolist()])]
                adapted = adapt_to_support(model, spec, sup, ep.support_labels, gen)
                qry = emb[torch.tensor([row[int(m)] for m in ep.query_ids.tolist()])]
                probs = torch.sigmoid(torch.cat([adapted.logits_from_features(qry[i:i + batch_size])
                                                 for i in range(0, qry.size(0), batch_size)]))
            else:
                sup = data.batch(ep.support_ids)
                adapted = adapt_to_support(model, spec, sup, ep.support_labels, gen)
                probs = predict_molecules(adapted, [data.molecules[i] for i in ep.query_ids.tolist()], batch_size)
            for name, metric in METRICS.items():
                scores[name].append(metric(probs, ep.query_labels))
            if on_draw is not None:
                on_draw()
        for name in METRICS:
            results[name][task.name] = scores[name]
    return results


def summarise(results: Dict[str, Dict[str, List[float]]]) -> Dict[str, Any]:
    """The layout of metrics.json: ROC-AUC as ``{'per_task': {task: {'mean', 'std', 'draws',
    'values'}}, 'mean': mean of the task means}``, and every other metric the same way under its
    name (``'thresholded': {'per_task': ..., 'mean': ...}``). Statistics are ``mean_std``'s:
    population std, NaN left out."""
    out: Dict[str, Any] = {}
    for metric, by_task in results.items():
        per_task = {}
        for name, values in by_task.items():
            stats = mean_std(values)
            per_task[name] = {"mean": stats["mean"], "std": stats["std"], "draws": len(values),
                              "values": stats["values"]}
        block = {"per_task": per_task, "mean": mean_std([s["mean"] for s in per_task.values()])["mean"]}
        if metric == "roc_auc":
            out.update(block)
        else:
            out[metric] = block
    return out


def scores_by_step(watched: List[Dict[str, Dict[str, List[float]]]]) -> Dict[str, Any]:
    """The test tasks scored at every validation step (``evaluate`` results, one per step): per metric,
    each task's mean over the draws at every step, and ``best``: the mean over tasks of each task's best
    step, the FS-GNNCvTR code's way of reporting (its test tasks evaluated after every epoch, each
    task's maximum kept). Selection on the test tasks: for comparison with its numbers only."""
    out: Dict[str, Any] = {}
    for metric in watched[0]:
        per_task = {task: [mean_std(step[metric][task])["mean"] for step in watched] for task in watched[0][metric]}
        out[metric] = {"per_task": per_task,
                       "best": mean_std([max((v for v in values if v == v), default=float("nan"))
                                         for values in per_task.values()])["mean"]}
    return out
