"""Read and validate a policy file, naming the file, line and field of any mistake.

The YAML is composed into nodes (not constructed into Python objects) so that every
value keeps its line, and numbers are read from their source text: ``25.10`` becomes
``Decimal("25.10")`` without ever being a float.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import NoReturn, TypeVar

import yaml
from yaml import Node
from yaml.constructor import SafeConstructor

from bot.policy.model import (
    CHANNELS,
    ESCALATIONS,
    OFFER_KINDS,
    STAGE_NAMES,
    TONES,
    WAIVABLE,
    Cadence,
    ExtensionPolicy,
    InstallmentPlanPolicy,
    OffersPolicy,
    Policy,
    PromisePolicy,
    SettlementPolicy,
    StagePolicy,
    WaiverPolicy,
)

DEFAULT_POLICY = Path(__file__).with_name("default.yml")
MAX_AMOUNT = Decimal("1000000000.00")

T = TypeVar("T")
Stages = Mapping[str, StagePolicy]


class PolicyError(ValueError):
    """A policy file that cannot be used; the message reads ``FILE line N: FIELD: PROBLEM``."""

    def __init__(self, file: str, line: int, field: str, problem: str) -> None:
        super().__init__(f"{file} line {line}: {field}: {problem}")
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem


# -- reading nodes -----------------------------------------------------------------

INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
CENT = Decimal("0.01")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _got(node: Node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return f"got {node.value!r}"
    return "got a list" if isinstance(node, yaml.SequenceNode) else "got a mapping"


class ValueReader:
    """Typed reads of YAML nodes; every failure names the file, line and field path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: Node, path: str, problem: str) -> NoReturn:
        raise PolicyError(self.source, node.start_mark.line + 1, path or "(root)", problem)

    def entries(self, node: Node, path: str, min_items: int = 0) -> list[tuple[str, Node, Node]]:
        """(key, key node, value node) of a mapping with unique string keys."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"must be a mapping ({_got(node)})")
        seen: set[str] = set()
        out = []
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag != STR_TAG:
                self.fail(key, path, f"keys must be names ({_got(key)})")
            if key.value in seen:
                self.fail(key, _join(path, key.value), "appears twice")
            seen.add(key.value)
            out.append((key.value, key, value))
        if len(out) < min_items:
            self.fail(node, path, f"must have at least {min_items} entry")
        return out

    def fields(
        self, node: Node, path: str, required: Sequence[str], optional: Sequence[str] = ()
    ) -> dict[str, Node]:
        """A mapping with exactly these field names: typos and omissions are refused."""
        known = (*required, *optional)
        found = {}
        for name, key, value in self.entries(node, path):
            if name not in known:
                self.fail(key, _join(path, name), f"unknown field (expected {_list(known)})")
            found[name] = value
        for name in required:
            if name not in found:
                self.fail(node, _join(path, name), "missing required field")
        return found

    def items(self, node: Node) -> list[Node]:
        return list(node.value) if isinstance(node, yaml.SequenceNode) else []

    def sequence(
        self, node: Node, path: str, read: Callable[[Node, str], T], min_items: int = 0
    ) -> tuple[T, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"must be a list ({_got(node)})")
        if len(node.value) < min_items:
            self.fail(node, path, f"must list at least {min_items} item")
        values = tuple(read(item, f"{path}[{i}]") for i, item in enumerate(node.value))
        for i, value in enumerate(values):
            if value in values[:i]:
                self.fail(node.value[i], f"{path}[{i}]", f"{value!r} is listed twice")
        return values

    def names(
        self, node: Node, path: str, options: Sequence[str], min_items: int = 0
    ) -> tuple[str, ...]:
        return self.sequence(
            node, path, lambda n, p: self.choice(n, p, options), min_items=min_items
        )

    def is_null(self, node: Node) -> bool:
        return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG

    def string(self, node: Node, path: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR_TAG:
            self.fail(node, path, f"must be a string ({_got(node)})")
        return str(node.value)

    def choice(self, node: Node, path: str, options: Sequence[str]) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.value not in options:
            self.fail(node, path, f"must be one of {_list(options)} ({_got(node)})")
        return str(node.value)

    def integer(self, node: Node, path: str, lo: int | None = None, hi: int | None = None) -> int:
        value = None
        if isinstance(node, yaml.ScalarNode) and node.tag == INT_TAG:
            value = int(SafeConstructor().construct_yaml_int(node))
        if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
            self.fail(node, path, f"must be an integer{_bounds(lo, hi)} ({_got(node)})")
        return value

    def number(self, node: Node, path: str, lo: Decimal, hi: Decimal, what: str) -> Decimal:
        """A decimal read from the source text (never via float), with at most 2 places."""
        value = self._decimal(node)
        if value is None or not lo <= value <= hi:
            self.fail(node, path, f"must be {what}{_bounds(lo, hi)} ({_got(node)})")
        if value != value.quantize(CENT):
            self.fail(node, path, f"must have at most 2 decimal places ({_got(node)})")
        return value.quantize(CENT)

    def _decimal(self, node: Node) -> Decimal | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag not in (INT_TAG, FLOAT_TAG, STR_TAG):
            return None
        try:
            value = Decimal(str(node.value).replace("_", "").strip())
        except InvalidOperation:
            return None
        return value if value.is_finite() else None

    def money(self, node: Node, path: str) -> Decimal:
        return self.number(node, path, Decimal(0), MAX_AMOUNT, "an amount")

    def percent(self, node: Node, path: str) -> Decimal:
        return self.number(node, path, Decimal(0), Decimal(100), "a percentage")

    def money_map(self, node: Node, path: str, currencies: Sequence[str]) -> Mapping[str, Decimal]:
        """One amount for each declared currency, no more and no less."""
        amounts = {}
        for code, key, value in self.entries(node, path):
            if code not in currencies:
                self.fail(
                    key,
                    _join(path, code),
                    f"currency not declared in currencies ({_list(currencies)})",
                )
            amounts[code] = self.money(value, _join(path, code))
        for code in currencies:
            if code not in amounts:
                self.fail(node, _join(path, code), "missing amount for a declared currency")
        return MappingProxyType(amounts)


def _bounds(lo: object, hi: object) -> str:
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    if lo is not None:
        return f" >= {lo}"
    return f" <= {hi}" if hi is not None else ""


def load_policy(path: Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default (read once) when ``path`` is None."""
    if path is None:
        return _default_policy()
    return parse_policy(Path(path).read_text(encoding="utf-8"), str(path))


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY.read_text(encoding="utf-8"), str(DEFAULT_POLICY))


def parse_policy(text: str, source: str) -> Policy:
    """Validate the YAML ``text``; ``source`` names it in errors and in the result."""
    r = ValueReader(source)
    root = _compose(text, source)
    top = r.fields(root, "", required=("version", "currencies", "stages", "offers", "promises"))
    currencies = _currencies(r, top["currencies"])
    stages = _stages(r, top["stages"])
    return Policy(
        version=_version(r, top["version"]),
        source=source,
        currencies=currencies,
        stages=stages,
        offers=_offers(r, top["offers"], stages, currencies),
        promises=_promises(r, top["promises"]),
    )


def _compose(text: str, source: str) -> Node:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = str(exc.problem or exc)
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            where = exc.context.removeprefix("while parsing ")
            problem += f" (in {where} from line {exc.context_mark.line + 1})"
        raise PolicyError(source, line, "(syntax)", problem) from exc
    if node is None:
        raise PolicyError(source, 1, "(root)", "the file is empty")
    return node


def _version(r: ValueReader, node: Node) -> str:
    version = r.string(node, "version")
    if not version.strip():
        r.fail(node, "version", "must not be empty")
    return version


def _currencies(r: ValueReader, node: Node) -> tuple[str, ...]:
    codes = r.sequence(node, "currencies", r.string, min_items=1)
    for i, (code, item) in enumerate(zip(codes, r.items(node), strict=True)):
        if len(code) != 3 or not code.isalpha() or not code.isupper():
            r.fail(item, f"currencies[{i}]", f"must be an ISO 4217 code like USD (got {code!r})")
    return codes


# -- stages ------------------------------------------------------------------------


def _stages(r: ValueReader, node: Node) -> Stages:
    entries = r.entries(node, "stages", min_items=1)
    parsed: list[tuple[StagePolicy, dict[str, Node]]] = []
    for name, key, value in entries:
        if name not in STAGE_NAMES:
            r.fail(key, f"stages.{name}", f"unknown stage (expected one of {_list(STAGE_NAMES)})")
        parsed.append(_stage(r, name, value))
    parsed.sort(key=lambda pair: pair[0].dpd_min)
    _check_contiguous(r, parsed)
    return MappingProxyType({s.name: s for s, _ in parsed})


def _stage(r: ValueReader, name: str, node: Node) -> tuple[StagePolicy, dict[str, Node]]:
    path = f"stages.{name}"
    f = r.fields(
        node,
        path,
        required=(
            "dpd_min",
            "channels",
            "tone",
            "cadence",
            "offers_allowed",
            "escalation",
            "promise_max_days",
        ),
        optional=("dpd_max",),
    )
    dpd_min = r.integer(f["dpd_min"], f"{path}.dpd_min")
    dpd_max = None
    if "dpd_max" in f and not r.is_null(f["dpd_max"]):
        dpd_max = r.integer(f["dpd_max"], f"{path}.dpd_max", lo=dpd_min)
    stage = StagePolicy(
        name=name,
        dpd_min=dpd_min,
        dpd_max=dpd_max,
        channels=r.names(f["channels"], f"{path}.channels", CHANNELS, min_items=1),
        tone=r.choice(f["tone"], f"{path}.tone", TONES),
        cadence=_cadence(r, f["cadence"], f"{path}.cadence"),
        offers_allowed=r.names(f["offers_allowed"], f"{path}.offers_allowed", OFFER_KINDS),
        escalation=r.names(f["escalation"], f"{path}.escalation", ESCALATIONS),
        promise_max_days=r.integer(f["promise_max_days"], f"{path}.promise_max_days", lo=0, hi=90),
    )
    return stage, f


def _cadence(r: ValueReader, node: Node, path: str) -> Cadence:
    f = r.fields(
        node, path, required=("contacts_per_week",), optional=("first_contact_within_hours",)
    )
    within = None
    if "first_contact_within_hours" in f:
        within = r.integer(
            f["first_contact_within_hours"], f"{path}.first_contact_within_hours", lo=1
        )
    return Cadence(
        contacts_per_week=r.integer(
            f["contacts_per_week"], f"{path}.contacts_per_week", lo=0, hi=21
        ),
        first_contact_within_hours=within,
    )


def _check_contiguous(r: ValueReader, stages: list[tuple[StagePolicy, dict[str, Node]]]) -> None:
    """Each stage starts the day after the previous one ends; only the last is open."""
    for (prev, _), (cur, fields) in zip(stages, stages[1:], strict=False):
        node = fields["dpd_min"]
        path = f"stages.{cur.name}.dpd_min"
        if prev.dpd_max is None:
            r.fail(node, path, f"stage {prev.name} has no dpd_max, so it overlaps {cur.name}")
        if cur.dpd_min <= prev.dpd_max:
            r.fail(node, path, f"overlaps stage {prev.name} (DPD {prev.dpd_min}..{prev.dpd_max})")
        if cur.dpd_min != prev.dpd_max + 1:
            r.fail(
                node, path, f"must be {prev.dpd_max + 1}: DPD ranges leave a gap after {prev.name}"
            )
    last, fields = stages[-1]
    if last.dpd_max is not None:
        r.fail(
            fields["dpd_max"],
            f"stages.{last.name}.dpd_max",
            "the last stage must be open-ended (remove dpd_max)",
        )


# -- offers ------------------------------------------------------------------------


def _offers(
    r: ValueReader, node: Node, stages: Stages, currencies: tuple[str, ...]
) -> OffersPolicy:
    f = r.fields(node, "offers", required=OFFER_KINDS)
    return OffersPolicy(
        installment_plan=_plan(r, f["installment_plan"], stages, currencies),
        extension=_extension(r, f["extension"], stages, currencies),
        waiver=_waiver(r, f["waiver"], stages, currencies),
        settlement=_settlement(r, f["settlement"], stages),
    )


def _plan(
    r: ValueReader, node: Node, stages: Stages, currencies: tuple[str, ...]
) -> InstallmentPlanPolicy:
    path = "offers.installment_plan"
    f = r.fields(
        node,
        path,
        required=(
            "min_months",
            "max_months",
            "menu_months",
            "min_installment",
            "setup_fee",
            "auto_approve_max_months",
            "auto_approve_stages",
        ),
    )
    lo = r.integer(f["min_months"], f"{path}.min_months", lo=2, hi=12)
    hi = r.integer(f["max_months"], f"{path}.max_months", lo=lo, hi=12)
    months = r.sequence(f["menu_months"], f"{path}.menu_months", _int_in(r, lo, hi))
    return InstallmentPlanPolicy(
        min_months=lo,
        max_months=hi,
        menu_months=months,
        min_installment=r.money_map(f["min_installment"], f"{path}.min_installment", currencies),
        setup_fee=r.money_map(f["setup_fee"], f"{path}.setup_fee", currencies),
        auto_approve_max_months=r.integer(
            f["auto_approve_max_months"], f"{path}.auto_approve_max_months", lo=0, hi=hi
        ),
        auto_approve_stages=_offer_stages(
            r, f["auto_approve_stages"], f"{path}.auto_approve_stages", stages, "installment_plan"
        ),
    )


def _extension(
    r: ValueReader, node: Node, stages: Stages, currencies: tuple[str, ...]
) -> ExtensionPolicy:
    path = "offers.extension"
    f = r.fields(
        node,
        path,
        required=(
            "max_days",
            "menu_days",
            "once_per_months",
            "fee",
            "auto_approve_max_days",
            "auto_approve_stages",
        ),
    )
    max_days = r.integer(f["max_days"], f"{path}.max_days", lo=1, hi=180)
    return ExtensionPolicy(
        max_days=max_days,
        menu_days=r.sequence(f["menu_days"], f"{path}.menu_days", _int_in(r, 1, max_days)),
        once_per_months=r.integer(f["once_per_months"], f"{path}.once_per_months", lo=0, hi=60),
        fee=r.money_map(f["fee"], f"{path}.fee", currencies),
        auto_approve_max_days=r.integer(
            f["auto_approve_max_days"], f"{path}.auto_approve_max_days", lo=0, hi=max_days
        ),
        auto_approve_stages=_offer_stages(
            r, f["auto_approve_stages"], f"{path}.auto_approve_stages", stages, "extension"
        ),
    )


def _waiver(
    r: ValueReader, node: Node, stages: Stages, currencies: tuple[str, ...]
) -> WaiverPolicy:
    path = "offers.waiver"
    f = r.fields(node, path, required=("cap_pct", "auto_approve_max_amount", "auto_approve_stages"))
    caps = {}
    for what, key, value in r.entries(f["cap_pct"], f"{path}.cap_pct", min_items=1):
        if what not in WAIVABLE:
            r.fail(key, f"{path}.cap_pct.{what}", f"unknown charge (expected {_list(WAIVABLE)})")
        caps[what] = r.percent(value, f"{path}.cap_pct.{what}")
    return WaiverPolicy(
        cap_pct=MappingProxyType(caps),
        auto_approve_max_amount=r.money_map(
            f["auto_approve_max_amount"], f"{path}.auto_approve_max_amount", currencies
        ),
        auto_approve_stages=_offer_stages(
            r, f["auto_approve_stages"], f"{path}.auto_approve_stages", stages, "waiver"
        ),
    )


def _settlement(r: ValueReader, node: Node, stages: Stages) -> SettlementPolicy:
    path = "offers.settlement"
    f = r.fields(node, path, required=("stages", "min_pct"))
    min_pct = r.percent(f["min_pct"], f"{path}.min_pct")
    if min_pct == 0:
        r.fail(f["min_pct"], f"{path}.min_pct", "must be above 0")
    return SettlementPolicy(
        stages=_offer_stages(r, f["stages"], f"{path}.stages", stages, "settlement"),
        min_pct=min_pct,
    )


def _offer_stages(
    r: ValueReader, node: Node, path: str, stages: Stages, kind: str
) -> tuple[str, ...]:
    """Stage names that must exist and list ``kind`` in their offers_allowed."""
    names = r.names(node, path, tuple(stages))
    for i, (name, item) in enumerate(zip(names, r.items(node), strict=True)):
        if kind not in stages[name].offers_allowed:
            r.fail(item, f"{path}[{i}]", f"stage {name} does not allow {kind} (offers_allowed)")
    return names


def _int_in(r: ValueReader, lo: int, hi: int) -> Callable[[Node, str], int]:
    return lambda node, path: r.integer(node, path, lo=lo, hi=hi)


# -- promises ----------------------------------------------------------------------


def _promises(r: ValueReader, node: Node) -> PromisePolicy:
    f = r.fields(node, "promises", required=("grace_days", "partly_kept_min_pct"))
    return PromisePolicy(
        grace_days=r.integer(f["grace_days"], "promises.grace_days", lo=0, hi=30),
        partly_kept_min_pct=r.percent(f["partly_kept_min_pct"], "promises.partly_kept_min_pct"),
    )


def _list(names: Iterable[str]) -> str:
    return ", ".join(names)
