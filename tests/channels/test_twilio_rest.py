"""The lean Twilio REST client against raw HTTP servers: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.twilio_rest import ConnectFailed, NoAnswer, TwilioRestClient, form_encode

SID, TOKEN = "AC" + "1" * 32, "token"
OK_BODY = json.dumps({"sid": "SM" + "2" * 32, "status": "queued", "num_segments": "1"}).encode()

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server running ``handler`` per connection; yields its URL and a list that
    gets one entry per accepted connection."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    pairs = (line.partition(":") for line in lines[1:] if line)
    headers = {name.lower(): value.strip() for name, _, value in pairs}
    body = await reader.readexactly(int(headers["content-length"]))
    return lines[0], headers, body


def client(url: str, **kw: float) -> TwilioRestClient:
    return TwilioRestClient(url, SID, TOKEN, timeout=kw.get("timeout", 2.0),
                            connect_timeout=1.0, max_idle=kw.get("max_idle", 10.0))  # fmt: skip


def answer(body: bytes, *extra: str, status: str = "201 CREATED") -> bytes:
    head = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    if not any(h.lower().startswith(("transfer-encoding", "content-length")) for h in extra):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_request_is_twilios_form_post_with_basic_auth() -> None:
    seen: list[tuple[str, dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen.append(await read_request(reader))
            writer.write(answer(OK_BODY))

    async with raw_server(handler) as (url, connections):
        api = client(url)
        fields = {"To": "+15005550009", "From": "+15005550006", "Body": "Hi & bye: 100%",
                  "StatusCallback": "https://x.example/cb?a=1"}  # fmt: skip
        for _ in range(3):
            got = await api.create_message(fields)
            assert got.status == 201 and got.body["sid"].startswith("SM")
        await api.aclose()
    assert len(connections) == 1  # kept alive
    line, headers, body = seen[0]
    assert line == f"POST /2010-04-01/Accounts/{SID}/Messages.json HTTP/1.1"
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert headers["authorization"] == f"Basic {credentials}"
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert headers["host"] == url.removeprefix("http://")
    assert dict(parse_qsl(body.decode(), strict_parsing=True)) == fields


async def test_chunked_and_connection_close_answers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        half = len(OK_BODY) // 2
        chunks = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (
            half, OK_BODY[:half], len(OK_BODY) - half, OK_BODY[half:])
        writer.write(answer(chunks, "Transfer-Encoding: chunked"))
        await read_request(reader)
        writer.write(answer(OK_BODY, "Connection: close"))
        await writer.drain()

    async with raw_server(handler) as (url, connections):
        api = client(url)
        assert (await api.create_message({"To": "1"})).body == json.loads(OK_BODY)
        assert (await api.create_message({"To": "2"})).body == json.loads(OK_BODY)
        # the server said close: the third message goes on a new connection
        assert (await api.create_message({"To": "3"})).body == json.loads(OK_BODY)
        await api.aclose()
    assert len(connections) == 2


async def test_an_error_answer_is_returned_with_its_json() -> None:
    error = json.dumps({"code": 21211, "message": "bad To", "status": 400}).encode()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(error, status="400 BAD REQUEST"))

    async with raw_server(handler) as (url, _):
        api = client(url)
        got = await api.create_message({"To": "x"})
        await api.aclose()
    assert (got.status, got.body["code"]) == (400, 21211)


@pytest.mark.parametrize(
    "reply",
    [b"", b"HTTP/1.1 201 CREATED\r\nContent-Length: 50\r\n\r\n{\"sid\"", b"garbage\r\n\r\n",
     b"HTTP/1.1 20x OK\r\n\r\n"],
    ids=["closed-without-answer", "cut-short", "not-http", "bad-status"],
)  # fmt: skip
async def test_after_the_write_a_broken_answer_is_no_answer(reply: bytes) -> None:
    """The request reached the server: whatever went wrong, it may have been accepted."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(reply)
        await writer.drain()

    async with raw_server(handler) as (url, _):
        api = client(url)
        with pytest.raises(NoAnswer):
            await api.create_message({"To": "x"})
        await api.aclose()


async def test_a_silent_server_times_out_as_no_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handler) as (url, _):
        api = client(url, timeout=0.2)
        with pytest.raises(NoAnswer):
            await api.create_message({"To": "x"})
        await api.aclose()


async def test_refused_connection_never_left() -> None:
    async with raw_server(read_request) as (url, _):  # a port that was free a moment ago
        pass
    api = client(url)
    with pytest.raises(ConnectFailed):
        await api.create_message({"To": "x"})
    await api.aclose()


async def test_idle_or_closed_connections_are_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(OK_BODY))  # keep-alive promised, then the server hangs up
        await writer.drain()

    async with raw_server(handler) as (url, connections):
        api = client(url)
        await api.create_message({"To": "1"})
        await asyncio.sleep(0.1)  # the close arrives while the connection is idle
        await api.create_message({"To": "2"})  # a fresh connection, not the closed one
        assert len(connections) == 2

    async def keep(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(OK_BODY))

    async with raw_server(keep) as (url, connections):
        api = client(url, max_idle=0.05)
        await api.create_message({"To": "1"})
        await asyncio.sleep(0.1)  # idle longer than max_idle
        await api.create_message({"To": "2"})
        await api.create_message({"To": "3"})  # right after: reused
        await api.aclose()
    assert len(connections) == 2


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        TwilioRestClient("ftp://api.twilio.com", SID, TOKEN, timeout=1, connect_timeout=1)
    https = TwilioRestClient("https://api.twilio.com", SID, TOKEN, timeout=1, connect_timeout=1)
    assert (https.port, https.ssl is not None) == (443, True)
    assert b"Host: api.twilio.com\r\n" in https._head


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), st.text(max_size=60), max_size=5))
def test_form_encode_is_urlencode(fields: dict[str, str]) -> None:
    assert form_encode(fields) == urlencode(fields)


def test_form_encode_examples() -> None:
    fields = {"Body": "您好 $5 + 10% & done~_.-", "To": "+15005550009", "Empty": ""}
    assert form_encode(fields) == urlencode(fields)
    assert parse_qs(form_encode(fields)) == {k: [v] for k, v in fields.items() if v}
