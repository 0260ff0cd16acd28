"""Leader election: however many scheduler processes run, one of them plans.

The leader holds a PostgreSQL session-level advisory lock on a connection of its own,
kept open for the life of the process. The lock lives exactly as long as that session,
so a leader that dies (kill -9, a lost network) releases it as soon as PostgreSQL sees
the connection go. ``poll()`` is called every few seconds: it checks that the lock is
still held on a live connection and otherwise tries to take it, reconnecting first when
the connection has dropped (a dropped connection means leadership is lost: the lock
went with it). On SQLite, one process by design, the process always leads.
"""

from __future__ import annotations

import logging
import os
import threading

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from bot.db import normalise_url

log = logging.getLogger(__name__)

LOCK_KEY = 0x61727265617273  # "arrears" in ASCII: the scheduler's advisory-lock key
# libpq options: notice a dead server or network within ~25 s even when idle, and never
# wait longer than that for a reply (a hung poll would keep a stale leader leading).
_CONNECT_ARGS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 25_000,
}
_HOLDS = text(
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid::bigint = :hi AND objid::bigint = :lo"
    " AND objsubid = 1)"
)


class Leader:
    """This process's claim to leadership (thread-safe; ``poll`` does the I/O)."""

    def __init__(self, url: str, *, key: int = LOCK_KEY, application_name: str = "") -> None:
        self.url = normalise_url(url)
        self.key = key
        self.application_name = application_name or f"arrears-scheduler-{os.getpid()}"
        self.postgres = make_url(self.url).get_backend_name() == "postgresql"
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._leading = not self.postgres
        self._backend_pid: int | None = None
        self._mutex = threading.Lock()

    def is_leader(self) -> bool:
        """Whether the last poll found this process leading (no I/O)."""
        return self._leading

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend pid of the lock connection (what ``pg_locks`` shows)."""
        return self._backend_pid

    def poll(self) -> bool:
        """Check the lock is still held, or try to take it; returns whether we lead now."""
        if not self.postgres:
            return True
        with self._mutex:
            self._leading = self._poll_once(retry=True)
            return self._leading

    def _poll_once(self, *, retry: bool) -> bool:
        try:
            conn = self._connection()
            hi, lo = self.key >> 32, self.key & 0xFFFFFFFF
            if conn.execute(_HOLDS, {"hi": hi, "lo": lo}).scalar_one():
                return True
            acquire = text("SELECT pg_try_advisory_lock(:key)")
            return bool(conn.execute(acquire, {"key": self.key}).scalar_one())
        except DBAPIError as exc:
            log.warning("leader connection lost (%s); leadership lost", exc.orig or exc)
            self._close()
            # One fresh connection at once: a blip need not cost a retry interval.
            return self._poll_once(retry=False) if retry else False

    def _connection(self) -> Connection:
        if self._conn is None:
            if self._engine is None:
                args = dict(_CONNECT_ARGS, application_name=self.application_name)
                self._engine = create_engine(self.url, poolclass=NullPool, connect_args=args)
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._backend_pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        conn, self._conn, self._backend_pid = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except DBAPIError as exc:  # already dead: closing it is all that was left
                log.debug("closing the lost leader connection: %s", exc)

    def release(self) -> None:
        """Give up leadership. The lock is unlocked before the session closes: a closed
        session's locks go only once its server process has ended, a moment later, and
        a successor polling meanwhile would find the lock still taken."""
        with self._mutex:
            if self._leading and self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                except DBAPIError as exc:  # the session is gone, and its lock with it
                    log.debug("unlocking on a lost leader connection: %s", exc)
            self._close()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            self._leading = False


_current: Leader | None = None


def bind(leader: Leader | None) -> None:
    """Make ``leader`` this process's leader state, for :func:`is_leader`."""
    global _current
    _current = leader


def is_leader() -> bool:
    """Whether this process leads; False outside a running scheduler."""
    return _current is not None and _current.is_leader()
