"""Compliance profiles: one YAML file per jurisdiction, validated at load.

A profile file::

    profile: us                      # must equal the file's name
    title: United States (federal)
    version: "2026-03-01"
    rules:                           # evaluated in this order; the first failure decides
      - id: US-01                    # a COMPLIANCE.md row, or ARR-... for project rules
        check: contact_window        # one of bot.compliance.rules.CHECKS
        covers: [US-MA-02]           # optional: further rows this entry implements
        purposes: [reminder]         # optional: overrides the check's default purposes
        senders: [bot, system]       # optional: overrides the check's default senders
        note: why                    # optional, free text
        start: "08:00"               # the check's own parameters
        end: "21:00"

Any unknown ID, check, field or bad value is refused with the file and field named.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.compliance.params import Params, ProfileError, known_rule_id
from bot.compliance.rules import CHECKS, REQUIRED_CHECKS, Cease, Rule

PROFILE_DIR = Path(__file__).with_name("profiles")


class _Loader(yaml.SafeLoader):
    """Safe YAML with dates left as text, so a bad date is reported by its field."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    version: str
    rules: tuple[Rule, ...]
    path: Path

    def rule_ids(self) -> set[str]:
        """Every COMPLIANCE.md row this profile implements (IDs and ``covers``)."""
        ids = {r.rule_id for r in self.rules}
        for r in self.rules:
            ids.update(r.covers)
        return ids


def load_profile(path: Path) -> Profile:
    """Read and validate one profile file; raises ``ProfileError`` naming file and field."""
    where = path.name
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ProfileError(f"{where}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ProfileError(f"{where}: cannot read: {exc}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: expected a mapping at the top level")
    top = Params(raw, where)
    name = top.string("profile")
    if name != path.stem:
        raise top.error("profile", f"{name!r} does not match the file name {path.stem!r}")
    title = top.string("title")
    version = str(top._get("version", "unversioned"))
    entries = top._get("rules", None)
    top.check_all_used()
    if not isinstance(entries, list) or not entries:
        raise top.error("rules", "expected a non-empty list of rules")
    rules = tuple(_rule(entry, f"{where}: rules[{i}]") for i, entry in enumerate(entries))
    _check_whole(rules, top)
    return Profile(name, title, version, rules, path)


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise ProfileError(f"{where}: expected a mapping, got {entry!r}")
    p = Params(entry, where)
    rule_id = p.string("id")
    if not known_rule_id(rule_id):
        raise p.error("id", f"unknown rule ID {rule_id!r} (a COMPLIANCE.md row or ARR-...)")
    check = p.string("check")
    build = CHECKS.get(check)
    if build is None:
        raise p.error("check", f"unknown check {check!r} (known: {sorted(CHECKS)})")
    p.where = f"{where} ({rule_id}, {check})"
    rule = build(rule_id, p)
    for i, covered in enumerate(rule.covers):
        if not known_rule_id(covered):
            raise p.error(f"covers[{i}]", f"unknown rule ID {covered!r}")
    p.check_all_used()
    return rule


def _check_whole(rules: tuple[Rule, ...], top: Params) -> None:
    present = {r.check_name for r in rules}
    missing = sorted(REQUIRED_CHECKS - present)
    if missing:
        raise top.error("rules", f"missing required checks: {', '.join(missing)}")
    cease = [r for r in rules if isinstance(r, Cease)]
    for rule in cease:
        rule.named_elsewhere = frozenset().union(*(o.reasons for o in cease if o is not rule))


@cache
def get_profile(name: str) -> Profile | None:
    """The shipped profile called ``name`` (loaded once), or None if there is none."""
    if not name.isidentifier() and not name.replace("-", "_").isidentifier():
        return None
    path = PROFILE_DIR / f"{name}.yml"
    return load_profile(path) if path.is_file() else None


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yml"))


def disclosure_prefix(jurisdiction: str, language: str) -> str:
    """The profile's bot-disclosure prefix for ``language`` ("" if it has none): what the
    app puts before the bot's first turn in a conversation when the turn lacks one."""
    from bot.compliance.rules import Disclosure

    profile = get_profile(jurisdiction)
    for rule in profile.rules if profile else ():
        if isinstance(rule, Disclosure):
            return rule.prefixes.get(language) or next(iter(rule.prefixes.values()), "")
    return ""


def with_disclosure(jurisdiction: str, language: str, text: str) -> str:
    """``text`` as the bot's first turn: unchanged if it already says it is a bot, else
    behind the profile's disclosure prefix."""
    from bot.compliance.content import contains_any
    from bot.compliance.rules import Disclosure

    profile = get_profile(jurisdiction)
    for rule in profile.rules if profile else ():
        if isinstance(rule, Disclosure):
            if contains_any(text, rule.phrases.get(language, rule.any_language)) is not None:
                return text
            return disclosure_prefix(jurisdiction, language) + text
    return text
