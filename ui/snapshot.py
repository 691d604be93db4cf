"""One frozen read of a study per refresh: every view of the live page renders from it.

:func:`read_snapshot` reads the study record, its trial counts and its trials; given the previous
snapshot of the same study it keeps the trials that had already finished (finished trials never
change) and reads only from the first unfinished one on, so a refresh after a new trial of a
10,000-trial study reads a handful of rows. :class:`Snapshots` keeps the newest snapshot per
study for one app; :func:`signature` is the two-query check a timer tick makes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from storage.protocol import StudyStorage
from storage.records import StudyRecord, TrialRecord, TrialState


def signature(storage: StudyStorage, name: str) -> tuple:
    """Changes whenever a trial of the study is created or finished, or its status changes."""
    rec = storage.get_study(name)
    return (rec.id, rec.updated_at, rec.status, tuple(sorted(storage.count_trials(name).items())))


@dataclass(frozen=True)
class StudySnapshot:
    """A study as read at one moment: its record, counts, every trial (by number) and notes.

    Derived views (``complete``, ``newest``, ``best`` ...) are computed once per snapshot.
    """

    study: StudyRecord
    counts: Mapping[str, int]
    trials: tuple[TrialRecord, ...]
    signature: tuple
    notes: Mapping[int | None, str] = field(default_factory=dict)
    read_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def objectives(self) -> list[dict[str, Any]]:
        return self.study.objectives

    @property
    def objective_names(self) -> list[str]:
        return [o["name"] for o in self.study.objectives]

    @cached_property
    def complete(self) -> tuple[TrialRecord, ...]:
        """The complete trials, by number."""
        return tuple(t for t in self.trials if t.state is TrialState.COMPLETE)

    @cached_property
    def metric_names(self) -> list[str]:
        """Objectives first, then every other numeric metric seen (sampled over the trials)."""
        names = list(self.objective_names)
        trials = self.complete
        step = max(1, len(trials) // 200)
        for t in trials[::step]:
            for k, v in (t.metrics or {}).items():
                if k not in names and isinstance(v, (int, float)) and not isinstance(v, bool):
                    names.append(k)
        return names

    @cached_property
    def newest(self) -> TrialRecord | None:
        """The newest trial that runs or has finished (queued ones are not started yet)."""
        for t in reversed(self.trials):
            if t.state is not TrialState.QUEUED and t.state is not TrialState.PRUNED:
                return t
        return None

    @cached_property
    def best(self) -> TrialRecord | None:
        """The best complete trial by the first objective (ties: the earliest)."""
        if not self.objectives:
            return None
        obj = self.objectives[0]
        sign = 1.0 if obj.get("direction", "maximize") == "maximize" else -1.0
        best, key = None, None
        for t in self.complete:
            v = t.metrics.get(obj["name"])
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
                if key is None or sign * v > key:
                    best, key = t, sign * v
        return best

    def trial(self, number: int) -> TrialRecord | None:
        """The trial numbered ``number`` (None when the study has no such trial)."""
        n = int(number)
        if 0 <= n < len(self.trials) and self.trials[n].number == n:
            return self.trials[n]
        return next((t for t in self.trials if t.number == n), None)


def read_snapshot(storage: StudyStorage, name: str, previous: StudySnapshot | None = None,
                  sig: tuple | None = None) -> StudySnapshot:
    """Read ``name``; reuse ``previous`` whole when nothing changed, its finished prefix else."""
    sig = signature(storage, name) if sig is None else sig
    if previous is not None and previous.signature == sig:
        return previous
    study = storage.get_study(name)
    keep = 0
    # the same study, not one created since under the same name (SQLite reuses the ids)
    if previous is not None and (previous.study.id, previous.study.created_at) == (
            study.id, study.created_at):
        for t in previous.trials:  # numbers are dense from 0: trial i is at position i
            if t.number != keep or not t.state.finished:
                break
            keep += 1
    fresh = storage.trials_from(name, keep)
    # keep > 0 only when previous matched the stored study
    trials = (*previous.trials[:keep], *fresh) if previous is not None and keep else tuple(fresh)
    return StudySnapshot(study=study, counts=dict(sig[3]), trials=tuple(trials), signature=sig,
                         notes=storage.notes(name), read_at=datetime.now(timezone.utc))


class Snapshots:
    """The newest snapshot of each study an app has shown (a few, least recently used out)."""

    def __init__(self, storage: StudyStorage, size: int = 6):
        self.storage, self.size = storage, size
        self._items: OrderedDict[str, StudySnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str, sig: tuple | None = None) -> StudySnapshot:
        """The study now: the cached snapshot when unchanged, else an incremental re-read."""
        with self._lock:
            previous = self._items.get(name)
        snap = read_snapshot(self.storage, name, previous, sig)
        with self._lock:
            self._items[name] = snap
            self._items.move_to_end(name)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return snap

    def cached(self, name: str) -> StudySnapshot | None:
        with self._lock:
            return self._items.get(name)

    def with_notes(self, name: str) -> StudySnapshot | None:
        """Re-read only the notes of the cached snapshot (after the UI saved one)."""
        from dataclasses import replace

        with self._lock:
            snap = self._items.get(name)
            if snap is not None:
                snap = self._items[name] = replace(snap, notes=self.storage.notes(name))
            return snap

    def forget(self, name: str) -> None:
        with self._lock:
            self._items.pop(name, None)
