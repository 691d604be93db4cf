"""The training budget and recipe of one candidate: how many steps, which optimizer and schedule.

The recipe (docs/tasks.md explains the choices): AdamW, lr 1e-3, weight decay 0.01 (not on
biases and norm parameters), batch 128, gradient clipping at norm 5, a linear warm-up over the
first 5% of the planned steps, then cosine decay to 0 at the last planned step. An **epoch** is
one pass over the training split or ``min_epoch_steps`` (50) optimizer steps, whichever is more:
on digits (1,257 training images, 9 batches) a 5-epoch budget is 250 steps, not 45, so candidates
are compared after they have trained rather than by how fast they start, while large datasets
(CIFAR: 390 batches) keep true epochs. ``steps`` replaces the epoch budget by an exact number of
optimizer steps.

>>> b = Budget(epochs=2)
>>> b.planned_steps(train_size=1257), b.planned_steps(train_size=50_000)
(100, 780)
>>> Budget(steps=300).planned_steps(train_size=1257), Budget(steps=300).epochs_needed(1257)
(300, 6)
>>> [round(lr_factor(Budget(steps=100), s, 100), 3) for s in (0, 4, 5, 50, 99)]
[0.167, 0.833, 1.0, 0.533, 0.0]
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from workbench.errors import ConfigError

DEFAULT_LR = {"adamw": 1e-3, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adamw": 0.01, "sgd": 5e-4}
SCHEDULES = ("cosine", "constant", "step")


@dataclass(frozen=True)
class Budget:
    """How long and how to train one candidate.

    The plan is ``steps`` optimizer steps when given, else ``epochs`` epochs of
    ``max(train_size // batch_size, min_epoch_steps)`` steps each (the last partial batch of a
    pass is dropped; passes reshuffle). Training stops early at ``max_steps`` steps or after
    ``max_seconds`` of training (checked after every step; the model is still evaluated).
    ``lr``/``weight_decay`` default per optimizer: AdamW 1e-3 / 0.01, SGD (Nesterov momentum
    0.9) 0.05 / 5e-4. ``warmup`` is the fraction of the planned steps with a linear LR ramp;
    ``schedule`` then runs per step over the rest: ``cosine`` (to 0 at the planned last step),
    ``constant``, or ``step`` (x0.1 at 50% and 75%). ``compile``: train through
    ``torch.compile`` (``True``: inductor; a string names another backend, e.g. ``"aot_eager"``).

    >>> Budget(optimizer="sgd").learning_rate
    0.05
    >>> Budget(schedule="linear")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: expected Budget.schedule in cosine, constant, step, found 'linear'
    """

    epochs: int = 5
    steps: int | None = None
    min_epoch_steps: int = 50
    max_steps: int | None = None
    max_seconds: float | None = None
    batch_size: int = 128
    optimizer: str = "adamw"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup: float = 0.05
    grad_clip: float | None = 5.0
    label_smoothing: float = 0.0
    compile: bool | str = False

    def __post_init__(self) -> None:
        def need(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise ConfigError(f"expected Budget.{name} {expected}, found "
                                  f"{getattr(self, name)!r}")

        def count(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        need(count(self.epochs), "epochs", ">= 1")
        need(self.steps is None or count(self.steps), "steps", ">= 1 or None")
        need(count(self.min_epoch_steps), "min_epoch_steps", ">= 1")
        need(self.max_steps is None or count(self.max_steps), "max_steps", ">= 1 or None")
        need(self.max_seconds is None or self.max_seconds > 0, "max_seconds", "> 0 or None")
        need(count(self.batch_size), "batch_size", ">= 1")
        need(self.optimizer in DEFAULT_LR, "optimizer", f"in {', '.join(DEFAULT_LR)}")
        need(self.lr is None or self.lr > 0, "lr", "> 0 or None")
        need(self.weight_decay is None or self.weight_decay >= 0, "weight_decay", ">= 0 or None")
        need(self.schedule in SCHEDULES, "schedule", f"in {', '.join(SCHEDULES)}")
        need(0 <= self.warmup < 1, "warmup", "in [0, 1)")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip", "> 0 or None")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "in [0, 1)")
        need(isinstance(self.compile, bool) or (isinstance(self.compile, str) and bool(self.compile)),
             "compile", "true, false or a torch.compile backend name")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    @property
    def decay(self) -> float:
        wd = self.weight_decay
        return wd if wd is not None else DEFAULT_WEIGHT_DECAY[self.optimizer]

    def steps_per_epoch(self, train_size: int) -> int:
        """Optimizer steps between two evaluations (one curve point)."""
        return max(train_size // min(self.batch_size, train_size), self.min_epoch_steps)

    def planned_steps(self, train_size: int) -> int:
        """Steps the schedule is planned over (``max_steps`` caps it)."""
        planned = self.steps or self.epochs * self.steps_per_epoch(train_size)
        return min(planned, self.max_steps) if self.max_steps else planned

    def epochs_needed(self, train_size: int) -> int:
        """Epochs (curve points) the plan spans; the last one may be partial."""
        return math.ceil(self.planned_steps(train_size) / self.steps_per_epoch(train_size))

    def warmup_steps(self, total: int) -> int:
        return min(int(math.ceil(self.warmup * total)), max(total - 1, 0))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def lr_factor(budget: Budget, step: int, total: int) -> float:
    """LR multiplier for optimizer step ``step`` (0-based) of ``total`` planned steps: a linear
    warm-up to 1 over ``budget.warmup_steps(total)`` steps, then ``budget.schedule``."""
    warm = budget.warmup_steps(total)
    if step < warm:
        return (step + 1) / (warm + 1)
    progress = min((step - warm) / max(total - warm - 1, 1), 1.0)
    if budget.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if budget.schedule == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0
