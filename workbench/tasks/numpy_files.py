"""Tasks from numpy arrays on disk: ``npz:FILE`` and ``npy:DIR`` (the einspace Unseen-NAS layout).

Inputs may be ``[N, C, H, W]``, ``[N, H, W, C]`` (option ``layout``: ``auto``, ``nchw``,
``nhwc``), ``[N, H, W]`` (grayscale) or ``[N, D]`` (tabular: ``[N, 1, 1, D]``, normalised per
feature). Files are read without pickle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.errors import ConfigError, NotFound
from workbench.tasks.registry import Task, register_task, require_dir, require_file
from workbench.tasks.splits import build_task

NPY_SPLITS = ("train", "valid", "test")


def to_nchw(x: np.ndarray, layout: str, where: str) -> tuple[np.ndarray, bool]:
    """Inputs in one of the accepted layouts -> ``[N, C, H, W]``; also says if tabular.

    ``[N, D]`` tabular data becomes ``[N, 1, 1, D]`` (one row of D features: ``linear`` acts on
    the last dim, so a model sees the feature vector directly), normalised per feature.
    ``[N, H, W]`` is grayscale ``[N, 1, H, W]``. For 4-D arrays ``layout`` is ``"nchw"``,
    ``"nhwc"`` or ``"auto"`` (NHWC when the last dim has 1, 3 or 4 entries and dim 1 has not).

    >>> to_nchw(np.zeros((2, 5, 6, 3)), "auto", "demo")[0].shape
    (2, 3, 5, 6)
    """
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ConfigError(f"{where}: expected a numeric array, found dtype {x.dtype}")
    if x.ndim == 2:
        return x[:, None, None, :], True
    if x.ndim == 3:
        return x[:, None, :, :], False
    if x.ndim != 4:
        raise ConfigError(f"{where}: expected x of shape [N, D], [N, H, W], [N, C, H, W] or "
                          f"[N, H, W, C], found shape {list(x.shape)}")
    layout = layout.lower()
    if layout not in ("auto", "nchw", "nhwc"):
        raise ConfigError(f"{where}: expected layout auto, nchw or nhwc, found {layout!r}")
    if layout == "auto":
        layout = "nhwc" if x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4) else "nchw"
    return (x.transpose(0, 3, 1, 2) if layout == "nhwc" else x), False


def check_xy(x: np.ndarray, y: np.ndarray, where: str) -> None:
    """Labels one per input, at least one sample, finite inputs."""
    if y.ndim != 1 or len(y) != len(x):
        raise ConfigError(f"{where}: expected labels of shape [{len(x)}] (one per input), "
                          f"found shape {list(y.shape)}")
    if len(x) == 0:
        raise ConfigError(f"{where}: expected at least one sample, found none")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ConfigError(f"{where}: expected finite inputs, found NaN or Inf")


def _same_sample_shape(x: np.ndarray, other: np.ndarray, where: str, part: str) -> None:
    if other.shape[1:] != x.shape[1:]:
        raise ConfigError(f"{where}: expected {part} samples of shape {list(x.shape[1:])} like "
                          f"the training inputs, found {list(other.shape[1:])}")


def load_npz(*, path: Path, seed: int, layout: str = "auto", **options) -> Task:
    """``npz:PATH``: arrays ``x, y`` or ``x_train, y_train`` (optionally ``x_test, y_test``)."""
    require_file(path, "a .npz file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError ...
        raise ConfigError(f"expected a .npz archive of numeric arrays at {path}, found unreadable "
                          f"data ({type(exc).__name__}: {exc})") from None
    if {"x", "y"} <= arrays.keys():
        x, y, x_test, y_test = arrays["x"], arrays["y"], None, None
    elif {"x_train", "y_train"} <= arrays.keys():
        x, y = arrays["x_train"], arrays["y_train"]
        x_test, y_test = arrays.get("x_test"), arrays.get("y_test")
        if (x_test is None) != (y_test is None):
            raise ConfigError(f"{path}: expected both x_test and y_test or neither, found only "
                              f"{'x_test' if y_test is None else 'y_test'}")
    else:
        raise ConfigError(f"{path}: expected arrays x, y or x_train, y_train, found "
                          f"{', '.join(sorted(arrays)) or 'no arrays'}")
    x, tabular = to_nchw(x, layout, f"{path} (x)")
    check_xy(x, y, str(path))
    if x_test is not None and y_test is not None:  # both or neither, checked above
        x_test, _ = to_nchw(x_test, layout, f"{path} (x_test)")
        check_xy(x_test, y_test, f"{path} (test)")
        _same_sample_shape(x, x_test, str(path), "x_test")
    return build_task(f"npz:{path}", x, y, x_test=x_test, y_test=y_test, seed=seed,
                      per_feature=tabular, **options)


def _npy(file: Path) -> np.ndarray:
    require_file(file, "a .npy array")
    try:
        return np.load(file, allow_pickle=False)
    except Exception as exc:  # ValueError (pickled objects, bad header), OSError ...
        raise ConfigError(f"expected a numeric .npy array at {file}, found unreadable data "
                          f"({type(exc).__name__}: {exc})") from None


def load_npy(*, path: Path, seed: int, layout: str = "auto", **options) -> Task:
    """``npy:DIR``: ``{train,valid,test}_{x,y}.npy`` in DIR, as einspace's Unseen-NAS datasets
    ship them. The given validation split is used as given (``val_fraction`` does not apply);
    without ``valid_*`` files validation is split off the training data, stratified."""
    require_dir(path, "a folder of train_x.npy, train_y.npy, valid_x.npy, valid_y.npy, "
                      "test_x.npy, test_y.npy")
    has_valid = [(path / f"valid_{k}.npy").exists() for k in ("x", "y")]
    if has_valid[0] != has_valid[1]:
        missing = "valid_y.npy" if has_valid[0] else "valid_x.npy"
        raise NotFound(f"expected both valid_x.npy and valid_y.npy or neither in {path}, "
                       f"found no {missing}")
    arrays: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {}
    for part in NPY_SPLITS if has_valid[0] else ("train", "test"):
        x, tabular = to_nchw(_npy(path / f"{part}_x.npy"), layout, str(path / f"{part}_x.npy"))
        y = _npy(path / f"{part}_y.npy")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # a column of labels
        check_xy(x, y, str(path / f"{part}_y.npy"))
        if arrays:
            _same_sample_shape(arrays["train"][0], x, str(path / f"{part}_x.npy"), part)
        arrays[part] = (x, y, tabular)
    (x, y, tabular), (x_test, y_test, _) = arrays["train"], arrays["test"]
    x_val, y_val = arrays["valid"][:2] if "valid" in arrays else (None, None)
    if x_val is not None and "val_fraction" in options:
        raise ConfigError(f"{path}: expected no val_fraction (the folder has its own valid split, "
                          f"used as given), found val_fraction={options['val_fraction']!r}")
    return build_task(f"npy:{path}", x, y, x_val=x_val, y_val=y_val, x_test=x_test,
                      y_test=y_test, seed=seed, per_feature=tabular, **options)


register_task("npz", load_npz, needs_path=True,
              description="arrays x, y (or x_train, y_train[, x_test, y_test]) in a .npz file")
register_task("npy", load_npy, needs_path=True,
              description="folder of {train,valid,test}_{x,y}.npy (einspace Unseen-NAS layout)")
