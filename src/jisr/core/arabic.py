"""Arabic text normalisation for search and comparison, shared by every block.

The same word is written in several ways: with or without short vowels (harakat), with a
stretched letter (tatweel), with or without a hamza on its alef, with a final ``ى`` or ``ي``,
``ة`` or ``ه``, with Arabic-Indic or Western digits, in Unicode presentation forms. Search must
see through all of these; display never does (we keep what the person wrote and only compare
normalised *keys*).

``normalize_arabic`` applies, in this order:

1. invisible marks removed: ZWJ/ZWNJ, bidi marks (LRM, RLM, ALM, embeddings, isolates), BOM
   (first: a mark between two combining signs would otherwise keep NFKC from ordering them,
   and the second pass would order them differently — found by the hypothesis test);
2. Unicode NFKC: presentation forms (``ﻻ``, ``ﷲ``…) become ordinary letters;
3. diacritics removed: harakat and tanwin (U+064B–U+065F), the superscript alef (U+0670),
   honorific signs and small vowels (U+0610–U+061A), Quranic annotation marks
   (U+06D6–U+06ED) and tatweel (U+0640);
4. letters folded: ``أ إ آ ٱ`` → ``ا``; ``ؤ`` → ``و``; ``ئ`` → ``ي``; a lone ``ء`` is dropped;
   ``ى`` → ``ي``; ``ة`` → ``ه``; Persian/Urdu ``ک`` → ``ك`` and ``ی`` → ``ي``;
5. digits: Arabic-Indic (``٠``–``٩``) and extended Arabic-Indic (``۰``–``۹``) → ``0``–``9``;
6. whitespace collapsed to single spaces and trimmed.

The result is idempotent (``normalize_arabic(normalize_arabic(x)) == normalize_arabic(x)``).
Latin letters are left as they are; callers that need case folding do it themselves.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"
        "\u2066\u2067\u2068\u2069\ufeff",
    )
)
_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_LETTERS = str.maketrans(
    {
        "\u0623": "\u0627",  # أ → ا
        "\u0625": "\u0627",  # إ → ا
        "\u0622": "\u0627",  # آ → ا
        "\u0671": "\u0627",  # ٱ → ا
        "\u0624": "\u0648",  # ؤ → و
        "\u0626": "\u064a",  # ئ → ي
        "\u0621": None,  # ء dropped
        "\u0649": "\u064a",  # ى → ي
        "\u0629": "\u0647",  # ة → ه
        "\u06a9": "\u0643",  # ک → ك
        "\u06cc": "\u064a",  # ی → ي
    }
)
_DIGITS = str.maketrans(
    {
        **{chr(0x0660 + n): str(n) for n in range(10)},
        **{chr(0x06F0 + n): str(n) for n in range(10)},
    }
)
_SPACES = re.compile(r"\s+")
_ARABIC_LETTER = re.compile("[\u0620-\u064a\u0671-\u06d3\u06fa-\u06ff]")


def strip_invisible(text: str) -> str:
    """``text`` without zero-width joiners, bidi control marks and BOMs."""
    return text.translate(_INVISIBLE)


def strip_diacritics(text: str) -> str:
    """``text`` without harakat, tanwin, shadda, sukun, Quranic marks and tatweel."""
    return _DIACRITICS.sub("", text)


def fold_letters(text: str) -> str:
    """Hamza forms, alef maqsura, ta marbuta and Persian letters folded (rule 4)."""
    return text.translate(_LETTERS)


def western_digits(text: str) -> str:
    """Arabic-Indic and extended Arabic-Indic digits replaced by ``0``–``9``."""
    return text.translate(_DIGITS)


def contains_arabic(text: str) -> bool:
    """Whether ``text`` holds at least one Arabic letter."""
    return _ARABIC_LETTER.search(text) is not None


def normalize_arabic(text: str) -> str:
    """The search form of ``text`` (every rule of the module docstring, idempotent)."""
    text = strip_invisible(text)
    text = unicodedata.normalize("NFKC", text)
    text = strip_diacritics(text)
    text = fold_letters(text)
    text = western_digits(text)
    return _SPACES.sub(" ", text).strip()


__all__ = [
    "contains_arabic",
    "fold_letters",
    "normalize_arabic",
    "strip_diacritics",
    "strip_invisible",
    "western_digits",
]
