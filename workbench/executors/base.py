"""The executor protocol and the name -> executor registry.

An executor runs :class:`~workbench.jobs.Job` s and hands back their
:class:`~workbench.jobs.Outcome` s; the study drives every kind through the same five calls::

    ex.start()                       # optional: start workers now instead of at the first job
    while ...:
        while ex.free_slots():
            ex.submit(job)
        for job, outcome in ex.wait(timeout=1.0):
            ...                      # the driver alone writes the database
    ex.shutdown()                    # jobs still running are re-queued by the study

A candidate that fails (shape error, NaN, out of memory, time-out, a dead worker) comes back as an
``Outcome`` with state ``TrialState.FAILED``; an executor raises only when it cannot run at all
(:class:`~workbench.errors.ExecutorError`).

>>> ex = make_executor("inline")
>>> isinstance(ex, Executor), ex.name, ex.free_slots()
(True, 'inline', 1)
>>> make_executor("threads")
Traceback (most recent call last):
...
workbench.errors.ConfigError: --executor: expected inline, process or ray, found 'threads'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from workbench.errors import ConfigError, ExecutorError

if TYPE_CHECKING:
    from workbench.jobs import Job, Outcome

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "make_executor"]


@runtime_checkable
class Executor(Protocol):
    """What the study needs from an executor (inline, a local process pool, Ray)."""

    name: str  # the registry name: "inline", "process", "ray"
    slots: int  # jobs that can run at once

    def start(self) -> None:
        """Get ready to run ``slots`` jobs now (start workers); a no-op where nothing starts."""

    def free_slots(self) -> int:
        """How many more jobs :meth:`submit` accepts now."""

    def submit(self, job: Job) -> None:
        """Start ``job``; only while :meth:`free_slots` is positive."""

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        """The jobs that finished, waiting up to ``timeout`` seconds for one (None: no limit)."""

    def running(self) -> list[Job]:
        """Jobs submitted and not yet handed back by :meth:`wait`."""

    def shutdown(self) -> None:
        """Stop every worker; jobs still running are dropped (the study re-queues them)."""


# name -> "module:factory"; imported on use, so Ray (and its import time) is paid only by Ray.
# Every factory takes the keyword options of :func:`make_executor`.
EXECUTORS: dict[str, str] = {
    "inline": "workbench.executors.inline:make",
    "process": "workbench.executors.process:make",
    "ray": "workbench.executors.ray:make",
}


def make_executor(kind: str, *, workers: int = 1, timeout: float | None = None,
                  devices: list[str] | None = None, trials_per_gpu: int | str | None = None,
                  trial_mb: float | None = None, memory_limit_mb: float | None = None,
                  **ray_options) -> Executor:
    """An executor by name: ``inline`` | ``process`` | ``ray``.

    ``trials_per_gpu`` (process): slots per device, an integer or ``"auto"`` (overrides
    ``workers``); for Ray an integer K becomes ``gpus_per_trial=1/K`` unless that is given.
    ``ray_options`` go to :class:`~workbench.executors.ray.RayExecutor` (ignored by the others).
    """
    spec = EXECUTORS.get(kind)
    if spec is None:
        names = list(EXECUTORS)
        raise ConfigError(f"--executor: expected {', '.join(names[:-1])} or {names[-1]}, "
                          f"found {kind!r}")
    module, _, factory = spec.partition(":")
    make = getattr(importlib.import_module(module), factory)
    return make(workers=workers, timeout=timeout, devices=devices, trials_per_gpu=trials_per_gpu,
                trial_mb=trial_mb, memory_limit_mb=memory_limit_mb, **ray_options)
