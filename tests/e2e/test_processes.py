"""Every server of the stack listens on loopback only, and the rasa-sdk 3.21 action
server (Python 3.11) serves the rasa 3.6.21 server (Python 3.10)."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.e2e.conftest import RASA_TOKEN, Stack


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on ``port`` (from /proc/net/tcp*)."""
    found: set[str] = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            if family == socket.AF_INET:
                found.add(socket.inet_ntop(family, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(family, words))
    return found


def test_servers_bind_to_loopback_only(stack: Stack) -> None:
    for name, port in stack.ports.items():
        addresses = listening_addresses(port)
        assert addresses, f"{name} is not listening on {port}"
        assert addresses <= {"127.0.0.1", "::1"}, f"{name} listens on {addresses}"


def test_action_server_and_rasa_versions(stack: Stack) -> None:
    rasa = httpx.get(f"http://127.0.0.1:{stack.ports['rasa']}/version", timeout=10).json()
    assert rasa["version"] == "3.6.21"
    actions = httpx.get(f"http://127.0.0.1:{stack.ports['actions']}/actions", timeout=10).json()
    names = {a["name"] for a in actions}
    assert {"action_tell_amount_due", "action_handoff", "action_session_start"} <= names
    status = httpx.get(
        f"http://127.0.0.1:{stack.ports['rasa']}/status", params={"token": RASA_TOKEN}, timeout=10
    )
    assert status.status_code == 200
    unauthorised = httpx.get(f"http://127.0.0.1:{stack.ports['rasa']}/status", timeout=10)
    assert unauthorised.status_code == 401
