"""Built-in tasks, nothing downloaded: ``mnist1d`` (generated), ``digits`` (bundled), synthetic.

``mnist1d`` is MNIST-1D (Greydanus & Steinbach, 2020-24), generated procedurally by the
``mnist1d`` package's ``make_dataset`` with its default arguments (its download path is never
used): 5,000 sequences of 40 values, 10 classes, the package's own 4,000/1,000 train/test cut
(validation is 15% of the 4,000, stratified). The paper reports about 32% test accuracy for
logistic regression, 68% for an MLP and 94% for a CNN: architecture matters, unlike on digits,
where nearly every network ends up near the top. Inputs are ``[1, 1, 40]`` images (**im** mode,
one row of 40 pixels), so convolutions (``im2col(3,1,1)``, ``conv2d(k)`` with padding) act as
1-D convolutions along the sequence; einspace's ViT and Mixer seeds, which cut 4x4 patches, do
not apply to one row.

>>> task = get_mnist1d_example()
>>> task.input_shape, task.num_classes, task.sizes
((1, 1, 40), 10, {'train': 340, 'val': 60, 'test': 100})
"""

from __future__ import annotations

import functools
import random

import numpy as np

from workbench.errors import ConfigError
from workbench.tasks.registry import Task, register_task
from workbench.tasks.splits import build_task

MNIST1D_LENGTH = 40


def _digits(*, seed: int, **options) -> Task:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images[:, None, :, :]  # [N, 8, 8] -> [N, 1, 8, 8], values 0..16
    return build_task("digits", x, data.target, seed=seed, **options)


@functools.lru_cache(maxsize=2)
def mnist1d_arrays(num_samples: int = 5000, data_seed: int = 42):
    """MNIST-1D from ``mnist1d.data.make_dataset`` -> ``(x [N, 40], y, x_test, y_test)``.

    ``make_dataset`` seeds Python's and numpy's global generators with ``data_seed``; their
    states are restored afterwards, so loading the task draws nothing from anyone else's stream.
    Cached per process (generation takes about two seconds at 5,000 samples).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ConfigError(f"task 'mnist1d': expected the mnist1d package (pip install mnist1d), "
                          f"found none ({exc})") from None
    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(data_seed)
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return (np.asarray(data["x"], np.float32), np.asarray(data["y"]),
            np.asarray(data["x_test"], np.float32), np.asarray(data["y_test"]))


def _mnist1d(*, seed: int, num_samples: int = 5000, data_seed: int = 42, **options) -> Task:
    if int(num_samples) < 100:
        raise ConfigError(f"task 'mnist1d': expected num_samples >= 100, found {num_samples!r}")
    x, y, x_test, y_test = mnist1d_arrays(int(num_samples), int(data_seed))
    shape = (-1, 1, 1, MNIST1D_LENGTH)  # [N, 40] -> [N, C=1, H=1, W=40]
    return build_task("mnist1d", x.reshape(shape), y, x_test=x_test.reshape(shape), y_test=y_test,
                      seed=seed, **options)


def get_mnist1d_example() -> Task:
    """A small MNIST-1D (500 sequences), for examples and tests."""
    return _mnist1d(seed=0, num_samples=500)


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


register_task("mnist1d", _mnist1d, input_shape=(1, 1, MNIST1D_LENGTH),
              description="MNIST-1D, generated (5000 sequences of 40, 10 classes; CNNs >> MLPs); "
                          "options num_samples, data_seed")
register_task("digits", _digits, input_shape=(1, 8, 8),
              description="scikit-learn's 8x8 handwritten digits (1797 images, bundled)")
register_task("synthetic", _synthetic, input_shape=(3, 8, 8),
              description="seeded class patterns plus noise; options n, shape, classes, noise")
register_task("synthetic-cifar", _synthetic_cifar, input_shape=(3, 32, 32),
              description="synthetic task at CIFAR size (3x32x32, 10 classes); options n, noise")
