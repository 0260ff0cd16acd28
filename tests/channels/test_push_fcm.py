"""FcmPush against the local FCM server: a JWT minted by google-auth, verified by the
server, a bearer token on every send, FCM's error shapes mapped to channel errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt

from channels.base import (
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    TransientChannelError,
)
from channels.fcm_local import (
    GOOGLE_TOKEN_AUDIENCE,
    JWT_GRANT_TYPE,
    LocalFcmServer,
    make_service_account,
)
from channels.push_fcm import DEACTIVATE_CODES, FcmPush, FcmTransientError, data_payload
from tests.channels.conftest import free_port

PROJECT = "arrears-test"
DEVICE = "fcm-device-token:APA91b" + "x" * 40
CHAT_LINK = "https://arrears.example.com/chat/abc.def"


@pytest.fixture(scope="module")
def fcm_server() -> Iterator[LocalFcmServer]:
    with LocalFcmServer(PROJECT) as srv:
        yield srv


@pytest.fixture
def local_fcm(fcm_server: LocalFcmServer) -> LocalFcmServer:
    fcm_server.clear()
    return fcm_server


@pytest.fixture(scope="module")
def key_file(fcm_server: LocalFcmServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trusted service account per module (RSA key generation is the slow part)."""
    return fcm_server.make_service_account(tmp_path_factory.mktemp("fcm") / "sa.json")


@pytest.fixture
async def push(local_fcm: LocalFcmServer, key_file: Path) -> AsyncIterator[FcmPush]:
    async with FcmPush(key_file, base_url=local_fcm.base_url, timeout=5.0) as adapter:
        yield adapter


def push_to(to: str = DEVICE, **metadata: Any) -> OutboundMessage:
    return OutboundMessage(
        channel="push",
        to=to,
        text="Your payment of $120.00 is 3 days overdue.",
        subject="Payment reminder",
        metadata={"deep_link": CHAT_LINK, **metadata},
    )


async def test_send_end_to_end(push: FcmPush, local_fcm: LocalFcmServer, key_file: Path) -> None:
    result = await push.send(push_to(account_ref=42))

    assert result.status == "sent"
    assert result.provider_message_id.startswith(f"projects/{PROJECT}/messages/0:")
    [recorded] = local_fcm.messages
    assert recorded["name"] == result.provider_message_id
    assert recorded["client_email"] == json.loads(key_file.read_text())["client_email"]
    message = recorded["message"]
    assert message["token"] == DEVICE
    assert message["notification"] == {
        "title": "Payment reminder",
        "body": "Your payment of $120.00 is 3 days overdue.",
    }
    assert message["data"] == {"deep_link": CHAT_LINK, "kind": "reminder", "account_ref": "42"}
    assert message["android"] == {"priority": "high"}
    [grant] = local_fcm.grants  # the JWT google-auth signed, as the server verified it
    assert grant["aud"] == GOOGLE_TOKEN_AUDIENCE
    assert grant["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert grant["exp"] - grant["iat"] == 3600


async def test_token_reused_across_sends(push: FcmPush, local_fcm: LocalFcmServer) -> None:
    await push.send(push_to())
    await push.send(push_to())

    assert len(local_fcm.messages) == 2
    assert len(local_fcm.grants) == 1


async def test_concurrent_sends_share_one_token_request(
    push: FcmPush, local_fcm: LocalFcmServer
) -> None:
    results = await asyncio.gather(*(push.send(push_to()) for _ in range(5)))

    assert len({r.provider_message_id for r in results}) == 5
    assert len(local_fcm.grants) == 1


async def test_token_refreshed_shortly_before_expiry(
    push: FcmPush, local_fcm: LocalFcmServer
) -> None:
    await push.send(push_to())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    push.credentials.expiry = now + dt.timedelta(minutes=2)

    await push.send(push_to())

    assert len(local_fcm.grants) == 2


async def test_revoked_token_is_replaced_once(push: FcmPush, local_fcm: LocalFcmServer) -> None:
    await push.send(push_to())
    local_fcm.revoke_tokens()

    await push.send(push_to())

    assert len(local_fcm.messages) == 2 and len(local_fcm.grants) == 2


async def test_unregistered_token_is_permanent_and_deactivates(
    push: FcmPush, local_fcm: LocalFcmServer
) -> None:
    local_fcm.unregistered.add("dead-token")

    with pytest.raises(PermanentChannelError) as caught:
        await push.send(push_to("dead-token"))

    assert caught.value.code == "UNREGISTERED" and caught.value.code in DEACTIVATE_CODES
    assert caught.value.status == 404
    assert caught.value.address_effect == "invalid"
    assert local_fcm.messages == []


async def test_invalid_token_is_permanent_and_marks_address(
    push: FcmPush, local_fcm: LocalFcmServer
) -> None:
    local_fcm.invalid_tokens.add("garbled")

    with pytest.raises(PermanentChannelError) as caught:
        await push.send(push_to("garbled"))

    assert (caught.value.code, caught.value.status) == ("INVALID_ARGUMENT", 400)
    assert caught.value.address_effect == "invalid"


@pytest.mark.parametrize(
    ("status", "code"), [(429, "QUOTA_EXCEEDED"), (500, "INTERNAL"), (503, "UNAVAILABLE")]
)
async def test_throttling_and_server_errors_are_transient(
    push: FcmPush, local_fcm: LocalFcmServer, status: int, code: str
) -> None:
    local_fcm.fail_next(status=status, retry_after=30 if status != 500 else None)

    with pytest.raises(FcmTransientError) as caught:
        await push.send(push_to())

    assert isinstance(caught.value, TransientChannelError) and caught.value.retryable
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.retry_after == (30.0 if status != 500 else None)
    assert caught.value.address_effect is None
    assert (await push.send(push_to())).status == "sent"  # the fault was one-off


async def test_hang_after_sending_is_outcome_unknown(
    local_fcm: LocalFcmServer, key_file: Path
) -> None:
    local_fcm.hang_next(seconds=1.5)
    async with FcmPush(key_file, base_url=local_fcm.base_url, timeout=0.5) as push:
        await push.access_token()  # so the short timeout applies to the send only
        with pytest.raises(OutcomeUnknownError):
            await push.send(push_to())
    deadline = time.monotonic() + 5
    while not local_fcm.messages and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert len(local_fcm.messages) == 1  # FCM took it after we gave up: hence "unknown"


async def test_fcm_down_is_transient(local_fcm: LocalFcmServer, key_file: Path) -> None:
    async with FcmPush(key_file, base_url=f"http://127.0.0.1:{free_port()}") as push:
        with pytest.raises(TransientChannelError) as caught:
            await push.send(push_to())
    assert not isinstance(caught.value, OutcomeUnknownError)


async def test_token_endpoint_down_is_transient(tmp_path: Path, local_fcm: LocalFcmServer) -> None:
    dead = make_service_account(
        f"http://127.0.0.1:{free_port()}/token", PROJECT, tmp_path / "sa.json"
    )
    async with FcmPush(dead, base_url=local_fcm.base_url) as push:
        with pytest.raises(TransientChannelError) as caught:
            await push.send(push_to())
    assert caught.value.code == "token_endpoint_unreachable"
    assert local_fcm.messages == []


async def test_forged_key_is_refused_by_token_endpoint(
    local_fcm: LocalFcmServer, key_file: Path, tmp_path: Path
) -> None:
    trusted = json.loads(key_file.read_text())
    forged_file = make_service_account(local_fcm.token_uri, PROJECT, tmp_path / "forged.json")
    forged = json.loads(forged_file.read_text())
    forged.update(client_email=trusted["client_email"], private_key_id=trusted["private_key_id"])
    forged_file.write_text(json.dumps(forged))

    async with FcmPush(forged_file, base_url=local_fcm.base_url) as push:
        with pytest.raises(PermanentChannelError) as caught:
            await push.send(push_to())

    assert caught.value.code == "invalid_grant"
    assert local_fcm.grants == [] and local_fcm.messages == []


def _assertion(key_file: Path, **overrides: Any) -> str:
    info = json.loads(key_file.read_text())
    now = int(time.time())
    claims = {
        "iss": info["client_email"],
        "aud": GOOGLE_TOKEN_AUDIENCE,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": now,
        "exp": now + 3600,
        **overrides,
    }
    signer = crypt.RSASigner.from_service_account_info(info)
    return google_jwt.encode(signer, claims).decode("ascii")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({}, None),
        ({"aud": "https://example.com/token"}, "invalid_grant"),
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant"),  # longer than an hour
        ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, "invalid_grant"),
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant"),
    ],
)
def test_token_endpoint_checks_claims(
    local_fcm: LocalFcmServer, key_file: Path, overrides: dict[str, Any], error: str | None
) -> None:
    form = {"grant_type": JWT_GRANT_TYPE, "assertion": _assertion(key_file, **overrides)}
    response = httpx.post(local_fcm.token_uri, data=form)

    if error is None:
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["access_token"].startswith("ya29.")
    else:
        assert (response.status_code, response.json()["error"]) == (400, error)


def test_token_endpoint_rejects_signature_from_another_key(
    local_fcm: LocalFcmServer, key_file: Path, tmp_path: Path
) -> None:
    other = make_service_account(local_fcm.token_uri, PROJECT, tmp_path / "other.json")
    trusted = json.loads(key_file.read_text())
    forged = _assertion(other, iss=trusted["client_email"])
    response = httpx.post(
        local_fcm.token_uri, data={"grant_type": JWT_GRANT_TYPE, "assertion": forged}
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT Signature.",
    }


def _bearer(local_fcm: LocalFcmServer, key_file: Path) -> dict[str, str]:
    form = {"grant_type": JWT_GRANT_TYPE, "assertion": _assertion(key_file)}
    token = httpx.post(local_fcm.token_uri, data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _send_url(local_fcm: LocalFcmServer, project: str = PROJECT) -> str:
    return f"{local_fcm.base_url}/v1/projects/{project}/messages:send"


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"token": DEVICE, "data": {"attempt": 3}}, "message.data[0].value"),
        ({"notification": {"title": "x"}}, "message"),  # no target
        ({"token": ""}, "message"),  # an empty target is no target
        ({"token": DEVICE, "data": {"from": "x"}}, "message.data[0].key"),
        ({"token": DEVICE, "android": {"priority": "urgent"}}, "message.android.priority"),
        ({"token": DEVICE, "notification": {"title": 5}}, "message.notification.title"),
        ({"token": DEVICE, "priority": "high"}, "message"),  # unknown field
    ],
)
def test_send_endpoint_rejects_what_fcm_rejects(
    local_fcm: LocalFcmServer, key_file: Path, message: dict[str, Any], field: str
) -> None:
    response = httpx.post(
        _send_url(local_fcm), json={"message": message}, headers=_bearer(local_fcm, key_file)
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    violations = [d for d in error["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    assert violations[0]["fieldViolations"][0]["field"] == field
    assert local_fcm.messages == []


def test_send_endpoint_wants_a_token_it_issued_and_its_project(
    local_fcm: LocalFcmServer, key_file: Path
) -> None:
    body = {"message": {"token": DEVICE}}
    no_auth = httpx.post(_send_url(local_fcm), json=body)
    made_up = httpx.post(
        _send_url(local_fcm), json=body, headers={"Authorization": "Bearer ya29.made-up"}
    )
    other = httpx.post(
        _send_url(local_fcm, "someone-else"), json=body, headers=_bearer(local_fcm, key_file)
    )

    assert no_auth.status_code == made_up.status_code == 401
    assert made_up.json()["error"]["status"] == "UNAUTHENTICATED"
    assert other.status_code == 403
    assert other.json()["error"]["status"] == "PERMISSION_DENIED"


def test_data_payload_stringifies() -> None:
    assert data_payload(
        {"n": 3, "ok": True, "amount": 1.5, "skip": None, "tags": ["a"], "google.x": "y"}
    ) == {"n": "3", "ok": "true", "amount": "1.5", "tags": '["a"]'}
