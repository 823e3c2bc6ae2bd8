"""Personal data out of what the assistant logs and of what it sends to a language model.

``redact(text)`` replaces, in this order:

* e-mail addresses → ``[email]``;
* phone numbers → ``[phone]``: Morocco ``+212``/``00212`` then 9 digits (an optional ``(0)``
  or ``0`` between), national ``05``/``06``/``07`` then 8 digits; Qatar ``+974``/``00974``
  then 8 digits, local 8-digit numbers starting with 3, 4, 5, 6 or 7; digits may be grouped
  by spaces, dots, dashes or parentheses;
* national identifiers → ``[national-id]``: Qatar ID (QID, 11 digits starting with 2 or 3),
  Moroccan CNIE (one or two Latin letters then 5 to 7 digits, ``AB123456``, ``AB-123456``);
* any other run of 9 or more digits → ``[number]`` (account, card and file numbers).

Digits may be Latin (``0-9``), Arabic-Indic (``٠-٩``) or extended Arabic-Indic (``۰-۹``):
the patterns run on a copy whose digits are made Latin one character for one, and the
matched spans are replaced in the original text, which is otherwise left as it was.
"""

from __future__ import annotations

import re

from jisr.core.arabic import western_digits

_D = r"[0-9]"
_SEP = r"[\s.\-()]?"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"), "[email]"),
    # Morocco, international: +212 6 12 34 56 78, 00212-612345678, +212 (0)6 12 34 56 78
    (
        re.compile(
            rf"(?<![\w+])(?:\+|00)\s?212{_SEP}(?:\(0\)\s?|0)?[5-8](?:{_SEP}{_D}){{8}}(?!\w)"
        ),
        "[phone]",
    ),
    # Qatar, international: +974 5512 3456
    (re.compile(rf"(?<![\w+])(?:\+|00)\s?974{_SEP}{_D}(?:{_SEP}{_D}){{7}}(?!\w)"), "[phone]"),
    # Morocco, national: 06 12 34 56 78, 0612345678, 05.22.12.34.56
    (re.compile(rf"(?<![\w+])0[5-8](?:{_SEP}{_D}){{8}}(?!\w)"), "[phone]"),
    # Qatar ID: 11 digits, first 2 or 3 (century of birth)
    (re.compile(rf"(?<!\w)[23]{_D}{{10}}(?!\w)"), "[national-id]"),
    # Moroccan CNIE: AB123456, A123456, ab-123456
    (re.compile(rf"(?<!\w)[A-Za-z]{{1,2}}-?{_D}{{5,7}}(?!\w)"), "[national-id]"),
    # Qatar, local: 5512 3456, 44 12 34 56
    (re.compile(rf"(?<![\w+])[3-7]{_D}(?:{_SEP}{_D}){{6}}(?!\w)"), "[phone]"),
    # anything else that long is an account, card or file number
    (re.compile(rf"{_D}{{9,}}"), "[number]"),
)


def redact(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers, national identifiers and long numbers
    replaced by placeholders (see the module docstring)."""
    for pattern, placeholder in _PATTERNS:
        latin = western_digits(text)  # one character for one: spans stay the same
        if len(latin) != len(text):  # pragma: no cover - western_digits maps 1:1
            latin = text
        pieces: list[str] = []
        last = 0
        for match in pattern.finditer(latin):
            pieces.append(text[last : match.start()])
            pieces.append(placeholder)
            last = match.end()
        if pieces:
            pieces.append(text[last:])
            text = "".join(pieces)
    return text


__all__ = ["redact"]
