"""Checks AWS Signature Version 4 on a request, as AWS services do, so the local stack refuses
what AWS would refuse: the local ECS (service `ecs`) and the API front (`execute-api`).

Written from the SigV4 specification: canonical request -> string to sign -> signing key
(HMAC chain over date, region, service, "aws4_request") -> signature, compared in constant time.
Only the Authorization header form is accepted (not presigned query strings): that is what
botocore and the jobtracker client send.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=15)  # AWS's window, both ways
UNRESERVED = "-_.~"  # with letters and digits, the characters SigV4 never percent-encodes
_AUTH_FIELD = re.compile(r"(Credential|SignedHeaders|Signature)=([^,\s]*)")


class Reason(Enum):
    """Why a request is refused; each caller maps these to its service's error shape."""

    MISSING = "missing"  # no Authorization header (or not SigV4)
    INCOMPLETE = "incomplete"  # SigV4, but a part is missing or host/x-amz-date is not signed
    UNKNOWN_KEY = "unknown_key"
    WRONG_SCOPE = "wrong_scope"  # signed for another service, region or day
    EXPIRED = "expired"  # X-Amz-Date more than MAX_SKEW away from now
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class Credentials:
    """One long-term key pair, shaped like IAM's (AKIA + 16, and a 40-character secret)."""

    access_key_id: str
    secret_access_key: str

    @classmethod
    def generate(cls) -> Credentials:
        key = "AKIA" + "".join(secrets.choice(string.ascii_uppercase) for _ in range(16))
        secret_alphabet = string.ascii_letters + string.digits + "/+"
        secret = "".join(secrets.choice(secret_alphabet) for _ in range(40))
        return cls(key, secret)

    def secret_for(self, access_key: str) -> str | None:
        """The lookup `verify` takes: the secret of this key, None for any other."""
        if hmac.compare_digest(access_key.encode(), self.access_key_id.encode()):
            return self.secret_access_key
        return None


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # as sent on the wire (still percent-encoded), without the query
    query: str  # the raw query string, without "?"
    headers: Iterable[tuple[str, str]]  # every header line, repeated names included
    body: bytes


@dataclass(frozen=True)
class Accepted:
    access_key: str


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    message: str  # in AWS's words


def verify(
    request: Request,
    secret_for: Callable[[str], str | None],
    service: str,
    region: str,
    now: datetime | None = None,
) -> Accepted | Rejected:
    """Who signed `request` (their access key), or why it is refused."""
    headers = _header_values(request.headers)
    authorization = headers.get("authorization", "")
    if not authorization.startswith(ALGORITHM + " "):
        return Rejected(Reason.MISSING, "Missing Authentication Token")
    fields = dict(_AUTH_FIELD.findall(authorization[len(ALGORITHM) :]))
    missing = [f for f in ("Credential", "SignedHeaders", "Signature") if not fields.get(f)]
    if missing:
        return Rejected(
            Reason.INCOMPLETE,
            " ".join(f"Authorization header requires '{f}' parameter." for f in missing),
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        return Rejected(
            Reason.INCOMPLETE,
            f"Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{fields['Credential']}'",
        )
    access_key, day, scope_region, scope_service, _ = scope
    signed = fields["SignedHeaders"].split(";")
    for required in ("host", "x-amz-date"):
        if required not in signed:
            return Rejected(
                Reason.INCOMPLETE,
                f"'{required}' must be a 'SignedHeader' in the AWS Authorization.",
            )
    secret = secret_for(access_key)
    if secret is None:
        return Rejected(
            Reason.UNKNOWN_KEY, "The security token included in the request is invalid."
        )
    if scope_service != service:
        return Rejected(
            Reason.WRONG_SCOPE, f"Credential should be scoped to correct service: '{service}'."
        )
    if scope_region != region:
        return Rejected(
            Reason.WRONG_SCOPE,
            f"Credential should be scoped to a valid region, not '{scope_region}'.",
        )
    stamp = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(stamp, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return Rejected(Reason.INCOMPLETE, f"Invalid X-Amz-Date '{stamp}': {DATE_FORMAT} wanted.")
    if day != stamp[:8]:
        return Rejected(
            Reason.WRONG_SCOPE, "Date in Credential scope does not match YYYYMMDD from X-Amz-Date."
        )
    skew = _skew(signed_at, now or datetime.now(UTC))
    if skew is not None:
        return Rejected(Reason.EXPIRED, skew)
    payload_hash = hashlib.sha256(request.body).hexdigest()
    if headers.get("x-amz-content-sha256", payload_hash) != payload_hash:
        return Rejected(
            Reason.MISMATCH,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    canonical = "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query(request.query),
            "".join(f"{name}:{headers.get(name, '')}\n" for name in signed),
            fields["SignedHeaders"],
            payload_hash,
        ]
    )
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            stamp,
            "/".join(scope[1:]),  # the credential scope: without the key id
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = signing_key(secret, day, region, service)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        return Rejected(
            Reason.MISMATCH,
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. "
            "Consult the service documentation for details.",
        )
    return Accepted(access_key)


def signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_uri(path: str) -> str:
    """Every service but S3 signs the path with dot segments resolved, then encoded once more
    (the path on the wire is already encoded: SigV4's "encode twice")."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in ("", "."):
            segments.append(segment)
    resolved = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        resolved += "/"
    return quote(resolved, safe="/" + UNRESERVED)


def canonical_query(query: str) -> str:
    """Each name and value decoded, then encoded the one SigV4 way; sorted by name, then value."""
    pairs = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _encode(value: str) -> str:
    return quote(value, safe=UNRESERVED)


def _header_values(lines: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lower-cased names; values trimmed, inner runs of spaces made one, repeats comma-joined."""
    values: dict[str, list[str]] = {}
    for name, value in lines:
        values.setdefault(name.lower().strip(), []).append(" ".join(value.split()))
    return {name: ",".join(parts) for name, parts in values.items()}


def _skew(signed_at: datetime, now: datetime) -> str | None:
    """AWS's words for a signature outside the window, or None when inside it."""
    if signed_at < now - MAX_SKEW:
        return (
            f"Signature expired: {signed_at.strftime(DATE_FORMAT)} is now earlier than "
            f"{(now - MAX_SKEW).strftime(DATE_FORMAT)} ({now.strftime(DATE_FORMAT)} - 15 min.)"
        )
    if signed_at > now + MAX_SKEW:
        return (
            f"Signature not yet current: {signed_at.strftime(DATE_FORMAT)} is still later than "
            f"{(now + MAX_SKEW).strftime(DATE_FORMAT)} ({now.strftime(DATE_FORMAT)} + 15 min.)"
        )
    return None
