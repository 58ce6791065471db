"""Pearson chi-square independence tests on perturbation samples, vectorised over candidate nodes.

PGM-Explainer (Vu & Thai, "PGM-Explainer: Probabilistic Graphical Model Explanations for Graph
Neural Networks", NeurIPS 2020) keeps the nodes whose perturbation the target's outcome depends
on (a chi-square test per node), then shrinks them to the target's Markov blanket with
conditional tests. Both are here, on integer-coded samples, without pandas.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.special import gammaln
from scipy.stats import chi2 as chi2_dist


def evidence(stat: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """``-log p`` of chi-square tests, finite far beyond where ``p`` itself rounds to 0: with a
    thousand samples many dependent nodes have p = 0.0 exactly, and ranking them by ``p`` alone
    would fall back to node order."""
    stat, tested = np.asarray(stat, dtype=float), np.asarray(dof) > 0
    dof = np.maximum(np.asarray(dof), 1).astype(float)
    log_p = chi2_dist.logsf(stat, dof)
    # Where even log p underflows (-inf): the tail of the regularised upper incomplete gamma,
    # Q(a, y) ~ y^(a-1) e^(-y) / Gamma(a) (1 + (a-1)/y + (a-1)(a-2)/y^2), a = dof/2, y = stat/2.
    a, y = dof / 2, np.maximum(stat, 1.0) / 2
    tail = (a - 1) * np.log(y) - y - gammaln(a) + np.log1p((a - 1) / y + (a - 1) * (a - 2) / y ** 2)
    log_p = np.where(np.isfinite(log_p), log_p, tail)
    return np.where(tested, -log_p, 0.0)


def chi_square(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson's test of ``x[:, j]`` independent of ``y`` (given the rows of ``z``), for every column ``j``.

    ``x``: [S, K] (or [S]) small non-negative integer codes, ``y``: [S] codes, ``z``: [S, M] codes
    or None. Within each stratum of ``z`` (each distinct row) only the states of x and y seen there
    count (a state never seen adds no degree of freedom); statistics and degrees of freedom add up
    over strata, as in Koller & Friedman (2009, 18.2.2.3). No continuity correction (scipy's
    ``chi2_contingency(table, correction=False)`` on each stratum's table). A test with no degree
    of freedom (a constant variable) has p = 1. Returns (statistic [K], dof [K], p-value [K]).
    """
    x = np.asarray(x)
    squeeze = x.ndim == 1
    x = x.reshape(len(x), -1).astype(np.int64)
    y = np.asarray(y).astype(np.int64)
    if z is None or np.asarray(z).size == 0:
        strata = np.zeros(len(y), dtype=np.int64)
    else:
        strata = np.unique(np.asarray(z).reshape(len(y), -1), axis=0, return_inverse=True)[1].reshape(-1)
    n_x, n_y, n_z, k = int(x.max()) + 1, int(y.max()) + 1, int(strata.max()) + 1, x.shape[1]
    # counts[j, s, a, b]: samples of stratum s with x_j = a and y = b, all columns in one bincount
    flat = ((np.arange(k)[None, :] * n_z + strata[:, None]) * n_x + x) * n_y + y[:, None]
    counts = np.bincount(flat.reshape(-1), minlength=k * n_z * n_x * n_y).reshape(k, n_z, n_x, n_y).astype(float)
    rows, cols = counts.sum(3, keepdims=True), counts.sum(2, keepdims=True)
    total = rows.sum(2, keepdims=True)
    expected = np.divide(rows * cols, total, out=np.zeros_like(counts), where=total > 0)
    cells = np.divide((counts - expected) ** 2, expected, out=np.zeros_like(counts), where=expected > 0)
    stat = cells.sum(axis=(1, 2, 3))
    dof = (np.clip((rows > 0).sum(2) - 1, 0, None) * np.clip((cols > 0).sum(3) - 1, 0, None)).reshape(k, n_z).sum(1)
    p = np.where(dof > 0, chi2_dist.sf(stat, np.maximum(dof, 1)), 1.0)
    if squeeze:
        return stat[0], dof[0], p[0]
    return stat, dof, p


def markov_blanket(target: np.ndarray, variables: np.ndarray, condition: np.ndarray, names: Sequence[int],
                   threshold: float = 0.05) -> list[int]:
    """The candidates that stay dependent on ``target`` given the others still in the blanket.

    As in the authors' search: start from every candidate, test each against the target given the
    rest, drop one whose p-value exceeds ``threshold``, and stop after a full pass drops nothing.
    ``variables[:, j]`` is candidate j's variable, ``condition[:, j]`` what is conditioned on when j
    is among the rest (its perturbation indicator: the samples intervene on perturbations, so
    conditioning on them keeps 2^m strata for m candidates).
    """
    blanket = list(range(len(names)))
    dropped = True
    while dropped and blanket:
        dropped = False
        for j in list(blanket):
            rest = [i for i in blanket if i != j]
            _, _, p = chi_square(variables[:, j], target, condition[:, rest] if rest else None)
            if p > threshold:
                blanket.remove(j)
                dropped = True
    return [names[j] for j in blanket]
