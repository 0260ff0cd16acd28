"""TwilioSms against the local Twilio server, and the webhook helpers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from channels.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.segments import count_segments
from channels.sms_twilio import (
    STATUS_ORDER,
    InboundSms,
    StatusUpdate,
    TwilioSms,
    parse_inbound,
    parse_status,
    status_rank,
    verify_signature,
)
from channels.twilio_local import LocalTwilioServer
from tests.channels.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    CallbackReceiver,
    free_port,
    make_settings,
)

TO = "+15005550009"
CHINESE_REMINDER = ("您好，您的贷款已逾期三天，请尽快还款。"
                    "如有困难，请回复本短信与我们协商还款计划。")


OVERDUE = "Your payment of $120.00 is 3 days overdue."


def sms_to(to: str = TO, text: str = OVERDUE) -> OutboundMessage:
    return OutboundMessage(channel="sms", to=to, text=text)


async def test_send_returns_sid_and_server_records_exact_fields(
    sms: TwilioSms, local_twilio: LocalTwilioServer
) -> None:
    result = await sms.send(sms_to())

    assert result.provider_message_id.startswith("SM") and len(result.provider_message_id) == 34
    assert result.status == "queued"
    assert result.segments == 1
    assert result.raw["to"] == TO and result.raw["from"] == FROM_NUMBER
    [recorded] = local_twilio.messages
    assert recorded["sid"] == result.provider_message_id
    assert (recorded["to"], recorded["from"], recorded["body"]) == (
        TO, FROM_NUMBER, "Your payment of $120.00 is 3 days overdue.")
    assert recorded["status_callback"] == "https://arrears.example.com/channels/twilio/status"
    assert recorded["messaging_service_sid"] is None


async def test_messaging_service_sid_replaces_from(local_twilio: LocalTwilioServer) -> None:
    service = "MG" + "2" * 32
    settings = make_settings(local_twilio.base_url, twilio_messaging_service_sid=service)
    async with TwilioSms(settings) as adapter:
        await adapter.send(sms_to())
    [recorded] = local_twilio.messages
    assert recorded["messaging_service_sid"] == service and recorded["from"] is None


async def test_chinese_reminder_is_counted_in_ucs2_segments(sms: TwilioSms) -> None:
    info = count_segments(CHINESE_REMINDER)
    assert info.encoding == "UCS-2" and info.units == len(CHINESE_REMINDER)
    result = await sms.send(sms_to(text=CHINESE_REMINDER * 2))
    assert result.segments == count_segments(CHINESE_REMINDER * 2).segments == 2


async def test_wrong_token_is_permanent_20003(local_twilio: LocalTwilioServer) -> None:
    settings = make_settings(local_twilio.base_url, twilio_auth_token="wrong")
    async with TwilioSms(settings) as adapter:
        with pytest.raises(PermanentChannelError) as caught:
            await adapter.send(sms_to())
    assert (caught.value.code, caught.value.status) == ("20003", 401)
    assert not caught.value.retryable
    assert local_twilio.messages == []


@pytest.mark.parametrize(
    ("to", "code", "effect"),
    [("555-0100", "21211", "invalid"), ("+15005550001", "21610", "opted_out")],
)
async def test_refused_number_is_permanent_with_twilio_code(
    sms: TwilioSms, local_twilio: LocalTwilioServer, to: str, code: str, effect: str
) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        await sms.send(sms_to(to=to))
    assert (caught.value.code, caught.value.status) == (code, 400)
    assert caught.value.address_effect == effect
    assert local_twilio.messages == []


async def test_too_long_body_is_permanent_21617(sms: TwilioSms) -> None:
    with pytest.raises(PermanentChannelError) as caught:
        await sms.send(sms_to(text="x" * 1601))
    assert caught.value.code == "21617"


@pytest.mark.parametrize(("status", "code"), [(429, "20429"), (500, "20500"), (503, "20500")])
async def test_rate_limit_and_server_errors_are_transient(
    sms: TwilioSms, local_twilio: LocalTwilioServer, status: int, code: str
) -> None:
    local_twilio.fail_next(status=status)
    with pytest.raises(TransientChannelError) as caught:
        await sms.send(sms_to())
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.retryable
    assert (await sms.send(sms_to())).status == "queued"  # the fault was for one request


async def test_hang_beyond_timeout_is_outcome_unknown(local_twilio: LocalTwilioServer) -> None:
    local_twilio.hang_next(seconds=1.0)
    async with TwilioSms(make_settings(local_twilio.base_url), timeout=0.3) as adapter:
        with pytest.raises(OutcomeUnknownError) as caught:
            await adapter.send(sms_to())
    assert not caught.value.retryable
    for _ in range(100):  # the server did take it: exactly why we must not resend blindly
        if local_twilio.messages:
            break
        await asyncio.sleep(0.05)
    assert len(local_twilio.messages) == 1


async def test_connection_refused_is_transient() -> None:
    settings = make_settings(f"http://127.0.0.1:{free_port()}")
    async with TwilioSms(settings, timeout=2.0) as adapter:
        with pytest.raises(TransientChannelError):
            await adapter.send(sms_to())


async def test_dns_failure_is_transient() -> None:
    settings = make_settings("http://no-such-host.invalid")
    async with TwilioSms(settings, timeout=5.0) as adapter:
        with pytest.raises(TransientChannelError):  # resolver error, or connect timeout
            await adapter.send(sms_to())


async def test_status_callbacks_are_signed_like_twilio(callback_receiver: CallbackReceiver) -> None:
    with LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN, callback_delay=0) as srv:
        settings = make_settings(srv.base_url, public_url=callback_receiver.base_url)
        async with TwilioSms(settings) as adapter:
            result = await adapter.send(sms_to())
        for _ in range(100):
            if len(callback_receiver.received) >= 2:
                break
            await asyncio.sleep(0.05)
        assert srv.messages[0]["status"] == "delivered"

    assert [c["form"]["MessageStatus"] for c in callback_receiver.received] == ["sent", "delivered"]
    url = callback_receiver.base_url + "/channels/twilio/status"
    for callback in callback_receiver.received:
        form: dict[str, Any] = callback["form"]
        assert callback["path"] == "/channels/twilio/status"
        assert form["MessageSid"] == form["SmsSid"] == result.provider_message_id
        assert set(form) == {"MessageSid", "SmsSid", "AccountSid", "From", "To",
                             "MessageStatus", "SmsStatus", "ApiVersion"}
        assert verify_signature(AUTH_TOKEN, url, form, callback["signature"])
        assert not verify_signature(AUTH_TOKEN, url, {**form, "MessageStatus": "failed"},
                                    callback["signature"])
        assert not verify_signature("other-token", url, form, callback["signature"])
        assert not verify_signature(AUTH_TOKEN, url, form, None)
        assert parse_status(form).status == form["MessageStatus"]


async def test_undeliverable_number_reports_error_code(callback_receiver: CallbackReceiver) -> None:
    with LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN, undeliverable_numbers={TO: 30003}) as srv:
        settings = make_settings(srv.base_url, public_url=callback_receiver.base_url)
        async with TwilioSms(settings) as adapter:
            await adapter.send(sms_to())
        for _ in range(100):
            if len(callback_receiver.received) >= 2:
                break
            await asyncio.sleep(0.05)
    last = parse_status(callback_receiver.received[-1]["form"])
    assert (last.status, last.error_code) == ("undelivered", "30003")
    assert "ErrorCode" not in callback_receiver.received[0]["form"]


def test_missing_credentials_are_refused_at_construction() -> None:
    from bot.settings import SettingsError

    with pytest.raises(SettingsError, match="TWILIO_AUTH_TOKEN"):
        TwilioSms(make_settings("http://127.0.0.1:1", twilio_auth_token=None))


# --- webhook helpers --------------------------------------------------------------------

INBOUND = {"MessageSid": "SM" + "a" * 32, "AccountSid": ACCOUNT_SID, "From": "+15551230000",
           "To": FROM_NUMBER, "Body": "I can pay 50 on Friday", "NumMedia": "0"}


def test_parse_inbound() -> None:
    assert parse_inbound(INBOUND) == InboundSms(
        message_sid=INBOUND["MessageSid"], account_sid=ACCOUNT_SID, from_="+15551230000",
        to=FROM_NUMBER, body="I can pay 50 on Friday", num_media=0)
    assert parse_inbound({**INBOUND, "Body": ""}).body == ""  # media-only message


@pytest.mark.parametrize("field", ["MessageSid", "From", "Body"])
def test_parse_inbound_names_the_missing_field(field: str) -> None:
    form = {k: v for k, v in INBOUND.items() if k != field}
    with pytest.raises(ValueError, match=field):
        parse_inbound(form)


def test_parse_inbound_rejects_bad_num_media() -> None:
    with pytest.raises(ValueError, match="NumMedia"):
        parse_inbound({**INBOUND, "NumMedia": "lots"})


def test_parse_status() -> None:
    sid = "SM" + "b" * 32
    assert parse_status({"MessageSid": sid, "MessageStatus": "delivered"}) == StatusUpdate(
        sid, "delivered", None)
    assert parse_status({"SmsSid": sid, "SmsStatus": "failed", "ErrorCode": "30003"}) == (
        StatusUpdate(sid, "failed", "30003"))
    with pytest.raises(ValueError, match="MessageStatus"):
        parse_status({"MessageSid": sid})
    with pytest.raises(ValueError, match="MessageSid"):
        parse_status({"MessageStatus": "sent"})


def test_status_rank_never_moves_backwards() -> None:
    chain = ["queued", "sending", "sent", "delivered", "read"]
    assert [status_rank(s) for s in chain] == sorted(status_rank(s) for s in chain)
    assert len({status_rank(s) for s in chain}) == len(chain)
    assert status_rank("sent") < status_rank("undelivered") == status_rank("failed")
    assert status_rank("delivered") == status_rank("failed")  # one terminal never replaces another
    assert status_rank("pending") == status_rank(None) == -1 < status_rank("queued")
    assert status_rank("DELIVERED") == STATUS_ORDER["delivered"]
