"""National identifiers: both written forms, tolerant input, and each refusal."""

from __future__ import annotations

import pytest

from jisr.identity.errors import InvalidNationalId
from jisr.identity.identifiers import (
    NationalId,
    example,
    normalize_national_id,
    parse_national_id,
    qid_birth_year,
)


@pytest.mark.parametrize(
    "text",
    ["MA:AB123456", "MAAB123456", "ma:ab123456", " ma ab 123456 ", "MA-AB-123456", "MA:AB١٢٣٤٥٦"],
)
def test_moroccan_forms(text: str) -> None:
    parsed = parse_national_id(text)
    assert parsed == NationalId("MA", "AB123456")
    assert parsed.compact == "MAAB123456"
    assert parsed.display == str(parsed) == "MA:AB123456"


@pytest.mark.parametrize("number", ["J123456", "AB12345", "Z99999", "BE654321"])
def test_moroccan_shapes(number: str) -> None:
    assert parse_national_id(f"MA:{number}").number == number


@pytest.mark.parametrize("text", ["QA:28435612345", "qa28435612345", "QA 284 356 12345"])
def test_qatari_forms(text: str) -> None:
    assert normalize_national_id(text) == "QA28435612345"


def test_qid_birth_year() -> None:
    assert qid_birth_year("28435612345") == 1984
    assert qid_birth_year("30563400001") == 2005


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "must start with a country code"),
        ("FR:AB123456", "must start with a country code"),
        ("AB123456", "must start with a country code"),
        ("MA:", "not a Moroccan CNIE"),
        ("MA:ABC12345", "not a Moroccan CNIE"),
        ("MA:AB1234", "not a Moroccan CNIE"),
        ("MA:AB1234567", "not a Moroccan CNIE"),
        ("MA:123456", "not a Moroccan CNIE"),
        ("MA:AB12345X", "not a Moroccan CNIE"),
        ("MA:AB%12345", "not a Moroccan CNIE"),
        ("QA:2843561234", "not a Qatari ID"),
        ("QA:284356123456", "not a Qatari ID"),
        ("QA:18435612345", "starting with 2 or 3"),
        ("QA:2843561234X", "not a Qatari ID"),
        ("QA:39963412345", "in the future"),
        ("QA:28400012345", "nationality code is 000"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidNationalId) as refused:
        parse_national_id(text)
    assert reason in str(refused.value)
    assert refused.value.status_code == 400
    assert refused.value.code == "invalid-national-id"


def test_examples() -> None:
    assert example("MA") == "MA:AB123456"
    assert parse_national_id(example("QA")).compact == "QA28435612345"
