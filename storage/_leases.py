"""Driver leases: at most one live driver per study.

A driver takes its study's lease when it starts (one atomic insert, or a conditional update of a
stale or own lease), renews it with a heartbeat, and releases it when it ends. A second driver
finds a live lease and is refused with a :class:`~storage.errors.ConflictError` naming the
holder. A lease whose heartbeat is older than ``stale_after_s`` belongs to a driver that died
(kill -9, a lost machine): the next driver takes it over. Times are the drivers' clocks (UTC),
so drivers on several machines need clocks that agree to within the stale interval.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exc, insert, select, update

from storage._base import StorageBase
from storage.errors import ConflictError
from storage.models import Lease as L
from storage.models import utcnow
from storage.records import Lease


class LeasesMixin(StorageBase):
    def acquire_lease(self, study: str, *, driver_id: str, host: str, pid: int,
                      stale_after_s: float) -> Lease:
        """Take the study's lease for this driver, or raise ConflictError naming the holder."""
        now = utcnow()
        lease = Lease(study, driver_id=driver_id, host=host[:200], pid=int(pid), since=now,
                      heartbeat_at=now)
        values = {"driver_id": lease.driver_id, "host": lease.host, "pid": lease.pid,
                  "since": lease.since, "heartbeat_at": lease.heartbeat_at}
        with self._connect(write=True) as c:
            study_id = self._study_id(c, study)
        try:
            with self._connect(write=True) as c:
                c.execute(insert(L).values(study_id=study_id, **values))
            return lease
        except exc.IntegrityError:
            pass  # a lease row exists: take it only when it is stale (or already ours)
        stale_before = now - timedelta(seconds=stale_after_s)
        with self._connect(write=True) as c:
            taken = c.execute(update(L).where(
                L.study_id == study_id,
                (L.heartbeat_at < stale_before) | (L.driver_id == driver_id)).values(**values))
            if taken.rowcount:
                return lease
        holder = self.lease(study)
        if holder is None:  # released between the two statements: try once more
            return self.acquire_lease(study, driver_id=driver_id, host=host, pid=pid,
                                      stale_after_s=stale_after_s)
        raise ConflictError(f"study {study} is being driven by {holder.describe()}; "
                            f"stop it or wait")

    def renew_lease(self, study: str, driver_id: str) -> bool:
        """The heartbeat; False when the lease is no longer this driver's (taken over)."""
        with self._connect(write=True) as c:
            study_id = self._study_id(c, study)
            renewed = c.execute(update(L).where(L.study_id == study_id,
                                                L.driver_id == driver_id)
                                .values(heartbeat_at=utcnow()))
            return bool(renewed.rowcount)

    def release_lease(self, study: str, driver_id: str) -> None:
        """Give the lease up (only this driver's own)."""
        with self._connect(write=True) as c:
            study_id = self._study_id(c, study)
            c.execute(delete(L).where(L.study_id == study_id, L.driver_id == driver_id))

    def lease(self, study: str) -> Lease | None:
        """The study's lease, live or stale, or None when no driver holds it."""
        with self._connect() as c:
            study_id = self._study_id(c, study)
            row: Any = c.execute(select(L).where(L.study_id == study_id)).first()
        if row is None:
            return None
        return Lease(study, row.driver_id, row.host, row.pid, row.since, row.heartbeat_at)

    def leases(self) -> dict[str, Lease]:
        """Every study's lease by study name (one query, for the studies table)."""
        from storage.models import Study

        with self._connect() as c:
            rows = c.execute(select(Study.name, L).join(L, L.study_id == Study.id)).all()
        return {r.name: Lease(r.name, r.driver_id, r.host, r.pid, r.since, r.heartbeat_at)
                for r in rows}
