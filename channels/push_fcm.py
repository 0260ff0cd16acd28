"""Push notifications through Firebase Cloud Messaging's HTTP v1 API.

``POST {base}/v1/projects/{project_id}/messages:send`` with an OAuth2 bearer token minted
from a service account by google-auth. Three details shape this module:

* google-auth is synchronous (``requests`` underneath), so the token refresh runs in a
  worker thread behind an ``asyncio.Lock``; the token is reused until
  ``REFRESH_MARGIN`` before it expires, so a burst of sends costs one token request.
* The refresh posts a signed JWT to the ``token_uri`` of the service-account JSON, which
  is how tests and the demo point it at a local server (``channels.fcm_local``).
* FCM puts its own error code in ``error.details[].errorCode`` (``UNREGISTERED``,
  ``QUOTA_EXCEEDED``, ...) and the canonical one in ``error.status`` (``NOT_FOUND``,
  ``RESOURCE_EXHAUSTED``, ...); errors carry the FCM code when there is one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import google.auth.exceptions
import google.auth.transport.requests
import httpx
import requests
from google.oauth2 import service_account

from bot.settings import Settings, SettingsError, env_name
from channels.base import (
    ChannelError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://fcm.googleapis.com"
SCOPES: Final = ("https://www.googleapis.com/auth/firebase.messaging",)
REFRESH_MARGIN: Final = dt.timedelta(minutes=5)
DEFAULT_TITLE: Final = "You have a new message"
FCM_ERROR_TYPE: Final = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE: Final = "type.googleapis.com/google.rpc.BadRequest"
# Data keys FCM keeps for itself ("from", "gcm", anything starting with "google").
RESERVED_DATA_KEYS: Final = frozenset({"from", "gcm", "message_type", "notification"})

# Codes that mean the registration token itself is dead: the caller should deactivate
# it. FCM's token-management guide names UNREGISTERED, and INVALID_ARGUMENT only "if you
# are certain that the message payload is valid"; so INVALID_ARGUMENT alone is not here,
# but when FCM says the *token* is what is invalid the error carries
# ``address_effect="invalid"`` (which ``bot.delivery`` already acts on).
DEACTIVATE_CODES: Final = frozenset({"UNREGISTERED"})


class FcmTransientError(TransientChannelError):
    """FCM could not take the message now; ``retry_after`` is its Retry-After, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's ``requests`` transport with our timeouts instead of its 120 s."""

    def __init__(self, timeout: tuple[float, float]):
        super().__init__(requests.Session())
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        return super().__call__(
            url,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout or self._timeout,
            **kwargs,
        )


class FcmPush:
    """Outbound push through FCM HTTP v1. ``message.to`` is the device registration
    token; ``message.metadata["deep_link"]`` (the web chat URL) goes into the data
    payload. Close it with ``aclose()`` (or ``async with``)."""

    name = "push"

    def __init__(
        self,
        credentials_file: str | Path,
        project_id: str | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        default_title: str = DEFAULT_TITLE,
    ):
        self.credentials = service_account.Credentials.from_service_account_file(
            str(credentials_file), scopes=list(SCOPES)
        )
        self.project_id = project_id or self.credentials.project_id
        if not self.project_id:
            raise ValueError("FCM project id: not given and not in the service-account file")
        self.url = f"{base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self.default_title = default_title
        connect_timeout = min(connect_timeout, timeout)
        self._auth_request = _TimedRequest((connect_timeout, timeout))
        self._token_lock = asyncio.Lock()
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=connect_timeout))

    @classmethod
    def from_settings(cls, settings: Settings) -> FcmPush:
        """Build from ``fcm_credentials_file``, ``fcm_project_id``, ``fcm_base_url``."""
        credentials_file = getattr(settings, "fcm_credentials_file", None)
        if not credentials_file:
            raise SettingsError(
                f"setting {env_name('fcm_credentials_file')} is required but not set"
            )
        return cls(
            credentials_file,
            getattr(settings, "fcm_project_id", None),
            base_url=getattr(settings, "fcm_base_url", None) or DEFAULT_BASE_URL,
            timeout=settings.provider_timeout_seconds,
        )

    # --- sending -------------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        body = self.build_body(message)
        token = await self.access_token()
        response = await self._post(body, token)
        if response.status_code == 401 and fcm_error_code(_json(response)) is None:
            # Our access token was refused (revoked, or expired early): FCM did not take
            # the message, so one retry with a fresh token cannot duplicate it.
            if self.credentials.token == token:  # not already replaced by another send
                self.credentials.token = None
            response = await self._post(body, await self.access_token())
        if response.status_code != 200:
            raise error_from_response(response)
        payload = _json(response)
        name = payload.get("name") if isinstance(payload, dict) else None
        if not isinstance(name, str):
            raise OutcomeUnknownError(
                f"FCM answered 200 without a message name: {response.text[:200]!r}"
            )
        return SendResult(provider_message_id=name, status="sent", raw=payload)

    def build_body(self, message: OutboundMessage) -> dict[str, Any]:
        """The ``messages:send`` request body for ``message``."""
        data = data_payload(message.metadata)
        data.setdefault("kind", "reminder")
        notification = {"title": message.subject or self.default_title, "body": message.text}
        return {
            "message": {
                "token": message.to,
                "notification": notification,
                "data": data,
                "android": {"priority": "high"},
                "apns": {
                    "headers": {"apns-priority": "10"},
                    "payload": {"aps": {"sound": "default"}},
                },
            }
        }

    async def _post(self, body: dict[str, Any], token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            return await self._http.post(self.url, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientChannelError(f"cannot reach FCM: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise OutcomeUnknownError(
                f"FCM request may have been accepted ({type(exc).__name__}: {exc}); "
                "do not resend blindly"
            ) from exc

    # --- the access token ---------------------------------------------------------------

    async def access_token(self) -> str:
        """A bearer token, refreshed in a worker thread when missing or about to expire."""
        async with self._token_lock:
            if self._needs_refresh():
                await asyncio.to_thread(self._refresh)
            token = self.credentials.token
        assert isinstance(token, str)
        return token

    def _needs_refresh(self) -> bool:
        expiry = self.credentials.expiry  # naive UTC, as google-auth keeps it
        if self.credentials.token is None or expiry is None:
            return True
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return bool(expiry - REFRESH_MARGIN <= now)

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(self._auth_request)
        except google.auth.exceptions.TransportError as exc:
            raise TransientChannelError(
                f"cannot reach the OAuth token endpoint: {exc}", code="token_endpoint_unreachable"
            ) from exc
        except google.auth.exceptions.RefreshError as exc:
            raise _refresh_error(exc) from exc

    async def aclose(self) -> None:
        await self._http.aclose()
        self._auth_request.session.close()

    async def __aenter__(self) -> FcmPush:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# --- payload and errors ------------------------------------------------------------------


def data_payload(metadata: Mapping[str, Any]) -> dict[str, str]:
    """FCM data values must be strings: scalars are stringified, containers become JSON,
    ``None`` and FCM's reserved keys are dropped."""
    data: dict[str, str] = {}
    for key, value in metadata.items():
        key = str(key)
        if value is None or key in RESERVED_DATA_KEYS or key.lower().startswith("google"):
            continue
        if isinstance(value, bool):
            data[key] = "true" if value else "false"
        elif isinstance(value, str | int | float | Decimal):
            data[key] = str(value)
        else:
            data[key] = json.dumps(value, default=str, ensure_ascii=False)
    return data


def fcm_error_code(payload: Any) -> str | None:
    """The ``errorCode`` of the FcmError detail of an FCM error body, if any."""
    details = _error(payload).get("details")
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            return str(code) if code else None
    return None


def _token_is_at_fault(error: Mapping[str, Any]) -> bool:
    """True when an INVALID_ARGUMENT is about the registration token, not the payload."""
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or []:
                if isinstance(violation, dict) and violation.get("field") == "message.token":
                    return True
    return "registration token" in str(error.get("message", "")).lower()


def error_from_response(response: httpx.Response) -> ChannelError:
    """429 and 5xx may be retried (honouring Retry-After); other errors are final."""
    status = response.status_code
    error = _error(_json(response))
    code = fcm_error_code({"error": error}) or error.get("status") or f"HTTP_{status}"
    text = f"FCM {status} {code}: {error.get('message') or response.text[:200]}"
    if status == 429 or status >= 500:
        return FcmTransientError(
            text, code=str(code), status=status, retry_after=_retry_after(response)
        )
    effect = None
    if code in DEACTIVATE_CODES or (code == "INVALID_ARGUMENT" and _token_is_at_fault(error)):
        effect = "invalid"
    return PermanentChannelError(text, code=str(code), status=status, address_effect=effect)


def _refresh_error(exc: google.auth.exceptions.RefreshError) -> ChannelError:
    """The token endpoint refused: ``invalid_grant`` and friends are a configuration
    problem (final); what google-auth marks retryable is transient."""
    info = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    code = str(info.get("error") or "token_refresh_failed")
    text = f"OAuth token refresh failed: {exc.args[0] if exc.args else exc}"
    if getattr(exc, "retryable", False):
        return TransientChannelError(text, code=code)
    return PermanentChannelError(text, code=code)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: FCM sends seconds, so leave it to the caller's backoff


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error(payload: Any) -> dict[str, Any]:
    error = payload.get("error") if isinstance(payload, dict) else None
    return error if isinstance(error, dict) else {}
