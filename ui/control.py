"""Create, start, stop and resume searches from the UI.

A search runs in its own detached process (``python -m workbench resume NAME --storage URL
--quiet``, a new session), so closing the browser or restarting the UI does not stop it. The
driver's pid and host are recorded in the study config (key ``driver``); everything else the UI
shows is read back from the database, so a restarted UI recovers the state of every search.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.protocol import StudyStorage
from storage.records import Lease, StudyStatus, TrialState
from workbench.errors import ConfigError

if TYPE_CHECKING:  # the searchers load lazily, one by one (searcher_classes)
    from workbench.searchers import Searcher

log = logging.getLogger(__name__)

# Processes started by this UI process; polled so that finished drivers are reaped (a zombie
# would otherwise still answer ``kill(pid, 0)`` and look alive).
_CHILDREN: dict[int, subprocess.Popen] = {}

ACTIVE = tuple(s.value for s in StudyStatus if s.active)


# -- driver liveness -------------------------------------------------------------------------------
def _interrupt(pid: int) -> None:
    """SIGINT to a local driver's process group (it was started in a session of its own)."""
    try:
        os.killpg(pid, signal.SIGINT)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGINT)
        except (ProcessLookupError, PermissionError):
            pass


def _pid_alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie has exited; only its parent has not reaped it yet
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


STARTING_S = 60.0  # a launched driver takes its lease within this (imports, then the lease)


def starting_pid(config: dict[str, Any], name: str, updated_at: datetime | None = None,
                 status: str | None = None) -> int | None:
    """The pid of a driver this UI started moments ago that has not taken the study's lease
    yet (it is still importing), or None. Only this window needs the pid the UI recorded; once
    the driver runs, its lease says everything."""
    info = config.get("driver") or {}
    pid, host = info.get("pid"), info.get("host")
    if not pid or host != socket.gethostname() or not _pid_alive(int(pid)):
        return None
    started = float(info.get("started_at") or 0)
    if time.time() - started > STARTING_S:
        return None  # long past starting: a driver that ran and released its lease is exiting
    stop_asked = status in (StudyStatus.STOPPING, StudyStatus.CANCELLING)
    if updated_at is not None and updated_at.timestamp() > started + 2.0 and not stop_asked:
        return None  # the study was finished or stopped since the launch: that driver ran
    try:  # the pid may have been reused by an unrelated process since
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return int(pid) if name.encode() in cmdline else None


def driver_alive(lease: Lease | None) -> bool | None:
    """From the study's driver lease (``workbench.lease``): True while its driver heartbeats
    (and, on this host, its process exists), False when the lease is stale or its local process
    is gone, None when no driver holds the study."""
    from workbench.lease import STALE_AFTER_S

    if lease is None:
        return None
    if lease.host == socket.gethostname() and not _pid_alive(lease.pid):
        return False
    return lease.alive(datetime.now(timezone.utc), STALE_AFTER_S)


def study_state(status: str, lease: Lease | None, starting: bool = False) -> str:
    """What the UI calls a study's state: the stored status, corrected by its driver lease.

    An active study whose driver is gone (killed, machine rebooted: no live lease) is ``driver
    gone`` (resume it); one driven from another machine says where; a driver that holds the
    lease before it has marked the study running is ``starting``, and so is one this UI has
    just launched that has not taken the lease yet (``starting``).
    """
    alive = driver_alive(lease)
    if status in ACTIVE:
        if not alive:
            return "starting" if starting and lease is None else "driver gone"
        if lease is not None and lease.host != socket.gethostname():
            return f"{status} on {lease.host}"
        return status
    if alive or (starting and lease is None):
        return "starting"
    return status


# -- starting and stopping ---------------------------------------------------------------------------
def log_path(storage_url: str, name: str) -> Path:
    """Where a study's driver logs: next to an SQLite file, else in ~/.cache/workbench/logs."""
    from sqlalchemy.engine import make_url

    url = make_url(storage_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(url.database).expanduser().resolve()
        folder = db.with_name(db.name + "-logs")
    else:
        folder = Path.home() / ".cache" / "workbench" / "logs"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return folder / f"{safe}.log"


def start(storage: StudyStorage, name: str) -> str:
    """Start (or resume) the study's driver in a detached background process; a message."""
    from sqlalchemy.engine import make_url

    rec = storage.get_study(name)
    url = make_url(storage.url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ConfigError("start: expected a database file or server that a background process "
                          f"can open, found the in-memory database {storage.url!r}")
    lease = storage.lease(name)
    if driver_alive(lease):
        assert lease is not None
        return f"study {name} is being driven by {lease.describe()}; stop it or wait"
    if rec.status in (StudyStatus.STOPPING, StudyStatus.CANCELLING):  # a dead driver's stop
        storage.set_study_status(name, StudyStatus.STOPPED)  # request must not stop the new one
    path = log_path(storage.url, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "workbench", "resume", name, "--storage", storage.url, "--quiet"]
    with open(path, "ab") as out:
        out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd[1:])}\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _CHILDREN[proc.pid] = proc
    config = dict(storage.get_study(name).config)
    config["driver"] = {"pid": proc.pid, "host": socket.gethostname(), "log": str(path),
                        "started_at": time.time()}
    storage.update_study_config(name, config)
    log.info("started driver of %s (pid %d), log %s", name, proc.pid, path)
    return f"started study {name} in the background (pid {proc.pid}; log {path})"


def stop(storage: StudyStorage, name: str, now: bool = False) -> str:
    """Stop the study's driver: after its trials in flight (they finish and are recorded), or
    ``now`` (they are cancelled and re-queued, to run again on resume). A message saying which.
    """
    from workbench.stopping import StopMode, request_stop

    rec = storage.get_study(name)
    lease = storage.lease(name)
    alive = driver_alive(lease)
    local_pid = lease.pid if lease is not None and lease.host == socket.gethostname() else None
    if rec.status not in ACTIVE:
        local_pid = local_pid or starting_pid(rec.config, name, rec.updated_at, rec.status)
        if local_pid is None:
            return f"study {name} is not running ({rec.status})"
        # Still starting up: the request is written and the driver honours it before it runs a
        # trial (it marks the study running only when no stop is pending)
        request_stop(storage, name, now=now)
        return f"study {name} is starting: its driver stops before running a trial"
    if alive is False:
        storage.set_study_status(name, StudyStatus.STOPPED)
        return f"study {name}: its driver was gone; marked stopped (resume to continue)"
    mode = request_stop(storage, name, now=now)
    running = storage.count_trials(name)[TrialState.RUNNING.value]
    if mode is StopMode.NOW:
        if alive and local_pid is not None:  # a local driver: interrupt it at once
            _interrupt(local_pid)
        return (f"stopping {name} now: its {running} trial(s) in flight are cancelled and "
                "re-queued (they run again from the start on resume)")
    return (f"stopping {name} after its {running} trial(s) in flight: they finish and are "
            "recorded; no new trial starts")


def read_log_tail(config: dict[str, Any], max_bytes: int = 64_000) -> str | None:
    """The end of the study's driver log (None when the UI did not start one here)."""
    path = (config.get("driver") or {}).get("log")
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as f:
        f.seek(max(0, Path(path).stat().st_size - max_bytes))
        return f.read().decode("utf-8", "replace")


def ui_states(storage: StudyStorage) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """Summaries, configs and the UI's state of every study (two queries)."""
    records = {r.name: r for r in storage.list_studies()}
    configs = {name: r.config for name, r in records.items()}
    summaries = storage.study_summaries()
    leases = storage.leases()

    def starting(name: str, status: str) -> bool:
        rec = records.get(name)
        return (rec is not None and name not in leases
                and starting_pid(rec.config, name, rec.updated_at, status) is not None)

    states = {s["name"]: study_state(s["status"], leases.get(s["name"]),
                                     starting(s["name"], s["status"]))
              for s in summaries}
    return summaries, configs, states


# -- managing studies ----------------------------------------------------------------------------
def _idle(storage: StudyStorage, name: str, action: str) -> None:
    rec = storage.get_study(name)
    lease = storage.lease(name)
    if rec.status in ACTIVE or driver_alive(lease):
        raise ConfigError(f"{action} {name}: expected a stopped study, found it "
                          f"{study_state(rec.status, lease)}; stop it first")


def delete(storage: StudyStorage, name: str) -> str:
    """Delete a study that is not running, with its trials, curves, notes and artifacts."""
    _idle(storage, name, "delete")
    storage.delete_study(name)
    return f"deleted study {name}"


def rename(storage: StudyStorage, name: str, new_name: str) -> str:
    """Rename a study that is not running (its driver is started by name)."""
    new_name = (new_name or "").strip()
    if not new_name:
        raise ConfigError(f"rename {name}: expected a new name, found none")
    _idle(storage, name, "rename")
    storage.rename_study(name, new_name)
    return f"renamed study {name} to {new_name}"


def duplicate(storage: StudyStorage, name: str, new_name: str) -> str:
    """A new study with the same configuration (space, task, searcher, options, budget, seed)
    and no trials; not started."""
    from workbench.study import StudyConfig, create_study

    new_name = (new_name or "").strip() or f"{name}-copy"
    cfg = StudyConfig.from_dict(storage.get_study(name).config)
    create_study(storage, new_name, cfg)
    return f"created study {new_name} with the configuration of {name} (not started)"


def resume(storage: StudyStorage, name: str, extra_trials: int = 0) -> str:
    """Start the driver again, optionally raising the trial budget by ``extra_trials``."""
    extra = int(extra_trials or 0)
    if extra < 0:
        raise ConfigError(f"extra trials: expected a number >= 0, found {extra}")
    if extra:
        config = dict(storage.get_study(name).config)
        if config.get("trials") is not None:
            config["trials"] = int(config["trials"]) + extra
            storage.update_study_config(name, config)
    return start(storage, name)


# -- creating studies ----------------------------------------------------------------------------
def searcher_classes() -> dict[str, type[Searcher]]:
    """Searcher name -> class for every registered searcher whose module imports here.

    Loaded one by one: an optional searcher whose library (or module) is missing is left out
    instead of breaking the whole list.
    """
    import importlib

    from workbench.searchers import SEARCHERS

    out: dict[str, type[Searcher]] = {}
    for name, target in sorted(SEARCHERS.items()):
        module, _, cls = target.partition(":")
        try:
            out[name] = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            log.info("searcher %s unavailable: %s", name, exc)
    return out


def option_rows(searcher: str) -> list[list[str]]:
    """[[option, value, help], ...] for the form's editable options table."""
    cls = searcher_classes().get(searcher)
    if cls is None:
        return []
    return [[k, _show(o.default), f"{o.help} ({o.type.__name__})"] for k, o in cls.options.items()]


def _show(value: Any) -> str:
    return "" if value is None else json.dumps(value) if isinstance(value, bool) else str(value)


def parse_option_rows(searcher: str, rows: list[list[Any]]) -> dict[str, Any]:
    """Options whose value differs from the default; values parsed as JSON where they parse."""
    cls = searcher_classes().get(searcher)
    if cls is None:
        raise ConfigError(f"searcher: expected one of {', '.join(searcher_classes())}, "
                          f"found {searcher!r}")
    out: dict[str, Any] = {}
    for row in rows or []:
        if not row or not str(row[0]).strip():
            continue
        key, raw = str(row[0]).strip(), "" if len(row) < 2 or row[1] is None else str(row[1])
        if key not in cls.options:
            raise ConfigError(f"searcher {searcher}: expected options "
                              f"{', '.join(cls.options) or '(none)'}, found {key!r}")
        if raw.strip() == _show(cls.options[key].default):
            continue
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw.strip()
    return out


def create(storage: StudyStorage, *, name: str, space: str, task: str, searcher: str,
           option_table: list[list[Any]], seeds: list[str], objectives: str, trials: int,
           epochs: int, workers: int, seed: int, evaluator: str = "",
           keep_weights: str = "none", steps: int | None = None, repeats: int = 1,
           task_options: str = "", memory_limit: str = "", proxies: str = "",
           prefilter: str = "", constraints: str = "") -> str:
    """Validate the form and store a new study; the study's name.

    ``steps`` (0 or None: use ``epochs``) is a budget in optimizer steps; ``repeats`` trains
    that many seeds per trial (the mean is the objective); ``task_options`` is ``key=value``
    pairs separated by commas (values parsed as JSON where they parse). ``proxies``,
    ``prefilter`` and ``constraints`` are the CLI's ``--proxies synflow,naswot``,
    ``--prefilter naswot:top0.25`` and ``--constraint naswot>=400`` (comma-separated); blank:
    none.

    Seed architectures go into evolution's ``seeds`` option (its initial population); for any
    other searcher they are queued as the first trials.
    """
    from ui.policy import current
    from workbench.spaces import get_space
    from workbench.study import (
        StudyConfig,
        create_study,
        enqueue,
        parse_memory,
        parse_objectives,
    )

    policy = current()  # what this server lets its users import or read
    policy.check_evaluator((evaluator or "").strip() or None)
    policy.check_space(space)
    task = policy.check_task(task)
    options = parse_option_rows(searcher, option_table)
    cls = searcher_classes()[searcher]
    seeds = [s for s in (seeds or []) if s]
    if seeds and "seeds" in cls.options:
        options["seeds"] = ",".join(seeds)
    steps = steps or None
    for label, value, low in (("trials", trials, 1), ("epochs", epochs, 1),
                              ("workers", workers, 1), ("steps", steps or 1, 1),
                              ("repeats", repeats, 1)):
        if value is None or int(value) != value or int(value) < low:
            raise ConfigError(f"{label}: expected an integer >= {low}, found {value!r}")
    from workbench.repeats import check_repeats

    task_opts = {}
    for part in filter(None, (p.strip() for p in (task_options or "").split(","))):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"task options: expected key=value, found {part!r}")
        try:
            task_opts[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            task_opts[key.strip()] = raw.strip()
    from workbench.proposing import parse_constraint
    from workbench.proxies import parse_proxies

    limits = dict(parse_constraint(p) for p in (constraints or "").split(",") if p.strip())
    cfg = StudyConfig(space=space, task=task, task_options=task_opts, searcher=searcher,
                      searcher_options=options, proxies=parse_proxies(proxies or ""),
                      prefilter=(prefilter or "").strip() or None, constraints=limits,
                      objectives=parse_objectives(objectives or "acc"), trials=int(trials),
                      budget={"epochs": int(epochs), **({"steps": int(steps)} if steps else {})},
                      repeats=check_repeats(int(repeats)), seed=int(seed or 0),
                      workers=int(workers),
                      evaluator=(evaluator or "").strip() or None, keep_weights=keep_weights,
                      memory_limit_mb=(parse_memory(memory_limit) if (memory_limit or "").strip()
                                       else None))
    name = (name or "").strip() or f"{space}-{searcher}-{time.strftime('%Y%m%d-%H%M%S')}"
    rec = create_study(storage, name, cfg)
    if seeds and "seeds" not in cls.options:
        c = StudyConfig.from_dict(rec.config)
        sp = get_space(c.space, *c.shape, **c.space_options)
        for s in seeds:
            enqueue(storage, name, sp.seed(s))
    return name
