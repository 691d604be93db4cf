"""The task record and the task registry: ``get_task("name")`` or ``get_task("name:PATH")``.

>>> entry = next(e for e in list_tasks() if e["name"] == "mnist")
>>> entry["needs_path"], entry["input_shape"]
(True, [1, 28, 28])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from workbench.errors import ConfigError, NotFound

AUGMENTATIONS = ("crop", "flip")


@dataclass(frozen=True, eq=False)
class Task:
    """A split, normalised dataset: inputs ``float32 [N, C, H, W]``, labels ``int64 [N]``.

    ``mean``/``std`` are the per-channel statistics (from the training split) already applied to
    every split; exporters and inference code apply them to raw inputs. ``augment`` names the
    training-batch augmentations the trainer applies (``crop``: random crop after zero padding
    of ``crop_padding`` pixels, ``flip``: horizontal flip with probability 1/2); validation and
    test inputs are never augmented.
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
    augment: tuple[str, ...] = ()
    crop_padding: int = 0

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: str | torch.device) -> Task:
        """The same task with every tensor on ``device`` (``self`` if already there).

        >>> from workbench.tasks import get_task
        >>> get_task("synthetic", n=64).to("cpu").device
        device(type='cpu')
        """
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        moved = {f: getattr(self, f).to(device) for f in TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)


TENSOR_FIELDS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")

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
    ['mnist1d', 'digits', 'synthetic']
    """
    return [{"name": e.name, "description": e.description,
             "input_shape": list(e.input_shape) if e.input_shape else None,
             "needs_path": e.needs_path} for e in _REGISTRY.values()]


def task_names() -> list[str]:
    """Names as a user types them: ``digits``, ``npz:PATH`` ...

    >>> task_names()[:2], "npy:PATH" in task_names()
    (['mnist1d', 'digits'], True)
    """
    return [e.name + (":PATH" if e.needs_path else "") for e in _REGISTRY.values()]


def get_task(spec: str = "mnist1d", *, seed: int = 0, **options) -> Task:
    """Load the task named by ``spec`` (``name`` or ``name:PATH``), split with ``seed``.

    Options every task takes: ``val_fraction`` (0.15), ``test_fraction`` (0.15; used only when
    the data has no test split), ``augment`` (``"crop+flip"``, ``"crop"``, ``"flip"``, ``true``
    for both, ``false``/``"none"``; images only) and ``crop_padding`` (pixels, default 4 for
    images of 16 pixels or more a side, else 1). Each task documents its own options.

    >>> get_task("imagenet")
    Traceback (most recent call last):
    ...
    workbench.errors.NotFound: expected a task name (mnist1d, digits, synthetic, synthetic-cifar, cifar10:PATH, cifar100:PATH, mnist:PATH, folder:PATH, npz:PATH, npy:PATH), found 'imagenet'
    >>> get_task("digits", augment="crop+flip").augment
    ('crop', 'flip')
    """
    name, sep, path = spec.partition(":")
    entry = _REGISTRY.get(name)
    if entry is None:
        raise NotFound(f"expected a task name ({', '.join(task_names())}), found {spec!r}")
    augment = _augmentations(options.pop("augment", None), spec)
    padding = options.pop("crop_padding", None)
    if entry.needs_path:
        if not path:
            raise ConfigError(f"task {name!r}: expected {name}:PATH, found no path in {spec!r}")
        task = entry.loader(path=Path(os.path.expanduser(path)), seed=seed, **options)
    elif sep:
        raise ConfigError(f"task {name!r}: expected no path, found {spec!r}")
    else:
        task = entry.loader(seed=seed, **options)
    return with_augmentation(task, augment, padding) if augment else task


def _augmentations(value, where: str) -> tuple[str, ...]:
    if value in (None, False, "", "none"):
        return ()
    if value is True:
        return AUGMENTATIONS
    parts = tuple(p.strip() for p in str(value).replace(",", "+").split("+") if p.strip())
    bad = [p for p in parts if p not in AUGMENTATIONS]
    if bad or not parts:
        raise ConfigError(f"task {where!r}: expected augment crop, flip, crop+flip, true or none, "
                          f"found {value!r}")
    return tuple(a for a in AUGMENTATIONS if a in parts)


def require_file(path: Path, what: str) -> None:
    if not path.is_file():
        found = "a directory" if path.is_dir() else "no file"
        raise NotFound(f"expected {what} at {path}, found {found}")


def require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise NotFound(f"expected {what} at {path}, found "
                       f"{'a file' if path.exists() else 'no directory'}")


def with_augmentation(task: Task, augment: tuple[str, ...], padding: int | None = None) -> Task:
    """``task`` with training-batch augmentation on; images only (H and W at least 4)."""
    if len(task.input_shape) != 3 or min(task.input_shape[1:]) < 4:
        raise ConfigError(f"task {task.name!r}: expected an image task (C, H, W with H, W >= 4) "
                          f"for augment, found input shape {task.input_shape}")
    side = min(task.input_shape[1:])
    padding = (4 if side >= 16 else 1) if padding is None else padding
    if not isinstance(padding, int) or isinstance(padding, bool) or not 0 <= padding < side:
        raise ConfigError(f"task {task.name!r}: expected crop_padding an int in [0, {side}), "
                          f"found {padding!r}")
    return dataclasses.replace(task, augment=augment, crop_padding=padding if "crop" in augment
                               else 0)
