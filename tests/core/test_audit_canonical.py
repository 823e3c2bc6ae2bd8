"""The audit log's canonical encoding: the fast path (orjson) writes exactly what ``json``
writes, so every hash of every chain stays the same whichever path computed it."""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jisr.core.audit import _canonical, canonical_json, record_hash

orjson = pytest.importorskip("orjson")

REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def reference_hash(**fields: Any) -> str:
    values = [
        _canonical.HASH_FORMAT,
        fields["chain"],
        fields["seq"],
        fields["created_at"],
        fields["event"],
        fields["actor"],
        fields["subject"],
        fields["data"],
        fields["prev_hash"],
    ]
    return hashlib.sha256(COMPACT.encode(values).encode("utf-8")).hexdigest()


def fields(data: str, *, seq: int = 7, actor: str | None = "MA/GOV/X/Y") -> dict[str, Any]:
    return {
        "chain": "message-log",
        "seq": seq,
        "created_at": "2026-11-29T19:00:00.000000Z",
        "event": "request.in",
        "actor": actor,
        "subject": None,
        "data": data,
        "prev_hash": "0" * 64,
    }


def every_code_point() -> list[str]:
    """Every Unicode scalar value, in strings of 4,096 (surrogates cannot be UTF-8)."""
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    return ["".join(points[i : i + 4096]) for i in range(0, len(points), 4096)]


def test_every_code_point_is_written_as_json_writes_it() -> None:
    for text in every_code_point():
        value = {"k": text, text[:8]: 1}
        assert canonical_json(value) == REFERENCE.encode(value)
        assert record_hash(**fields(text)) == reference_hash(**fields(text))


@pytest.mark.parametrize("code", [*range(0x20), 0x22, 0x5C, 0x7F, 0x2028, 0x2029, 0xFEFF])
def test_control_and_special_characters_alone(code: int) -> None:
    text = f"a{chr(code)}b"
    assert canonical_json({"s": text}) == REFERENCE.encode({"s": text})
    assert record_hash(**fields(text)) == reference_hash(**fields(text))


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": 2, "é": 3, "Z": None, "ж": True, "𝒜": False, "": "empty key"},
        {"n": 2**63 - 1, "m": -(2**63)},
        {"big": 2**63, "small": -(2**63) - 1},  # beyond 64 bits: json's path
        {"f": 1e16, "g": 0.1, "h": 1e-05},  # floats: json's path (orjson spells 1e16)
        {"nested": {"b": [1, 2, {"z": 1, "a": 2}]}, "a": []},
        {1: "int key", 3: "another"},  # json turns keys into text; orjson would refuse
        {"enum": _canonical.FindingKind.CHANGED, "bool": True},  # a str subclass
        {},
    ],
)
def test_values_off_the_fast_path_are_written_as_before(value: dict[Any, Any]) -> None:
    assert canonical_json(value) == REFERENCE.encode(value)


def test_lone_surrogates_are_refused_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        canonical_json({"s": "\ud800"}).encode("utf-8")
    with pytest.raises(UnicodeEncodeError):
        record_hash(**fields("\udfff"))


def test_seq_beyond_64_bits_hashes_as_json_writes_it() -> None:
    for seq in (2**63 - 1, 2**63, 2**70):
        assert record_hash(**fields("x", seq=seq)) == reference_hash(**fields("x", seq=seq))


JSON_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=40)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    JSON_TEXT,
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.dictionaries(JSON_TEXT, PLAIN, max_size=8))
def test_any_flat_object_is_written_as_json_writes_it(value: dict[str, Any]) -> None:
    assert canonical_json(value) == REFERENCE.encode(value)


@given(JSON_TEXT, st.one_of(st.none(), JSON_TEXT), st.integers(0, 2**64))
def test_any_record_hashes_as_json_writes_it(data: str, actor: str | None, seq: int) -> None:
    assert record_hash(**fields(data, seq=seq, actor=actor)) == reference_hash(
        **fields(data, seq=seq, actor=actor)
    )
