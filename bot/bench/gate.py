"""Gate decisions per second in one process: pure ``evaluate`` over pre-built inputs.

The inputs are what ``judge()`` hands the gate in production: mixed US and CN
borrowers in the portfolio's timezones, a realistic contact history each (0-6 attempts
in the week across channels, some recent conversations), mixed purposes and senders,
English and Chinese texts of SMS-to-chat length with each borrower's own amount (so no
text repeats). Run: ``python -m bot.bench.gate [--borrowers N] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bot.compliance import Attempt, ContactHistory, Outbound, evaluate

TARGET = 20_000  # decisions per second (issue 3)
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)
EN_TEXTS = {
    "reminder": "Arrears Demo Lender: your payment of ${amount} is {dpd} days late. Reply to "
    "talk about options or visit https://pay.example.com/chat/{token} Reply STOP to opt out.",
    "reply": "You have ${amount} past due since 2026-02-{day:02d}. If you can't pay it all "
    "now, tell me and we'll see what can be done.",
    "first": "Hi, I'm an automated assistant for your loan account. You have ${amount} due "
    "on 2026-03-{day:02d}. Ask me how to pay, or ask for a person anytime.",
    "collector_reply": "Hi, this is Dana from the collections team. I can set up a plan of "
    "${amount} a month over 6 months; shall I send you the details?",
    "keyword_confirmation": "You will no longer receive text messages from us on this "
    "number. Reply START to opt back in.",
}
ZH_TEXTS = {
    "reminder": "【示例贷款】您好，您的贷款已逾期{dpd}天，应还¥{amount}。如有困难可申请分期："
    "https://pay.example.com/chat/{token} 回复退订拒收",
    "reply": "您有¥{amount}已逾期，应还日为2月{day}日。如暂时无法全部还清，请告诉我。",
    "first": "您好，我是您贷款账户的自动助理（机器人）。您有¥{amount}应于3月{day}日还款。",
    "collector_reply": "您好，我是客服小王。可以为您办理分期，每月还款¥{amount}，共6期，"
    "需要我发详情吗？",
    "keyword_confirmation": "您已退订，本号码将不再收到我们的短信。回复START可重新订阅。",
}
PURPOSES = (
    ["reminder"] * 50 + ["reply"] * 30 + ["collector_reply"] * 15 + ["keyword_confirmation"] * 5
)
SENDER = {"reminder": "bot", "reply": "bot", "collector_reply": "collector"}


def _history(rng: random.Random, point: int) -> ContactHistory:
    attempts = tuple(
        Attempt(
            NOW - timedelta(seconds=rng.randint(3600, 8 * 86400)),
            rng.choice(("sms", "sms", "email")),
            point if rng.random() < 0.7 else point + 1,
        )
        for _ in range(rng.randint(0, 6))
    )
    talked = NOW - timedelta(hours=rng.randint(1, 400)) if rng.random() < 0.3 else None
    return ContactHistory(
        attempts=tuple(sorted(attempts, key=lambda a: a.at, reverse=True)),
        last_conversation_at=talked,
        is_first_in_conversation=rng.random() < 0.2,
        confirmations_since_opt_out=rng.choice((0, 0, 0, 1)),
    )


def build_inputs(borrowers: int, seed: int = 7) -> list[Outbound]:
    rng = random.Random(seed)
    out = []
    for i in range(borrowers):
        cn = rng.random() < 0.4
        purpose = rng.choice(PURPOSES)
        history = _history(rng, point=i * 2)
        texts = ZH_TEXTS if cn else EN_TEXTS
        key = "first" if purpose == "reply" and history.is_first_in_conversation else purpose
        text = texts[key].format(
            amount=f"{rng.randint(50, 9000)}.{rng.randint(0, 99):02d}",
            dpd=rng.randint(1, 120),
            day=rng.randint(1, 28),
            token=f"{rng.getrandbits(64):016x}",
        )
        out.append(
            Outbound(
                channel=rng.choice(("sms", "sms", "email", "webchat")),
                purpose=purpose,
                text=text,
                now=NOW + timedelta(minutes=rng.randint(-600, 600)),
                jurisdiction="cn" if cn else "us",
                timezone="Asia/Shanghai" if cn else rng.choice(US_ZONES),
                language="zh" if cn else "en",
                consent=rng.random() < 0.97,
                opted_out=purpose == "keyword_confirmation" or rng.random() < 0.03,
                invalid_address=rng.random() < 0.01,
                verified=rng.random() < 0.85,
                cease_reason=rng.choice((None,) * 60 + ("lawyer", "dispute", "bankruptcy")),
                sender=SENDER.get(purpose, "system"),
                contact_point_id=i * 2,
                history=history,
            )
        )
    return out


def run(inputs: list[Outbound], seconds: float) -> tuple[int, float, Counter[str]]:
    """Evaluate the inputs round and round for about ``seconds``; count and time it."""
    outcomes: Counter[str] = Counter()
    for o in inputs:  # warm-up, and the mix of outcomes
        d = evaluate(o)
        outcomes[d.deciding_rule or "allowed"] += 1
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for o in inputs:
            evaluate(o)
        done += len(inputs)
    return done, time.perf_counter() - start, outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--borrowers", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    inputs = build_inputs(args.borrowers)
    done, elapsed, outcomes = run(inputs, args.seconds)
    rate = done / elapsed
    print(f"gate: {done} decisions in {elapsed:.2f} s over {len(inputs)} pre-built inputs")
    print(
        f"gate: {rate:,.0f} decisions/second (target >= {TARGET:,}/s): "
        f"{'OK' if rate >= TARGET else 'BELOW TARGET'}"
    )
    mix = ", ".join(f"{k} {v}" for k, v in outcomes.most_common(8))
    print(f"gate: outcome mix of one pass: {mix}")
    return 0 if rate >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
