"""Property tests: any subset of claims disclosed verifies and shows exactly that subset;
any tampered Disclosure fails. Plus the Token Status List codec and its TTL cache."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jisr.credentials import sdjwt
from jisr.credentials.status_list import (
    INVALID,
    StatusListCache,
    StatusUnavailable,
    decode_list,
    encode_list,
    get_status,
    set_status,
    token_payload,
)

from .conftest import AUD, CLAIMS, ISSUER, NONCE, STATUS_URI, Issuer

ISSUER_FIXED = Issuer()
TOKEN = ISSUER_FIXED.issue()
VERIFIER = ISSUER_FIXED.verifier()
NAMES = sorted(CLAIMS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(NAMES)))
def test_any_subset_disclosed_verifies(names: set[str]) -> None:
    shown = ISSUER_FIXED.present(TOKEN, [(n,) for n in sorted(names)])
    result = VERIFIER.verify(shown, nonce=NONCE, aud=AUD)
    assert result.valid, result.to_dict()
    assert set(NAMES) & result.claims.keys() == names
    for name in names:
        assert result.claims[name] == CLAIMS[name]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_tampered_disclosure_fails(data: st.DataObject) -> None:
    parts = TOKEN.split("~")
    position = data.draw(st.integers(1, len(parts) - 2))
    decoded: list[Any] = json.loads(sdjwt.b64url_decode(parts[position]))
    slot = data.draw(st.integers(0, len(decoded) - 1))
    replacement = data.draw(st.one_of(st.text(max_size=8), st.integers(), st.booleans()))
    if decoded[slot] == replacement:
        replacement = [replacement]
    decoded[slot] = replacement
    parts[position] = sdjwt.b64url(sdjwt.json_bytes(decoded))
    result = VERIFIER.verify("~".join(parts))
    assert not result.valid
    assert result.check("disclosures").reason in {
        "unreferenced-disclosure",
        "malformed-disclosure",
    }


def test_present_all_and_structure() -> None:
    payload = sdjwt.decode_segment(TOKEN.split(".")[1])
    assert payload["_sd_alg"] == "sha-256"
    assert payload["_sd"] == sorted(payload["_sd"])
    assert len(payload["_sd"]) > len(NAMES)  # decoys
    assert {"iss", "exp", "vct", "cnf", "status"} <= payload.keys()
    assert "given_name" not in payload
    assert sdjwt.present(TOKEN) == TOKEN


def test_reserved_names_refused() -> None:
    with pytest.raises(ValueError):
        sdjwt.build_payload({sdjwt.SD("_sd"): 1})


# --- Token Status List -----------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_status_codec_round_trip(bits: int) -> None:
    data = bytearray(64)
    set_status(data, 5, 1, bits)
    set_status(data, 17, (1 << bits) - 1, bits)
    decoded, found = decode_list(encode_list(bytes(data), bits))
    assert found == bits
    assert get_status(decoded, 5, bits) == 1
    assert get_status(decoded, 17, bits) == (1 << bits) - 1
    assert get_status(decoded, 6, bits) == 0


def test_revocation_is_seen_within_one_ttl() -> None:
    issuer = Issuer()
    data = bytearray(16)
    now = [1_000_000.0]
    fetched = []

    def fetch(uri: str) -> str:
        fetched.append(uri)
        payload = token_payload(
            uri=uri,
            issuer=ISSUER,
            data=bytes(data),
            bits=1,
            iat=int(now[0]),
            ttl=300,
            validity=86400,
        )
        from jisr.core.crypto import jws

        return jws.sign_compact(payload, issuer.key, typ="statuslist+jwt")

    verifier = issuer.verifier(status=None)
    cache = StatusListCache(fetch, verifier.verify_status_token, max_ttl=600, clock=lambda: now[0])
    assert cache.status(STATUS_URI, 7) == 0
    set_status(data, 7, INVALID)  # the issuer revokes
    now[0] += 299
    assert cache.status(STATUS_URI, 7) == 0  # still cached
    now[0] += 2
    assert cache.status(STATUS_URI, 7) == INVALID  # after one TTL, seen
    assert len(fetched) == 2


def test_status_list_signed_by_a_stranger_is_refused() -> None:
    issuer, stranger = Issuer(), Issuer()

    def fetch(uri: str) -> str:
        from jisr.core.crypto import jws

        payload = token_payload(
            uri=uri,
            issuer=ISSUER,
            data=bytes(2),
            bits=1,
            iat=int(time.time()),
            ttl=60,
            validity=600,
        )
        return jws.sign_compact(payload, stranger.key, typ="statuslist+jwt")

    cache = StatusListCache(fetch, issuer.verifier().verify_status_token)
    with pytest.raises(StatusUnavailable) as refused:
        cache.status(STATUS_URI, 1)
    assert refused.value.reason == "status-list-invalid"


@pytest.mark.parametrize("text", ["ab+/", "ab/c", "a b", "abcde", "ab=="])
def test_base64url_is_decoded_strictly(text: str) -> None:
    """``+``, ``/``, spaces, padding and impossible lengths are not base64url."""
    with pytest.raises(ValueError):
        sdjwt.b64url_decode(text)
