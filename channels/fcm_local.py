"""A local FCM HTTP v1 server and OAuth2 token endpoint, for tests and demos.

It checks what Google would: ``POST /token`` takes the JWT-bearer grant a service
account signs, verifies its RS256 signature against the account's public key and its
claims (iss, aud, scope, iat/exp), and issues an access token;
``POST /v1/projects/{project}/messages:send`` wants that token as a bearer, the right
project, and a message FCM would accept, and answers with FCM's body shapes (errors in
``{"error": {"code", "message", "status", "details": [...]}}``). Faults can be injected:
the next N sends answering 429/500/503 or hanging, tokens that are unregistered.

    with LocalFcmServer("demo-project") as srv:
        key_file = srv.make_service_account(tmp_path / "sa.json")
        FcmPush(key_file, base_url=srv.base_url)

or standalone: ``python -m channels.fcm_local --port 8098 --key-out var/fcm-local.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from channels.twilio_local import BackgroundServer

GOOGLE_TOKEN_AUDIENCE: Final = "https://oauth2.googleapis.com/token"
JWT_GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ACCEPTED_SCOPES: Final = frozenset(
    {
        "https://www.googleapis.com/auth/firebase.messaging",
        "https://www.googleapis.com/auth/cloud-platform",
    }
)
MAX_ASSERTION_LIFETIME: Final = 3600
CLOCK_SKEW: Final = 300
FCM_ERROR_TYPE: Final = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
STATUS_BY_HTTP: Final = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
ERROR_CODE_BY_HTTP: Final = {429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}
UNAUTHENTICATED_TEXT: Final = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def make_service_account(
    token_uri: str, project_id: str, path: Path, client_email: str | None = None
) -> Path:
    """Write a throwaway service-account key file (RSA 2048) that google-auth loads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    email = client_email or f"arrears-push@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "universe_domain": "googleapis.com",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return path


def fcm_error(
    status: int,
    message: str,
    *,
    error_code: str | None = None,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A response with the error body FCM (and Google APIs generally) send."""
    details: list[dict[str, Any]] = []
    if error_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    if field:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        )
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_BY_HTTP.get(status, "UNKNOWN"),
    }
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@dataclass(frozen=True)
class Fault:
    status: int = 500
    retry_after: int | None = None
    hang_seconds: float = 0.0


@dataclass(frozen=True)
class _Account:
    client_email: str
    key_id: str
    public_key: rsa.RSAPublicKey


class LocalFcm:
    """State and ASGI app of the fake. Thread-safe: tests poke it from another thread."""

    def __init__(self, project_id: str, *, token_lifetime: int = 3600):
        self.project_id = project_id
        self.token_lifetime = token_lifetime
        self.unregistered: set[str] = set()
        self.invalid_tokens: set[str] = set()
        self._accounts: dict[str, _Account] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._messages: list[dict[str, Any]] = []
        self._grants: list[dict[str, Any]] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.app: ASGIApp = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self._send, methods=["POST"]),
            ]
        )

    # --- test-facing API -------------------------------------------------------------

    def trust(self, key_file: Path) -> None:
        """Accept JWTs signed by the service account in ``key_file``."""
        info = json.loads(key_file.read_text())
        private = serialization.load_pem_private_key(info["private_key"].encode(), None)
        assert isinstance(private, rsa.RSAPrivateKey)
        account = _Account(info["client_email"], info["private_key_id"], private.public_key())
        with self._lock:
            self._accounts[account.client_email] = account

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Accepted sends: ``{"name", "message", "client_email"}``."""
        with self._lock:
            return [dict(m) for m in self._messages]

    @property
    def grants(self) -> list[dict[str, Any]]:
        """The verified claims of every access token issued."""
        with self._lock:
            return list(self._grants)

    def fail_next(self, n: int = 1, *, status: int = 503, retry_after: int | None = None) -> None:
        """The next ``n`` sends answer ``status`` (429, 500 or 503, in FCM's shape)."""
        with self._lock:
            self._faults.extend([Fault(status=status, retry_after=retry_after)] * n)

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        """The next ``n`` sends wait ``seconds``, then are accepted as usual."""
        with self._lock:
            self._faults.extend([Fault(status=0, hang_seconds=seconds)] * n)

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._grants.clear()
            self._faults.clear()
            self._tokens.clear()
        self.unregistered.clear()
        self.invalid_tokens.clear()

    # --- OAuth2 token endpoint -------------------------------------------------------

    async def _token(self, request: Request) -> JSONResponse:
        form = await request.form()
        if form.get("grant_type") != JWT_GRANT_TYPE:
            return oauth_error(
                "unsupported_grant_type", f"Invalid grant_type: {form.get('grant_type', '')}"
            )
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            return oauth_error("invalid_request", "Missing required parameter: assertion")
        own_uri = str(request.url.replace(query=""))
        claims_or_error = self._verify(assertion, {GOOGLE_TOKEN_AUDIENCE, own_uri})
        if isinstance(claims_or_error, JSONResponse):
            return claims_or_error
        token = "ya29.local-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (claims_or_error["iss"], time.time() + self.token_lifetime)
            self._grants.append(claims_or_error)
        return JSONResponse(
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    def _verify(self, assertion: str, audiences: set[str]) -> dict[str, Any] | JSONResponse:
        try:
            header, claims, signing_input, signature = _split_jwt(assertion)
        except ValueError:
            return oauth_error("invalid_grant", "Invalid JWT: malformed assertion.")
        with self._lock:
            account = self._accounts.get(str(claims.get("iss")))
        if header.get("alg") != "RS256":
            return oauth_error("invalid_grant", "Invalid JWT: unsupported algorithm.")
        if account is None:
            return oauth_error("invalid_grant", "Invalid grant: account not found")
        if header.get("kid", account.key_id) != account.key_id:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        try:
            account.public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return oauth_error("invalid_grant", "Invalid JWT Signature.")
        return _check_claims(claims, audiences)

    # --- messages:send ----------------------------------------------------------------

    async def _send(self, request: Request) -> JSONResponse:
        raw = await request.body()  # read first: a hang below happens after FCM has it
        fault = self._pop_fault()
        if fault is not None and fault.hang_seconds:
            await asyncio.sleep(fault.hang_seconds)
        elif fault is not None:
            return _fault_response(fault)
        client_email = self._bearer(request.headers.get("Authorization"))
        if client_email is None:
            return fcm_error(
                401,
                UNAUTHENTICATED_TEXT,
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        project = request.path_params["project"]
        if project != self.project_id:
            return fcm_error(
                403,
                f"Permission 'cloudmessaging.messages.create' denied on "
                f"resource '//cloudresourcemanager.googleapis.com/projects/"
                f"{project}' (or it may not exist).",
            )
        try:
            body = validate_send_body(raw)
        except FcmInvalid as exc:
            return fcm_error(400, str(exc), error_code=exc.error_code, field=exc.field)
        return self._deliver(body, client_email)

    def _deliver(self, body: dict[str, Any], client_email: str) -> JSONResponse:
        message = body["message"]
        token = message.get("token")
        if token in self.invalid_tokens:
            return fcm_error(
                400,
                "The registration token is not a valid FCM registration token",
                error_code="INVALID_ARGUMENT",
            )
        if token in self.unregistered:
            return fcm_error(404, "Requested entity was not found.", error_code="UNREGISTERED")
        if body.get("validate_only"):
            return JSONResponse({"name": f"projects/{self.project_id}/messages/fake_message_id"})
        name = (
            f"projects/{self.project_id}/messages/"
            f"0:{int(time.time() * 1000)}%{secrets.token_hex(8)}"
        )
        with self._lock:
            self._messages.append({"name": name, "message": message, "client_email": client_email})
        return JSONResponse({"name": name})

    def _bearer(self, header: str | None) -> str | None:
        if not header or not header.startswith("Bearer "):
            return None
        with self._lock:
            issued = self._tokens.get(header[7:].strip())
        if issued is None or issued[1] <= time.time():
            return None
        return issued[0]

    def _pop_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None


def _fault_response(fault: Fault) -> JSONResponse:
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    text = {
        429: "Quota exceeded for quota metric 'Send requests'.",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
    }.get(fault.status, "Error")
    return fcm_error(
        fault.status, text, error_code=ERROR_CODE_BY_HTTP.get(fault.status), headers=headers
    )


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _split_jwt(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, body, sig = assertion.split(".")
        header, claims = json.loads(_b64url(head)), json.loads(_b64url(body))
        signature = _b64url(sig)
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("malformed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("malformed JWT")
    return header, claims, f"{head}.{body}".encode("ascii"), signature


def _check_claims(claims: dict[str, Any], audiences: set[str]) -> dict[str, Any] | JSONResponse:
    if claims.get("aud") not in audiences:
        return oauth_error("invalid_grant", "Invalid JWT: audience is not the token endpoint.")
    scopes = set(str(claims.get("scope", "")).split())
    if not scopes & ACCEPTED_SCOPES:
        return oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
    iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        return oauth_error("invalid_grant", "Invalid JWT: iat and exp are required.")
    if (
        iat > now + CLOCK_SKEW
        or exp <= now - CLOCK_SKEW
        or exp <= iat
        or exp - iat > MAX_ASSERTION_LIFETIME
    ):
        return oauth_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token "
            "(60 minutes) and in a reasonable timeframe. Check your iat and exp "
            "values in the JWT claim.",
        )
    return claims


# --- what FCM accepts in a messages:send body ----------------------------------------------

MESSAGE_FIELDS: Final = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "fcmOptions",
        "token",
        "topic",
        "condition",
    }
)
TARGETS: Final = ("token", "topic", "condition")
NOTIFICATION_FIELDS: Final = frozenset({"title", "body", "image"})
TTL: Final = re.compile(r"^\d+(\.\d{1,9})?s$")
MAX_PAYLOAD: Final = 4096


class FcmInvalid(ValueError):
    """The body is not something FCM accepts (400 INVALID_ARGUMENT)."""

    def __init__(
        self, message: str, *, field: str | None = None, error_code: str | None = "INVALID_ARGUMENT"
    ):
        super().__init__(message)
        self.field = field
        self.error_code = error_code


def validate_send_body(raw: bytes) -> dict[str, Any]:
    """The parsed body, or ``FcmInvalid`` saying what FCM would say."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FcmInvalid(
            "Invalid JSON payload received. Unexpected token.", error_code=None
        ) from None
    if not isinstance(body, dict):
        raise FcmInvalid("Invalid JSON payload received. Expected an object.", error_code=None)
    _no_unknown(body, {"message", "validate_only", "validateOnly"}, "")
    message = body.get("message")
    if not isinstance(message, dict):
        raise FcmInvalid("Recipient of the message is not set.", field="message")
    _no_unknown(message, MESSAGE_FIELDS, "message")
    targets = [name for name in TARGETS if message.get(name) not in (None, "")]
    if not targets:
        raise FcmInvalid("Recipient of the message is not set.", field="message")
    if len(targets) > 1:
        raise FcmInvalid(
            f"Invalid value at 'message' (oneof), oneof field 'target' is already "
            f"set. Cannot set '{targets[1]}'",
            field="message",
            error_code=None,
        )
    _string(message[targets[0]], f"message.{targets[0]}")
    _string_map(message.get("data", {}), "message.data", reserved=True)
    notification = message.get("notification", {})
    _object(notification, "message.notification")
    _no_unknown(notification, NOTIFICATION_FIELDS, "message.notification")
    for key, value in notification.items():
        _string(value, f"message.notification.{key}")
    _check_android(message.get("android", {}))
    _check_apns(message.get("apns", {}))
    size = len(json.dumps([message.get("data", {}), notification]).encode())
    if size > MAX_PAYLOAD:
        raise FcmInvalid("Request contains an invalid argument.")
    return body


def _check_android(android: Any) -> None:
    _object(android, "message.android")
    priority = android.get("priority", "normal")
    if not isinstance(priority, str) or priority.lower() not in {"normal", "high"}:
        raise FcmInvalid(
            f"Invalid value at 'message.android.priority' "
            f"(type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority), "
            f'"{priority}"',
            field="message.android.priority",
            error_code=None,
        )
    ttl = android.get("ttl", "0s")
    if not isinstance(ttl, str) or not TTL.match(ttl):
        raise FcmInvalid(
            f"Invalid value at 'message.android.ttl' (type.googleapis.com/"
            f'google.protobuf.Duration), "{ttl}"',
            field="message.android.ttl",
            error_code=None,
        )
    _string_map(android.get("data", {}), "message.android.data", reserved=True)


def _check_apns(apns: Any) -> None:
    _object(apns, "message.apns")
    _string_map(apns.get("headers", {}), "message.apns.headers")
    _object(apns.get("payload", {}), "message.apns.payload")


def _no_unknown(obj: dict[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    for name in obj:
        if name not in allowed:
            at = f" at '{where}'" if where else ""
            raise FcmInvalid(
                f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
                field=where or None,
                error_code=None,
            )


def _object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise FcmInvalid(
            f"Invalid value at '{where}' (TYPE_MESSAGE), {json.dumps(value)}",
            field=where,
            error_code=None,
        )


def _string(value: Any, where: str) -> None:
    if not isinstance(value, str):
        raise FcmInvalid(
            f"Invalid value at '{where}' (TYPE_STRING), {json.dumps(value)}",
            field=where,
            error_code=None,
        )


def _string_map(value: Any, where: str, *, reserved: bool = False) -> None:
    _object(value, where)
    for index, (key, item) in enumerate(value.items()):
        _string(item, f"{where}[{index}].value")
        if reserved and (key in {"from", "gcm", "message_type"} or key.startswith("google")):
            raise FcmInvalid(f"Invalid data payload key: {key}", field=f"{where}[{index}].key")


class LocalFcmServer(BackgroundServer):
    """``LocalFcm`` on 127.0.0.1 on a free port: ``.base_url``, ``.token_uri``,
    ``.messages``, ``.unregistered``, ``.fail_next(...)``, ``.hang_next(...)``."""

    def __init__(
        self,
        project_id: str,
        *,
        service_account: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: int = 3600,
    ):
        self.fcm = LocalFcm(project_id, token_lifetime=token_lifetime)
        super().__init__(self.fcm.app, host=host, port=port)
        if service_account is not None:
            self.fcm.trust(service_account)

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def project_id(self) -> str:
        return self.fcm.project_id

    def make_service_account(self, path: Path) -> Path:
        """A new key file whose ``token_uri`` is this server, trusted by it."""
        make_service_account(self.token_uri, self.fcm.project_id, path)
        self.fcm.trust(path)
        return path

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.fcm.messages

    @property
    def grants(self) -> list[dict[str, Any]]:
        return self.fcm.grants

    @property
    def unregistered(self) -> set[str]:
        return self.fcm.unregistered

    @property
    def invalid_tokens(self) -> set[str]:
        return self.fcm.invalid_tokens

    def fail_next(self, n: int = 1, *, status: int = 503, retry_after: int | None = None) -> None:
        self.fcm.fail_next(n, status=status, retry_after=retry_after)

    def hang_next(self, n: int = 1, *, seconds: float = 5.0) -> None:
        self.fcm.hang_next(n, seconds=seconds)

    def revoke_tokens(self) -> None:
        self.fcm.revoke_tokens()

    def clear(self) -> None:
        self.fcm.clear()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m channels.fcm_local", description="Local FCM HTTP v1 API and token endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--project", default="arrears-local")
    parser.add_argument(
        "--key-out",
        type=Path,
        default=Path("var/fcm-local-service-account.json"),
        help="where to write the service-account key it trusts",
    )
    parser.add_argument("--unregistered", action="append", default=[], metavar="TOKEN")
    args = parser.parse_args(argv)
    fake = LocalFcm(args.project)
    fake.unregistered.update(args.unregistered)
    base_url = f"http://{args.host}:{args.port}"
    fake.trust(make_service_account(f"{base_url}/token", args.project, args.key_out))
    print(
        f"local FCM on {base_url} (project {args.project}); set ARREARS_FCM_BASE_URL to it "
        f"and ARREARS_FCM_CREDENTIALS_FILE={args.key_out}"
    )
    uvicorn.run(fake.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
