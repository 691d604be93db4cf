"""The local process pool (the default executor): persistent worker processes, one job each.

Crash isolation (a dying candidate kills only its worker, which is replaced), a per-trial
time-out (the worker is killed), data loaded once per worker, an optional address-space cap per
worker, and slots pinned to devices: :func:`plan_slots` turns devices and ``trials_per_gpu`` into
one device per slot (several slots on one GPU run several small trials at once), and an
out-of-memory trial on a shared device is retried once alone on it.

>>> plan_slots(["cpu"], 2)
['cpu', 'cpu']
>>> plan_slots(["cuda:0", "cuda:1"], 2, check=False)  # round-robin: few workers still spread out
['cuda:0', 'cuda:1', 'cuda:0', 'cuda:1']
>>> plan_slots(["cpu"], 0)
Traceback (most recent call last):
...
workbench.errors.ConfigError: --trials-per-gpu: expected an integer >= 1 or 'auto', found 0
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from storage.records import TrialState
from workbench.errors import ConfigError, ExecutorError
from workbench.gpu import auto_trials_per_gpu, is_oom_error
from workbench.jobs import Job, Outcome, run_job

log = logging.getLogger(__name__)

__all__ = ["ProcessExecutor", "make", "parse_trials_per_gpu", "plan_slots"]


# -- slot planning -----------------------------------------------------------------------------
def parse_trials_per_gpu(trials_per_gpu: int | str) -> int | str:
    """An integer >= 1 (also given as text, as the CLI passes it) or ``"auto"``.

    >>> parse_trials_per_gpu("4"), parse_trials_per_gpu("auto")
    (4, 'auto')
    """
    if trials_per_gpu == "auto":
        return "auto"
    value: int | None = None
    if isinstance(trials_per_gpu, int) and not isinstance(trials_per_gpu, bool):
        value = trials_per_gpu
    elif isinstance(trials_per_gpu, str) and trials_per_gpu.strip().isdigit():
        value = int(trials_per_gpu)
    if value is None or value < 1:
        found = trials_per_gpu if value is None else value
        raise ConfigError(f"--trials-per-gpu: expected an integer >= 1 or 'auto', "
                          f"found {found!r}")
    return value


def _default_devices() -> list[str]:
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def plan_slots(devices: list[str] | None, trials_per_gpu: int | str = 1, *,
               trial_mb: float | None = None, check: bool = True) -> list[str]:
    """One device name per worker slot: ``trials_per_gpu`` slots per listed device.

    ``devices``: e.g. ``["cuda:0", "cuda:1"]``; None/empty or ``["auto"]`` means every visible GPU,
    or ``["cpu"]`` on a machine without one. ``trials_per_gpu``: an integer, or ``"auto"`` (per
    GPU from its free memory and ``trial_mb``, see :func:`workbench.gpu.auto_trials_per_gpu`; 1 on
    CPU, where the cores, not the memory, are what parallel trials share). Slots are ordered
    round-robin over the devices. ``check=False`` skips the availability check of CUDA devices
    (for planning on a machine other than the one that runs them).
    """
    k = parse_trials_per_gpu(trials_per_gpu)
    names = [str(d).strip().lower() for d in devices or []]
    if not names or names == ["auto"]:
        names = _default_devices()
    if check:
        from workbench.devices import device_name, select_device

        names = [device_name(select_device(n)) for n in names]  # cuda -> cuda:0; bad -> error
    per_device: list[int] = []
    for name in names:
        if isinstance(k, int):  # else "auto"
            per_device.append(k)
        elif name.startswith("cuda"):
            per_device.append(auto_trials_per_gpu(name, trial_mb))
        else:
            per_device.append(1)
    slots = []
    for round_ in range(max(per_device)):
        slots += [n for n, count in zip(names, per_device) if round_ < count]
    return slots


# -- workers -----------------------------------------------------------------------------------
def _worker_main(conn: Connection, device: str | None, threads: int,
                 memory_limit_mb: float | None = None, driver_pid: int | None = None) -> None:
    """Worker process: receive jobs, send outcomes, until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    _die_with_parent(driver_pid or os.getppid())
    import torch

    torch.set_num_threads(max(1, threads))
    import workbench.tasks  # noqa: F401  (imports paid before the first trial's clock starts)
    import workbench.trainer  # noqa: F401

    if device and device.startswith("cuda:"):
        # the current device is where libraries put tensors they are not told about; without
        # this, a worker pinned to cuda:1 would also open a context on cuda:0
        torch.cuda.set_device(torch.device(device))
    if memory_limit_mb:
        _limit_address_space(memory_limit_mb)
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


def _die_with_parent(parent: int) -> None:
    """A worker never outlives its driver: after a kill -9 of the driver nobody would record
    what it trains. Linux delivers SIGKILL when the parent dies (prctl PR_SET_PDEATHSIG); a
    watchdog thread that sees the worker re-parented is the portable fallback. ``parent`` is the
    driver's pid as the driver passed it: it may have died while this process was starting."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # it died before the call took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def oom_kills() -> int | None:
    """The cgroup's count of out-of-memory kills (cgroup v2), or None where it is not known."""
    try:
        with open("/sys/fs/cgroup/memory.events") as f:
            for line in f:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        pass
    return None


def death_reason(code: int | None, oom_before: int | None) -> str:
    """Why a worker process ended: its signal by name, and "out of memory" only when the
    cgroup counted an out-of-memory kill while it ran.

    >>> death_reason(-9, None)
    'killed by signal 9 (SIGKILL)'
    >>> death_reason(3, None)
    'exit code 3'
    """
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown signal"
    why = f"killed by signal {-code} ({name})"
    after = oom_kills()
    if oom_before is not None and after is not None and after > oom_before:
        why += ": out of memory (the kernel's out-of-memory killer)"
    return why


def _limit_address_space(extra_mb: float) -> None:
    """Cap this process's address space at its current size + ``extra_mb`` (Linux): an
    allocation past it fails inside torch as a real out-of-memory error, not a kill by the OS."""
    import resource

    with open("/proc/self/status") as f:
        vm_kb = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    limit = vm_kb * 1024 + int(extra_mb * 2**20)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class _Slot:
    def __init__(self, index: int, device: str | None, threads: int, ctx,
                 memory_limit_mb: float | None = None):
        self.index, self.device, self.threads, self.ctx = index, device, threads, ctx
        self.memory_limit_mb = memory_limit_mb
        self.job: Job | None = None
        self.started = 0.0
        self.oom_before: int | None = None  # the cgroup's out-of-memory kills at the start
        self.proc: BaseProcess | None = None
        self.conn: Connection | None = None

    def live(self) -> tuple[BaseProcess, Connection]:
        """The worker process and its pipe (only between ``launch`` and ``kill``)."""
        assert self.proc is not None and self.conn is not None, f"slot {self.index}: no worker"
        return self.proc, self.conn

    def launch(self) -> None:
        parent, child = self.ctx.Pipe(duplex=True)
        proc = self.ctx.Process(target=_worker_main,
                                args=(child, self.device, self.threads, self.memory_limit_mb,
                                      os.getpid()),
                                name=f"workbench-worker-{self.index}", daemon=True)
        self.proc = proc
        proc.start()
        child.close()
        self.conn = parent

    def start(self) -> None:
        self.launch()
        self.await_ready()

    def await_ready(self) -> None:
        proc, parent = self.live()
        # a worker that cannot even start is an environment problem, not the candidate's
        ok = parent.poll(180)
        try:
            ready = ok and parent.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            proc.join(5)
            code = proc.exitcode
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
    ``trials_per_gpu``: an integer or ``"auto"``; when given, the slots are
    ``plan_slots(devices, trials_per_gpu, trial_mb=trial_mb)`` and ``workers`` is ignored.
    ``memory_limit_mb``: cap each worker's address space at its size after start-up plus this
    many MiB (Linux, CPU devices only: CUDA maps far more address space than it uses).
    ``retry_oom``: a trial that ran out of memory while its device had other slots is held back
    and run again alone on that device (no other trial starts there until it ends); its result
    carries ``metrics["retried_alone"]``, and a second out-of-memory error reads
    ``out of memory (also when run alone): ...``.
    """

    name = "process"

    def __init__(self, workers: int = 1, *, timeout: float | None = None,
                 devices: list[str] | None = None, threads_per_worker: int | None = None,
                 trials_per_gpu: int | str | None = None, trial_mb: float | None = None,
                 memory_limit_mb: float | None = None, retry_oom: bool = True):
        if workers < 1:
            raise ConfigError(f"--workers: expected >= 1, found {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout: expected seconds > 0, found {timeout}")
        names: list[str | None]
        if trials_per_gpu is not None:
            names = list(plan_slots(devices, trials_per_gpu, trial_mb=trial_mb))
        else:
            names = [devices[i % len(devices)] if devices else None for i in range(workers)]
        if memory_limit_mb is not None:
            if memory_limit_mb <= 0:
                raise ConfigError(f"memory_limit_mb: expected > 0, found {memory_limit_mb}")
            if any(n and not n.startswith("cpu") for n in names):
                raise ConfigError(f"memory_limit_mb: expected CPU devices only, found {names}")
        self.slots = len(names)
        self.timeout = timeout
        self.retry_oom = retry_oom
        # slots share the cores: split them, so K workers do not oversubscribe the CPU K times
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // self.slots)
        ctx = mp.get_context("spawn")  # fork would copy CUDA state and threads: unsafe
        self._slots = [_Slot(i, name, threads, ctx, memory_limit_mb)
                       for i, name in enumerate(names)]
        # OOM'd jobs waiting for their device to empty: (job, first outcome, device)
        self._held: list[tuple[Job, Outcome, str | None]] = []
        self._retrying: dict[tuple[str, int], str] = {}  # (study, number) -> first error

    def start(self) -> None:
        """Start every worker now, in parallel (otherwise each starts at its first job): torch's
        import and a CUDA context cost seconds per worker, which a benchmark should not time."""
        idle = [s for s in self._slots if s.proc is None or not s.proc.is_alive()]
        for slot in idle:
            slot.kill()
            slot.launch()
        for slot in idle:
            slot.await_ready()

    @property
    def devices(self) -> list[str | None]:
        """The device of each slot, in slot order."""
        return [s.device for s in self._slots]

    # -- slot bookkeeping ---------------------------------------------------------------------
    def _exclusive(self) -> set[str | None]:
        """Devices reserved for an out-of-memory retry: held back, or running alone."""
        held = {device for _, _, device in self._held}
        running = {s.device for s in self._slots
                   if s.job is not None and (s.job.study, s.job.number) in self._retrying}
        return held | running

    def _shared(self, device: str | None) -> bool:
        return sum(s.device == device for s in self._slots) > 1

    def free_slots(self) -> int:
        exclusive = self._exclusive()
        return sum(s.job is None and s.device not in exclusive for s in self._slots)

    def running(self) -> list[Job]:
        return [s.job for s in self._slots if s.job is not None] + [j for j, _, _ in self._held]

    def submit(self, job: Job) -> None:
        exclusive = self._exclusive()
        free = [s for s in self._slots if s.job is None and s.device not in exclusive]
        if not free:
            raise RuntimeError("submit() without a free slot")
        busy: dict[str | None, int] = {}
        for s in self._slots:
            busy[s.device] = busy.get(s.device, 0) + (s.job is not None)
        # the least loaded device first: with fewer jobs than slots, every GPU still gets work
        self._start(min(free, key=lambda s: (busy[s.device], s.index)), job)

    def _start(self, slot: _Slot, job: Job) -> None:
        if slot.proc is None or not slot.proc.is_alive():
            slot.kill()
            slot.start()
        slot.job, slot.started, slot.oom_before = job, time.monotonic(), oom_kills()
        slot.live()[1].send(job)

    def _dispatch_held(self) -> None:
        """Start each held job once nothing else runs on its device."""
        for held in list(self._held):
            job, outcome, device = held
            if any(s.job is not None for s in self._slots if s.device == device):
                continue
            slot = next(s for s in self._slots if s.device == device)
            self._held.remove(held)
            self._retrying[(job.study, job.number)] = outcome.error or ""
            log.info("trial %s/%d: out of memory beside other trials; retrying alone on %s",
                     job.study, job.number, device or "the default device")
            self._start(slot, job)

    def _finish(self, slot: _Slot, job: Job, outcome: Outcome) -> tuple[Job, Outcome] | None:
        """Retry bookkeeping for one finished job: None when it is held back for a retry."""
        key = (job.study, job.number)
        oom = outcome.state == TrialState.FAILED and is_oom_error(outcome.error)
        if key in self._retrying:
            first = self._retrying.pop(key)
            metrics = {**outcome.metrics, "retried_alone": True, "first_error": first}
            error = outcome.error
            if oom:
                error = f"out of memory (also when run alone): {outcome.error}"
            return job, replace(outcome, metrics=metrics, error=error)
        if oom and self.retry_oom and self._shared(slot.device):
            self._held.append((job, outcome, slot.device))
            return None
        return job, outcome

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        self._dispatch_held()
        busy = [s for s in self._slots if s.job is not None]
        if not busy:
            return []
        if self.timeout is not None:
            soonest = min(s.started + self.timeout for s in busy) - time.monotonic()
            timeout = max(0.0, soonest if timeout is None else min(timeout, soonest))
        # a slot wakes us through its pipe (an outcome) or its process sentinel (the worker died)
        waitables: list[Connection | int] = [*(s.live()[1] for s in busy),
                                             *(s.live()[0].sentinel for s in busy)]
        handles: dict[object, _Slot] = dict(zip(waitables, [*busy, *busy]))
        ready = wait(waitables, timeout)
        done: list[tuple[_Slot, Job, Outcome]] = []
        seen: set[int] = set()
        for h in ready:
            slot = handles[h]
            if slot.index in seen or slot.job is None:
                continue
            seen.add(slot.index)
            done.append((slot, *self._collect(slot)))
        now = time.monotonic()
        for slot in busy:
            if slot.index in seen or slot.job is None or self.timeout is None:
                continue
            if now - slot.started > self.timeout:
                job = slot.job
                slot.kill()
                slot.job = None
                done.append((slot, job, Outcome(
                    TrialState.FAILED, error=f"timed out after {self.timeout:g}s (worker killed)",
                    worker=f"slot{slot.index}", duration_s=now - slot.started)))
        results = [r for r in (self._finish(*d) for d in done) if r is not None]
        self._dispatch_held()  # a device may have just emptied: start its retry now
        return results

    def _collect(self, slot: _Slot) -> tuple[Job, Outcome]:
        job = slot.job
        assert job is not None, f"slot {slot.index}: collect without a job"
        slot.job = None
        proc, conn = slot.live()
        try:
            if conn.poll():
                return job, conn.recv()
        except (EOFError, OSError):
            pass
        proc.join(1)
        code = proc.exitcode
        slot.kill()
        why = death_reason(code, slot.oom_before)
        return job, Outcome(TrialState.FAILED, error=f"worker process died mid-trial: {why}",
                            worker=f"slot{slot.index}", duration_s=time.monotonic() - slot.started)

    def shutdown(self) -> None:
        self._held.clear()  # held retries are in flight for the caller: requeued on resume
        self._retrying.clear()
        for slot in self._slots:
            if (slot.proc is not None and slot.conn is not None and slot.proc.is_alive()
                    and slot.job is None):
                try:
                    slot.conn.send(None)
                    slot.proc.join(2)
                except (OSError, BrokenPipeError):
                    pass
            slot.kill()


def make(*, workers: int = 1, timeout: float | None = None, devices: list[str] | None = None,
         trials_per_gpu: int | str | None = None, trial_mb: float | None = None,
         memory_limit_mb: float | None = None, **_ray_options) -> ProcessExecutor:
    """The registry's factory (Ray's options do not apply to a local pool)."""
    return ProcessExecutor(workers, timeout=timeout, devices=devices,
                           trials_per_gpu=trials_per_gpu, trial_mb=trial_mb,
                           memory_limit_mb=memory_limit_mb)
