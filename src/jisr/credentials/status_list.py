"""IETF Token Status List (draft-ietf-oauth-status-list), JWT form.

A status list is a byte array in which entry ``i`` takes ``bits`` bits (1, 2, 4 or 8),
least significant bits first: entry ``i`` lives in byte ``i * bits // 8`` at bit offset
``(i * bits) % 8``. It is published zlib-compressed (DEFLATE with the zlib wrapper, level 9)
and base64url-encoded as ``{"bits": b, "lst": "…"}`` inside a Status List Token: a JWT with
``typ: statuslist+jwt`` whose ``sub`` is the list's URI, with ``iat``, ``exp`` and ``ttl``.
A credential points at its entry with ``"status": {"status_list": {"idx": i, "uri": …}}``.

Values: ``0`` valid, ``1`` invalid (revoked), ``2`` suspended (two bits or more).

``StatusListCache`` is the verifier side: it fetches a token through a pluggable ``fetch``
(HTTP, or the node's own database), verifies it with the issuer keys the verifier trusts,
checks ``typ``, ``sub`` and ``exp``, and keeps the decoded list for ``ttl`` seconds (capped by
the verifier's own maximum), so a revocation reaches every verifier within one TTL.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any

from jisr.credentials.sdjwt import b64url, b64url_decode

STATUS_LIST_TYP = "statuslist+jwt"
VALID, INVALID, SUSPENDED = 0, 1, 2
ALLOWED_BITS = (1, 2, 4, 8)


def _check_bits(bits: int) -> None:
    if bits not in ALLOWED_BITS:
        raise ValueError(f"a status list uses 1, 2, 4 or 8 bits per entry, not {bits}")


def get_status(data: bytes, index: int, bits: int = 1) -> int:
    """The status of entry ``index`` in the raw (uncompressed) list."""
    _check_bits(bits)
    position = index * bits
    byte = position // 8
    if index < 0 or byte >= len(data):
        raise IndexError(f"status index {index} is outside the list")
    return (data[byte] >> (position % 8)) & ((1 << bits) - 1)


def set_status(data: bytearray, index: int, value: int, bits: int = 1) -> None:
    """Set entry ``index`` of the raw list to ``value``."""
    _check_bits(bits)
    if not 0 <= value < (1 << bits):
        raise ValueError(f"status {value} does not fit in {bits} bits")
    position = index * bits
    byte = position // 8
    if index < 0 or byte >= len(data):
        raise IndexError(f"status index {index} is outside the list")
    shift = position % 8
    mask = ((1 << bits) - 1) << shift
    data[byte] = (data[byte] & ~mask & 0xFF) | (value << shift)


def encode_list(data: bytes, bits: int = 1) -> dict[str, Any]:
    """``{"bits": …, "lst": base64url(zlib(data))}``."""
    _check_bits(bits)
    return {"bits": bits, "lst": b64url(zlib.compress(bytes(data), 9))}


MAX_LIST_BYTES = 16 * 1024 * 1024


def decode_list(status_list: dict[str, Any]) -> tuple[bytes, int]:
    """The raw bytes and bits of a ``status_list`` object; ``ValueError`` when malformed."""
    bits = status_list.get("bits")
    lst = status_list.get("lst")
    if not isinstance(bits, int) or not isinstance(lst, str):
        raise ValueError("a status list has an integer 'bits' and a string 'lst'")
    _check_bits(bits)
    decompressor = zlib.decompressobj()
    try:
        data = decompressor.decompress(b64url_decode(lst), MAX_LIST_BYTES)
    except (zlib.error, ValueError) as error:
        raise ValueError("'lst' is not base64url of zlib data") from error
    if decompressor.unconsumed_tail:
        raise ValueError("the status list is too large")
    return data, bits


def token_payload(
    *, uri: str, issuer: str, data: bytes, bits: int, iat: int, ttl: int, validity: int
) -> dict[str, Any]:
    """The claims of a Status List Token (sign it with ``typ: statuslist+jwt``)."""
    return {
        "sub": uri,
        "iss": issuer,
        "iat": iat,
        "exp": iat + validity,
        "ttl": ttl,
        "status_list": encode_list(data, bits),
    }


# --- the verifier's cache --------------------------------------------------------------------


class StatusUnavailable(Exception):
    """The status could not be established; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


Fetch = Callable[[str], str]
# Verifies a Status List Token and returns its payload (or raises): the verifier's trust.
TokenVerifier = Callable[[str], dict[str, Any]]


@dataclass
class _Entry:
    data: bytes
    bits: int
    until: float


class StatusListCache:
    """Status lists fetched through ``fetch(uri) -> token``, verified, cached for their ttl.

    ``max_ttl`` caps the ``ttl`` a list announces; ``clock`` (seconds) is injectable.
    """

    def __init__(
        self,
        fetch: Fetch,
        verify_token: TokenVerifier,
        *,
        max_ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._fetch = fetch
        self._verify = verify_token
        self._max_ttl = max_ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = Lock()

    def status(self, uri: str, index: int) -> int:
        now = self._clock()
        entry = self._entries.get(uri)
        if entry is None or entry.until <= now:
            entry = self._load(uri, now)
        try:
            return get_status(entry.data, index, entry.bits)
        except IndexError as error:
            raise StatusUnavailable("status-index-out-of-range", str(error)) from error

    def invalidate(self, uri: str | None = None) -> None:
        with self._lock:
            if uri is None:
                self._entries.clear()
            else:
                self._entries.pop(uri, None)

    def _load(self, uri: str, now: float) -> _Entry:
        try:
            token = self._fetch(uri)
        except Exception as error:  # a fetch may fail in any way: report, never crash
            raise StatusUnavailable(
                "status-list-unavailable", f"the status list {uri} cannot be fetched: {error}"
            ) from error
        try:
            payload = self._verify(token)
        except Exception as error:
            raise StatusUnavailable(
                "status-list-invalid", f"the status list {uri} does not verify: {error}"
            ) from error
        if payload.get("sub") != uri:
            raise StatusUnavailable(
                "status-list-invalid", f"the status list token is for {payload.get('sub')!r}"
            )
        exp = payload.get("exp")
        if isinstance(exp, int | float) and exp <= now:
            raise StatusUnavailable("status-list-expired", f"the status list {uri} has expired")
        try:
            data, bits = decode_list(payload.get("status_list") or {})
        except ValueError as error:
            raise StatusUnavailable("status-list-invalid", str(error)) from error
        ttl = payload.get("ttl")
        keep = min(float(ttl), self._max_ttl) if isinstance(ttl, int | float) else self._max_ttl
        if isinstance(exp, int | float):
            keep = min(keep, float(exp) - now)
        entry = _Entry(data=data, bits=bits, until=now + max(keep, 0.0))
        with self._lock:
            self._entries[uri] = entry
        return entry


__all__ = [
    "ALLOWED_BITS",
    "INVALID",
    "STATUS_LIST_TYP",
    "SUSPENDED",
    "VALID",
    "StatusListCache",
    "StatusUnavailable",
    "decode_list",
    "encode_list",
    "get_status",
    "set_status",
    "token_payload",
]
