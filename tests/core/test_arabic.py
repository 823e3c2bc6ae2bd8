"""Arabic normalisation: each rule, and properties over arbitrary text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jisr.core.arabic import (
    contains_arabic,
    fold_letters,
    normalize_arabic,
    strip_diacritics,
    western_digits,
)


@pytest.mark.parametrize(
    "variant,expected",
    [
        ("أحمد", "احمد"),
        ("إبراهيم", "ابراهيم"),
        ("آمنة", "امنه"),
        ("ٱلله", "الله"),
        ("مؤمن", "مومن"),
        ("عائشة", "عايشه"),
        ("الزهراء", "الزهرا"),
        ("موسى", "موسي"),
        ("فاطمة", "فاطمه"),
        ("مُحَمَّد", "محمد"),
        ("محـــمد", "محمد"),
        ("كريم‎", "كريم"),
        ("یوسف", "يوسف"),
        ("ﻻ", "لا"),
        ("  فاطمة \t الزهراء ", "فاطمه الزهرا"),
        ("٢٠٢٤ و ۱۹۹۰", "2024 و 1990"),
        ("Fatima", "Fatima"),
    ],
)
def test_rules(variant: str, expected: str) -> None:
    assert normalize_arabic(variant) == expected


def test_parts() -> None:
    assert strip_diacritics("كَتَبَ") == "كتب"
    assert fold_letters("أإآؤئىةء") == "اااوييه"
    assert fold_letters("ى") == "ي"
    assert western_digits("٠١٢٣٤٥٦٧٨٩") == "0123456789"
    assert contains_arabic("Fatima فاطمة")
    assert not contains_arabic("Fatima 123")


ARABIC = st.text(
    alphabet=st.characters(
        min_codepoint=0x0600, max_codepoint=0x06FF, include_characters=" \u200f\ufeffabc"
    ),
    max_size=40,
)


@given(ARABIC)
def test_idempotent(text: str) -> None:
    once = normalize_arabic(text)
    assert normalize_arabic(once) == once


@given(st.text(max_size=40))
def test_idempotent_on_any_text(text: str) -> None:
    once = normalize_arabic(text)
    assert normalize_arabic(once) == once


@given(ARABIC)
def test_no_diacritic_or_variant_survives(text: str) -> None:
    result = normalize_arabic(text)
    assert not set(result) & set("أإآٱؤئءىةـ\u064b\u064e\u0650\u0651\u0652")
