"""A driver outlives a database restart: its storage calls are retried with back-off.

:class:`Reconnecting` wraps a :class:`~storage.protocol.StudyStorage`: a call that fails with
:class:`~storage.errors.StorageUnavailable` (the server restarted, the network dropped, a pooled
connection died) is retried after 0.5, 1, 2, 4 ... seconds (at most :data:`MAX_WAIT_S` apart) for
up to ``reconnect_s`` seconds in all (default :data:`RECONNECT_S`, 120 s), logging each wait.
Past that the driver stops with one line. Every other error passes through at once.

The driver's writes are single statements or single transactions, so a retried write that failed
never half-happened. The one ambiguous case, a finish whose commit landed just before the
connection broke, is answered by the retry with "already finished", which counts as done.

>>> from storage import Storage
>>> db = Reconnecting(Storage("sqlite://"), reconnect_s=1)
>>> db.list_studies()
[]
"""

from __future__ import annotations

import logging
import time
from typing import Any

from storage.errors import ConflictError, StorageUnavailable

log = logging.getLogger(__name__)

RECONNECT_S = 120.0  # how long a driver keeps retrying an unreachable database
MAX_WAIT_S = 10.0


class Reconnecting:
    def __init__(self, storage: Any, *, reconnect_s: float = RECONNECT_S):
        self._storage, self._reconnect_s = storage, reconnect_s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._storage, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            start, wait, retried = time.monotonic(), 0.5, False
            while True:
                try:
                    return attr(*args, **kwargs)
                except StorageUnavailable as exc:
                    elapsed = time.monotonic() - start
                    if elapsed >= self._reconnect_s:
                        raise StorageUnavailable(
                            f"{exc} (still unreachable after {elapsed:.0f} s of retries; the "
                            f"study can be resumed once the database is back)") from None
                    log.warning("database unavailable (%s); retrying in %.1f s", exc, wait)
                    time.sleep(min(wait, max(0.0, self._reconnect_s - elapsed)))
                    wait, retried = min(wait * 2, MAX_WAIT_S), True
                except ConflictError as exc:
                    if retried and name == "finish_trial" and "already" in str(exc):
                        return None  # the first attempt's commit landed before the drop
                    raise

        return call

    def __repr__(self) -> str:
        return f"Reconnecting({self._storage!r})"
