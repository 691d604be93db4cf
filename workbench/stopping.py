"""Two ways to stop a study's driver, asked through the study's status in the database (so the
request reaches a driver in any process or on any host).

* :attr:`StopMode.AFTER_RUNNING` (status ``stopping``): start no new trial, wait for the trials
  in flight, record their results (nothing is re-queued, no work is lost), then stop.
* :attr:`StopMode.NOW` (status ``cancelling``): cancel the trials in flight and re-queue them
  (they run again from scratch on resume), then stop.

What the driver does (``workbench.study.StudyRunner``):

* on ``stopping``: stop submitting (``_want_more`` false), keep calling ``executor.wait`` and
  ``_record`` until ``inflight`` is empty, then set ``stopped``;
* on ``cancelling``: leave the loop at once, ``executor.shutdown`` (cancelling its jobs), then
  ``requeue_running`` and set ``stopped``;
* a driver that starts and finds either status stops before running anything (as it does for
  ``stopping`` today); ``ui.control.start`` clears a stale request of a dead driver.

>>> from storage import Storage
>>> st = Storage("sqlite://")
>>> _ = st.create_study("s", space="toy", task="t", searcher="random", config={}, seed=0,
...                     objectives=[{"name": "acc", "direction": "maximize"}])
>>> st.set_study_status("s", StudyStatus.RUNNING)
>>> request_stop(st, "s", now=True) is StopMode.NOW
True
>>> stop_mode(st.get_study("s").status), StopMode.NOW.label
(<StopMode.NOW: 'cancelling'>, 'stop now')
"""

from __future__ import annotations

from enum import Enum

from storage.protocol import StudyStorage
from storage.records import StudyStatus


class StopMode(str, Enum):
    """How a driver stops; the value is the study status that asks for it."""

    AFTER_RUNNING = StudyStatus.STOPPING.value
    NOW = StudyStatus.CANCELLING.value

    @property
    def label(self) -> str:
        """The words the UI and the docs use for this kind of stop."""
        return "stop now" if self is StopMode.NOW else "stop after running trials"


def request_stop(storage: StudyStorage, name: str, now: bool = False) -> StopMode:
    """Ask the study's driver to stop: after its trials in flight (default) or ``now``.

    A later ``now`` request upgrades a pending after-running one; an after-running request never
    downgrades a pending ``now``.
    """
    rec = storage.get_study(name)
    mode = StopMode.NOW if now else StopMode.AFTER_RUNNING
    if rec.status == StopMode.NOW.value:
        mode = StopMode.NOW
    storage.set_study_status(name, mode.value)
    return mode


def stop_mode(status: str) -> StopMode | None:
    """The stop a study status asks for, or None when it asks for none."""
    try:
        return StopMode(status)
    except ValueError:
        return None
