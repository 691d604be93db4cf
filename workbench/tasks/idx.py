"""``mnist:PATH``: MNIST or Fashion-MNIST as the four IDX files they ship as, gzipped or not.

PATH holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``
and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``; ``train-images.idx3-ubyte`` spellings
too). An IDX file is a big-endian header ``0x00 0x00 <type> <ndim>``, ``ndim`` 32-bit sizes,
then the data; headers and sizes are checked before the data is used.

>>> import io
>>> read_idx(io.BytesIO(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])), "demo").tolist()
[7, 8, 9]
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Protocol

import numpy as np

from workbench.errors import ConfigError, NotFound
from workbench.tasks.registry import Task, register_task, require_dir
from workbench.tasks.splits import build_task

IDX_TYPES: dict[int, np.dtype] = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
                                  0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"),
                                  0x0E: np.dtype(">f8")}
FILES = {("train", "images"): 3, ("train", "labels"): 1, ("t10k", "images"): 3,
         ("t10k", "labels"): 1}


class ReadsBytes(Protocol):
    """An open binary stream: a file, ``gzip.open(...)``, ``io.BytesIO``."""

    def read(self, size: int = -1, /) -> bytes: ...


def read_idx(fh: ReadsBytes, where: str, ndim: int | None = None) -> np.ndarray:
    """One IDX array from an open binary file; ``ndim`` (if given) must match the header."""
    header = fh.read(4)
    if len(header) < 4 or header[:2] != b"\0\0" or header[2] not in IDX_TYPES:
        raise ConfigError(f"expected an IDX header 0x0000<type><ndim> (type one of "
                          f"{', '.join(hex(t) for t in IDX_TYPES)}) in {where}, found "
                          f"0x{header.hex() or 'nothing'}")
    dtype, dims = IDX_TYPES[header[2]], header[3]
    if ndim is not None and dims != ndim:
        raise ConfigError(f"expected a {ndim}-dimensional IDX array in {where}, found {dims} "
                          f"dimensions")
    raw = fh.read(4 * dims)
    if len(raw) < 4 * dims:
        raise ConfigError(f"expected {dims} sizes in the IDX header of {where}, found a file "
                          f"that ends after {4 + len(raw)} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4"))
    count = int(np.prod(shape, dtype=np.int64))
    data = fh.read(count * dtype.itemsize + 1)
    if len(data) != count * dtype.itemsize:
        found = "more" if len(data) > count * dtype.itemsize else f"{len(data)} bytes"
        raise ConfigError(f"expected {count * dtype.itemsize} data bytes for shape {list(shape)} "
                          f"in {where}, found {found}")
    return np.frombuffer(data, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _find(path: Path, split: str, kind: str, ndim: int) -> Path:
    names = [f"{split}-{kind}-idx{ndim}-ubyte", f"{split}-{kind}.idx{ndim}-ubyte"]
    for name in names:
        for candidate in (path / name, path / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise NotFound(f"expected {names[0]} (or .gz) in {path}, found no such file")


def _load(file: Path, ndim: int) -> np.ndarray:
    with open(file, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"  # the gzip magic, whatever the file is called
    opener = gzip.open if gz else open
    try:
        with opener(file, "rb") as fh:
            return read_idx(fh, str(file), ndim)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile, truncated streams
        raise ConfigError(f"expected a readable {'gzip' if gz else 'IDX'} file at {file}, found "
                          f"{type(exc).__name__}: {exc}") from None


def load_mnist(*, path: Path, seed: int, **options) -> Task:
    """``mnist:PATH``: MNIST / Fashion-MNIST IDX files (train and t10k images and labels)."""
    require_dir(path, "a folder with the four MNIST IDX files")
    arrays = {key: _load(_find(path, *key, ndim), ndim) for key, ndim in FILES.items()}
    for split in ("train", "t10k"):
        images, labels = arrays[(split, "images")], arrays[(split, "labels")]
        if len(images) != len(labels):
            raise ConfigError(f"expected one label per image in {path} ({split}), found "
                              f"{len(images)} images and {len(labels)} labels")
    return build_task(f"mnist:{path}", arrays[("train", "images")][:, None],
                      arrays[("train", "labels")], x_test=arrays[("t10k", "images")][:, None],
                      y_test=arrays[("t10k", "labels")], seed=seed, **options)


register_task("mnist", load_mnist, input_shape=(1, 28, 28), needs_path=True,
              description="MNIST / Fashion-MNIST IDX files (train-*, t10k-*; .gz or not)")
