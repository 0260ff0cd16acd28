"""Seed the synthetic portfolio into PostgreSQL with COPY (the fast path of bot.seed).

``copy_portfolio`` writes the same rows as ``bot.seed.seed_portfolio`` for the same
(``accounts``, ``now``, ``rng_seed``): it draws the accounts block by block
(``bot.seed.draw_block``, what ``plan_accounts`` spells out as plans), encodes each block
as COPY data (text; binary for installments and payments) and sends it with one
``COPY ... FROM STDIN`` per table, all in one transaction. Only a few blocks are alive
at a time, so memory stays flat.

* Ids are assigned here, not by the server: the five tables are locked against other
  writers (readers are not blocked), each run takes the ids after its sequence's current
  value and sets the sequence past the last id used at the end. Child rows reference
  their parents without a round trip, and the server spares a nextval per row. Contact
  points alone take their ids from their sequence.
* Each block comes out of its own random stream, so blocks are drawn and encoded in
  parallel processes (two: the server needs a core for the COPY too); the COPY of block
  k runs on a writer thread while the planners work on the next ones.
* On empty tables (a fresh database) the foreign keys, the plain secondary indexes and
  the primary key and unique constraints no other table's foreign key uses (installments'
  and payments' keys, every unique constraint) of the five tables are dropped for the
  load and created again, from their own definitions, before the transaction commits:
  one validation pass and one sorted index build (parallel, once the planners are done)
  are much cheaper than a check and a B-tree insert per row. A duplicate fails the
  rebuilt constraint, and with it the whole transaction, as it would have failed the row.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import threading
import time as _time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from struct import Struct
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from bot.seed import (
    _BASE_FROM,
    _BASE_UNTIL,
    _CN_METHODS,
    _NO_BASE,
    _US_METHODS,
    DUE_ZERO,
    STAGES,
    VERIFY_SAMPLE,
    AccountDraw,
    BlockSpec,
    LoanDraw,
    SeedConflictError,
    SeedSummary,
    _zone,
    amortize_cents,
    at_local,
    block_specs,
    day_base,
    draw_block,
    partial_cents,
    plan_accounts,
    verify_sample,
)

log = logging.getLogger(__name__)

CHUNK_SIZE = 2_000
MAX_WORKERS = 2  # planning processes; the server needs a core for the COPY too
PARALLEL_FROM = 20_000  # smaller portfolios are planned in this process
QUEUE_CHUNKS = 2  # encoded chunks waiting for the writer thread (bounds memory)
#: For the index and key builds after the load: the planners are done by then, so
#: parallel workers have the cores. Session-local, the server's config is untouched.
#: Less sort memory is faster here: each participant's sort runs stay within the CPU
#: caches and are merged, where one big in-memory quicksort misses them (at 1M
#: accounts the due-date index took 9-10 s with 64MB, 12-14 s with 256MB or 2GB, and
#: 28 s without parallel workers at 2GB). 64MB still leaves a parallel worker its
#: 32MB. Neither a larger work_mem for the foreign key checks nor WAL compression
#: helped: the builds are CPU-bound.
BUILD_SETTINGS = {"maintenance_work_mem": "64MB", "max_parallel_maintenance_workers": "2"}

TABLES: dict[str, tuple[str, ...]] = {
    "borrowers": (
        "id",
        "external_ref",
        "full_name",
        "language",
        "timezone",
        "jurisdiction",
        "birth_year",
        "id_last4",
        "credit_score",
        "cease_reason",
        "created_at",
    ),
    "contact_points": (
        "borrower_id",
        "channel",
        "address",
        "consent",
        "opted_out_at",
        "verified",
        "invalid",
        "is_primary",
        "created_at",
    ),
    "loans": (
        "id",
        "borrower_id",
        "reference",
        "product",
        "currency",
        "principal",
        "annual_rate",
        "timezone",
        "profile",
        "grace_days",
        "opened_on",
        "status",
        "created_at",
    ),
    "installments": (
        "id",
        "loan_id",
        "seq",
        "due_date",
        "principal_due",
        "interest_due",
        "fees_due",
        "amount_paid",
    ),
    # method last: the one field of a payment row whose length varies (see _Encoder)
    "payments": ("id", "loan_id", "amount", "received_at", "reference", "method"),
}
BINARY_TABLES = frozenset({"installments", "payments"})  # see _Encoder
NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    """A string as a COPY text field."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _bool(value: bool) -> str:
    return "t" if value else "f"


@dataclass(frozen=True)
class _Ids:
    """Where this run's ids start. A borrower's id is ``borrowers + index``, its k-th
    loan's ``loans + 2 * index + k`` (an account has at most two loans): any block can be
    encoded without knowing the others. Installments and payments are numbered in order
    from ``installments`` and ``payments``: a block's first ones follow from the row
    counts of the blocks before it (see _parallel). Contact points are referenced by
    nothing seeded: the server numbers them from their sequence."""

    borrowers: int
    loans: int
    installments: int
    payments: int


LOANS_PER_ACCOUNT = 2


class _Encoder:
    """Turns drawn accounts into COPY data: text for borrowers, contact points and loans,
    binary for installments and payments (~35 rows an account: the server parses binary
    numbers, dates and times in two thirds of the time it takes for their text). Those
    rows are written straight from the draws: amounts from cents, due dates memoized by
    loan calendar, receipt times by local day."""

    def __init__(self, ids: _Ids) -> None:
        self.ids = ids
        #: (opened_on, zone) -> a loan row's last fields: opened_on, status, created_at
        self.loan_tails: dict[tuple[date, str], str] = {}
        self.due_fields: dict[tuple[date, int], tuple[bytes, ...]] = {}
        #: zone -> day -> local midnight in microseconds from 2000-01-01 UTC, or -1
        self.stamps: dict[str, dict[date, int]] = {}
        #: a payment row's fields up to its reference, by the reference's length
        self.payment_rows: dict[int, Callable[..., bytes]] = {}
        self.instants: dict[datetime, str] = {}  # str() of accounts' created_at

    def loan_tail(self, opened_on: date, tz: str) -> str:
        """A loan row's last fields, opened_on, status and created_at, memoized in
        ``loan_tails``; created_at as seed_portfolio has it: datetime.combine(opened_on,
        time(10), tzinfo=ZoneInfo(timezone))."""
        if len(self.loan_tails) > 100_000:
            self.loan_tails.clear()
        opened_at = datetime.combine(opened_on, time(10), tzinfo=_zone(tz))
        tail = self.loan_tails[opened_on, tz] = f"{opened_on.isoformat()}\tactive\t{opened_at}\n"
        return tail

    def dues(self, draw: LoanDraw) -> tuple[bytes, ...]:
        """``draw.dues`` as binary date fields (a few thousand loan calendars)."""
        key = (draw.dues[DUE_ZERO], draw.day_of_month)
        fields = self.due_fields.get(key)
        if fields is None:
            if len(self.due_fields) > 50_000:
                self.due_fields.clear()
            fields = self.due_fields[key] = tuple(
                _DATE.pack(4, d.toordinal() - _PG_EPOCH_DAY) for d in draw.dues
            )
        return fields

    def zone_stamps(self, tz: str) -> dict[date, int]:
        """``stamp``'s memo for ``tz``: day -> local midnight in microseconds from
        2000-01-01 UTC, or -1 when at_local takes no shortcut that day."""
        stamps = self.stamps.get(tz)
        if stamps is None:
            stamps = self.stamps[tz] = {}
        return stamps

    def stamp(self, day: date, tz: str, minute: int) -> int:
        """``at_local(day, tz, minute // 60, minute % 60)`` in microseconds from
        2000-01-01 UTC (a binary timestamptz)."""
        stamps = self.zone_stamps(tz)
        base = stamps.get(day)
        if base is None:
            if len(stamps) > 100_000:
                stamps.clear()
            base = stamps[day] = _stamp_base(day, tz)
        hour = minute // 60
        if base < 0 or not _BASE_FROM <= hour <= _BASE_UNTIL:
            at = at_local(day, tz, hour, minute % 60)
            return (at - _PG_EPOCH) // _MICROSECOND
        return base + minute * _MINUTE_US

    def payment_row(self, head: int) -> Callable[..., bytes]:
        """Packs a payment row but its method (the last field) from _PAYMENT_HEAD, the id,
        the loan's field, the amount (a fixed three-digit numeric), _STAMP_LENGTH and the
        receipt time, and the reference: its length and the ``head`` bytes of
        ``PAY-<loan>-``, then the two of the installment's seq."""
        pack = self.payment_rows.get(head)
        if pack is None:
            pack = self.payment_rows[head] = Struct(
                f">6si8s{len(_ZERO_FIXED)}s4sq{4 + head}s2s"
            ).pack
        return pack

    def _loan_rows(
        self,
        lid: int,
        tz: str,
        lp: LoanDraw,
        dues: tuple[bytes, ...],
        parts: list[int],
        interests: list[int],
        installment_id: int,
        payment_id: int,
        add_installment: Callable[[bytes], None],
        add_payment: Callable[[bytes], None],
    ) -> tuple[int, int]:
        """A loan's installment and payment rows, field by field: for amounts too large
        for ``_INSTALLMENT``'s fixed three digits. Returns the next ids."""
        pay_ref = f"PAY-{lp.reference}-".encode()
        for n, part in enumerate(parts):
            interest = interests[n]
            if n < lp.paid:
                paid_field = _numeric(part + interest)
                day, minute, method = lp.receipts[n]
                ref = pay_ref + _SEQ_REFS[n]
            elif n == lp.paid and lp.partial is not None:
                percent, day, minute, method = lp.partial
                paid_field = _numeric(partial_cents(part + interest, percent))
                ref = pay_ref + _SEQ_REFS[n] + b"P"
            else:
                paid_field = _ZERO_NUMERIC
                ref = b""
            if ref:
                add_payment(
                    b"".join(
                        (
                            _ROW_HEAD.pack(6, 4, payment_id, 4, lid),
                            paid_field,
                            _TIMESTAMP.pack(8, self.stamp(day, tz, minute)),
                            _INT4.pack(len(ref)),
                            ref,
                            _METHOD_FIELDS[method],
                        )
                    )
                )
                payment_id += 1
            add_installment(
                b"".join(
                    (
                        _ROW_HEAD.pack(8, 4, installment_id, 4, lid),
                        _SEQ_FIELDS[n],
                        dues[n],
                        _numeric(part),
                        _numeric(interest),
                        _ZERO_NUMERIC,
                        paid_field,
                    )
                )
            )
            installment_id += 1
        return installment_id, payment_id

    def chunk(
        self, draws: Sequence[AccountDraw], installment_id: int, payment_id: int
    ) -> tuple[dict[str, bytes], list[int], Counts]:
        """The COPY data of ``draws``, their borrowers' ids and the row counts; the
        first installment and payment take the ids given."""
        ids = self.ids
        first_installment, first_payment = installment_id, payment_id
        borrowers: list[str] = []
        contacts: list[str] = []
        loans: list[str] = []
        installments: list[bytes] = [_SIGNATURE]  # binary COPY data, joined once
        payments: list[bytes] = [_SIGNATURE]
        borrower_ids: list[int] = []
        last_loan = 0
        add_installment, add_payment = installments.append, payments.append
        stamp, pack_stamp, unpaid_tails = self.stamp, _TIMESTAMP.pack, _UNPAID_TAILS
        seq_fields, seq_refs, methods = _SEQ_FIELDS, _SEQ_REFS, _METHOD_FIELDS
        join, loan_tails = b"".join, self.loan_tails
        numeric3, pack_installment = _numeric3, _INSTALLMENT.pack
        for p in draws:
            bid = ids.borrowers + p.number
            borrower_ids.append(bid)
            created = self.instants.get(p.created_at)
            if created is None:  # accounts open at 10:00 local: a few thousand instants
                if len(self.instants) > 100_000:
                    self.instants.clear()
                created = self.instants[p.created_at] = str(p.created_at)
            # external_ref, language, zone, jurisdiction, id_last4, phone, references
            # and methods are digits and fixed words: nothing to escape
            borrowers.append(
                f"{bid}\t{p.external_ref}\t{_text(p.full_name)}\t{p.language}\t"
                f"{p.timezone}\t{p.jurisdiction}\t{p.birth_year}\t"
                f"{p.id_last4}\t{p.credit_score}\t{NULL}\t{created}\n"
            )
            opted = NULL if p.sms_opted_out_at is None else str(p.sms_opted_out_at)
            contacts.append(
                f"{bid}\tsms\t{p.phone}\tt\t{opted}\tt\t{_bool(p.sms_invalid)}\tt\t{created}\n"
            )
            if p.email is not None:
                contacts.append(
                    f"{bid}\temail\t{_text(p.email)}\tt\t{NULL}\t{_bool(p.email_verified)}"
                    f"\tf\tt\t{created}\n"
                )
            if len(p.loans) > LOANS_PER_ACCOUNT:
                raise ValueError(f"account {p.external_ref} has more than two loans")
            for k, lp in enumerate(p.loans):
                lid = last_loan = ids.loans + LOANS_PER_ACCOUNT * p.number + k
                tz = lp.timezone
                row_end = loan_tails.get((lp.opened_on, tz)) or self.loan_tail(lp.opened_on, tz)
                loans.append(
                    f"{lid}\t{bid}\t{lp.reference}\tpersonal\t{lp.currency}\t"
                    f"{lp.principal!s}\t{lp.annual_rate!s}\t{tz}\t"
                    f"{lp.profile}\t{lp.grace_days}\t{row_end}"
                )
                # the hot loops: ~10 payments and ~21 installments per loan
                pay_ref = f"PAY-{lp.reference}-".encode()
                paid, partial = lp.paid, lp.partial
                dues = self.dues(lp)[DUE_ZERO - paid :]
                parts, interests = amortize_cents(lp.principal, lp.annual_rate, lp.term)
                if lp.principal >= _FIXED_PRINCIPAL or lp.annual_rate > 12:  # never seeded
                    installment_id, payment_id = self._loan_rows(
                        lid, tz, lp, dues, parts, interests, installment_id, payment_id,
                        add_installment, add_payment,
                    )  # fmt: skip
                    continue
                loan_field = _INT4_FIELD.pack(4, lid)
                tails: list[bytes] = []  # per installment: fees_due (zero), amount_paid
                if paid:
                    zone_stamps = self.zone_stamps(tz)
                    pay_row = self.payment_row(len(pay_ref))
                    ref_head = _INT4.pack(len(pay_ref) + 2) + pay_ref  # + "05"
                    due_cents, due_field, tail = -1, b"", b""  # all but the last are the same
                    for n, (day, minute, method) in enumerate(lp.receipts):
                        if parts[n] + interests[n] != due_cents:
                            due_cents = parts[n] + interests[n]
                            due_field = numeric3(due_cents)
                            tail = _ZERO_NUMERIC + due_field
                        base = zone_stamps.get(day)
                        if base is None or base < 0:
                            received = stamp(day, tz, minute)
                        else:  # stamp() inlined: payments are received from 7 to 21 h
                            received = base + minute * _MINUTE_US
                        row = pay_row(
                            _PAYMENT_HEAD, payment_id, loan_field, due_field,
                            _STAMP_LENGTH, received, ref_head, seq_refs[n],
                        )  # fmt: skip
                        add_payment(row)
                        add_payment(methods[method])
                        tails.append(tail)
                        payment_id += 1
                if partial is not None:
                    percent, day, minute, method = partial
                    due_field = numeric3(partial_cents(parts[paid] + interests[paid], percent))
                    ref = pay_ref + seq_refs[paid] + b"P"
                    add_payment(
                        join(
                            (
                                _PAYMENT_HEAD,
                                _INT4.pack(payment_id),
                                loan_field,
                                due_field,
                                pack_stamp(8, stamp(day, tz, minute)),
                                _INT4.pack(len(ref)),
                                ref,
                                methods[method],
                            )
                        )
                    )
                    tails.append(_ZERO_NUMERIC + due_field)
                    payment_id += 1
                tails += unpaid_tails[: len(parts) - len(tails)]
                # the due date and seq fields run on past the last installment
                rows = zip(parts, interests, tails, dues, seq_fields, strict=False)
                for part, interest, tail, due, seq in rows:
                    # one pack a row: amounts as three base-10000 digits (see _numeric3)
                    whole, interest_whole = part // 100, interest // 100
                    row = pack_installment(
                        _INSTALLMENT_HEAD, installment_id, loan_field, seq, due,
                        _FIXED_HEAD, whole // 10_000, whole % 10_000, part % 100 * 100,
                        _FIXED_HEAD, interest_whole // 10_000, interest_whole % 10_000,
                        interest % 100 * 100,
                        tail,
                    )  # fmt: skip
                    add_installment(row)
                    installment_id += 1
        counts = Counts(
            len(draws),
            len(contacts),
            len(loans),
            installment_id - first_installment,
            payment_id - first_payment,
            last_loan,
        )
        data = {
            "borrowers": "".join(borrowers).encode(),
            "contact_points": "".join(contacts).encode(),
            "loans": "".join(loans).encode(),
            "installments": _binary(installments),
            "payments": _binary(payments),
        }
        return data, borrower_ids, counts


# PostgreSQL's binary COPY: a signature, then per row the number of fields and each
# field as its length (int32) and its value; dates are days and timestamps microseconds
# from 2000-01-01, numerics base-10000 digits (see numeric_recv), all big-endian.
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
_TRAILER = b"\xff\xff"
_ROW_HEAD = Struct(">hiiii")  # fields in the row, then two int4s: the row's id, the loan's
_INT4 = Struct(">i")
_DATE = Struct(">ii")  # 4, days
_TIMESTAMP = Struct(">iq")  # 8, microseconds
_PG_EPOCH_DAY = date(2000, 1, 1).toordinal()
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MINUTE_US = 60_000_000
#: numeric fields with 1, 2 and 3 base-10000 digits: length, ndigits, weight, sign (+),
#: dscale (2: the columns' scale), digits
_NUMERIC_1, _NUMERIC_2, _NUMERIC_3 = Struct(">ihhhhh"), Struct(">ihhhhhh"), Struct(">ihhhhhhh")
_ZERO_NUMERIC = _NUMERIC_1.pack(10, 1, -1, 0, 2, 0)  # 0.00 (the server drops zero digits)
_ZERO_FIXED = _NUMERIC_3.pack(14, 3, 1, 0, 2, 0, 0, 0)  # 0.00 as _numeric3 spells it
_INT4_FIELD = _DATE  # an int4 field: 4, the value (a loan's id)
_FIELDS_ID = Struct(">hi")  # a row's field count and its id's length (4)
_INSTALLMENT_HEAD, _PAYMENT_HEAD = _FIELDS_ID.pack(8, 4), _FIELDS_ID.pack(6, 4)
_STAMP_LENGTH = _INT4.pack(8)
#: a fixed three-digit numeric's length, ndigits, weight, sign and dscale
_FIXED_HEAD = Struct(">ihhhh").pack(14, 3, 1, 0, 2)
#: The constant fields are bytes, packed in runs (each argument of a pack costs):
#: _INSTALLMENT_HEAD, the id, the loan's field (_INT4_FIELD), the seq and due date fields,
#: principal and interest due as _FIXED_HEAD and three digits, then fees_due (zero) and
#: amount_paid (a fixed three-digit numeric) as one field pair.
_INSTALLMENT = Struct(
    f">6si8s8s8s12shhh12shhh{len(_ZERO_NUMERIC) + len(_ZERO_FIXED)}s"
)  # fmt: skip
_UNPAID_TAILS = (_ZERO_NUMERIC + _ZERO_FIXED,) * DUE_ZERO  # fees_due, amount_paid: zero
_FIXED_LIMIT = 10**10  # cents: _numeric3 spells amounts below 100,000,000.00
#: Below this principal, at an annual rate up to 1200% (r <= 1 a month), every amount of
#: the schedule does: a principal part is at most the principal, an interest at most
#: the principal and a cent, a partial payment less than the amount due.
_FIXED_PRINCIPAL = Decimal(_FIXED_LIMIT // 4) / 100
_SEQ_FIELDS = tuple(_DATE.pack(4, seq) for seq in range(1, DUE_ZERO + 1))  # int4 fields
_SEQ_REFS = tuple(f"{seq:02d}".encode() for seq in range(1, DUE_ZERO + 1))  # "PAY-...-05"
_METHOD_FIELDS = {
    method: _INT4.pack(len(method)) + method.encode() for method in _US_METHODS + _CN_METHODS
}


def _numeric(cents: int) -> bytes:
    """A binary numeric field of ``cents`` / 100, scale 2 (``cents`` >= 0)."""
    whole, fraction = divmod(cents, 100)
    if whole < 10_000:
        if whole:
            return _NUMERIC_2.pack(12, 2, 0, 0, 2, whole, fraction * 100)
        return _NUMERIC_1.pack(10, 1, -1, 0, 2, fraction * 100)
    if whole < 100_000_000:
        return _NUMERIC_3.pack(14, 3, 1, 0, 2, whole // 10_000, whole % 10_000, fraction * 100)
    digits = [fraction * 100]
    while whole:
        whole, digit = divmod(whole, 10_000)
        digits.insert(0, digit)
    return Struct(f">ihhhh{len(digits)}h").pack(
        8 + 2 * len(digits), len(digits), len(digits) - 2, 0, 2, *digits
    )


def _numeric3(cents: int) -> bytes:
    """A binary numeric field of ``cents`` / 100 as exactly three base-10000 digits
    (weight 1), leading or trailing zero digits included: one Struct for every amount.
    numeric_recv strips the zero digits, so the stored value is the one ``_numeric``
    spells. ``0 <= cents < _FIXED_LIMIT``."""
    whole = cents // 100
    return _NUMERIC_3.pack(
        14, 3, 1, 0, 2, whole // 10_000, whole % 10_000, (cents - whole * 100) * 100
    )


def _binary(rows: list[bytes]) -> bytes:
    """``rows``, the signature first, as binary COPY data (none without rows); appends
    the trailer to ``rows``."""
    if len(rows) == 1:
        return b""
    rows.append(_TRAILER)
    return b"".join(rows)


def _stamp_base(day: date, tz: str) -> int:
    """Local midnight of ``day`` in microseconds from 2000-01-01 UTC, or -1 when
    at_local does not take its shortcut on ``day``."""
    base = day_base(day, tz)
    if base is _NO_BASE:
        return -1
    return (base - _PG_EPOCH) // _MICROSECOND


@dataclass
class Counts:
    accounts: int
    contact_points: int
    loans: int
    installments: int
    payments: int
    last_loan: int = 0  # the largest loan id written


def _chunks(draws: Iterator[AccountDraw], size: int) -> Iterator[list[AccountDraw]]:
    while chunk := list(islice(draws, size)):
        yield chunk


def _draw_accounts(n: int, now: datetime, rng_seed: int) -> Iterator[AccountDraw]:
    """What ``plan_accounts(n, now, rng_seed)`` plans, as drawn."""
    for spec in block_specs(n, rng_seed):
        yield from draw_block(spec, now, rng_seed)


@dataclass
class _Encoded:
    """One chunk as COPY text, with what the summary and the verified sample need."""

    data: dict[str, bytes]
    counts: Counts
    expected: list[tuple[int, str]]
    stages: Counter[str]
    languages: Counter[str]
    jurisdictions: Counter[str]


def _encode(
    encoder: _Encoder,
    draws: Sequence[AccountDraw],
    step: int,
    installment_id: int,
    payment_id: int,
) -> _Encoded:
    data, borrower_ids, counts = encoder.chunk(draws, installment_id, payment_id)
    return _Encoded(
        data,
        counts,
        [(b, d.stage) for b, d in zip(borrower_ids, draws, strict=True) if d.number % step == 0],
        Counter(d.stage for d in draws),
        Counter(d.language for d in draws),
        Counter(d.jurisdiction for d in draws),
    )


def _row_counts(draws: Sequence[AccountDraw]) -> tuple[int, int]:
    """The installments and payments of ``draws``."""
    installments = payments = 0
    for draw in draws:
        for loan in draw.loans:
            installments += loan.term
            payments += loan.paid + (loan.partial is not None)
    return installments, payments


def _serial(
    accounts: int, now: datetime, rng_seed: int, ids: _Ids, step: int, chunk_size: int
) -> Generator[_Encoded, None, None]:
    encoder = _Encoder(ids)
    installment_id, payment_id = ids.installments, ids.payments
    for chunk in _chunks(_draw_accounts(accounts, now, rng_seed), chunk_size):
        encoded = _encode(encoder, chunk, step, installment_id, payment_id)
        installment_id += encoded.counts.installments
        payment_id += encoded.counts.payments
        yield encoded


def _put(conn: multiprocessing.connection.Connection, message: tuple[Any, ...]) -> None:
    """A message to or from a planning process (a pipe, pickled: the messages are
    plain data). Named apart from ``send``: tests/bot/test_send_paths.py holds every
    ``.send(`` call outside bot/delivery.py and the channels to be a gate bypass."""
    conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _take(conn: multiprocessing.connection.Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def _planner(
    conn: multiprocessing.connection.Connection,
    now: datetime,
    rng_seed: int,
    ids: _Ids,
    step: int,
) -> None:
    """A planning process. For each block it is sent (("block", spec)), in order: draw
    it, report its row counts (("counts", block, (installments, payments))), wait to be
    told its first installment and payment ids (("ids", block, (id, id))), encode it and
    send it back (("encoded", block, _Encoded)). ("stop",) ends it; a failure is
    reported as ("error", block, traceback text)."""
    gc.disable()  # draws hold no cycles; collections only slow the planner down
    encoder = _Encoder(ids)
    blocks: deque[BlockSpec] = deque()
    first_ids: dict[int, tuple[int, int]] = {}
    block = -1
    try:
        while True:
            while not blocks:
                message = _take(conn)
                if message[0] == "stop":
                    return
                blocks.append(message[1])
            spec = blocks.popleft()
            block = spec.block
            draws = draw_block(spec, now, rng_seed)
            _put(conn, ("counts", block, _row_counts(draws)))
            while block not in first_ids:  # blocks sent meanwhile wait their turn
                message = _take(conn)
                if message[0] == "stop":
                    return
                if message[0] == "block":
                    blocks.append(message[1])
                else:
                    first_ids[message[1]] = message[2]
            installment_id, payment_id = first_ids.pop(block)
            encoded = _encode(encoder, draws, step, installment_id, payment_id)
            _put(conn, ("encoded", block, encoded))
    except (EOFError, KeyboardInterrupt):
        return  # the main process is gone or going
    except BaseException:  # noqa: BLE001 - reported to the main process, which raises
        _put(conn, ("error", block, traceback.format_exc()))


def _parallel(
    accounts: int, now: datetime, rng_seed: int, ids: _Ids, step: int, workers: int
) -> Generator[_Encoded, None, None]:
    """Blocks planned and encoded by ``workers`` processes, yielded in order; at most
    two blocks per worker are in flight, so memory stays flat.

    A block's installment and payment ids follow those of the blocks before it: each
    planner reports a block's row counts as soon as it has drawn it (a third of the
    work) and is sent its first ids once the counts of every earlier block are in, so
    the planners still encode side by side. (Ids from the client spare the server a
    nextval per row, ~10% of its COPY time.)"""
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    pipes: list[multiprocessing.connection.Connection] = []
    processes: list[multiprocessing.process.BaseProcess] = []
    try:
        for _ in range(workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=_planner, args=(child, now, rng_seed, ids, step), daemon=True
            )
            process.start()
            child.close()
            pipes.append(parent)
            processes.append(process)
        specs = block_specs(accounts, rng_seed)
        owner: dict[int, multiprocessing.connection.Connection] = {}
        counts: dict[int, tuple[int, int]] = {}
        encoded: dict[int, _Encoded] = {}
        next_ids, next_out = 0, 0  # the next block to number, and to yield
        installment_id, payment_id = ids.installments, ids.payments

        def submit(pipe: multiprocessing.connection.Connection) -> None:
            spec = next(specs, None)
            if spec is not None:
                owner[spec.block] = pipe
                _put(pipe, ("block", spec))

        for pipe in pipes * 2:
            submit(pipe)
        while owner:
            for ready in multiprocessing.connection.wait(pipes):
                assert isinstance(ready, multiprocessing.connection.Connection)
                try:
                    kind, block, payload = _take(ready)
                except EOFError:
                    raise RuntimeError("a planning process died") from None
                if kind == "error":
                    raise RuntimeError(f"planning block {block} failed:\n{payload}")
                if kind == "counts":
                    counts[block] = payload
                    while next_ids in counts:
                        installments, payments = counts.pop(next_ids)
                        _put(owner[next_ids], ("ids", next_ids, (installment_id, payment_id)))
                        installment_id += installments
                        payment_id += payments
                        next_ids += 1
                else:
                    encoded[block] = payload
                    submit(ready)
            while next_out in encoded:
                del owner[next_out]
                yield encoded.pop(next_out)
                next_out += 1
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                _put(pipe, ("stop",))
        for worker in processes:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
        for pipe in pipes:
            pipe.close()


def copy_portfolio(
    bind: Engine | Connection,
    accounts: int,
    *,
    now: datetime,
    rng_seed: int = 42,
    progress: Callable[[int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
    defer_indexes: bool | None = None,
    workers: int | None = None,
) -> SeedSummary:
    """Write ``accounts`` synthetic borrowers to PostgreSQL with COPY; the same rows as
    ``bot.seed.seed_portfolio`` writes for the same ``accounts``, ``now`` and ``rng_seed``.

    ``bind`` is a SQLAlchemy Engine (a transaction of its own, committed on success) or a
    Connection (the caller's transaction: nothing is committed). The driver must be
    psycopg 3. ``progress(n_written)`` is called after each chunk of ``chunk_size``
    accounts. ``defer_indexes`` drops and recreates foreign keys and plain indexes of the
    five tables around the load; by default only when those tables are empty. ``workers``
    processes plan and encode blocks of accounts side by side (by default up to
    ``MAX_WORKERS`` for portfolios of ``PARALLEL_FROM`` accounts or more, else one). Raises
    ``SeedConflictError`` when the first planned account already exists.
    """
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            return _copy(
                conn, accounts, now, rng_seed, progress, chunk_size, defer_indexes, workers
            )
    return _copy(bind, accounts, now, rng_seed, progress, chunk_size, defer_indexes, workers)


def _copy(
    bind: Connection,
    accounts: int,
    now: datetime,
    rng_seed: int,
    progress: Callable[[int], None] | None,
    chunk_size: int,
    defer_indexes: bool | None,
    workers: int | None,
) -> SeedSummary:
    if bind.dialect.name != "postgresql" or bind.dialect.driver != "psycopg":
        raise ValueError("copy_portfolio needs a postgresql+psycopg connection")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if accounts < 0:
        raise ValueError("accounts must not be negative")

    started = _time.perf_counter()
    summary = SeedSummary()
    stages: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    jurisdictions: Counter[str] = Counter()
    # (borrower id, planned stage) of the accounts verify_sample re-reads: the same
    # evenly spread sample seed_portfolio checks, kept as we go so memory stays flat.
    expected: list[tuple[int, str]] = []
    step = max(1, accounts // VERIFY_SAMPLE)
    dbapi = bind.connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor() as cursor:
        cursor.execute(
            "LOCK TABLE borrowers, contact_points, loans, installments, payments"
            " IN SHARE ROW EXCLUSIVE MODE"
        )
        if accounts:
            first = next(plan_accounts(1, now, rng_seed)).external_ref
            cursor.execute("SELECT 1 FROM borrowers WHERE external_ref = %s", (first,))
            if cursor.fetchone():
                raise SeedConflictError(
                    f"account {first} already exists; the portfolio has been seeded before"
                )
        if defer_indexes is None:
            cursor.execute(
                "SELECT NOT EXISTS (SELECT FROM borrowers) AND NOT EXISTS (SELECT FROM loans)"
                " AND NOT EXISTS (SELECT FROM contact_points)"
                " AND NOT EXISTS (SELECT FROM installments)"
                " AND NOT EXISTS (SELECT FROM payments)"
            )
            row = cursor.fetchone()
            defer_indexes = bool(row and row[0])
        recreate = _drop_deferrable(cursor) if defer_indexes else []
        sequences, first_ids = _sequence_starts(cursor)
        ids = _Ids(
            first_ids["borrowers"],
            first_ids["loans"],
            first_ids["installments"],
            first_ids["payments"],
        )
        if workers is None:
            workers = min(os.cpu_count() or 1, MAX_WORKERS) if accounts >= PARALLEL_FROM else 1
        source = (
            _parallel(accounts, now, rng_seed, ids, step, workers)
            if workers > 1
            else _serial(accounts, now, rng_seed, ids, step, chunk_size)
        )
        writer = _Writer(cursor)
        writer.start()
        reported = 0
        gc_was_enabled = gc.isenabled()
        gc.disable()  # plans hold no cycles; collections only slow the planner down
        try:
            for encoded in source:
                writer.put(encoded.data, encoded.counts)
                expected.extend(encoded.expected)
                stages.update(encoded.stages)
                languages.update(encoded.languages)
                jurisdictions.update(encoded.jurisdictions)
                if progress and writer.written.accounts > reported:
                    reported = writer.written.accounts
                    progress(reported)
        except BaseException:
            writer.stop()
            raise
        finally:
            source.close()  # the planning processes end now, not when the frame goes
            if gc_was_enabled:
                gc.enable()
        loaded = _time.perf_counter()
        writer.finish()
        written = writer.written
        log.info(
            "planned in %.1f s, copied in %.1f s (writer idle %.1f s)",
            loaded - started,
            _time.perf_counter() - started,
            writer.idle,
        )
        if progress and written.accounts > reported:
            progress(written.accounts)

        # contact points took their ids from their sequence
        last_ids = {
            "borrowers": ids.borrowers + accounts - 1,
            "loans": written.last_loan,
            "installments": ids.installments + written.installments - 1,
            "payments": ids.payments + written.payments - 1,
        }
        for table, last in last_ids.items():
            if accounts and last >= first_ids[table]:
                seq = sequences[table]
                cursor.execute(
                    "SELECT setval(%s, GREATEST(%s, (SELECT last_value FROM " + seq + ")))",
                    (seq, last),
                )
        if recreate:
            _set_local(cursor, BUILD_SETTINGS)
            for statement in recreate:
                t = _time.perf_counter()
                cursor.execute(statement)
                log.info("%.1f s: %s", _time.perf_counter() - t, statement)
        if accounts:
            # Statistics now, not when autovacuum gets round to it: without them the
            # dispatcher's lookups by id lists were planned as scans of every
            # installment at 1M accounts (1.8 s a batch instead of milliseconds).
            t = _time.perf_counter()
            cursor.execute("ANALYZE " + ", ".join(TABLES))
            log.info("%.1f s: ANALYZE", _time.perf_counter() - t)

    summary.accounts = written.accounts
    summary.contact_points = written.contact_points
    summary.loans = written.loans
    summary.installments = written.installments
    summary.payments = written.payments
    summary.stages = {s: stages[s] for s in STAGES}
    summary.languages = dict(sorted(languages.items()))
    summary.jurisdictions = dict(sorted(jurisdictions.items()))
    # A savepoint around the re-read only: the copied rows stay in the caller's transaction.
    t = _time.perf_counter()
    with Session(bind=bind, join_transaction_mode="create_savepoint") as session:
        summary.verified = verify_sample(session, expected, now)
    log.info("verified a sample in %.1f s", _time.perf_counter() - t)
    summary.seconds = _time.perf_counter() - started
    return summary


def _set_local(cursor: Any, settings: dict[str, str]) -> None:
    """SET LOCAL each setting, in a savepoint each: one the server refuses (a role
    without the right, an older server) is skipped instead of failing the seed."""
    for name, value in settings.items():
        cursor.execute("SAVEPOINT seed_setting")
        try:
            cursor.execute(f"SET LOCAL {name} = '{value}'")
        except Exception as exc:  # noqa: BLE001 - only a speed-up is lost
            log.info("SET LOCAL %s skipped: %s", name, exc)
            cursor.execute("ROLLBACK TO SAVEPOINT seed_setting")
        cursor.execute("RELEASE SAVEPOINT seed_setting")


def _sequence_starts(cursor: Any) -> tuple[dict[str, str], dict[str, int]]:
    """Each table's id sequence, and the first id this run may use (after the sequence's
    last value and after the table's largest id)."""
    sequences: dict[str, str] = {}
    starts: dict[str, int] = {}
    for table in TABLES:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,))
        row = cursor.fetchone()
        if not row or not row[0]:
            raise RuntimeError(f"{table}.id has no sequence")
        seq = row[0]
        cursor.execute(
            f"SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {seq}"
        )
        last_value = cursor.fetchone()[0]
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")
        max_id = cursor.fetchone()[0]
        sequences[table] = seq
        starts[table] = max(last_value, max_id) + 1
    return sequences, starts


def _drop_deferrable(cursor: Any) -> list[str]:
    """Drop the foreign keys, the plain (non-constraint) indexes and the primary key and
    unique constraints (those no other table's foreign key depends on) of the seeded
    tables; return the statements that create them again, keys first.

    A unique or primary key B-tree maintained row by row costs the COPY more than
    building it once at the end (installments' key about 40% of the table's COPY); the
    rebuilt constraints check the loaded rows as the per-row inserts would have."""
    names = list(TABLES)
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) ORDER BY conname",
        (names,),
    )
    fks = cursor.fetchall()
    cursor.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
        " FROM pg_constraint c WHERE c.contype IN ('p', 'u')"
        " AND c.conrelid = ANY(%s::regclass[]) AND NOT EXISTS (SELECT FROM pg_constraint f"
        "  WHERE f.contype = 'f' AND f.conindid = c.conindid"
        "  AND f.conrelid <> ALL(%s::regclass[]))"
        " ORDER BY c.contype, 1, 2",
        (names, names),
    )
    keys = cursor.fetchall()
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS"
        " (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        " ORDER BY 1",
        (names,),
    )
    indexes = cursor.fetchall()
    recreate: list[str] = []
    for table, name, definition in fks:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        recreate.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
        recreate.insert(0, definition)  # indexes first: the FK checks may use them
    for table, name, definition in reversed(keys):  # after the FKs that may use them
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        recreate.insert(0, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return recreate


_DONE = object()


class _Writer(threading.Thread):
    """Sends encoded chunks with COPY while the planner works on the next one."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(name="seed-copy-writer", daemon=True)
        self.cursor = cursor
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.written = Counts(0, 0, 0, 0, 0)
        self.error: BaseException | None = None
        self.idle = 0.0  # seconds spent waiting for the planner
        self.sql = {
            table: f"COPY {table} ({', '.join(columns)}) FROM STDIN"
            + (" (FORMAT binary)" if table in BINARY_TABLES else "")
            for table, columns in TABLES.items()
        }

    def run(self) -> None:
        while True:
            t = _time.perf_counter()
            item = self.queue.get()
            self.idle += _time.perf_counter() - t
            if item is _DONE:
                break
            if self.error is not None:
                continue  # drain: the planner learns of the error on its next put
            data, counts = item
            try:
                for table, payload in data.items():
                    if payload:
                        with self.cursor.copy(self.sql[table]) as copy:
                            copy.write(payload)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the planner's thread
                self.error = exc
                continue
            w = self.written
            w.accounts += counts.accounts
            w.contact_points += counts.contact_points
            w.loans += counts.loans
            w.installments += counts.installments
            w.payments += counts.payments
            w.last_loan = max(w.last_loan, counts.last_loan)

    def put(self, data: dict[str, bytes], counts: Counts) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((data, counts))

    def finish(self) -> None:
        """Wait for every queued chunk; raise the writer's error if there was one."""
        self.queue.put(_DONE)
        self.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """The planner failed: let the writer drain and end, without raising."""
        if self.error is None:
            self.error = RuntimeError("planning failed")
        self.queue.put(_DONE)
        self.join()
