"""Which COMPLIANCE.md rows the profiles implement and the tests name.

A test covers a row when one ``_``-separated word of its name is the row ID lower-cased
without hyphens (``test_us01_window`` covers US-01, ``test_aius01_...`` AI-US-01).
Run: ``python -m bot.compliance.coverage [path/to/COMPLIANCE.md]``.
"""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

from bot.compliance.profiles import get_profile, profile_names

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TABLE = ROOT.parent / "shared" / "COMPLIANCE.md"
ROW = re.compile(r"^\|\s*((?:US|CN|AI)-[A-Z0-9-]+)\s*\|", re.MULTILINE)

# Rows the gate does not implement, and why.
NOT_IN_GATE: dict[str, str] = {
    "US-02": "needs borrower-declared inconvenient times and workplace flags (no data yet)",
    "US-05": "calls only (7-in-7); no voice channel. ARR-WAIT applies the idea to texts",
    "US-11": "address provenance and reassigned-number checks: no data on contact points",
    "US-12": "social media: no such channel",
    "US-13": "limited-content voicemail: no voice channel",
    "US-14": "mini-Miranda: third-party agency deployments only (first-party now)",
    "US-15": "validation notice timing: a notice workflow, not a per-message rule",
    "US-16": "validation notice content: a template schema, not a per-message rule",
    "US-17": "validation period dates: a notice workflow",
    "US-18": "overshadowing during validation: needs the validation end date per debt",
    "US-23": "unauthorised fees: belongs to offers (bot/offers.py), not to message text",
    "US-24": "record retention: storage policy; every decision is stored",
    "US-27": "CAN-SPAM commercial email: reminders are transactional",
    "US-29": "Twilio opt-out mirror: channel adapter (error 21610), not the gate",
    "US-MA-01": "state overlay profile us-ma not written yet",
    "US-MA-02": "state overlay profile us-ma not written yet",
    "US-MA-03": "in-person visits: not a message",
    "US-WA-01": "state overlay for licensed agencies: not written yet",
    "US-NYC-01": "pending rule, effective date unknown",
    "US-ST-02": "flag for legal check only",
    "AI-US-03": "rights-intent handoff lives in the dialogue and inbound path",
    "AI-US-04": "AI voice: no voice channel",
    "CN-02": "connected voice calls: no voice channel",
    "CN-07": "institution identity on first contact: needs the institution name as data",
    "CN-08": "agency assignment notice: workflow, not a per-message rule",
    "CN-09": "records retention: storage policy; every decision is stored",
    "CN-10": "installment plan terms: belongs to offers",
    "CN-12": "complaint deadlines: ticketing, not the gate",
    "CN-13": "PIPL data minimisation: data-access policy",
    "CN-14": "automated-decision review: handoff on request, dialogue side",
    "CN-17": "governance items (config)",
    "CN-18": "agency governance (config)",
    "CN-19": "cadence minimums: planner policy; the caps here always win",
}


def table_rows(path: Path) -> list[str]:
    return list(dict.fromkeys(ROW.findall(path.read_text(encoding="utf-8"))))


def profile_rows() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in profile_names():
        profile = get_profile(name)
        if profile is not None:
            out[name] = profile.rule_ids()
    return out


def test_names(tests_dir: Path = ROOT / "tests") -> list[str]:
    names = []
    for path in tests_dir.rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                names.append(node.name)
    return names


def tests_per_row(rows: list[str], names: list[str]) -> Counter[str]:
    token = {row.lower().replace("-", ""): row for row in rows}
    count: Counter[str] = Counter()
    for name in names:
        for word in set(name.split("_")):
            if word in token:
                count[token[word]] += 1
    return count


def report(table: Path) -> str:
    rows = table_rows(table)
    profiles = profile_rows()
    tested = tests_per_row(rows, test_names())
    lines = [f"{'row':<10} {'profiles':<8} {'tests':>5}  status"]
    implemented = 0
    for row in rows:
        where = ",".join(n for n, ids in profiles.items() if row in ids) or "-"
        if where != "-":
            implemented += 1
            status = "implemented"
        else:
            status = "not in gate: " + NOT_IN_GATE.get(row, "(no reason recorded)")
        lines.append(f"{row:<10} {where:<8} {tested[row]:>5}  {status}")
    covered = sum(1 for r in rows if tested[r])
    lines.append(
        f"{implemented} of {len(rows)} rows implemented by a profile rule; "
        f"{covered} rows named by tests"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    table = Path(args[0]) if args else DEFAULT_TABLE
    if not table.is_file():
        print(f"no COMPLIANCE.md at {table}", file=sys.stderr)
        return 2
    print(report(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
