"""Executors run jobs and hand back outcomes, all behind one protocol
(:class:`~workbench.executors.base.Executor`: ``start``, ``free_slots``, ``submit``,
``wait(timeout) -> [(job, outcome)]``, ``running``, ``shutdown``).

* ``inline`` -- :class:`~workbench.executors.inline.InlineExecutor`: in the driver process
  (debugging; a crash takes the driver down).
* ``process`` -- :class:`~workbench.executors.process.ProcessExecutor`: persistent local worker
  processes (the default): crash isolation, per-trial time-out, slots pinned to devices
  (:func:`~workbench.executors.process.plan_slots`), an out-of-memory trial retried once alone.
* ``ray`` -- :class:`~workbench.executors.ray.RayExecutor`: trials as Ray tasks on a cluster.

``make_executor(kind, ...)`` builds one by name (:data:`~workbench.executors.base.EXECUTORS`).
"""

from __future__ import annotations

from typing import Any

from workbench.errors import ExecutorError
from workbench.executors.base import EXECUTORS, Executor, make_executor
from workbench.executors.inline import InlineExecutor
from workbench.executors.process import ProcessExecutor, parse_trials_per_gpu, plan_slots

__all__ = ["EXECUTORS", "Executor", "ExecutorError", "InlineExecutor", "ProcessExecutor",
           "RayExecutor", "make_executor", "parse_trials_per_gpu", "plan_slots"]


def __getattr__(name: str) -> Any:
    if name == "RayExecutor":  # its module is light, but keep Ray's code out of local runs
        from workbench.executors.ray import RayExecutor

        return RayExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
