"""The checks a profile can use. Each profile entry becomes one ``Rule``: its row ID,
the purposes and senders it applies to, and a ``check`` over one ``Outbound``.

A rule that does not apply to a message still yields a result (``n/a`` with the
reason), so every decision lists every rule of the profile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.compliance.content import CATEGORIES, contains_any
from bot.compliance.model import BOT_TURNS, PROACTIVE, PURPOSES, Outbound, RuleResult
from bot.compliance.params import Params

SENDERS = frozenset({"bot", "collector", "system"})
Hits = dict[str, str]

_NA_REASON = {
    "reply": "an answer to a message the borrower just sent",
    "handoff_notice": "an answer to a message the borrower just sent",
    "collector_reply": "a collector answering the borrower",
    "keyword_confirmation": "the one confirmation of the borrower's keyword",
    "reminder": "a proactive reminder",
}


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_now(o: Outbound) -> datetime | None:
    tz = zone(o.timezone)
    return None if tz is None else o.now.astimezone(tz)


class Rule:
    """One profile entry. Subclasses read their parameters and implement ``check``."""

    check_name = ""
    default_purposes: frozenset[str] = PURPOSES
    default_senders: frozenset[str] = SENDERS

    def __init__(self, rule_id: str, p: Params):
        self.rule_id = rule_id
        self.covers = p.strings("covers", allowed=None, default=[])
        self.note = p.string("note") if p.has("note") else ""
        self.purposes = frozenset(
            p.strings("purposes", allowed=PURPOSES, default=sorted(self.default_purposes))
        )
        self.senders = frozenset(
            p.strings("senders", allowed=SENDERS, default=sorted(self.default_senders))
        )
        self._na = {
            purpose: RuleResult(rule_id, "n/a", _NA_REASON.get(purpose, purpose))
            for purpose in PURPOSES
        }
        self._na_sender = RuleResult(rule_id, "n/a", "does not apply to this sender")
        self.passed = RuleResult(rule_id, "pass")

    def applies(self, o: Outbound) -> RuleResult | None:
        """``None`` if the rule applies, else its ``n/a`` result."""
        if o.purpose not in self.purposes:
            return self._na[o.purpose]
        if o.sender not in self.senders:
            return self._na_sender
        return None

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        raise NotImplementedError

    def fail(self, detail: str) -> RuleResult:
        return RuleResult(self.rule_id, "fail", detail)


class ContactWindow(Rule):
    """US-01, CN-01: only inside [start, end) in the borrower's local time, at send time."""

    check_name = "contact_window"
    default_purposes = frozenset({"reminder", "collector_reply"})

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.start, self.end = p.clock("start"), p.clock("end")
        if self.start >= self.end:
            raise p.error("end", "the window must end after it starts")
        self.window = f"{self.start:%H:%M}-{self.end:%H:%M}"

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        local = local_now(o)
        if local is None:
            return self.fail(f"unknown timezone {o.timezone!r}: local time cannot be known")
        inside = self.start <= local.time() < self.end
        detail = f"local time {local:%Y-%m-%d %H:%M} {o.timezone}, window {self.window}"
        return RuleResult(self.rule_id, "pass" if inside else "fail", detail)


class Cap(Rule):
    """At most N earlier attempts in a rolling window: per channel, per contact point,
    or in total. Reaching the cap denies the next attempt."""

    check_name = "cap"
    default_purposes = PROACTIVE
    SCOPES = frozenset({"channel", "contact_point", "total"})

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.scope = p.string("scope")
        if self.scope not in self.SCOPES:
            raise p.error("scope", f"unknown scope {self.scope!r} (known: {sorted(self.SCOPES)})")
        self.days = p.number("days", minimum=0.01)
        self.span = timedelta(days=self.days)
        self.limits: dict[str, int] = {}
        self.limit = 0
        if self.scope == "channel":
            self.limits = p.int_map("limits")
        else:
            self.limit = p.integer("limit", minimum=0)

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        limit = self.limits.get(o.channel) if self.scope == "channel" else self.limit
        if limit is None:
            return RuleResult(self.rule_id, "n/a", f"no cap set for channel {o.channel}")
        since = o.now - self.span
        count = 0
        for a in o.history.attempts:
            # no upper bound: an attempt stamped a moment after ``now`` (another worker
            # whose clock runs ahead; see CLOCK_SKEW in bot.compliance.history) counts
            if a.at <= since:
                continue
            if self.scope == "channel" and a.channel != o.channel:
                continue
            if self.scope == "contact_point" and a.contact_point_id != o.contact_point_id:
                continue
            count += 1
        where = {
            "channel": o.channel,
            "contact_point": "this contact point",
            "total": "all channels",
        }
        detail = f"{count} of {limit} attempts in {self.days:g} days on {where[self.scope]}"
        return RuleResult(self.rule_id, "pass" if count < limit else "fail", detail)


class WaitAfterConversation(Rule):
    """No proactive contact within N days after a two-way conversation (US-05 style)."""

    check_name = "wait_after_conversation"
    default_purposes = PROACTIVE

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.days = p.number("days", minimum=0)
        self.span = timedelta(days=self.days)

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        last = o.history.last_conversation_at
        if last is None or o.now - last >= self.span:
            return self.passed
        return self.fail(f"two-way conversation at {last:%Y-%m-%d %H:%M}Z, wait {self.days:g} days")


class Consent(Rule):
    """US-25: automated messages need the borrower's recorded consent on that channel."""

    check_name = "consent"
    default_purposes = PROACTIVE

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.channels = frozenset(p.strings("channels"))

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if o.channel not in self.channels:
            return RuleResult(self.rule_id, "n/a", f"no consent needed on {o.channel}")
        return self.passed if o.consent else self.fail(f"no consent recorded on {o.channel}")


class OptOut(Rule):
    """US-07/US-26: an opted-out channel gets nothing but the one confirmation."""

    check_name = "opt_out"

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.confirmations = p.integer("confirmations", minimum=0, default=1)

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if not o.opted_out:
            return self.passed
        if o.purpose != "keyword_confirmation":
            return self.fail(f"borrower opted out of {o.channel}")
        if o.history.confirmations_since_opt_out < self.confirmations:
            return RuleResult(self.rule_id, "pass", "the confirmation of the opt-out")
        return self.fail(f"opt-out already confirmed ({self.confirmations} allowed)")


class Cease(Rule):
    """US-03, US-04, US-19 ...: a cease state stops automated collection."""

    check_name = "cease"
    default_purposes = PURPOSES - {"keyword_confirmation"}

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.reasons = frozenset(p.strings("reasons", default=[]))
        self.catch_all = p.boolean("catch_all", default=False)
        self.collector_may_reply = p.boolean("collector_may_reply", default=False)
        if not self.reasons and not self.catch_all:
            raise p.error("reasons", "give the cease reasons, or catch_all: true")
        self.named_elsewhere: frozenset[str] = frozenset()  # set by the profile loader

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        reason = o.cease_reason
        if reason is None:
            return self.passed
        caught = self.catch_all and reason not in self.named_elsewhere
        if reason not in self.reasons and not caught:
            return self.passed
        if o.sender == "collector" and self.collector_may_reply:
            return RuleResult(self.rule_id, "pass", f"a collector may answer ({reason})")
        return self.fail(f"collection ceased: {reason}")


class Holidays(Rule):
    """No proactive contact on a listed holiday, in the borrower's local date."""

    check_name = "holidays"
    default_purposes = PROACTIVE

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.dates: frozenset[date] = p.dates("dates")

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        local = local_now(o)
        if local is None:
            return self.fail(f"unknown timezone {o.timezone!r}: local date cannot be known")
        if local.date() in self.dates:
            return self.fail(f"{local:%Y-%m-%d} is a holiday in {o.timezone}")
        return self.passed


class Disclosure(Rule):
    """The bot's first turn in a conversation says it is a bot (AI-US-01/02, CN-15)."""

    check_name = "disclosure"
    default_purposes = BOT_TURNS
    default_senders = frozenset({"bot"})

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.phrases = p.phrase_map("phrases")
        self.any_language = tuple(x for v in self.phrases.values() for x in v)
        self.prefixes = {k: v[0] for k, v in p.phrase_map("prefix").items()}
        for lang, prefix in self.prefixes.items():
            if contains_any(prefix, self.phrases.get(lang, self.any_language)) is None:
                raise p.error(f"prefix.{lang}", "must contain one of the disclosure phrases")

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if not o.history.is_first_in_conversation:
            return RuleResult(
                self.rule_id, "n/a", "the bot has already spoken in this conversation"
            )
        phrases = self.phrases.get(o.language, self.any_language)
        found = contains_any(o.text, phrases)
        if found is not None:
            return RuleResult(self.rule_id, "pass", f"discloses the bot: {found!r}")
        return self.fail(f"first bot message lacks a disclosure ({o.language})")


class Content(Rule):
    """Threats, insults, false legal claims ... in the text, whoever wrote it."""

    check_name = "content"

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.categories = p.strings("categories", allowed=CATEGORIES)
        self.if_litigation = frozenset(
            p.strings("allowed_if_litigation_approved", allowed=CATEGORIES, default=[])
        )

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        for category in self.categories:
            phrase = hits.get(category)
            if phrase is None or (o.litigation_approved and category in self.if_litigation):
                continue
            return self.fail(f"{category}: {phrase!r}")
        return self.passed


class RightParty(Rule):
    """US-09, CN-04: nothing about the debt until the right party is verified."""

    check_name = "right_party"

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.categories = p.strings("categories", allowed=CATEGORIES, default=["debt", "amount"])

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if o.verified:
            return RuleResult(self.rule_id, "pass", "right party verified")
        for category in self.categories:
            phrase = hits.get(category)
            if phrase is not None:
                return self.fail(f"mentions the debt before verification: {phrase!r}")
        return RuleResult(self.rule_id, "pass", "unverified; nothing about the debt")


class OptOutInstruction(Rule):
    """US-08: every proactive electronic message says how to opt out."""

    check_name = "opt_out_instruction"
    default_purposes = PROACTIVE

    def __init__(self, rule_id: str, p: Params):
        super().__init__(rule_id, p)
        self.channels = frozenset(p.strings("channels"))
        self.phrases = tuple(x for v in p.phrase_map("phrases").values() for x in v)

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if o.channel not in self.channels:
            return RuleResult(self.rule_id, "n/a", f"not required on {o.channel}")
        if contains_any(o.text, self.phrases) is not None:
            return self.passed
        return self.fail(f"no opt-out instruction in the {o.channel} text")


class Handoff(Rule):
    """The bot is silent in a conversation a collector has taken."""

    check_name = "handoff"
    default_senders = frozenset({"bot"})

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        if o.conversation_status == "human":
            return self.fail("the conversation is with a collector")
        return self.passed


class ValidAddress(Rule):
    """Nothing to an address marked invalid (a wrong-number reply)."""

    check_name = "valid_address"
    default_purposes = PURPOSES - {"keyword_confirmation"}

    def check(self, o: Outbound, hits: Hits) -> RuleResult:
        return (
            self.fail("address marked invalid (wrong number)") if o.invalid_address else self.passed
        )


CHECKS: dict[str, Callable[[str, Params], Rule]] = {
    cls.check_name: cls
    for cls in (
        ContactWindow,
        Cap,
        WaitAfterConversation,
        Consent,
        OptOut,
        Cease,
        Holidays,
        Disclosure,
        Content,
        RightParty,
        OptOutInstruction,
        Handoff,
        ValidAddress,
    )
}
REQUIRED_CHECKS = frozenset(
    {"contact_window", "cap", "opt_out", "cease", "content", "right_party", "disclosure", "handoff"}
)
