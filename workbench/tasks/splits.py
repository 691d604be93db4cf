"""Deterministic stratified splits and training-split normalisation: arrays -> :class:`Task`.

Splits are stratified and drawn from ``numpy.random.default_rng(seed)``: 70/15/15 train/val/test
when the data has no test split of its own, otherwise validation is split off the training data
(``val_fraction`` of it); a validation split that comes with the data is used as given. Labels
are mapped to ``0..K-1`` in sorted order of their values. Inputs are normalised per channel with
the mean and std of the **training split only**, so no statistic leaks from validation or test
data. The test split is reported, never used for selection.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from workbench.errors import ConfigError
from workbench.tasks.registry import Task

log = logging.getLogger(__name__)


def stratified_split(y: np.ndarray, fractions: tuple[float, ...],
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Split indices of ``y`` into parts with the given fractions, keeping class proportions.

    Every part after the first gets ``round(N * fraction)`` samples, shared among the classes in
    proportion to their size (largest remainders first); the first part takes the rest. Each
    class is shuffled by ``rng`` before it is cut. Indices in each part are sorted.

    >>> y = np.repeat([0, 1], 10)
    >>> parts = stratified_split(y, (0.6, 0.2, 0.2), np.random.default_rng(0))
    >>> [len(p) for p in parts], [int(y[p].sum()) for p in parts]
    ([12, 4, 4], [6, 2, 2])
    """
    classes, counts = np.unique(y, return_counts=True)
    taken = np.zeros(len(classes), np.int64)
    per_part = []
    for f in fractions[1:]:
        ideal = counts * f
        n = np.minimum(np.floor(ideal).astype(np.int64), counts - taken)
        short = min(int(round(len(y) * f)), int((counts - taken).sum())) - int(n.sum())
        # hand the remaining samples to the classes with the largest remainders (stable order)
        for c in np.argsort(-(ideal - n), kind="stable"):
            if short <= 0:
                break
            if taken[c] + n[c] < counts[c]:
                n[c] += 1
                short -= 1
        taken += n
        per_part.append(n)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c, cls in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(y == cls))
        end = len(idx)
        for i, n in enumerate(per_part, start=1):
            parts[i].append(idx[end - n[c]:end])
            end -= n[c]
        parts[0].append(idx[:end])
    return [np.sort(np.concatenate(p)) for p in parts]


def _check_fraction(name: str, value: float) -> float:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"expected {name} in [0, 1), found {value!r}")
    return float(value)


def build_task(name: str, x: np.ndarray, y: np.ndarray, *, seed: int,
               x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
               x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
               class_names: tuple[str, ...] = (), per_feature: bool = False,
               val_fraction: float = 0.15, test_fraction: float = 0.15) -> Task:
    """Split (stratified, seeded), normalise (train stats) and wrap arrays ``x [N, C, H, W]``.

    ``x_val``/``y_val`` (only with a test split) are used as given: nothing is split then.
    ``per_feature`` normalises every element separately (tabular data) instead of per channel.

    >>> rng = np.random.default_rng(0)
    >>> t = build_task("demo", rng.normal(5, 2, (40, 2, 3, 3)), np.arange(40) % 4, seed=0)
    >>> t.sizes, t.input_shape, t.num_classes
    ({'train': 28, 'val': 6, 'test': 6}, (2, 3, 3), 4)
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if x_val is not None and x_test is None:
        raise ConfigError(f"task {name!r}: expected a test split with the given validation "
                          f"split, found none")
    rng = np.random.default_rng(seed)
    given = [a for a in (y, y_val, y_test) if a is not None]
    values, y_all = np.unique(np.concatenate(given), return_inverse=True)  # -> 0..K-1, sorted
    y_all = y_all.astype(np.int64)
    if len(values) < 2:
        raise ConfigError(f"task {name!r}: expected at least 2 classes, found {len(values)}")
    cuts = np.cumsum([len(a) for a in given])[:-1]
    if x_test is None:
        tr, va, te = stratified_split(y_all, (1 - val_fraction - test_fraction, val_fraction,
                                              test_fraction), rng)
        splits = {"train": (x[tr], y_all[tr]), "val": (x[va], y_all[va]), "test": (x[te], y_all[te])}
    elif x_val is not None:
        y_tr, y_va, y_te = np.split(y_all, cuts)
        splits = {"train": (x, y_tr), "val": (x_val, y_va), "test": (x_test, y_te)}
    else:
        y_tr, y_te = np.split(y_all, cuts)
        tr, va = stratified_split(y_tr, (1 - val_fraction, val_fraction), rng)
        splits = {"train": (x[tr], y_tr[tr]), "val": (x[va], y_tr[va]), "test": (x_test, y_te)}
    if len(splits["train"][1]) == 0:
        raise ConfigError(f"task {name!r}: expected a non-empty training split, found 0 samples "
                          f"of {len(y_all)}")
    x_tr = splits["train"][0].astype(np.float64)
    axes = 0 if per_feature else (0, 2, 3)
    mean = x_tr.mean(axis=axes, keepdims=True)
    std = x_tr.std(axis=axes, keepdims=True)
    std = np.where(std > 1e-8, std, 1.0)  # constant features stay finite (become 0)

    def tensors(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = splits[part]
        xs = ((xs.astype(np.float64) - mean) / std).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys.astype(np.int64))

    (x_train, y_train), (x_val_t, y_val_t), (x_test_t, y_test_t) = (
        tensors(p) for p in ("train", "val", "test"))
    if not class_names:
        class_names = tuple(str(v) for v in values)
    log.debug("task %s: %s", name, {k: len(v[1]) for k, v in splits.items()})
    return Task(name=name, input_shape=tuple(int(d) for d in x.shape[1:]),
                num_classes=len(values), x_train=x_train, y_train=y_train, x_val=x_val_t,
                y_val=y_val_t, x_test=x_test_t, y_test=y_test_t, class_names=tuple(class_names),
                mean=tuple(float(v) for v in mean.ravel()), std=tuple(float(v) for v in std.ravel()))
