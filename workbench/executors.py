"""Executors run jobs and hand back outcomes; they share one small interface:

``free_slots()``, ``submit(job)``, ``wait(timeout) -> [(job, outcome)]``, ``shutdown()``.

* :class:`InlineExecutor` — in the driver process (debugging; a crash takes the driver down).
* :class:`ProcessExecutor` — persistent local worker processes (the default): crash isolation,
  per-trial time-out (the worker is killed and replaced), data loaded once per worker, one slot
  per device when devices are given.
* ``workbench.ray_executor.RayExecutor`` — trials as Ray tasks on a cluster.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait

from workbench.errors import ConfigError, WorkbenchError
from workbench.jobs import Job, Outcome, run_job

log = logging.getLogger(__name__)


class ExecutorError(WorkbenchError, RuntimeError):
    """The executor itself cannot run (workers do not start, cluster unreachable)."""


class InlineExecutor:
    """Runs each job synchronously at submit time."""

    name = "inline"

    def __init__(self, device: str | None = None):
        self.slots = 1
        self.device = device
        self._done: list[tuple[Job, Outcome]] = []

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


def _worker_main(conn: Connection, device: str | None, threads: int) -> None:
    """Worker process: receive jobs, send outcomes, until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    import torch

    torch.set_num_threads(max(1, threads))
    import workbench.tasks  # noqa: F401  (imports paid before the first trial's clock starts)
    import workbench.trainer  # noqa: F401

    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        if device:
            job = replace(job, device=device)
        conn.send(run_job(job))


class _Slot:
    def __init__(self, index: int, device: str | None, threads: int, ctx):
        self.index, self.device, self.threads, self.ctx = index, device, threads, ctx
        self.job: Job | None = None
        self.started = 0.0
        self.proc = None
        self.conn: Connection | None = None

    def start(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        self.proc = self.ctx.Process(target=_worker_main, args=(child, self.device, self.threads),
                                     name=f"workbench-worker-{self.index}", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        # a worker that cannot even start is an environment problem, not the candidate's
        ok = parent.poll(180)
        try:
            ready = ok and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.proc.join(5)
            code = self.proc.exitcode
            self.kill()
            raise ExecutorError(
                f"worker process failed to start (exit code {code}); when calling the "
                f"workbench from a script, put the call under `if __name__ == '__main__':` "
                f"(worker processes are spawned and re-import the script)")

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None


class ProcessExecutor:
    """Persistent worker processes, one job each at a time.

    ``timeout``: seconds a trial may run before its worker is killed (None: no limit).
    ``devices``: e.g. ``["cuda:0", "cuda:1"]``; slot i runs on ``devices[i % len(devices)]``.
    """

    name = "process"

    def __init__(self, workers: int = 1, *, timeout: float | None = None,
                 devices: list[str] | None = None, threads_per_worker: int | None = None):
        if workers < 1:
            raise ConfigError(f"--workers: expected >= 1, found {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout: expected seconds > 0, found {timeout}")
        self.slots = workers
        self.timeout = timeout
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")  # fork would copy CUDA state and threads: unsafe
        self._slots = [_Slot(i, devices[i % len(devices)] if devices else None, threads, ctx)
                       for i in range(workers)]

    def free_slots(self) -> int:
        return sum(s.job is None for s in self._slots)

    def running(self) -> list[Job]:
        return [s.job for s in self._slots if s.job is not None]

    def submit(self, job: Job) -> None:
        slot = next((s for s in self._slots if s.job is None), None)
        if slot is None:
            raise RuntimeError("submit() without a free slot")
        if slot.proc is None or not slot.proc.is_alive():
            slot.kill()
            slot.start()
        slot.job, slot.started = job, time.monotonic()
        slot.conn.send(job)

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        busy = [s for s in self._slots if s.job is not None]
        if not busy:
            return []
        if self.timeout is not None:
            soonest = min(s.started + self.timeout for s in busy) - time.monotonic()
            timeout = max(0.0, soonest if timeout is None else min(timeout, soonest))
        handles = {s.conn: s for s in busy}
        handles.update({s.proc.sentinel: s for s in busy})
        ready = wait(list(handles), timeout)
        done: list[tuple[Job, Outcome]] = []
        seen: set[int] = set()
        for h in ready:
            slot = handles[h]
            if slot.index in seen or slot.job is None:
                continue
            seen.add(slot.index)
            done.append(self._collect(slot))
        now = time.monotonic()
        for slot in busy:
            if slot.index in seen or slot.job is None or self.timeout is None:
                continue
            if now - slot.started > self.timeout:
                job = slot.job
                slot.kill()
                slot.job = None
                done.append((job, Outcome("failed", error=f"timed out after {self.timeout:g}s "
                                                          f"(worker killed)",
                                          worker=f"slot{slot.index}", duration_s=now - slot.started)))
        return done

    def _collect(self, slot: _Slot) -> tuple[Job, Outcome]:
        job = slot.job
        slot.job = None
        try:
            if slot.conn.poll():
                return job, slot.conn.recv()
        except (EOFError, OSError):
            pass
        slot.proc.join(1)
        code = slot.proc.exitcode
        slot.kill()
        why = (f"killed by signal {-code}" if code is not None and code < 0
               else f"exit code {code}")
        hint = " (out of memory?)" if code in (-9, 137) else ""
        return job, Outcome("failed", error=f"worker process died mid-trial: {why}{hint}",
                            worker=f"slot{slot.index}", duration_s=time.monotonic() - slot.started)

    def shutdown(self) -> None:
        for slot in self._slots:
            if slot.proc is not None and slot.proc.is_alive() and slot.job is None:
                try:
                    slot.conn.send(None)
                    slot.proc.join(2)
                except (OSError, BrokenPipeError):
                    pass
            slot.kill()


def make_executor(kind: str, *, workers: int = 1, timeout: float | None = None,
                  devices: list[str] | None = None, **ray_options):
    """``inline`` | ``process`` | ``ray``."""
    if kind == "inline":
        return InlineExecutor(devices[0] if devices else None)
    if kind == "process":
        return ProcessExecutor(workers, timeout=timeout, devices=devices)
    if kind == "ray":
        from workbench.ray_executor import RayExecutor

        return RayExecutor(workers=workers, timeout=timeout, **ray_options)
    raise ConfigError(f"--executor: expected inline, process or ray, found {kind!r}")
