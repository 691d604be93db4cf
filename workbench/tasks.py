"""Tasks: a dataset with its input shape, class count and metric, split and normalised.

A task spec is a name, optionally followed by ``:PATH`` for data on disk::

    digits                 scikit-learn's bundled 8x8 digits (no download; the default task)
    synthetic              a small learnable image task generated from the seed (for tests)
    synthetic-cifar        the same generator at 3x32x32, 10 classes (for GPU benchmarks)
    npz:PATH               arrays in a .npz file
    folder:PATH            an image-folder tree PATH/<class>/<image>.png|jpg
    cifar10:PATH           CIFAR-10's python batch files (data_batch_1..5, test_batch)

Splits are stratified and drawn from ``numpy.random.default_rng(seed)``: 70/15/15 train/val/test
when the data has no test split of its own, otherwise validation is split off the training data
(``val_fraction`` of it). Labels are mapped to ``0..K-1`` in sorted order of their values.
Inputs are normalised per channel with the mean and std of the **training split only**, so no
statistic leaks from validation or test data.

>>> task = get_task("digits")
>>> task.input_shape, task.num_classes, task.sizes
((1, 8, 8), 10, {'train': 1257, 'val': 270, 'test': 270})
>>> abs(task.x_train.mean().item()) < 1e-6, round(task.x_train.std().item(), 4)
(True, 1.0)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from workbench.errors import ConfigError, NotFound

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


@dataclass(frozen=True, eq=False)
class Task:
    """A split, normalised dataset: inputs ``float32 [N, C, H, W]``, labels ``int64 [N]``.

    ``mean``/``std`` are the per-channel statistics (from the training split) already applied to
    every split; exporters and inference code apply them to raw inputs.
    """

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_val: torch.Tensor = field(repr=False)
    y_val: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    metric: str = "accuracy"
    class_names: tuple[str, ...] = ()
    mean: tuple[float, ...] = field(default=(), repr=False)
    std: tuple[float, ...] = field(default=(), repr=False)

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: str | torch.device) -> Task:
        """The same task with every tensor on ``device`` (``self`` if already there).

        >>> get_task("synthetic", n=64).to("cpu").device
        device(type='cpu')
        """
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        moved = {f: getattr(self, f).to(device) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)


_TENSOR_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


# -- registry -------------------------------------------------------------------------------------
Loader = Callable[..., Task]


@dataclass(frozen=True)
class TaskEntry:
    name: str
    description: str
    input_shape: tuple[int, ...] | None  # None: known only from the data
    needs_path: bool
    loader: Loader = field(repr=False)


_REGISTRY: dict[str, TaskEntry] = {}


def register_task(name: str, loader: Loader, *, description: str,
                  input_shape: tuple[int, ...] | None = None, needs_path: bool = False) -> None:
    """Register a task loader ``loader(seed=, path=?, **options) -> Task`` under ``name``."""
    _REGISTRY[name] = TaskEntry(name, description, input_shape, needs_path, loader)


def list_tasks() -> list[dict]:
    """The registered tasks, for the CLI and UI.

    >>> [t["name"] for t in list_tasks()][:3]
    ['digits', 'synthetic', 'synthetic-cifar']
    """
    return [{"name": e.name, "description": e.description,
             "input_shape": list(e.input_shape) if e.input_shape else None,
             "needs_path": e.needs_path} for e in _REGISTRY.values()]


def get_task(spec: str = "digits", *, seed: int = 0, **options) -> Task:
    """Load the task named by ``spec`` (``name`` or ``name:PATH``), split with ``seed``.

    Common options: ``val_fraction`` (0.15), ``test_fraction`` (0.15; used only when the data
    has no test split). Each task documents its own options.

    >>> get_task("imagenet")
    Traceback (most recent call last):
    ...
    workbench.errors.NotFound: expected a task name (digits, synthetic, synthetic-cifar, npz:PATH, folder:PATH, cifar10:PATH), found 'imagenet'
    """
    name, sep, path = spec.partition(":")
    entry = _REGISTRY.get(name)
    if entry is None:
        known = ", ".join(e.name + (":PATH" if e.needs_path else "") for e in _REGISTRY.values())
        raise NotFound(f"expected a task name ({known}), found {spec!r}")
    if entry.needs_path:
        if not path:
            raise ConfigError(f"task {name!r}: expected {name}:PATH, found no path in {spec!r}")
        return entry.loader(path=Path(os.path.expanduser(path)), seed=seed, **options)
    if sep:
        raise ConfigError(f"task {name!r}: expected no path, found {spec!r}")
    return entry.loader(seed=seed, **options)


# -- splitting and normalisation ------------------------------------------------------------------
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
               class_names: tuple[str, ...] = (), per_feature: bool = False,
               val_fraction: float = 0.15, test_fraction: float = 0.15) -> Task:
    """Split (stratified, seeded), normalise (train stats) and wrap arrays ``x [N, C, H, W]``.

    ``per_feature`` normalises every element separately (tabular data) instead of per channel.

    >>> rng = np.random.default_rng(0)
    >>> t = build_task("demo", rng.normal(5, 2, (40, 2, 3, 3)), np.arange(40) % 4, seed=0)
    >>> t.sizes, t.input_shape, t.num_classes
    ({'train': 28, 'val': 6, 'test': 6}, (2, 3, 3), 4)
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    rng = np.random.default_rng(seed)
    y_all = y if y_test is None else np.concatenate([y, y_test])
    values, y_all = np.unique(y_all, return_inverse=True)  # labels -> 0..K-1, sorted by value
    y_all = y_all.astype(np.int64)
    if len(values) < 2:
        raise ConfigError(f"task {name!r}: expected at least 2 classes, found {len(values)}")
    if x_test is None:
        tr, va, te = stratified_split(y_all, (1 - val_fraction - test_fraction, val_fraction,
                                              test_fraction), rng)
        splits = {"train": (x[tr], y_all[tr]), "val": (x[va], y_all[va]), "test": (x[te], y_all[te])}
    else:
        y_tr, y_te = y_all[:len(y)], y_all[len(y):]
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

    (x_train, y_train), (x_val, y_val), (x_te, y_te) = (tensors(p) for p in ("train", "val", "test"))
    if not class_names:
        class_names = tuple(str(v) for v in values)
    log.debug("task %s: %s", name, {k: len(v[1]) for k, v in splits.items()})
    return Task(name=name, input_shape=tuple(int(d) for d in x.shape[1:]),
                num_classes=len(values), x_train=x_train, y_train=y_train, x_val=x_val,
                y_val=y_val, x_test=x_te, y_test=y_te, class_names=tuple(class_names),
                mean=tuple(float(v) for v in mean.ravel()), std=tuple(float(v) for v in std.ravel()))


# -- built-in tasks -------------------------------------------------------------------------------
def _digits(*, seed: int, **options) -> Task:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images[:, None, :, :]  # [N, 8, 8] -> [N, 1, 8, 8], values 0..16
    return build_task("digits", x, data.target, seed=seed, **options)


def synthetic_arrays(n: int, shape: tuple[int, ...], classes: int, *, seed: int,
                     noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable image task: each class is a smooth random pattern; each sample is a randomly
    scaled copy, circularly shifted by up to ``max(1, min(H, W) // 8)`` pixels (so translation
    invariance, i.e. convolution, helps), plus Gaussian noise of std ``noise``.

    >>> x, y = synthetic_arrays(8, (3, 8, 8), 4, seed=0)
    >>> x.shape, y.tolist()
    ((8, 3, 8, 8), [0, 1, 2, 3, 0, 1, 2, 3])
    """
    rng = np.random.default_rng(seed)
    c, h, w = shape
    # class prototypes: random at half resolution, upsampled by 2 -> smooth blobs
    low = rng.normal(size=(classes, c, (h + 1) // 2, (w + 1) // 2))
    protos = low.repeat(2, axis=2).repeat(2, axis=3)[:, :, :h, :w]
    y = np.arange(n) % classes  # balanced classes
    scale = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
    x = protos[y] * scale
    reach = max(1, min(h, w) // 8) if min(h, w) > 2 else 0
    shifts = rng.integers(-reach, reach + 1, size=(n, 2))
    for dy, dx in np.unique(shifts, axis=0):  # one vectorised roll per distinct shift
        sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
        x[sel] = np.roll(x[sel], (int(dy), int(dx)), axis=(2, 3))
    x = x + rng.normal(scale=noise, size=x.shape)
    return x.astype(np.float32), y


def _synthetic(*, seed: int, n: int = 512, shape: tuple[int, ...] = (3, 8, 8), classes: int = 4,
               noise: float = 1.0, name: str = "synthetic", **options) -> Task:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"task {name!r}: expected shape (C, H, W), found {shape!r}")
    if int(classes) < 2 or int(n) < 2 * int(classes):
        raise ConfigError(f"task {name!r}: expected classes >= 2 and n >= 2 * classes, "
                          f"found classes={classes}, n={n}")
    x, y = synthetic_arrays(int(n), shape, int(classes), seed=seed, noise=float(noise))
    return build_task(name, x, y, seed=seed, **options)


def _synthetic_cifar(*, seed: int, n: int = 10000, noise: float = 3.0, **options) -> Task:
    # more noise than `synthetic`: at 3x32x32 the patterns are otherwise solved in one epoch
    return _synthetic(seed=seed, n=n, shape=(3, 32, 32), classes=10, noise=noise,
                      name="synthetic-cifar", **options)


register_task("digits", _digits, input_shape=(1, 8, 8),
              description="scikit-learn's 8x8 handwritten digits (1797 images, bundled)")
register_task("synthetic", _synthetic, input_shape=(3, 8, 8),
              description="seeded class patterns plus noise; options n, shape, classes, noise")
register_task("synthetic-cifar", _synthetic_cifar, input_shape=(3, 32, 32),
              description="synthetic task at CIFAR size (3x32x32, 10 classes); options n, noise")



# -- tasks from disk ------------------------------------------------------------------------------
def _to_nchw(x: np.ndarray, layout: str, where: str) -> tuple[np.ndarray, bool]:
    """Inputs in one of the accepted layouts -> ``[N, C, H, W]``; also says if tabular.

    ``[N, D]`` tabular data becomes ``[N, 1, 1, D]`` (one row of D features: ``linear`` acts on
    the last dim, so a model sees the feature vector directly), normalised per feature.
    ``[N, H, W]`` is grayscale ``[N, 1, H, W]``. For 4-D arrays ``layout`` is ``"nchw"``,
    ``"nhwc"`` or ``"auto"`` (NHWC when the last dim has 1, 3 or 4 entries and dim 1 has not).
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


def _check_xy(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if y.ndim != 1 or len(y) != len(x):
        raise ConfigError(f"{where}: expected labels of shape [{len(x)}] (one per input), "
                          f"found shape {list(y.shape)}")
    if len(x) == 0:
        raise ConfigError(f"{where}: expected at least one sample, found none")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ConfigError(f"{where}: expected finite inputs, found NaN or Inf")


def _require_file(path: Path, what: str) -> None:
    if not path.is_file():
        found = "a directory" if path.is_dir() else "no file"
        raise NotFound(f"expected {what} at {path}, found {found}")


def load_npz(*, path: Path, seed: int, layout: str = "auto", **options) -> Task:
    """``npz:PATH``: arrays ``x, y`` or ``x_train, y_train`` (optionally ``x_test, y_test``).

    Inputs may be ``[N, C, H, W]``, ``[N, H, W, C]`` (see ``layout``), ``[N, H, W]`` (grayscale) or
    ``[N, D]`` (tabular, becomes ``[N, 1, 1, D]`` normalised per feature). Loaded without pickle.
    """
    _require_file(path, "a .npz file")
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
    x, tabular = _to_nchw(x, layout, f"{path} (x)")
    _check_xy(x, y, str(path))
    if x_test is not None:
        x_test, _ = _to_nchw(x_test, layout, f"{path} (x_test)")
        _check_xy(x_test, y_test, f"{path} (test)")
        if x_test.shape[1:] != x.shape[1:]:
            raise ConfigError(f"{path}: expected x_test samples of shape {list(x.shape[1:])} like "
                              f"x_train, found {list(x_test.shape[1:])}")
    return build_task(f"npz:{path}", x, y, x_test=x_test, y_test=y_test, seed=seed,
                      per_feature=tabular, **options)


def _size(size, where: str) -> tuple[int, int] | None:
    if size is None:
        return None
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if len(hw) != 2 or any(int(s) < 1 for s in hw):
        raise ConfigError(f"{where}: expected size as N or (H, W) with positive ints, found {size!r}")
    return int(hw[0]), int(hw[1])


def load_folder(*, path: Path, seed: int, size=None, channels: int | None = None,
                **options) -> Task:
    """``folder:PATH``: images in ``PATH/<class>/``, class names sorted, loaded with Pillow.

    Every image is resized (bilinear) to ``size`` (an int or ``(H, W)``; default: the size of the
    first image). ``channels`` is 1 or 3; by default 1 when every image is grayscale, else 3 (RGB).
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise NotFound(f"expected an image folder at {path}, found "
                       f"{'a file' if path.exists() else 'no directory'}")
    if channels not in (None, 1, 3):
        raise ConfigError(f"{path}: expected channels 1 or 3, found {channels!r}")
    hw = _size(size, str(path))
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(f"expected at least 2 class folders {path}/<class>/<image>, found "
                          f"{len(classes)}")
    images, labels, gray = [], [], True
    for label, cls in enumerate(classes):
        files = sorted(f for f in (path / cls).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError(f"expected images ({', '.join(IMAGE_SUFFIXES)}) in {path / cls}, "
                              f"found none")
        for f in files:
            try:
                with Image.open(f) as img:
                    gray &= img.mode in ("1", "L", "LA", "I", "I;16", "F")
                    img = img.convert("RGB")
                    hw = hw or (img.height, img.width)
                    if (img.height, img.width) != hw:
                        img = img.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
                    images.append(np.asarray(img, dtype=np.uint8))
            except (UnidentifiedImageError, OSError) as exc:
                raise ConfigError(f"expected an image file at {f}, found unreadable data "
                                  f"({type(exc).__name__})") from None
            labels.append(label)
    x = np.stack(images).transpose(0, 3, 1, 2)  # [N, H, W, 3] -> [N, 3, H, W]
    if (channels or (1 if gray else 3)) == 1:
        x = x[:, :1] if gray else np.round(_luma(x))[:, None].astype(np.uint8)
    return build_task(f"folder:{path}", x, np.array(labels), seed=seed,
                      class_names=tuple(classes), **options)


def _luma(x: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of ``[N, 3, H, W]`` RGB images -> ``[N, H, W]``."""
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: any other global is refused, so a
    tampered file cannot run code through this loader (the files should still come from a
    trusted source: the format is pickle)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("_codecs", "encode")}  # how protocol-2 pickles from Python 3 store bytes

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing global {module}.{name} (only numpy arrays)")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module[len("numpy.core."):]  # numpy 2 renamed numpy.core
        return super().find_class(module, name)


def _cifar_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    _require_file(file, "a CIFAR-10 batch file")
    try:
        with open(file, "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # UnpicklingError, EOFError, ValueError ...
        raise ConfigError(f"expected a pickled CIFAR-10 batch at {file}, found unreadable data "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or not {b"data", b"labels"} <= batch.keys():
        found = sorted(map(str, batch)) if isinstance(batch, dict) else type(batch).__name__
        raise ConfigError(f"expected a dict with keys b'data', b'labels' in {file}, found {found}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ConfigError(f"expected b'data' of shape [N, 3072] and N labels in {file}, found "
                          f"data {list(data.shape)} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R(1024) G(1024) B(1024), row-major


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


def load_cifar10(*, path: Path, seed: int, **options) -> Task:
    """``cifar10:PATH``: the python version of CIFAR-10 (``data_batch_1`` .. ``data_batch_5``,
    ``test_batch``) in PATH or PATH/cifar-10-batches-py. The files are pickles, so they must come
    from a trusted source; they are read with an unpickler that admits numpy arrays only."""
    if (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-batches-py"
    if not path.is_dir():
        raise NotFound(f"expected a CIFAR-10 directory at {path}, found "
                       f"{'a file' if path.exists() else 'no directory'}")
    train = [_cifar_batch(path / f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = _cifar_batch(path / "test_batch")
    x = np.concatenate([b[0] for b in train])
    y = np.concatenate([b[1] for b in train])
    names = CIFAR10_CLASSES if len(np.unique(np.concatenate([y, y_test]))) == 10 else ()
    return build_task(f"cifar10:{path}", x, y, x_test=x_test, y_test=y_test, seed=seed,
                      class_names=names, **options)


register_task("npz", load_npz, needs_path=True,
              description="arrays x, y (or x_train, y_train[, x_test, y_test]) in a .npz file")
register_task("folder", load_folder, needs_path=True,
              description="image folder PATH/<class>/<image>.png|jpg; options size, channels")
register_task("cifar10", load_cifar10, input_shape=(3, 32, 32), needs_path=True,
              description="CIFAR-10 python batches (data_batch_1..5, test_batch; trusted files)")
