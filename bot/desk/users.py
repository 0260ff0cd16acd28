"""Desk users: creation (argon2 hashes) and password checks with a lockout that lives in
the database, per username and per client IP, so every app process enforces it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from bot.models import LoginAttempt, User
from bot.models.users import LANGUAGES, ROLES

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD_LENGTH = 10


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str | None = None,
    language: str = "en",
) -> User:
    username = username.strip().lower()
    # ASCII only: a Cyrillic or full-width letter would let one name pass for another in
    # the audit log (the display name may be in any script).
    if (
        not username
        or len(username) > 64
        or not username.isascii()
        or not username.replace(".", "").replace("-", "").replace("_", "").isalnum()
    ):
        raise UserError("username: 1-64 ASCII letters, digits, '.', '-' or '_'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise UserError(f"language must be one of {', '.join(LANGUAGES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(
        username=username,
        display_name=display_name or username,
        role=role,
        language=language,
        password_hash=hash_password(password),
        active=True,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(User.username == username.strip().lower())).first()


def locked_until(
    session: Session, column: str, value: str, now: datetime, policy: LockoutPolicy
) -> datetime | None:
    """When the lock on this username or IP ends, if it is locked now.

    Locked when ``max_failures`` failures fall within ``window``; the lock lasts ``lock``
    from the newest of them. Refused attempts are not failures, so a lock always ends.
    """
    col = LoginAttempt.username if column == "username" else LoginAttempt.client_ip
    since = now - policy.window - policy.lock
    times = list(
        session.scalars(
            select(LoginAttempt.at)
            .where(col == value, LoginAttempt.outcome == "failed", LoginAttempt.at > since)
            .order_by(LoginAttempt.at.desc())
        )
    )
    n = policy.max_failures
    for i in range(len(times) - n + 1):
        newest, oldest = times[i], times[i + n - 1]
        if newest - oldest <= policy.window and newest + policy.lock > now:
            return newest + policy.lock
    return None


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    outcome: str  # ok, failed, refused
    locked_until: datetime | None = None


def attempt_login(
    session: Session,
    username: str,
    password: str,
    client_ip: str | None,
    now: datetime,
    policy: LockoutPolicy | None = None,
) -> LoginResult:
    """Check a login, record the attempt, and keep the user's counters up to date.
    ``client_ip`` None (a caller outside HTTP) limits by username only."""
    policy = policy or LockoutPolicy()
    name = username.strip().lower()[:64]
    ip = (client_ip or "-")[:64]
    _serialise_attempts(session, name, ip if client_ip is not None else None)
    locks = [locked_until(session, "username", name, now, policy)]
    if client_ip is not None:
        locks.append(locked_until(session, "ip", ip, now, policy))
    lock = max((t for t in locks if t is not None), default=None)
    if lock is not None:
        session.add(LoginAttempt(username=name, client_ip=ip, outcome="refused", at=now))
        session.flush()
        return LoginResult(None, "refused", lock)
    user = find_user(session, name)
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(username=name, client_ip=ip, outcome="ok" if ok else "failed", at=now))
    if user is not None:
        if ok:
            user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = hash_password(password)
        else:
            user.failed_logins += 1
            session.flush()
            user.locked_until = locked_until(session, "username", name, now, policy)
    session.flush()
    return LoginResult(user if ok else None, "ok" if ok else "failed")


# pg_advisory_xact_lock(class, key) classes: "lgnu" and "lgni" in ASCII.
_LOCK_USERNAME, _LOCK_IP = 0x6C676E75, 0x6C676E69


def _lock_key(value: str) -> int:
    """A signed 32-bit key for ``value`` (collisions only make two names wait on each other)."""
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:4], "big", signed=True)


def _serialise_attempts(session: Session, name: str, ip: str | None) -> None:
    """Attempts on one username (and from one address) run one after another until their
    transaction ends, so parallel guesses cannot all read the same failure count and each
    get checked: the lockout holds under concurrency. PostgreSQL: advisory transaction
    locks, username before address (one order, no deadlock). SQLite: a write first, so
    this transaction takes the database's single write lock before it reads."""
    if session.get_bind().dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(:cls, :key)")
        session.execute(lock, {"cls": _LOCK_USERNAME, "key": _lock_key(name)})
        if ip is not None:
            session.execute(lock, {"cls": _LOCK_IP, "key": _lock_key(ip)})
    else:
        session.execute(
            text("UPDATE users SET failed_logins = failed_logins WHERE username = :n"),
            {"n": name},
        )


def authenticate(session: Session, username: str, password: str, now: datetime) -> User | None:
    """The active user with this password, or None (the attempt is recorded; no IP)."""
    return attempt_login(session, username, password, None, now).user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_active(session: Session, username: str, active: bool) -> User:
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    user.active = active
    session.flush()
    return user
