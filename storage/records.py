"""Plain records returned by :class:`storage.Storage`: frozen dataclasses and the trial state enum.

They carry no database session, so they can be passed between threads and processes freely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

    def __str__(self) -> str:  # print and format as the stored value
        return self.value

    __format__ = str.__format__  # type: ignore[assignment]

    @property
    def finished(self) -> bool:
        """True for the terminal states (complete, failed, pruned)."""
        return self in (TrialState.COMPLETE, TrialState.FAILED, TrialState.PRUNED)


class StudyStatus(str, Enum):
    """Life cycle of a study: ``created -> running -> finished | stopped | failed``; ``stopping``
    (after the trials in flight) and ``cancelling`` (now) are requests that its driver, in
    whatever process, honours.

    >>> StudyStatus("stopping") is StudyStatus.STOPPING
    True
    >>> StudyStatus.RUNNING.active, StudyStatus.FINISHED.active
    (True, False)
    """

    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"  # finish the trials in flight, then stop
    CANCELLING = "cancelling"  # stop now: cancel the trials in flight and re-queue them
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__  # type: ignore[assignment]

    @property
    def active(self) -> bool:
        """True while a driver is (or should be) running the study."""
        return self in (StudyStatus.RUNNING, StudyStatus.STOPPING, StudyStatus.CANCELLING)


STUDY_STATUSES = tuple(s.value for s in StudyStatus)


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
    status: StudyStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class TrialRecord:
    """One evaluation of one architecture at one fidelity within a study.

    ``number`` is 0-based and dense per study. ``arch_decisions`` is ``[[path, choice], ...]``.
    ``curve`` (per-epoch dicts) is ``None`` unless it was asked for. ``ask_index`` and
    ``tell_index`` place the trial in its searcher's ask/tell sequence (for exact resumes).
    ``info`` is what the searcher said about the proposal (its ``Proposal.info``, JSON data;
    empty for a trial queued by hand or written before it was stored).
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
    info: dict[str, Any] = field(default_factory=dict)  # the searcher's Proposal.info


@dataclass(frozen=True)
class Lease:
    """Who drives a study: a driver id (unique per driver run), its host and pid, since when,
    and its last heartbeat. ``alive`` says whether the heartbeat is recent enough."""

    study: str
    driver_id: str
    host: str
    pid: int
    since: datetime
    heartbeat_at: datetime

    def alive(self, now: datetime, stale_after_s: float) -> bool:
        return (now - self.heartbeat_at).total_seconds() < stale_after_s

    def describe(self) -> str:
        """``pid 1234 on host h since 12:03`` (UTC)."""
        return f"pid {self.pid} on host {self.host} since {self.since:%H:%M} UTC"
