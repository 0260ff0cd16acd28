"""The local Twilio server on the wire, and segment counting."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from channels.segments import count_segments
from channels.twilio_local import LocalTwilioServer, main
from tests.channels.conftest import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


@pytest.fixture
def client(local_twilio: LocalTwilioServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_twilio.base_url, timeout=5) as http:
        yield http


def messages_url(account: str = ACCOUNT_SID) -> str:
    return f"/2010-04-01/Accounts/{account}/Messages.json"


def test_create_and_fetch_twilio_shaped_json(client: httpx.Client) -> None:
    response = client.post(messages_url(), auth=AUTH, data={
        "To": "+15005550009", "From": FROM_NUMBER, "Body": "Hello"})
    assert response.status_code == 201
    body = response.json()
    assert body["sid"].startswith("SM") and len(body["sid"]) == 34
    int(body["sid"][2:], 16)
    assert {k: body[k] for k in ("account_sid", "to", "from", "status", "num_segments",
                                 "num_media", "direction", "api_version", "price",
                                 "price_unit", "error_code")} == {
        "account_sid": ACCOUNT_SID, "to": "+15005550009", "from": FROM_NUMBER,
        "status": "queued", "num_segments": "1", "num_media": "0", "direction": "outbound-api",
        "api_version": "2010-04-01", "price": None, "price_unit": "USD", "error_code": None}
    assert parsedate_to_datetime(body["date_created"]).utcoffset() is not None
    assert body["uri"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{body['sid']}.json"
    assert "status_callback" not in body

    fetched = client.get(body["uri"], auth=AUTH)
    assert fetched.status_code == 200 and fetched.json()["sid"] == body["sid"]
    missing = client.get(body["uri"].replace(body["sid"], "SM" + "0" * 32), auth=AUTH)
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)


def test_local_listing_needs_no_auth(client: httpx.Client) -> None:
    client.post(messages_url(), auth=AUTH, data={"To": "+15005550009", "From": FROM_NUMBER,
                                                 "Body": "one", "StatusCallback": "http://x/cb"})
    [message] = client.get("/_local/messages").json()["messages"]
    assert (message["body"], message["status_callback"]) == ("one", "http://x/cb")


@pytest.mark.parametrize(("auth", "account", "status", "code"), [
    (None, ACCOUNT_SID, 401, 20003),
    ((ACCOUNT_SID, "bad"), ACCOUNT_SID, 401, 20003),
    (AUTH, "AC" + "9" * 32, 404, 20404),
])
def test_auth_and_account(client: httpx.Client, auth: tuple[str, str] | None, account: str,
                          status: int, code: int) -> None:
    response = client.post(messages_url(account), auth=auth or httpx.USE_CLIENT_DEFAULT,
                           data={"To": "+15005550009", "From": FROM_NUMBER, "Body": "x"})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_garbage_basic_auth_header_is_401(client: httpx.Client) -> None:
    headers = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    assert client.post(messages_url(), headers=headers).status_code == 401


@pytest.mark.parametrize(("data", "code"), [
    ({"From": FROM_NUMBER, "Body": "x"}, 21604),
    ({"To": "5005550009", "From": FROM_NUMBER, "Body": "x"}, 21211),
    ({"To": "+15005550009", "Body": "x"}, 21603),
    ({"To": "+15005550009", "From": FROM_NUMBER}, 21602),
    ({"To": "+15005550009", "From": FROM_NUMBER, "Body": "x" * 1601}, 21617),
    ({"To": "+15005550001", "From": FROM_NUMBER, "Body": "x"}, 21610),
])
def test_validation_errors(client: httpx.Client, local_twilio: LocalTwilioServer,
                           data: dict[str, str], code: int) -> None:
    response = client.post(messages_url(), auth=AUTH, data=data)
    assert (response.status_code, response.json()["code"], response.json()["status"]) == (
        400, code, 400)
    assert local_twilio.messages == []


def test_invalid_to_message_matches_twilio(client: httpx.Client) -> None:
    response = client.post(messages_url(), auth=AUTH,
                           data={"To": "12", "From": FROM_NUMBER, "Body": "x"})
    assert response.json()["message"] == "The 'To' number 12 is not a valid phone number."


def test_body_of_exactly_1600_is_accepted(client: httpx.Client) -> None:
    response = client.post(messages_url(), auth=AUTH,
                           data={"To": "+15005550009", "From": FROM_NUMBER, "Body": "x" * 1600})
    assert (response.status_code, response.json()["num_segments"]) == (201, "11")


def test_fail_next_counts_down(client: httpx.Client, local_twilio: LocalTwilioServer) -> None:
    local_twilio.fail_next(2, status=429)
    data = {"To": "+15005550009", "From": FROM_NUMBER, "Body": "x"}
    codes = [client.post(messages_url(), auth=AUTH, data=data).status_code for _ in range(3)]
    assert codes == [429, 429, 201]


def test_only_the_newest_messages_are_kept() -> None:
    """A long-running server keeps the newest ``keep`` messages; an older message is
    gone as a deleted one is (404, 20404)."""
    with LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN, callbacks=False, keep=3) as server, \
            httpx.Client(base_url=server.base_url, timeout=5) as http:
        sent = [http.post(messages_url(), auth=AUTH, data={
            "To": "+15005550009", "From": FROM_NUMBER, "Body": f"n{i}"}).json()
            for i in range(5)]
        assert [m["body"] for m in server.messages] == ["n2", "n3", "n4"]
        gone = http.get(sent[0]["uri"], auth=AUTH)
        assert (gone.status_code, gone.json()["code"]) == (404, 20404)
        assert http.get(sent[4]["uri"], auth=AUTH).json()["body"] == "n4"
    with pytest.raises(ValueError, match="keep"):
        LocalTwilioServer(ACCOUNT_SID, AUTH_TOKEN, keep=0)
    with pytest.raises(SystemExit):
        main(["--keep", "0"])


def test_main_parses_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: seen.update(kw))
    main(["--port", "8123", "--account-sid", ACCOUNT_SID, "--auth-token", "t",
          "--fail", "+15005550001=21610"])
    assert seen == {"host": "127.0.0.1", "port": 8123, "log_level": "info", "access_log": True}
    main(["--port", "8124", "--log-level", "warning"])
    assert seen == {"host": "127.0.0.1", "port": 8124, "log_level": "warning", "access_log": False}


# --- segments ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "encoding", "segments", "units"), [
    ("", "GSM-7", 1, 0),
    ("a" * 160, "GSM-7", 1, 160),
    ("a" * 161, "GSM-7", 2, 161),
    ("a" * 306, "GSM-7", 2, 306),
    ("a" * 307, "GSM-7", 3, 307),
    ("a" * 159 + "€", "GSM-7", 2, 161),   # the escape pushes it over 160
    ("a" * 158 + "€", "GSM-7", 1, 160),
    ("a" * 152 + "[" + "a" * 7, "GSM-7", 2, 161),  # the pair is not split: 152 + (2 + 7)
    ("a" * 152 + "{" + "a" * 152, "GSM-7", 3, 306),  # 152 | 2+151 | 1
    ("\f^{}\\[~]|€", "GSM-7", 1, 20),
    ("£¥èÉ@Δ", "GSM-7", 1, 6),
    ("还" * 70, "UCS-2", 1, 70),
    ("还" * 71, "UCS-2", 2, 71),
    ("还" * 134, "UCS-2", 2, 134),
    ("还" * 135, "UCS-2", 3, 135),
    ("a" * 159 + "还", "UCS-2", 3, 160),  # one non-GSM char turns the whole body into UCS-2
    ("😀" * 35, "UCS-2", 1, 70),           # an emoji is two UTF-16 units
    ("😀" * 36, "UCS-2", 2, 72),
    ("a" * 66 + "😀" + "a" * 66, "UCS-2", 3, 134),  # the pair is not split: 66 | 2+65 | 1
])
def test_count_segments(text: str, encoding: str, segments: int, units: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments, info.units) == (encoding, segments, units)
