"""One driver per study: the lease a driver holds while it runs, kept alive by a heartbeat.

:class:`DriverLease` takes the study's lease when entered (a second driver gets one line naming
the holder: ``study S is being driven by pid 1234 on host h since 12:03 UTC; stop it or wait``),
renews it every :data:`HEARTBEAT_S` from a background thread (so a long trial in the driver's own
process does not let it go stale), and releases it on exit. A lease not renewed for
:data:`STALE_AFTER_S` belongs to a driver that died; the next driver takes it over and re-queues
the trials the dead one left running. A holder on the same host whose process no longer exists
is taken over at once (so ``kill -9`` then ``workbench resume`` needs no wait). If this driver's lease is taken over anyway (it was
suspended past the stale interval), :attr:`DriverLease.lost` turns true and the driver stops
without writing anything more.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from typing import Any

from storage.errors import ConflictError

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # how often a driver renews its lease
STALE_AFTER_S = 30.0  # a lease not renewed for this long is taken over


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, killed but not yet reaped by
    its parent, does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class DriverLease:
    def __init__(self, storage: Any, study: str, *, heartbeat_s: float = HEARTBEAT_S,
                 stale_after_s: float = STALE_AFTER_S):
        self.storage, self.study = storage, study
        self.driver_id = uuid.uuid4().hex
        self.heartbeat_s, self.stale_after_s = heartbeat_s, stale_after_s
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> DriverLease:
        host = socket.gethostname()
        try:
            self.storage.acquire_lease(self.study, driver_id=self.driver_id, host=host,
                                       pid=os.getpid(), stale_after_s=self.stale_after_s)
        except ConflictError:
            # a holder on this host whose process is gone died (kill -9): no need to wait
            # for its heartbeat to go stale
            holder = self.storage.lease(self.study)
            if holder is None or holder.host != host or _process_alive(holder.pid):
                raise
            log.info("study %s: driver pid %d on this host is gone; taking its lease over",
                     self.study, holder.pid)
            self.storage.acquire_lease(self.study, driver_id=self.driver_id, host=host,
                                       pid=os.getpid(), stale_after_s=0.0)
        # an in-memory SQLite database is private to this process: no one to keep out, and its
        # single shared connection must not be used from a second thread
        if not str(getattr(self.storage, "url", "")).rstrip("/").endswith(("sqlite:", ":memory:")):
            self._thread = threading.Thread(target=self._beat, name=f"lease-{self.study}",
                                            daemon=True)
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                if not self.storage.renew_lease(self.study, self.driver_id):
                    self.lost = True
                    log.error("study %s: another driver took this driver's lease over; "
                              "stopping", self.study)
                    return
            except Exception as exc:  # the database is away: the driver's own writes will say so
                log.warning("study %s: lease heartbeat failed (%s)", self.study, exc)

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.heartbeat_s + 1)
        if not self.lost:
            try:
                self.storage.release_lease(self.study, self.driver_id)
            except Exception as exc:  # it goes stale on its own
                log.warning("study %s: could not release the lease (%s)", self.study, exc)
