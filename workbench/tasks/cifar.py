"""``cifar10:PATH`` and ``cifar100:PATH``: the python versions of CIFAR (pickled batches).

The files are pickles, so they must come from a trusted source; they are read with an
unpickler that admits plain containers and numpy arrays only, so a tampered file cannot run
code through this loader.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from workbench.errors import ConfigError
from workbench.tasks.registry import Task, register_task, require_dir, require_file
from workbench.tasks.splits import build_task

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: any other global is refused."""

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


def _unpickle(file: Path, what: str) -> dict:
    require_file(file, f"a {what} file")
    try:
        with open(file, "rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except Exception as exc:  # UnpicklingError, EOFError, ValueError ...
        raise ConfigError(f"expected a pickled {what} at {file}, found unreadable data "
                          f"({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise ConfigError(f"expected a dict in {file}, found {type(batch).__name__}")
    return batch


def _batch(file: Path, what: str, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(file, what)
    if not {b"data", label_key} <= batch.keys():
        raise ConfigError(f"expected a dict with keys b'data', {label_key!r} in {file}, found "
                          f"{sorted(map(str, batch))}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ConfigError(f"expected b'data' of shape [N, 3072] and N labels in {file}, found "
                          f"data {list(data.shape)} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R(1024) G(1024) B(1024), row-major


def _root(path: Path, inner: str, what: str) -> Path:
    if (path / inner).is_dir():
        path = path / inner
    require_dir(path, f"a {what} directory")
    return path


def load_cifar10(*, path: Path, seed: int, **options) -> Task:
    """``cifar10:PATH``: ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` in PATH or
    PATH/cifar-10-batches-py."""
    path = _root(path, "cifar-10-batches-py", "CIFAR-10")
    train = [_batch(path / f"data_batch_{i}", "CIFAR-10 batch", b"labels") for i in range(1, 6)]
    x_test, y_test = _batch(path / "test_batch", "CIFAR-10 batch", b"labels")
    x = np.concatenate([b[0] for b in train])
    y = np.concatenate([b[1] for b in train])
    names = CIFAR10_CLASSES if len(np.unique(np.concatenate([y, y_test]))) == 10 else ()
    return build_task(f"cifar10:{path}", x, y, x_test=x_test, y_test=y_test, seed=seed,
                      class_names=names, **options)


def load_cifar100(*, path: Path, seed: int, labels: str = "fine", **options) -> Task:
    """``cifar100:PATH``: ``train``, ``test`` (and optionally ``meta``, for class names) in PATH
    or PATH/cifar-100-python. ``labels``: ``fine`` (100 classes) or ``coarse`` (20)."""
    if labels not in ("fine", "coarse"):
        raise ConfigError(f"task 'cifar100': expected labels fine or coarse, found {labels!r}")
    path = _root(path, "cifar-100-python", "CIFAR-100")
    key = f"{labels}_labels".encode()
    x, y = _batch(path / "train", "CIFAR-100 batch", key)
    x_test, y_test = _batch(path / "test", "CIFAR-100 batch", key)
    names: tuple[str, ...] = ()
    if (path / "meta").is_file():
        listed = _unpickle(path / "meta", "CIFAR-100 meta").get(f"{labels}_label_names".encode())
        present = np.unique(np.concatenate([y, y_test]))
        if listed is not None and len(listed) == len(present) \
                and present.tolist() == list(range(len(listed))):
            names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in listed)
    return build_task(f"cifar100:{path}", x, y, x_test=x_test, y_test=y_test, seed=seed,
                      class_names=names, **options)


register_task("cifar10", load_cifar10, input_shape=(3, 32, 32), needs_path=True,
              description="CIFAR-10 python batches (data_batch_1..5, test_batch; trusted files)")
register_task("cifar100", load_cifar100, input_shape=(3, 32, 32), needs_path=True,
              description="CIFAR-100 python files (train, test, meta); option labels fine|coarse")
