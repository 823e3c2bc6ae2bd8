"""``redact``: national identifiers, phone numbers and e-mail addresses, in Latin and
Arabic-Indic digits, out of the assistant's logs and of what it sends to a model."""

from __future__ import annotations

import pytest
import structlog

from jisr.assistant.redact import redact
from jisr.assistant.service import Assistant


@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        ("ma carte AB123456 est perdue", "AB123456", "[national-id]"),
        ("CNIE ab-123456", "ab-123456", "[national-id]"),
        ("بطاقتي K١٢٣٤٥٦", "K١٢٣٤٥٦", "[national-id]"),
        ("QID 28412345678", "28412345678", "[national-id]"),
        ("رقم البطاقة ٢٨٤١٢٣٤٥٦٧٨", "٢٨٤١٢٣٤٥٦٧٨", "[national-id]"),
        ("call +212 6 12 34 56 78", "+212 6 12 34 56 78", "[phone]"),
        ("appelez le 00212612345678", "00212612345678", "[phone]"),
        ("+212 (0)6 12 34 56 78 svp", "+212 (0)6 12 34 56 78", "[phone]"),
        ("tel 06 12 34 56 78", "06 12 34 56 78", "[phone]"),
        ("fixe 05.22.12.34.56", "05.22.12.34.56", "[phone]"),
        ("رقمي ٠٦١٢٣٤٥٦٧٨", "٠٦١٢٣٤٥٦٧٨", "[phone]"),
        ("رقمي +٢١٢٦١٢٣٤٥٦٧٨", "+٢١٢٦١٢٣٤٥٦٧٨", "[phone]"),
        ("my number +974 5512 3456", "+974 5512 3456", "[phone]"),
        ("رقمي ٥٥١٢٣٤٥٦", "٥٥١٢٣٤٥٦", "[phone]"),
        ("00974 44123456", "00974 44123456", "[phone]"),
        ("write to a.b+c@mail.gov.ma", "a.b+c@mail.gov.ma", "[email]"),
        ("بريدي محمد@مثال.مغرب", "محمد@مثال.مغرب", "[email]"),
        ("card 4111111111111111", "4111111111111111", "[number]"),
    ],
)
def test_each_kind_is_redacted(text: str, secret: str, placeholder: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert placeholder in redacted
    assert redacted.replace(placeholder, "") == text.replace(secret, "")


@pytest.mark.parametrize(
    "text",
    [
        "Fees: 75 MAD, 10 days, law 55-19 of 6 March 2020",
        "الرسوم ٧٥ درهم في ١٠ أيام",
        "bghit n9ad la carte CNIE f 3 iyam",
        "شهادة السكنى",
    ],
)
def test_what_is_not_personal_stays(text: str) -> None:
    assert redact(text) == text


def test_questions_are_logged_redacted(small_assistant: Assistant) -> None:
    with structlog.testing.capture_logs() as logs:
        small_assistant.ask("renouveler CNIE AB123456, tel 0612345678, moi@exemple.ma")
    (record,) = [r for r in logs if r["event"] == "assistant.ask"]
    assert "AB123456" not in record["question"] and "0612345678" not in record["question"]
    assert "moi@exemple.ma" not in record["question"]
    assert "[national-id]" in record["question"]
