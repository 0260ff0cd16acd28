"""Walking skeleton, path 2: the scheduler plans a due reminder and sends one SMS through
the local Twilio server and one email to a real aiosmtpd server; planning again sends
nothing more."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as email_policy

from bot.db import make_engine, session_factory
from bot.runtime import Runtime
from scheduler.dispatcher import dispatch
from scheduler.planner import plan
from tests.e2e.conftest import Stack
from tests.factories import make_account

# 10:00 in New York: inside the US-01 window.
NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def test_due_reminder_goes_out_once_by_sms_and_email(stack: Stack) -> None:
    phone = f"+1303555{uuid.uuid4().int % 10000:04d}"
    email = f"reminder-{uuid.uuid4().hex[:8]}@example.com"
    engine = make_engine(stack.database_url)
    factory = session_factory(engine)
    with factory() as session, session.begin():
        make_account(session, now=NOW, phone=phone, email=email, dpd=5)
    runtime = Runtime.build(stack.runtime_settings)

    async def plan_and_dispatch() -> None:
        with factory() as session, session.begin():
            plan(session, NOW)
        await dispatch(runtime, NOW)

    async def scenario() -> None:
        await plan_and_dispatch()
        await plan_and_dispatch()
        await runtime.aclose()

    asyncio.run(scenario())
    engine.dispose()

    sms = [m for m in stack.twilio.messages if m["to"] == phone]
    assert len(sms) == 1
    assert "5 days late" in str(sms[0]["body"])
    assert "STOP" in str(sms[0]["body"])
    mails = [e for e in stack.smtp.envelopes if e.rcpt_tos == [email]]
    assert len(mails) == 1
    parsed = message_from_bytes(mails[0].original_content or b"", policy=email_policy)
    assert "overdue" in parsed["Subject"]
    assert parsed["List-Unsubscribe"].strip().startswith("<http://127.0.0.1:")
    assert "/unsubscribe/" in parsed["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed.is_multipart()
