"""Name keys: one normalised form per name, so that spelling variants find each other.

The register stores two keys per person, both ``given family`` as space-separated tokens:
``name_key_ar`` (the Arabic-script name) and ``name_key_latin`` (its Latin transliteration).
A query is turned into tokens with the same function, and a person matches when each query
token starts one of the key's tokens (see ``service.search_persons``). Keys are lossy on
purpose: they are only for finding, never for display.

Arabic (``arabic_name_key``): ``jisr.core.arabic.normalize_arabic`` (hamza forms, alef
maqsura, ta marbuta, tatweel, harakat, digits), punctuation removed, then the particles
``عبد``, ``ابو``, ``بن`` and a detached ``ال`` are joined to the next word, so ``عبد القادر``
and ``عبدالقادر`` give the same key (as do ``آل ثاني`` and ``ال ثاني``).

Latin (``latin_name_key``), for each word, in this order:

1. lower case, accents stripped (NFKD), apostrophes, hyphens and dots become spaces;
2. the article as a separate word is dropped (``al``, ``el``, ``ul`` and the assimilated
   ``ad ar as at az ash ach ed er es et ez``): ``El Amrani`` = ``Al-Amrani`` = ``Amrani``;
3. ``abd`` (``abdel``, ``abdul``…), ``ben``/``bin``/``ibn``, ``abu``/``abou``/``bou`` are
   joined to the next word
   (``Ben Ali`` = ``Benali``) and a word starting ``abdel``/``abdul``/``abdal``/``abdou``/
   ``abder``/``abdes``… is folded to ``abd`` + the rest (``Abdelkader`` = ``Abd al-Qadir``);
4. consonant spellings folded: ``dj``→``j``, ``ch``/``sh``→``sh``, ``ph``→``f``, ``th``→``t``,
   ``dh``→``d``, ``q``/``ck``→``k``, ``ou`` before a vowel → ``w`` (``Oualid`` = ``Walid``);
5. a final ``h`` after a vowel is dropped (``Fatimah`` = ``Fatima``), doubled letters
   collapse (``Mohammed`` = ``Mohamed``);
6. vowels are dropped after the first letter, and a leading vowel becomes ``a``
   (``Muhammad`` = ``Mohamed`` = ``mhmd``; ``Youssef`` = ``Yusuf`` = ``ysf``;
   ``Fatima`` = ``Fatema``; ``Ilyas`` = ``Elias``); ``y`` counts as a vowel except first.

A fused article (``Elamrani``, ``Alkuwari``) is not split: it cannot be told apart from a
name that starts with these letters. ``normalize_arabic``, ``arabic_name_key`` and
``normalize_latin`` are idempotent; the Latin key itself is a phonetic code (like Soundex)
and is not meant to be keyed again.
"""

from __future__ import annotations

import re
import unicodedata

from jisr.core.arabic import contains_arabic, normalize_arabic

_AR_PARTICLES = frozenset({"عبد", "ابو", "بن", "ال"})
_AR_PUNCTUATION = re.compile(r"[^\w\s]|_")

_ARTICLES = frozenset("al el ul il ad ar as at az ash ach ed er es et ez".split())
_JOINED = frozenset(
    "abd abdel abdul abdal abdoul abdou abdu abder abdes ben bin ibn abu abou bou".split()
)
_ABD = re.compile(r"^abd(?:oul|el|ul|al|ou|er|es|ed|en|u|e|a)(?=[a-z]{3})")
_SEPARATORS = re.compile(r"['’ʼʻ`´\-.‐-―]+")
_NOT_LETTER = re.compile(r"[^a-z\s]")
_FOLDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"dj"), "j"),
    (re.compile(r"ch|sh"), "\x00"),  # placeholder so that "sh" is not folded again by "h"
    (re.compile(r"ph"), "f"),
    (re.compile(r"th"), "t"),
    (re.compile(r"dh"), "d"),
    (re.compile(r"ck|q"), "k"),
    (re.compile(r"ou(?=[aeiy])"), "w"),
    (re.compile(r"(?<=[aeiouy])h$"), ""),
    (re.compile(r"(.)\1+"), r"\1"),
)
_LATIN_EXTRA = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d"})
_VOWELS = frozenset("aeiouy")


def arabic_name_key(*parts: str) -> str:
    """The Arabic search key of a name given in one or more parts."""
    text = _AR_PUNCTUATION.sub(" ", normalize_arabic(" ".join(parts)))
    return " ".join(_join_particles(text.split(), _AR_PARTICLES))


def normalize_latin(text: str) -> str:
    """Rule 1 alone: lower case, no accents, separators as spaces, letters only (idempotent)."""
    text = unicodedata.normalize("NFKD", text.lower().translate(_LATIN_EXTRA))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(_NOT_LETTER.sub("", _SEPARATORS.sub(" ", text)).split())


def latin_name_key(*parts: str) -> str:
    """The Latin search key of a name given in one or more parts (rules 1–6 above)."""
    words = [w for w in normalize_latin(" ".join(parts)).split() if w not in _ARTICLES]
    return " ".join(_latin_word(w) for w in _join_particles(words, _JOINED))


def name_key(*parts: str) -> str:
    """The key in the script of ``parts``: Arabic when they hold Arabic letters."""
    text = " ".join(parts)
    return arabic_name_key(text) if contains_arabic(text) else latin_name_key(text)


def _join_particles(words: list[str], particles: frozenset[str]) -> list[str]:
    joined: list[str] = []
    pending = ""
    for word in words:
        if word in particles:
            pending += word
            continue
        joined.append(pending + word)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def _latin_word(word: str) -> str:
    word = _ABD.sub("abd", word)
    for pattern, replacement in _FOLDS:
        word = pattern.sub(replacement, word)
    word = word.replace("\x00", "S")  # keep "sh" one consonant until the vowels are gone
    if not word:
        return word
    head = "a" if word[0] in _VOWELS - {"y"} else word[0]
    tail = "".join(c for c in word[1:] if c not in _VOWELS)
    return (head + tail).replace("S", "sh")


__all__ = ["arabic_name_key", "latin_name_key", "name_key", "normalize_latin"]
