"""The inline executor: each job runs in the driver process, at submit time.

For debugging and tests: no start-up cost and plain tracebacks, but no isolation (a crash or a
hang of the candidate takes the driver with it) and no time-out.
"""

from __future__ import annotations

from dataclasses import replace

from workbench.jobs import Job, Outcome, run_job


class InlineExecutor:
    """Runs each job synchronously at submit time."""

    name = "inline"

    def __init__(self, device: str | None = None):
        self.slots = 1
        self.device = device
        self._done: list[tuple[Job, Outcome]] = []

    def start(self) -> None:
        """Nothing to start: jobs run in this process."""

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def submit(self, job: Job) -> None:
        if self.device:
            job = replace(job, device=self.device)
        self._done.append((job, run_job(job)))

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[Job]:
        return [j for j, _ in self._done]

    def shutdown(self) -> None:
        self._done = []


def make(*, devices: list[str] | None = None, **_options) -> InlineExecutor:
    """The registry's factory: runs on the first of ``devices``; workers, time-out and the
    other pool options do not apply to one in-process slot."""
    return InlineExecutor(devices[0] if devices else None)
