"""Plain records returned by :class:`storage.Storage`: frozen dataclasses and the trial state enum.

They carry no database session, so they can be passed between threads and processes freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any


class TrialState(str, Enum):
    """Life cycle of a trial: ``queued -> running -> complete | failed | pruned``.

    >>> TrialState("complete") is TrialState.COMPLETE
    True
    >>> TrialState.RUNNING.finished
    False
    """

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"

    @property
    def finished(self) -> bool:
        """True for the terminal states (complete, failed, pruned)."""
        return self in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)


# "stopping": finish the trials in flight, then stop; "cancelling": stop now, re-queueing them
STUDY_STATUSES = ("created", "running", "stopping", "cancelling", "stopped", "finished", "failed")


@dataclass(frozen=True)
class StudyRecord:
    """One study: what is searched (space, task, searcher, objectives) and its settings.

    ``objectives`` is a list like ``[{"name": "val_accuracy", "direction": "maximize"}]``;
    ``config`` holds everything else (searcher options, budget, epochs, input shape ...).
    """

    id: int
    name: str
    space: str
    task: str
    searcher: str
    objectives: list[dict[str, Any]]
    config: dict[str, Any]
    seed: int
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TrialRecord:
    """One evaluation of one architecture at one fidelity within a study.

    ``number`` is 0-based and dense per study. ``arch_decisions`` is ``[[path, choice], ...]``.
    ``curve`` (per-epoch dicts) is ``None`` unless it was asked for. ``ask_index`` and
    ``tell_index`` place the trial in its searcher's ask/tell sequence (for exact resumes).
    """

    id: int
    study: str
    number: int
    state: TrialState
    arch_hash: str
    arch_text: str
    arch_decisions: list[Any]
    space: str
    fidelity: float | None
    metrics: dict[str, Any]
    error: str | None
    worker: str | None
    parent_numbers: tuple[int, ...]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    curve: list[dict[str, Any]] | None = None
    ask_index: int | None = None  # the searcher's ask that proposed it (None: queued by hand)
    tell_index: int | None = None  # its place among the searcher's tells (None: not told)
