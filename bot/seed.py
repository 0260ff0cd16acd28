"""A synthetic, deterministic loan portfolio for demos, load tests and local development.

Two layers:

* ``plan_accounts(n, now, rng_seed)`` is pure: it yields frozen dataclasses describing
  each borrower, contact point, loan, installment and payment. The same ``n``, ``now``
  and ``rng_seed`` always give the same plans, and the plans for ``n`` accounts are a
  prefix of those for any larger ``n``.
* ``seed_portfolio(session, n, now=...)`` writes the plans with bulk inserts in batches
  (flush only; the caller owns the transaction and commits) and checks a sample of the
  written accounts with ``bot.accounts`` so the stage counts it reports are the real ones.

About 55% of borrowers are in the US (English, a few Chinese-speaking; USD; US time
zones; fictional +1 NXX 555-01xx phone numbers), 45% in China (Chinese; CNY;
Asia/Shanghai; +86 1xx mobile numbers). Every stage (current, pre_due, M1..M4+) appears
in both jurisdictions among the first 12 accounts; after that stages follow a realistic
mix. Each loan is targeted at a days-past-due value: its oldest unpaid installment falls
due that many days before ``now`` (in the loan's time zone), earlier installments are
paid in full by Payment rows and ~30% of delinquent loans carry a partial payment on the
oldest unpaid installment.
"""

from __future__ import annotations

import random
import time as _time
from bisect import bisect
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session, selectinload

from bot.accounts import STAGE_ORDER, account_balance
from bot.clock import add_months, local_date
from bot.models import Base, Borrower, Loan

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
BATCH_SIZE = 500
BLOCK = 1000
"""Accounts per random stream: each block is planned on its own (and may be in parallel)."""
VERIFY_SAMPLE = 100

STAGES = STAGE_ORDER  # ("current", "pre_due", "M1", "M2", "M3", "M4+")
STAGE_WEIGHTS = (35, 15, 22, 12, 8, 8)
PRE_DUE_DAYS = 3  # the default policy's pre-due window
#: DPD windows (as days_past_due reports them) that each stage is drawn from.
STAGE_DPD = {
    "current": (-25, -PRE_DUE_DAYS - 1),
    "pre_due": (-PRE_DUE_DAYS, -1),
    "M1": (1, 30),
    "M2": (31, 60),
    "M3": (61, 90),
    "M4+": (91, 540),
}

# --------------------------------------------------------------------------- names

US_FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Christopher",
    "Karen",
    "Charles",
    "Lisa",
    "Daniel",
    "Nancy",
    "Matthew",
    "Betty",
    "Anthony",
    "Sandra",
    "Mark",
    "Margaret",
    "Donald",
    "Ashley",
    "Steven",
    "Kimberly",
    "Andrew",
    "Emily",
    "Joshua",
    "Donna",
    "Kevin",
    "Michelle",
    "Brian",
    "Carol",
    "George",
    "Amanda",
    "Luis",
    "Maria",
    "Carlos",
    "Rosa",
    "Jamal",
    "Aaliyah",
)
US_LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
)
#: (hanzi, pinyin) - the most common Chinese surnames.
CN_SURNAMES = (
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("罗", "Luo"),
    ("郑", "Zheng"),
    ("梁", "Liang"),
    ("谢", "Xie"),
    ("宋", "Song"),
    ("唐", "Tang"),
    ("许", "Xu"),
    ("韩", "Han"),
    ("冯", "Feng"),
    ("邓", "Deng"),
    ("曹", "Cao"),
    ("彭", "Peng"),
    ("曾", "Zeng"),
    ("肖", "Xiao"),
    ("田", "Tian"),
    ("董", "Dong"),
    ("袁", "Yuan"),
    ("潘", "Pan"),
    ("于", "Yu"),
    ("蒋", "Jiang"),
    ("蔡", "Cai"),
    ("余", "Yu"),
    ("杜", "Du"),
    ("叶", "Ye"),
    ("程", "Cheng"),
    ("苏", "Su"),
    ("魏", "Wei"),
    ("吕", "Lyu"),
    ("丁", "Ding"),
    ("任", "Ren"),
    ("沈", "Shen"),
)
#: (hanzi, pinyin) - common given names.
CN_GIVEN_NAMES = (
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("秀英", "Xiuying"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("娟", "Juan"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀兰", "Xiulan"),
    ("霞", "Xia"),
    ("平", "Ping"),
    ("刚", "Gang"),
    ("桂英", "Guiying"),
    ("建华", "Jianhua"),
    ("文", "Wen"),
    ("华", "Hua"),
    ("红", "Hong"),
    ("建国", "Jianguo"),
    ("志强", "Zhiqiang"),
    ("海燕", "Haiyan"),
    ("晓明", "Xiaoming"),
    ("俊", "Jun"),
    ("婷", "Ting"),
    ("鹏", "Peng"),
    ("辉", "Hui"),
    ("玲", "Ling"),
    ("雪", "Xue"),
    ("丹", "Dan"),
    ("宇", "Yu"),
    ("浩", "Hao"),
    ("欣怡", "Xinyi"),
    ("子轩", "Zixuan"),
    ("梓涵", "Zihan"),
    ("一诺", "Yinuo"),
    ("浩然", "Haoran"),
    ("雨桐", "Yutong"),
    ("思远", "Siyuan"),
    ("佳怡", "Jiayi"),
    ("嘉豪", "Jiahao"),
    ("晨", "Chen"),
)

US_EMAIL_DOMAIN = "example.com"
#: Under IANA's reserved example.com (RFC 2606); "example.cn" is not a reserved name.
CN_EMAIL_DOMAIN = "cn.example.com"

# --------------------------------------------------------------------------- phones

#: Real area codes per IANA time zone; the US phone number picks the borrower's zone.
US_AREA_CODES: dict[str, tuple[int, ...]] = {
    "America/New_York": (
        212,
        646,
        718,
        917,
        347,
        516,
        631,
        914,
        201,
        973,
        732,
        215,
        267,
        412,
        617,
        857,
        202,
        301,
        410,
        404,
        678,
        770,
        305,
        786,
        407,
        813,
        704,
        919,
        216,
        614,
        804,
        757,
    ),
    "America/Chicago": (
        312,
        773,
        872,
        630,
        847,
        708,
        214,
        469,
        972,
        713,
        281,
        832,
        512,
        210,
        314,
        816,
        612,
        651,
        414,
        504,
        615,
        901,
        405,
        918,
    ),
    "America/Denver": (303, 720, 719, 970, 801, 385, 505, 575, 406, 307),
    "America/Phoenix": (602, 480, 623, 520, 928),
    "America/Los_Angeles": (
        213,
        310,
        323,
        424,
        818,
        626,
        714,
        949,
        619,
        858,
        415,
        628,
        510,
        408,
        650,
        916,
        206,
        253,
        425,
        503,
        971,
        702,
        725,
    ),
    "America/Anchorage": (907,),
    "Pacific/Honolulu": (808,),
}
_US_AREAS: tuple[tuple[int, str], ...] = tuple(
    (code, tz) for tz, codes in US_AREA_CODES.items() for code in codes
)
_AREA_STRIDE = 37  # coprime with len(_US_AREAS): spreads consecutive numbers over zones
#: Numbers per area code: 555-0100..0199 (reserved for fiction) first, then the rest of
#: the 555 exchange. len(_US_AREAS) * 100 = 9,600 US numbers are strictly fictional.
US_PHONE_CAPACITY = len(_US_AREAS) * 10_000

CN_MOBILE_PREFIXES = (
    130,
    131,
    132,
    133,
    134,
    135,
    136,
    137,
    138,
    139,
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    166,
    176,
    177,
    178,
    180,
    181,
    182,
    183,
    184,
    185,
    186,
    187,
    188,
    189,
    198,
    199,
)
_CN_MULT, _CN_ADD = 48_271, 9_730_161  # affine bijection on 0..10**8-1 (odd, not *5)


def us_phone(n: int) -> tuple[str, str]:
    """The ``n``-th US number (E.164) and its time zone; distinct ``n`` give distinct numbers."""
    if not 0 <= n < US_PHONE_CAPACITY:
        raise ValueError(f"US phone index {n} outside 0..{US_PHONE_CAPACITY - 1}")
    areas = len(_US_AREAS)
    area, tz = _US_AREAS[(n % areas) * _AREA_STRIDE % areas]
    r = n // areas
    if r < 100:
        line = 100 + r  # 555-0100 .. 555-0199
    else:
        k = r - 100
        line = k if k < 100 else k + 100  # 555-0000..0099, then 555-0200..9999
    return f"+1{area}555{line:04d}", tz


def cn_phone(n: int) -> str:
    """The ``n``-th Chinese mobile number (E.164); distinct ``n`` give distinct numbers."""
    prefixes = len(CN_MOBILE_PREFIXES)
    if not 0 <= n < prefixes * 10**8:
        raise ValueError(f"CN phone index {n} out of range")
    tail = (n // prefixes * _CN_MULT + _CN_ADD) % 10**8
    return f"+86{CN_MOBILE_PREFIXES[n % prefixes]}{tail:08d}"


# --------------------------------------------------------------------------- money, dates


def amortize(
    principal: Decimal, annual_rate: Decimal, months: int
) -> list[tuple[Decimal, Decimal]]:
    """Equal-installment schedule as (principal_due, interest_due) pairs, in cents.

    Interest is charged monthly on the remaining balance; the principal parts add up to
    ``principal`` exactly (rounding lands in the last installment).
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    if principal < 0 or annual_rate < 0:
        raise ValueError("principal and rate must not be negative")
    with localcontext() as ctx:
        ctx.prec = 34
        principal = principal.quantize(CENT, ROUND_HALF_UP)
        r, factor = _annuity(annual_rate, months)
        if r == 0:
            payment = (principal / months).quantize(CENT, ROUND_HALF_UP)
        else:
            payment = (principal * r / factor).quantize(CENT, ROUND_HALF_UP)
        balance = principal
        rows: list[tuple[Decimal, Decimal]] = []
        append = rows.append
        for _ in range(months - 1):
            interest = (balance * r).quantize(CENT, ROUND_HALF_UP)
            part = payment - interest
            if part < ZERO:
                part = ZERO
            if part > balance:
                part = balance
            balance -= part
            append((part, interest))
        append((balance, (balance * r).quantize(CENT, ROUND_HALF_UP)))
    return rows


def amortize_cents(
    principal: Decimal, annual_rate: Decimal, months: int
) -> tuple[list[int], list[int]]:
    """``amortize``'s schedule in integer cents, as (principal parts, interest parts),
    computed as it is (a test compares them) at a fraction of the cost: the COPY seeder
    spells amounts from cents.

    Each month's interest is ``balance * r`` rounded half up to the cent, ``r`` the
    annual rate / 12 at 34 digits. With a rate of a few decimals (the seeded ones have
    two) the exact interest is a fraction, ``balance * numerator / denominator`` cents,
    rounded half up in integers. Where ``r`` has more than 34 digits (15%/12 = 0.0125 has
    few, 7%/12 = 0.00583... does not) Decimal's product is off the fraction by less than
    1e-20 cents, while a fraction that is not exactly half a cent is at least
    1 / (2 * denominator) away from one: only an exact half is left to Decimal. The
    payment ``principal * r / factor`` is rounded from a float product, within 1e-15 of
    Decimal's, relatively, unless its fraction of a cent lies near one half.
    """
    if months < 1 or principal < 0 or annual_rate < 0:
        return _schedule_cents(amortize(principal, annual_rate, months))
    r, factor, pay_ratio, numerator, denominator, exact = _monthly(annual_rate, months)
    if not denominator:  # a rate of many decimals: never seeded
        return _schedule_cents(amortize(principal, annual_rate, months))
    balance = _PRINCIPAL_CENTS.get(principal)
    if balance is None:
        if len(_PRINCIPAL_CENTS) > 100_000:
            _PRINCIPAL_CENTS.clear()
        balance = _PRINCIPAL_CENTS[principal] = int(_CTX34.quantize(principal, CENT).scaleb(2))
    near = (balance * pay_ratio + 1.0) * _NEAR_HALF  # relative to the product
    rounded = balance * pay_ratio + 0.5
    payment = int(rounded)
    if not near < rounded - payment < 1.0 - near or not r:
        with localcontext() as ctx:
            ctx.prec = 34
            payment_d = (
                (Decimal(balance) / 100 / months) if not r else Decimal(balance) / 100 * r / factor
            )
            payment = _cents(payment_d.quantize(CENT, ROUND_HALF_UP))
    parts: list[int] = []
    interests: list[int] = []
    add_part, add_interest = parts.append, interests.append
    twice, half, whole = 2 * numerator, denominator, 2 * denominator
    for _ in range(months):
        # balance * numerator / denominator rounded half up: (2 n b + d) // 2 d
        scaled = balance * twice + half
        interest = scaled // whole
        if not exact and not scaled % whole:  # exactly half a cent: as Decimal rounds it
            interest = _interest_cents(balance, r)
        add_interest(interest)
        part = payment - interest
        if not 0 <= part <= balance:
            part = 0 if part < 0 else balance
        balance -= part
        add_part(part)
    parts[-1] += balance  # the last installment takes what is left
    return parts, interests


def _schedule_cents(schedule: list[tuple[Decimal, Decimal]]) -> tuple[list[int], list[int]]:
    return [_cents(p) for p, _ in schedule], [_cents(i) for _, i in schedule]


_CTX34 = Context(prec=34, rounding=ROUND_HALF_UP)  # amortize's quantize of the principal
#: principal -> its cents, as amortize quantizes it (a few thousand seeded principals;
#: equal Decimals are equal keys and quantize alike)
_PRINCIPAL_CENTS: dict[Decimal, int] = {}
#: _monthly's fraction is for rates of at most this many decimals and digits: its
#: 1 / (24 * 10**12) cent from a half stays far above Decimal's error (see amortize_cents)
_RATE_PLACES, _RATE_DIGITS = 12, 20


@lru_cache(maxsize=1 << 12)
def _monthly(annual_rate: Decimal, months: int) -> tuple[Decimal, Decimal, float, int, int, bool]:
    """``_annuity``'s (r, factor), r / factor as a float, a month's interest per cent as
    a fraction numerator / denominator (0, 0 for a rate of more than _RATE_PLACES
    decimals or _RATE_DIGITS digits), and whether r is that fraction exactly."""
    r, factor = _annuity(annual_rate, months)
    with localcontext() as ctx:
        ctx.prec = 34
        pay_ratio = float(r / factor) if r else 0.0
    _, digits, exponent = annual_rate.as_tuple()
    if not isinstance(exponent, int) or len(digits) > _RATE_DIGITS or exponent < -_RATE_PLACES:
        return r, factor, pay_ratio, 0, 0, False
    places = max(0, -exponent)
    numerator = int(annual_rate.scaleb(places))
    # numerator / (12 * 10**places) ends (within 34 digits) where 3 divides the numerator
    return r, factor, pay_ratio, numerator, 12 * 10**places, numerator % 3 == 0


def _interest_cents(balance: int, r: Decimal) -> int:
    """One month's interest on ``balance`` cents as amortize computes it."""
    with localcontext() as ctx:
        ctx.prec = 34
        return _cents((Decimal(balance) / 100 * r).quantize(CENT, ROUND_HALF_UP))


_NEAR_HALF = 1e-13  # relative: ~400 times a float product's rounding error (2 ** -52)


def _cents(amount: Decimal) -> int:
    return int(amount.scaleb(2))


def partial_cents(amount_due: int, percent: int) -> int:
    """loan_plan's partial payment in cents: ``percent`` of ``amount_due`` rounded half
    even (Decimal's default), at least a cent and a cent short of the amount due."""
    paid, rest = divmod(amount_due * percent, 100)
    if rest > 50 or (rest == 50 and paid % 2):
        paid += 1
    return min(max(paid, 1), amount_due - 1)


@lru_cache(maxsize=1 << 12)
def _annuity(annual_rate: Decimal, months: int) -> tuple[Decimal, Decimal]:
    """The monthly rate and ``1 - (1 + r) ** -months`` at 34 digits (a few hundred
    distinct (rate, term) pairs; the power is most of a short schedule's cost)."""
    with localcontext() as ctx:
        ctx.prec = 34
        r = annual_rate / 12
        return r, (1 - (1 + r) ** -months) if r else ZERO


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class ContactPlan:
    channel: str
    address: str
    verified: bool
    consent: bool
    opted_out_at: datetime | None
    invalid: bool
    is_primary: bool = True


class InstallmentPlan(NamedTuple):
    """A named tuple, as PaymentPlan: there are ~24 per account, and a frozen
    dataclass's __init__ costs several times a tuple's."""

    seq: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    amount_paid: Decimal

    @property
    def amount_due(self) -> Decimal:
        return self.principal_due + self.interest_due


class PaymentPlan(NamedTuple):
    installment_seq: int  # the installment it is allocated to
    amount: Decimal
    received_at: datetime
    method: str
    reference: str


@dataclass(frozen=True, slots=True)
class LoanPlan:
    reference: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    timezone: str
    profile: str
    grace_days: int
    opened_on: date
    stage: str
    dpd: int  # what bot.accounts.days_past_due reports for this loan at ``now``
    installments: tuple[InstallmentPlan, ...]
    payments: tuple[PaymentPlan, ...]


@dataclass(frozen=True, slots=True)
class AccountPlan:
    index: int
    external_ref: str
    full_name: str
    language: str
    timezone: str
    jurisdiction: str
    birth_year: int
    id_last4: str
    credit_score: int
    stage: str  # the worst loan's stage: what bot.accounts.account_balance reports
    created_at: datetime
    contacts: tuple[ContactPlan, ...]
    loans: tuple[LoanPlan, ...]


_STAGE_CUM = tuple(accumulate(STAGE_WEIGHTS))  # what rng.choices computes on each call
_STAGE_TOTAL = _STAGE_CUM[-1] + 0.0
_SECOND_WEIGHTS = (6, 1, 1, 1, 1, 1)  # a second loan's stage, up to the first's
_SECOND_CUM = tuple(tuple(accumulate(_SECOND_WEIGHTS[: k + 1])) for k in range(len(STAGES)))
_SCORE_MEAN = {"current": 700, "pre_due": 680, "M1": 640, "M2": 610, "M3": 590, "M4+": 560}
_TERMS = (6, 9, 12, 12, 18, 24, 24, 36, 36) + tuple(range(6, 37))
_US_METHODS = ("ach", "ach", "debit_card", "bank_transfer")
_CN_METHODS = ("alipay", "wechat_pay", "bank_transfer", "unionpay")


def _heads(rng_seed: int, block: int, stop: int) -> list[tuple[str, str]]:
    """(stage, jurisdiction) of the accounts of ``block`` up to ``stop``, from the block's
    own short stream: cheap to run ahead, so every block knows how many US and CN
    accounts (phone numbers) come before it without planning them."""
    rng = random.Random(f"{rng_seed}/{block}/head")
    random_ = rng.random
    heads = []
    for i in range(block * BLOCK, stop):
        if i < 2 * len(STAGES):  # every stage in both jurisdictions, whatever n is
            heads.append((STAGES[i // 2], ("us", "cn")[i % 2]))
        else:
            # rng.choices(STAGES, weights=STAGE_WEIGHTS)[0], without its setup per call
            stage = STAGES[bisect(_STAGE_CUM, random_() * _STAGE_TOTAL, 0, len(STAGES) - 1)]
            heads.append((stage, "us" if random_() < 0.55 else "cn"))
    return heads


@dataclass(frozen=True, slots=True)
class BlockSpec:
    """One block of accounts, ``start`` <= index < ``stop``, and the US and CN phone
    numbers used before it."""

    block: int
    start: int
    stop: int
    us_start: int
    cn_start: int


def block_specs(n: int, rng_seed: int = 42) -> Iterator[BlockSpec]:
    us = cn = 0
    for block in range((n + BLOCK - 1) // BLOCK):
        stop = min(n, (block + 1) * BLOCK)
        yield BlockSpec(block, block * BLOCK, stop, us, cn)
        us_here = sum(1 for _, j in _heads(rng_seed, block, stop) if j == "us")
        us, cn = us + us_here, cn + (stop - block * BLOCK - us_here)


def plan_block(spec: BlockSpec, now: datetime, rng_seed: int = 42) -> list[AccountPlan]:
    """The plans of one block: depends only on the block, ``now`` and ``rng_seed``, so
    blocks may be planned in any order, in several processes."""
    planner = _Planner(now, rng_seed, spec.block)
    return [planner.account_plan(draw) for draw in draw_block(spec, now, rng_seed, planner)]


def draw_block(
    spec: BlockSpec, now: datetime, rng_seed: int = 42, planner: _Planner | None = None
) -> list[AccountDraw]:
    """What ``plan_block`` plans, as drawn: installments and payments not yet spelled out
    (the COPY seeder writes its rows straight from these)."""
    if planner is None:
        planner = _Planner(now, rng_seed, spec.block)
    planner.us_count, planner.cn_count = spec.us_start, spec.cn_start
    heads = _heads(rng_seed, spec.block, spec.stop)
    return [
        planner.account(i, stage, jurisdiction)
        for i, (stage, jurisdiction) in zip(range(spec.start, spec.stop), heads, strict=True)
    ]


class LoanDraw(NamedTuple):
    """One loan as the planner drew it: a LoanPlan whose installments and payments are
    given by the draws that make them (a tuple: ~1.15 per account)."""

    reference: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    timezone: str
    profile: str
    grace_days: int
    opened_on: date
    stage: str
    dpd: int
    term: int
    paid: int  # installments 1..paid are paid in full, each by one payment
    day_of_month: int  # the due dates' day (clamped to each month's last)
    #: due dates by month offset from the oldest unpaid installment's, ``DUE_ZERO`` first:
    #: installment ``n`` (0-based) falls due on ``dues[DUE_ZERO - paid + n]``
    dues: tuple[date, ...]
    #: (local day, local minute of the day, method) of each paid installment's payment
    receipts: list[tuple[date, int, str]]
    #: (percent of the amount due, local day, local minute, method) of the partial
    #: payment on installment paid + 1, if any
    partial: tuple[int, date, int, str] | None


class AccountDraw(NamedTuple):
    """One account as the planner drew it (see AccountPlan): the contact points as their
    fields, the loans as LoanDraws."""

    number: int  # AccountPlan.index (a tuple's "index" is a method)
    external_ref: str
    full_name: str
    language: str
    timezone: str
    jurisdiction: str
    birth_year: int
    id_last4: str
    credit_score: int
    stage: str
    created_at: datetime
    phone: str
    sms_opted_out_at: datetime | None
    sms_invalid: bool
    email: str | None  # None: no email contact point
    email_verified: bool
    loans: tuple[LoanDraw, ...]


#: at_local's shortcut covers these local hours (payments are received from 7 to 21 h,
#: accounts open at 10 h); DST changes happen at night.
_BASE_FROM, _BASE_UNTIL = 3, 22
_CLOCK = tuple(timedelta(minutes=m) for m in range(24 * 60))
_NO_BASE = datetime.min.replace(tzinfo=UTC)
_SHIFT = tuple(timedelta(days=d) for d in range(-5, 4))  # a payment's days around its due date
_ONE_DAY = timedelta(days=1)
#: timedelta(days=d) for the days past due _Planner.loan draws (timedelta() is slow)
_DAYS = {
    d: timedelta(days=d)
    for d in range(
        min(lo for lo, _ in STAGE_DPD.values()), max(hi for _, hi in STAGE_DPD.values()) + 1
    )
}
#: _Planner.loan's principals and rates by their drawn whole units and percents
_PRINCIPALS: dict[float, Decimal] = {}
_RATES: dict[int, Decimal] = {}
_DAY_BASE: dict[tuple[date, str], datetime] = {}  # day_base's memo
#: LoanDraw(...) and AccountDraw(...) without NamedTuple's generated __new__ (a Python
#: call with a dozen and more arguments): the planners build a million of each
_new_draw = tuple.__new__
_ZONES: dict[str, ZoneInfo] = {}
DUE_ZERO = max(_TERMS)  # a loan's due dates run from DUE_ZERO months before its oldest
# unpaid installment's (the month before the first, when the loan opened) to DUE_ZERO - 1 after
if len(_US_METHODS) != 4 or len(_CN_METHODS) != 4:
    raise RuntimeError("_Planner.loan draws a payment method with getrandbits(3) < 4")


@lru_cache(maxsize=1 << 14)
def _dues(oldest_due: date, day_of_month: int) -> tuple[date, ...]:
    """The monthly due dates on ``day_of_month`` around ``oldest_due`` (see LoanDraw.dues):
    a few thousand distinct pairs, each shared by hundreds of loans."""
    first = oldest_due.year * 12 + oldest_due.month - 1 - DUE_ZERO  # as add_months counts
    return tuple(_due_in(month, day_of_month) for month in range(first, first + 2 * DUE_ZERO))


@lru_cache(maxsize=1 << 16)
def _due_in(month: int, day_of_month: int) -> date:
    """add_months' date on ``day_of_month`` of ``month`` (year * 12 + month - 1), clamped:
    _dues' calendars share their months, and monthrange is most of add_months' cost."""
    year, month0 = divmod(month, 12)
    return add_months(date(year, month0 + 1, 1), 0, day_of_month)


def _zone(tz: str) -> ZoneInfo:
    z = _ZONES.get(tz)
    if z is None:
        z = _ZONES[tz] = ZoneInfo(tz)
    return z


def day_base(d: date, tz: str) -> datetime:
    """Local midnight of ``d`` in UTC as the offset between _BASE_FROM and _BASE_UNTIL
    o'clock has it (``_NO_BASE`` when the offset changes in those hours): adding the time
    of day to it is what combine + astimezone give, at a fraction of the cost. Memoized."""
    base = _DAY_BASE.get((d, tz))
    if base is not None:
        return base
    zone = _zone(tz)
    first = datetime.combine(d, time(_BASE_FROM), tzinfo=zone).astimezone(UTC)
    last = datetime.combine(d, time(_BASE_UNTIL, 59), tzinfo=zone).astimezone(UTC)
    base = first - _CLOCK[_BASE_FROM * 60]
    if last - base != _CLOCK[_BASE_UNTIL * 60 + 59]:
        base = _NO_BASE
    if len(_DAY_BASE) > 200_000:
        _DAY_BASE.clear()
    _DAY_BASE[(d, tz)] = base
    return base


def at_local(d: date, tz: str, hour: int, minute: int) -> datetime:
    """``d`` at ``hour:minute`` local time in ``tz``, in UTC."""
    if _BASE_FROM <= hour <= _BASE_UNTIL:
        base = day_base(d, tz)
        if base is not _NO_BASE:
            return base + _CLOCK[hour * 60 + minute]
    return datetime.combine(d, time(hour, minute), tzinfo=_zone(tz)).astimezone(UTC)


class _Planner:
    def __init__(self, now: datetime, rng_seed: int, block: int = 0) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC)
        self.rng = random.Random(f"{rng_seed}/{block}")
        self.us_count = 0
        self.cn_count = 0
        self.today: dict[str, date] = {}
        # randint(a, b) is a + _randbelow(b - a + 1) and choice(s) is s[_randbelow(len(s))]
        # in CPython's random; calling it directly skips two Python call layers per draw
        # (tests pin the plans, so a different random module would be noticed)
        self.below: Callable[[int], int] = self.rng._randbelow  # type: ignore[attr-defined]

    at_local = staticmethod(at_local)

    def account(self, i: int, stage: str, jurisdiction: str) -> AccountDraw:
        rng = self.rng
        below = self.below
        ref = f"SYN-{i + 1:07d}"
        if jurisdiction == "us":
            phone, tz = us_phone(self.us_count)
            self.us_count += 1
            language = "zh" if rng.random() < 0.04 else "en"
            currency = "USD"
        else:
            phone, tz = cn_phone(self.cn_count), "Asia/Shanghai"
            self.cn_count += 1
            language, currency = "zh", "CNY"
        if language == "zh":  # rng.choice, as below
            sur, sur_py = CN_SURNAMES[below(len(CN_SURNAMES))]
            given, given_py = CN_GIVEN_NAMES[below(len(CN_GIVEN_NAMES))]
            full_name, local_part = sur + given, f"{given_py}.{sur_py}"
        else:
            first = US_FIRST_NAMES[below(len(US_FIRST_NAMES))]
            last = US_LAST_NAMES[below(len(US_LAST_NAMES))]
            full_name, local_part = f"{first} {last}", f"{first}.{last}"
        domain = US_EMAIL_DOMAIN if jurisdiction == "us" else CN_EMAIL_DOMAIN
        email = f"{local_part.lower()}{i + 1}@{domain}"

        birth_year = round(rng.triangular(1955, 2003, 1986))
        id_last4 = f"{below(10_000):04d}"  # rng.randrange(10_000)
        mean = _SCORE_MEAN[stage]
        if jurisdiction == "us":
            score = min(850, max(300, round(rng.gauss(mean, 60))))
        else:  # a 350-950 band, as Chinese consumer scores use
            score = min(950, max(350, round(rng.gauss(mean + 40, 70))))

        first_loan = self.loan(f"{ref}-L1", stage, jurisdiction, currency, tz)
        opened_on = first_loan.opened_on
        if rng.random() < 0.15:
            # rng.choices(STAGES[: k + 1], weights=_SECOND_WEIGHTS[: k + 1])[0], inlined
            cum = _SECOND_CUM[STAGES.index(stage)]
            second = STAGES[bisect(cum, rng.random() * (cum[-1] + 0.0), 0, len(cum) - 1)]
            second_loan = self.loan(f"{ref}-L2", second, jurisdiction, currency, tz)
            loans: tuple[LoanDraw, ...] = (first_loan, second_loan)
            opened_on = min(opened_on, second_loan.opened_on)
        else:
            loans = (first_loan,)
        created_at = at_local(opened_on, tz, 10, 0)

        u = rng.random()  # the SMS contact point
        opted_out_at = None
        if u < 0.03:
            opted_out_at = max(
                created_at + _ONE_DAY,
                self.now - timedelta(days=rng.randint(1, 20), minutes=rng.randint(0, 1439)),
            )
        email_verified, has_email = False, rng.random() < 0.70
        if has_email:
            email_verified = rng.random() < 0.85
        return _new_draw(
            AccountDraw,
            (
                i,
                ref,
                full_name,
                language,
                tz,
                jurisdiction,
                birth_year,
                id_last4,
                score,
                stage,
                created_at,
                phone,
                opted_out_at,
                0.03 <= u < 0.05,
                email if has_email else None,
                email_verified,
                loans,
            ),
        )

    def loan(self, ref: str, stage: str, jurisdiction: str, currency: str, tz: str) -> LoanDraw:
        rng = self.rng
        below = self.below
        if jurisdiction == "us":
            whole = round(rng.triangular(1_000, 25_000, 6_000), -2)
            rate_percent = round(rng.triangular(6, 36, 15))
            grace = below(6)  # rng.randint(0, 5)
            methods = _US_METHODS
        else:
            whole = round(rng.triangular(5_000, 200_000, 30_000), -2)
            rate_percent = round(rng.triangular(6, 36, 12))
            grace = 3 if rng.random() < 0.8 else (0, 1, 2, 5)[below(4)]
            methods = _CN_METHODS
        # Decimal(whole).quantize(CENT), (Decimal(rate_percent) / 100).quantize(CENT), memoized
        principal = _PRINCIPALS.get(whole)
        if principal is None:
            principal = _PRINCIPALS[whole] = Decimal(whole).quantize(CENT)
        rate = _RATES.get(rate_percent)
        if rate is None:
            rate = _RATES[rate_percent] = (Decimal(rate_percent) / 100).quantize(CENT)
        term = _TERMS[below(len(_TERMS))]

        lo, hi = STAGE_DPD[stage]
        if stage == "M1":
            lo = grace + 1  # inside the grace period days_past_due reports 0 (pre_due)
        if stage == "M4+":
            hi = 180 if rng.random() < 0.7 else hi
        dpd = lo + below(hi - lo + 1)

        today = self.today.get(tz)
        if today is None:
            today = self.today[tz] = local_date(self.now, tz)
        oldest_due = today - _DAYS[dpd]  # the oldest unpaid installment's due date
        day_of_month = oldest_due.day
        if (oldest_due + _ONE_DAY).day == 1 and rng.random() < 0.5:  # the month's last day
            day_of_month = 31  # a month-end loan: due dates clamp to each month's last day
        paid = below(term)  # installments already paid in full
        dues = _dues(oldest_due, day_of_month)

        # The paid installments' payments: the draws of rng.randint(-5, 3), randint(7, 21),
        # randint(0, 59) and choice(methods), in that order, each as CPython 3.11's
        # _randbelow_with_getrandbits(n) makes it (getrandbits(n.bit_length()) until
        # below n), inlined: this loop is most of the planning time.
        getrandbits = rng.getrandbits
        shifts, yesterday = _SHIFT, today - _ONE_DAY
        receipts: list[tuple[date, int, str]] = []
        append = receipts.append
        for due in dues[DUE_ZERO - paid : DUE_ZERO]:
            shift = getrandbits(4)
            while shift >= 9:
                shift = getrandbits(4)
            hour = getrandbits(4)
            while hour >= 15:
                hour = getrandbits(4)
            minute = getrandbits(6)
            while minute >= 60:
                minute = getrandbits(6)
            method = getrandbits(3)
            while method >= 4:
                method = getrandbits(3)
            received = due + shifts[shift]
            if received > yesterday:
                received = yesterday
            append((received, (7 + hour) * 60 + minute, methods[method]))
        partial = None
        if dpd > 0 and rng.random() < 0.30:  # a partial payment on the oldest unpaid one
            # rng.randint(10, 70), randint(0, dpd - 1), randint(7, 21), randint(0, 59) and
            # choice(methods), by _randbelow as they draw them
            percent = 10 + below(61)
            received = oldest_due + _DAYS[below(dpd)]
            minute = (7 + below(15)) * 60 + below(60)
            partial = (percent, received, minute, methods[below(len(methods))])

        return _new_draw(
            LoanDraw,
            (
                ref,
                currency,
                principal,
                rate,
                tz,
                jurisdiction,
                grace,
                dues[DUE_ZERO - paid - 1],
                stage,
                dpd,
                term,
                paid,
                day_of_month,
                dues,
                receipts,
                partial,
            ),
        )

    def account_plan(self, draw: AccountDraw) -> AccountPlan:
        contacts = [
            ContactPlan(
                "sms",
                draw.phone,
                verified=True,
                consent=True,
                opted_out_at=draw.sms_opted_out_at,
                invalid=draw.sms_invalid,
            )
        ]
        if draw.email is not None:
            contacts.append(
                ContactPlan(
                    "email",
                    draw.email,
                    verified=draw.email_verified,
                    consent=True,
                    opted_out_at=None,
                    invalid=False,
                )
            )
        return AccountPlan(
            index=draw.number,
            external_ref=draw.external_ref,
            full_name=draw.full_name,
            language=draw.language,
            timezone=draw.timezone,
            jurisdiction=draw.jurisdiction,
            birth_year=draw.birth_year,
            id_last4=draw.id_last4,
            credit_score=draw.credit_score,
            stage=draw.stage,
            created_at=draw.created_at,
            contacts=tuple(contacts),
            loans=tuple(loan_plan(d) for d in draw.loans),
        )


def loan_plan(draw: LoanDraw) -> LoanPlan:
    """The LoanPlan ``draw`` describes, installments and payments spelled out."""
    ref, tz, paid = draw.reference, draw.timezone, draw.paid
    schedule = amortize(draw.principal, draw.annual_rate, draw.term)
    dues = draw.dues[DUE_ZERO - paid :]
    installments: list[InstallmentPlan] = []
    payments: list[PaymentPlan] = []
    for n, ((part, interest), (received, minute, method)) in enumerate(
        zip(schedule, draw.receipts, strict=False)
    ):
        seq = n + 1
        amount_due = part + interest
        received_at = at_local(received, tz, minute // 60, minute % 60)
        payments.append(PaymentPlan(seq, amount_due, received_at, method, f"PAY-{ref}-{seq:02d}"))
        installments.append(InstallmentPlan(seq, dues[n], part, interest, amount_due))
    for n in range(paid, draw.term):
        seq = n + 1
        part, interest = schedule[n]
        amount_paid = ZERO
        if n == paid and draw.partial is not None:
            percent, received, minute, method = draw.partial
            amount_due = part + interest
            share = Decimal(percent) / 100
            amount_paid = min(max((amount_due * share).quantize(CENT), CENT), amount_due - CENT)
            received_at = at_local(received, tz, minute // 60, minute % 60)
            payments.append(
                PaymentPlan(seq, amount_paid, received_at, method, f"PAY-{ref}-{seq:02d}P")
            )
        installments.append(InstallmentPlan(seq, dues[n], part, interest, amount_paid))
    return LoanPlan(
        reference=ref,
        currency=draw.currency,
        principal=draw.principal,
        annual_rate=draw.annual_rate,
        timezone=tz,
        profile=draw.profile,
        grace_days=draw.grace_days,
        opened_on=draw.opened_on,
        stage=draw.stage,
        dpd=draw.dpd,
        installments=tuple(installments),
        payments=tuple(payments),
    )


def plan_accounts(n: int, now: datetime, rng_seed: int = 42) -> Iterator[AccountPlan]:
    """Yield ``n`` account plans; pure and deterministic in (``now``, ``rng_seed``)."""
    if n < 0:
        raise ValueError("n must not be negative")
    for spec in block_specs(n, rng_seed):
        yield from plan_block(spec, now, rng_seed)


# --------------------------------------------------------------------------- writing


@dataclass
class SeedSummary:
    accounts: int = 0
    loans: int = 0
    installments: int = 0
    payments: int = 0
    contact_points: int = 0
    stages: dict[str, int] = field(default_factory=dict)  # account stage -> accounts
    languages: dict[str, int] = field(default_factory=dict)
    jurisdictions: dict[str, int] = field(default_factory=dict)
    verified: int = 0  # accounts re-read and checked with bot.accounts.account_balance
    seconds: float = field(default=0.0, compare=False)

    def __str__(self) -> str:
        stages = ", ".join(f"{s} {self.stages.get(s, 0)}" for s in STAGES)
        languages = ", ".join(f"{k} {v}" for k, v in sorted(self.languages.items()))
        return (
            f"seeded {self.accounts} accounts ({self.loans} loans, {self.installments} "
            f"installments, {self.payments} payments, {self.contact_points} contact points) "
            f"in {self.seconds:.1f} s\nstages: {stages}\nlanguages: {languages}"
        )


class SeedConflictError(ValueError):
    """The portfolio already holds accounts from a seed run."""


def portfolio_is_empty(session: Session) -> bool:
    return not session.scalar(select(exists().where(Borrower.id.is_not(None))))


def seed_portfolio(
    session: Session,
    accounts: int,
    *,
    now: datetime,
    rng_seed: int = 42,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> SeedSummary:
    """Insert ``accounts`` synthetic borrowers with loans, installments and payments.

    Writes in batches of ``batch_size`` accounts with bulk INSERTs and flushes only; the
    caller commits. ``progress(n_done)`` is called after each batch. Raises
    ``SeedConflictError`` when the first planned account already exists.
    """
    started = _time.perf_counter()
    session.flush()
    summary = SeedSummary()
    stages: Counter[str] = Counter()
    languages: Counter[str] = Counter()
    jurisdictions: Counter[str] = Counter()
    expected: list[tuple[int, str]] = []  # (borrower id, planned stage)
    batch: list[AccountPlan] = []

    def write() -> None:
        ids = _write_batch(session, batch, summary)
        expected.extend(zip(ids, (p.stage for p in batch), strict=True))
        batch.clear()
        if progress:
            progress(summary.accounts)

    for plan in plan_accounts(accounts, now, rng_seed):
        if plan.index == 0 and session.scalar(
            select(exists().where(Borrower.external_ref == plan.external_ref))
        ):
            raise SeedConflictError(
                f"account {plan.external_ref} already exists; the portfolio has been seeded before"
            )
        batch.append(plan)
        stages[plan.stage] += 1
        languages[plan.language] += 1
        jurisdictions[plan.jurisdiction] += 1
        if len(batch) >= batch_size:
            write()
    if batch:
        write()

    summary.stages = {s: stages[s] for s in STAGES}
    summary.languages = dict(sorted(languages.items()))
    summary.jurisdictions = dict(sorted(jurisdictions.items()))
    summary.verified = verify_sample(session, expected, now)
    summary.seconds = _time.perf_counter() - started
    return summary


def _write_batch(session: Session, plans: Sequence[AccountPlan], summary: SeedSummary) -> list[int]:
    tables = Base.metadata.tables
    bt, ct, lt = tables["borrowers"], tables["contact_points"], tables["loans"]
    it, pt = tables["installments"], tables["payments"]
    borrower_ids = list(
        session.execute(
            insert(bt).returning(bt.c.id, sort_by_parameter_order=True),
            [
                {
                    "external_ref": p.external_ref,
                    "full_name": p.full_name,
                    "language": p.language,
                    "timezone": p.timezone,
                    "jurisdiction": p.jurisdiction,
                    "birth_year": p.birth_year,
                    "id_last4": p.id_last4,
                    "credit_score": p.credit_score,
                    "cease_reason": None,
                    "created_at": p.created_at,
                }
                for p in plans
            ],
        ).scalars()
    )
    contacts = [
        {
            "borrower_id": bid,
            "channel": c.channel,
            "address": c.address,
            "consent": c.consent,
            "opted_out_at": c.opted_out_at,
            "verified": c.verified,
            "invalid": c.invalid,
            "is_primary": c.is_primary,
            "created_at": p.created_at,
        }
        for bid, p in zip(borrower_ids, plans, strict=True)
        for c in p.contacts
    ]
    session.execute(insert(ct), contacts)

    loan_plans = [(bid, lp) for bid, p in zip(borrower_ids, plans, strict=True) for lp in p.loans]
    loan_ids = list(
        session.execute(
            insert(lt).returning(lt.c.id, sort_by_parameter_order=True),
            [
                {
                    "borrower_id": bid,
                    "reference": lp.reference,
                    "product": "personal",
                    "currency": lp.currency,
                    "principal": lp.principal,
                    "annual_rate": lp.annual_rate,
                    "timezone": lp.timezone,
                    "profile": lp.profile,
                    "grace_days": lp.grace_days,
                    "opened_on": lp.opened_on,
                    "status": "active",
                    "created_at": datetime.combine(
                        lp.opened_on, time(10), tzinfo=ZoneInfo(lp.timezone)
                    ),
                }
                for bid, lp in loan_plans
            ],
        ).scalars()
    )
    installments = [
        {
            "loan_id": lid,
            "seq": i.seq,
            "due_date": i.due_date,
            "principal_due": i.principal_due,
            "interest_due": i.interest_due,
            "fees_due": ZERO,
            "amount_paid": i.amount_paid,
        }
        for lid, (_, lp) in zip(loan_ids, loan_plans, strict=True)
        for i in lp.installments
    ]
    session.execute(insert(it), installments)
    payments = [
        {
            "loan_id": lid,
            "amount": pay.amount,
            "received_at": pay.received_at,
            "method": pay.method,
            "reference": pay.reference,
        }
        for lid, (_, lp) in zip(loan_ids, loan_plans, strict=True)
        for pay in lp.payments
    ]
    if payments:
        session.execute(insert(pt), payments)

    summary.accounts += len(plans)
    summary.contact_points += len(contacts)
    summary.loans += len(loan_ids)
    summary.installments += len(installments)
    summary.payments += len(payments)
    return borrower_ids


def verify_sample(session: Session, expected: list[tuple[int, str]], now: datetime) -> int:
    """Re-read an evenly spread sample and check bot.accounts agrees with the plan."""
    if not expected:
        return 0
    step = max(1, len(expected) // VERIFY_SAMPLE)
    sample = dict(expected[::step])
    borrowers = session.scalars(
        select(Borrower)
        .where(Borrower.id.in_(sample))
        .options(selectinload(Borrower.loans).selectinload(Loan.installments))
    ).all()
    for borrower in borrowers:
        stage = account_balance(borrower, now).stage
        if stage != sample[borrower.id]:
            raise RuntimeError(
                f"seeded borrower {borrower.id} is {stage}, planned {sample[borrower.id]}"
            )
    if len(borrowers) != len(sample):
        raise RuntimeError("seeded borrowers missing on re-read")
    return len(borrowers)
