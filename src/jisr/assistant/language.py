"""Understanding a question: cleaning, script and variety, Arabizi transliteration, search keys.

Nothing here is a model; every decision is a documented feature over the text, and the word
lists are data (``lexicon.json``, next to this module).

``identify(text)`` decides, in this order:

1. **Script.** Letters are counted by class: Arabic letters (``jisr.core.arabic``) against
   Latin letters. More Arabic than Latin → ``arabic``; otherwise ``latin``; no letter at all
   (empty, emoji-only, punctuation) → ``none``.
2. **Arabic script.** The normalised words (and word pairs) are looked up in the Darija and
   Gulf marker lists; the variety with more hits wins, ``msa`` when neither has one (ties
   go to Darija when the text also carries a Moroccan country marker, Gulf otherwise).
3. **Latin script.** Darija marker words (``bghit``, ``dyal``, ``khasni``) and words mixing
   letters with the Arabizi digits ``2 3 5 7 9`` (``3afak``, ``n9der``, ``7ta``) count twice
   (people who write Darija mix in French nouns, not the reverse); Darija, French and English
   marker hits are compared, French also scoring for accented letters (``é è ê à ç ù``). Ties
   between French and English go to French (the more common second language in Morocco).

The *answer language* follows: every Arabic variety and Arabizi get Arabic; French French;
English English.

``transliterate_arabizi`` leaves acronyms (``cnss``) alone, writes doubled consonants once,
reads a leading ``l`` before a consonant as the article (``lbirmi`` → ``البيرمي``), then maps
digraphs (``kh gh ch sh th dh ou``), digits (``2→ء 3→ع 5→خ 7→ح 9→ق``) and single letters;
short ``a``/``e`` inside a word are dropped (Arabic script does not write short vowels), a
leading vowel is ``ا``, and a final ``a`` is ``ة`` (``jdida``) or, in words of two or three
letters, ``ا`` (``la``, ``7ta``).
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jisr.core.arabic import contains_arabic, normalize_arabic

Script = Literal["arabic", "latin", "none"]
Variety = Literal["msa", "darija_ar", "darija_latn", "gulf", "fr", "en", "unknown"]
Language = Literal["ar", "fr", "en"]

LEXICON_PATH = Path(__file__).resolve().parent / "lexicon.json"
DIALECT_PATH = Path(__file__).resolve().parent / "dialect_msa.json"
"""Darija and Gulf words and phrases → their Modern Standard Arabic rendering (data)."""
MAX_QUESTION_CHARS = 500
"""Questions are cut to this many characters before they are analysed and embedded."""

_ARABIC_LETTER = re.compile("[\u0620-\u064a\u0671-\u06d3\u06fa-\u06ff]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f]")
_FRENCH_ACCENTS = re.compile("[éèêàçùâîôûëï]")
_ARABIZI_WORD = re.compile(r"\b(?=\w*[a-z])(?=\w*[23579])[a-z23579']{2,}\b")
_WORD = re.compile(r"[\w']+", re.UNICODE)


@dataclass(frozen=True)
class Understanding:
    """What ``identify`` found in a question."""

    text: str
    """The cleaned question (control characters removed, whitespace collapsed, cut)."""
    script: Script
    variety: Variety
    language: Language
    """The language to answer in."""
    country_hint: str | None
    """``MA`` or ``QA`` when the text names one (words such as CNIE, QID, قطر, Maroc, Rabat)."""
    country_prior: str | None
    """``country_hint``, else the country the variety points to (Darija in either script:
    ``MA``; Gulf: ``QA``), else None. A weaker signal than a named country."""
    out_of_scope_marker: bool
    """The text carries an instruction-override marker ("ignore the rules", "تجاهل")."""
    off_topic_marker: bool
    """The text names a subject outside the catalogue (weather, a recipe, a match, a joke)."""
    intents: frozenset[str]
    """``lost`` and/or ``renew`` when the text says a document was lost, stolen or damaged, or
    is to be renewed (``lexicon.json``, ``intent_lost`` and ``intent_renew``)."""
    search_text: str
    """The text BM25 searches with: Arabic normalised, Arabizi followed by its
    transliteration, a dialect question followed by the standard words of its dialect words
    (``expand``) and by its MSA rendering (``embed_text``)."""
    embed_text: str
    """The text e5 reads: MSA and French or English questions normalised; Darija and Gulf
    questions in their MSA rendering (``render_msa``: e5 reads MSA far better than dialect),
    Arabizi with its Darija words rendered in MSA and its other words in Latin letters
    (``render_arabizi_msa``). One text, one embedding: the original and the rendering
    averaged (two embeddings) scored lower on the dev set and doubled the cost."""


@functools.cache
def lexicon() -> dict[str, frozenset[str]]:
    """The marker lists of ``lexicon.json``, each entry in its comparison form."""
    raw: dict[str, list[str] | str] = json.loads(LEXICON_PATH.read_text(encoding="utf-8"))
    return {
        name: frozenset(" ".join(words(entry)) for entry in entries)
        for name, entries in raw.items()
        if not name.startswith("_") and isinstance(entries, list)
    }


@functools.cache
def expansions(dialect: str) -> dict[str, str]:
    """The ``expansions_<dialect>`` (``darija``, ``gulf``) of ``lexicon.json``: a dialect
    word → the standard words the catalogue uses; keys in their comparison form, values
    normalised."""
    raw = json.loads(LEXICON_PATH.read_text(encoding="utf-8"))[f"expansions_{dialect}"]
    return {" ".join(words(key)): normalize_arabic(value) for key, value in raw.items()}


_EXPANSION_PREFIXES = ("وال", "فال", "بال", "ال", "و", "ف", "ب", "ل")


def expand(text: str, dialect: str = "darija") -> str:
    """The standard words for the ``dialect`` words of ``text`` (``expansions``), each once,
    in the order met; a word is also looked up without the conjunction, preposition or
    article written before it (``فالبيرمي``, ``والخدام``, ``لبيرمي``)."""
    table = expansions(dialect)
    found: dict[str, None] = {}
    for token in words(text):
        stripped = [token[len(p) :] for p in _EXPANSION_PREFIXES if token.startswith(p)]
        for candidate in (token, *(c for c in stripped if len(c) >= 2)):
            if candidate in table:
                found[table[candidate]] = None
                break
    return " ".join(found)


@functools.cache
def dialect_table(dialect: str) -> dict[tuple[str, ...], str]:
    """The ``dialect`` (``darija``, ``gulf``) table of ``dialect_msa.json``: a dialect word or
    phrase (its folded words) → its MSA rendering (normalised; empty for a filler word)."""
    raw: dict[str, str] = json.loads(DIALECT_PATH.read_text(encoding="utf-8"))[dialect]
    return {tuple(words(key)): normalize_arabic(value) for key, value in raw.items() if words(key)}


@functools.cache
def dialect_vocabulary() -> frozenset[str]:
    """The Arabic words of the keys of both tables of ``dialect_msa.json`` (and their stems):
    what an Arabizi word may be read as, besides the catalogue's words."""
    found: set[str] = set()
    for dialect in ("darija", "gulf"):
        for key in dialect_table(dialect):
            for word in key:
                if contains_arabic(word) and len(word) >= 2:
                    found.update((word, stem(word)))
    return frozenset(found)


_RENDER_PREFIXES = (
    ("و", "و"),
    ("ف", "في "),
    ("ب", "ب"),
    ("ل", "ل"),
    ("وال", "و"),
    ("فال", "في "),
    ("بال", "ب"),
    ("ال", ""),
)
"""Conjunction, preposition and article written before a dialect word, and how the MSA
rendering writes them (Darija ``ف`` is ``في``); the article is kept first (``بالخدامة`` is
looked up as ``الخدامة``, a noun, before ``خدامة``)."""
_DARIJA_VERB_PREFIXES = (
    *(("كن", "ن"), ("كت", "ت"), ("كي", "ي")),
    *(("تن", "ن"), ("تت", "ت"), ("تي", "ي")),
    *(("غان", "ن"), ("غات", "ت"), ("غاي", "ي"), ("غن", "ن"), ("غت", "ت"), ("غي", "ي")),
)
"""Darija present-tense ``ك`` (``تـ`` in the east and the south) and future ``غا``/``غ``
before the person prefix (``كنخلص``, ``تنخلص`` are ``نخلص``; ``غانجدد`` is ``نجدد``)."""
MAX_PHRASE_WORDS = 3


def _first_word_forms(token: str, dialect: str) -> list[tuple[str, str]]:
    """``token`` and the words it may be without a proclitic (or Darija's present ``ك``),
    each with what the rendering writes before it."""
    forms = [(token, "")]
    for prefix, written in _RENDER_PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            forms.append((token[len(prefix) :], written))
    if dialect == "darija":
        for prefix, person in _DARIJA_VERB_PREFIXES:
            if token.startswith(prefix) and len(token) - len(prefix) >= 2:
                forms.append((person + token[len(prefix) :], ""))
    return forms


def _render(keys: list[str], shown: list[str], dialect: str) -> str:
    """``shown`` word by word, a dialect word or phrase of ``keys`` (the same words in the
    form the table is looked up in) replaced by its MSA rendering."""
    table = dialect_table(dialect)
    out: list[str] = []
    i = 0
    while i < len(keys):
        for n in range(min(MAX_PHRASE_WORDS, len(keys) - i), 0, -1):
            rest = tuple(keys[i + 1 : i + n])
            match = next(
                (
                    (form, w)
                    for form, w in _first_word_forms(keys[i], dialect)
                    if (form, *rest) in table
                ),
                None,
            )
            if match is not None:
                value = table[(match[0], *rest)]
                if value:
                    out.append(f"{match[1]}{value}")
                i += n
                break
        else:
            word = shown[i]
            if dialect == "darija" and word.startswith("فال") and len(word) >= 6:
                word = f"في {word[1:]}"  # Darija ف is في: فالضمان → في الضمان
            out.append(word)
            i += 1
    return " ".join(out)


def render_msa(text: str, dialect: str) -> str:
    """``text`` (Darija or Gulf in Arabic script) with its dialect words and phrases replaced
    by their MSA rendering (``dialect_msa.json``; longest phrase first, a word also without
    the و ف ب ل ال written before it, Darija verbs also without the present ``ك``), filler
    words left out, other words kept: ``شنو الوراق ديال الباسبور`` → ``ما الوثائق جواز
    السفر``."""
    tokens = words(text)
    return _render(tokens, tokens, dialect)


def render_arabizi_msa(text: str, vocabulary: frozenset[str] = frozenset()) -> str:
    """Arabizi ``text`` with each Darija word or phrase (recognised on its transliteration,
    ``transliterate_arabizi``) replaced by its MSA rendering, the other words (French nouns,
    acronyms, words the tables do not know) kept in Latin letters: ``bghit njded la carte``
    → ``أريد أجدد la carte``."""
    shown = words(text)
    keys = [normalize_arabic(_transliterate_word(w, vocabulary)) for w in shown]
    return _render(keys, shown, "darija")


def clean(text: str) -> str:
    """``text`` without control and format characters (newlines and tabs become spaces),
    whitespace collapsed, cut to ``MAX_QUESTION_CHARS``."""
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char in "\t\n\r\v\f":
            kept.append(" ")
        elif category in ("Cc", "Cs", "Co", "Cn"):
            continue
        else:
            kept.append(char)
    return re.sub(r"\s+", " ", "".join(kept)).strip()[:MAX_QUESTION_CHARS].strip()


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_DIALECT_LETTERS = str.maketrans("چگڤپژ", "ككفبز")
"""Letters written for dialect sounds, folded to the letter they replace (Gulf ``چ`` for
``ك``, Moroccan ``گ`` for ``ك``/``ق``, ``ڤ`` for ``ف``, ``پ`` for ``ب``, ``ژ`` for ``ز``)."""


def fold(text: str) -> str:
    """The comparison form of a word or text: Arabic normalised (dialect letters folded too),
    Latin case-folded and without accents, the Arabic definite article kept."""
    if contains_arabic(text):
        return normalize_arabic(text).translate(_DIALECT_LETTERS).casefold()
    return strip_accents(normalize_arabic(text)).casefold()


_ARABIC_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال")
_ARABIC_SUFFIXES = (
    *("هما", "كما", "ها", "هم", "هن", "كم", "نا"),
    *("ات", "ون", "ين", "تي", "ته", "ي", "ه", "ت"),
)
_DARIJA_PRESENT = ("كن", "كت", "كي")
"""Darija's present-tense ``ك`` before the person prefix: ``كنسجلو`` → ``نسجلو``."""
_LATIN_SUFFIXES = (
    *("ements", "ement", "ations", "ation", "ings", "ing", "als", "al"),
    *("ers", "er", "es", "ed", "e", "s"),
)


def stem(word: str) -> str:
    """A light stem of a folded word, for BM25: Darija's present-tense ``ك`` in words of six
    letters or more (``كنسجلو`` → ``نسجلو``; not ``كيفاش``), the Arabic article and its
    proclitics, the ``ا`` of the verbal noun ``استفعال`` (``استقدام`` → ``استقدم``, the verb
    people use), then one pronoun or plural suffix (``سيارتي`` and ``السياره`` both give
    ``سيار``); French and English plural and verb endings (``declarer`` and
    ``declaration`` give ``declar``). Stems keep at least three letters; digits and short
    words are left alone."""
    if contains_arabic(word):
        for prefix in _DARIJA_PRESENT:
            if word.startswith(prefix) and len(word) - len(prefix) >= 4:
                word = word[1:]  # كنسجلو → نسجلو
                break
        for prefix in _ARABIC_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                word = word[len(prefix) :]
                break
        if word.startswith("است") and len(word) >= 7 and word[5] == "ا":
            word = word[:5] + word[6:]  # the verbal noun استقدام → its verb استقدم
        for suffix in _ARABIC_SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                return word[: -len(suffix)]
        return word
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix in _LATIN_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


_PROCLITICS = ("و", "ف", "ب", "ل", "ك")
"""One-letter proclitics written before a word without the article: and, in (Darija), with,
to, like (``وبغيت``, ``فقطر``, ``بوفاة``, ``لاقامة``)."""
_DARIJA_VERB_MOOD = ("كا", "تا", "غا", "ك", "ت", "غ")
"""Darija present (``كا``/``تا``, ``كنخلص``, ``تنخلص``) and future (``غا``, ``غنمشي``,
``غانجدد``) prefixes, written before the person prefix ``ن``/``ت``/``ي``."""
_PRONOUNS = ("هما", "كما", "ها", "هم", "هن", "كم", "نا", "ك", "ه", "ي")


def clitic_forms(word: str) -> list[str]:
    """Other readings of a folded Arabic word without the clitics that ``stem`` leaves on
    (it strips only what is never part of a word): a one-letter proclitic (``وبغيت`` →
    ``بغيت``, ``فقطر`` → ``قطر``, ``بوفاه`` → ``وفاه``), two of them (``وبالخدمه``), the
    Darija negation ``ما…ش`` (``ماعنديش``, ``عنديش`` → ``عندي``), the Darija present and future
    prefixes (``تنخلص``, ``غانجدد`` → ``نخلص``, ``نجدد``), the genitive ``د`` before the
    article (``دالبطاقه``), and the ``ت`` of a feminine noun before a pronoun (``اقامتها`` →
    ``اقامه``); in Latin letters, Darija's article and person prefix before a French word
    (``lpermis``, ``nrenouveler``). Most plausible first; none shorter than three letters.
    What BM25 keeps of them is decided against the catalogue's words (``Index``): alone,
    they would turn ``بنك`` into ``نك``."""
    if not contains_arabic(word):
        return _latin_clitic_forms(word)
    found: list[str] = []

    def add(form: str) -> None:
        if len(form) >= 3 and form != word and form not in found:
            found.append(form)

    bare = word
    if bare.startswith("ما") and bare.endswith("ش") and len(bare) >= 6:
        bare = bare[2:-1]  # ماعنديش → عندي
        add(bare)
    elif bare.endswith("ش") and len(bare) >= 5:
        add(bare[:-1])  # عنديش → عندي (ما written apart)
    for first in _PROCLITICS:
        if bare.startswith(first):
            rest = bare[1:]
            add(rest)
            for second in ("ب", "ل", "ف", "ك"):
                if first == "و" and rest.startswith(second):
                    add(rest[1:])
    if bare.startswith("دال") and len(bare) >= 6:
        add(bare[1:])  # دالبطاقه → البطاقه
    for mood in _DARIJA_VERB_MOOD:
        if bare.startswith(mood) and bare[len(mood) : len(mood) + 1] in ("ن", "ت", "ي"):
            add(bare[len(mood) :])  # تنخلص → نخلص, غانجدد → نجدد
            break
    for pronoun in _PRONOUNS:
        if bare.endswith("ت" + pronoun) and len(bare) - len(pronoun) >= 4:
            add(bare[: -len(pronoun) - 1] + "ه")  # اقامتها → اقامه
            break
    if bare.endswith("ا") and len(bare) >= 4:
        add(bare[:-1])  # the accusative ending: سجلا → سجل, نظيرا → نظير
    for form in [bare, *found]:
        if len(form) == 4 and form[0] in "انيت":
            add(form[1:])  # the person of a verb of three letters: اصرح, نجدد → صرح, جدد
    return found


def masdar_root(word: str) -> str | None:
    """The three letters of a verbal noun of the pattern تفعيل (a stem: ``تصريح`` →
    ``صرح``, ``تجديد`` → ``جدد``, ``تسجيل`` → ``سجل``), which the person's verb carries
    (``اصرح``, ``نجدد``, ``نسجل``: ``clitic_forms``); None for any other word."""
    if len(word) == 5 and word[0] == "ت" and word[3] == "ي" and contains_arabic(word):
        return word[1:3] + word[4]
    return None


def _latin_clitic_forms(word: str) -> list[str]:
    """Darija clitics on a French word written in Latin letters: the article ``l``
    (``lpermis``, ``lcarte``) and the person prefix of a verb (``nrenouveler``,
    ``ndeclarer``, ``tlegaliser``, ``ysajal``)."""
    if len(word) < 5 or not word.isalpha() or word[0] not in "lnty" or word[1] in "aeiouy":
        return []
    return [word[1:]]


def words(text: str) -> list[str]:
    """The folded words of ``text`` (apostrophes split: ``l'extrait`` → ``l``, ``extrait``)."""
    return [w for w in _WORD.findall(fold(text).replace("'", " ").replace("_", " ")) if w]


def _carries(tokens: list[str], markers: frozenset[str]) -> bool:
    """Whether one of ``markers`` (a word, or words in a row) occurs in ``tokens``."""
    folded = f" {' '.join(tokens)} "
    return any((f" {m} " in folded) if " " in m else m in tokens for m in markers)


def _hits(tokens: list[str], markers: frozenset[str], clitics: str = "و") -> int:
    """Marker words and word pairs in ``tokens``; an Arabic word also counts without one of
    ``clitics`` before it (``وبغيت`` is ``بغيت``; for places also ``فقطر``, ``بالمغرب``)."""
    pairs = [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]
    single = sum(
        1 for t in tokens if t in markers or (t[:1] in clitics and len(t) > 3 and t[1:] in markers)
    )
    return single + sum(1 for p in pairs if p in markers)


_PLACE_CLITICS = "وفبل"
"""Letters written before a place name: و and, ف in (Darija), ب in/by, ل to."""


def country_of(tokens: list[str]) -> str | None:
    """``MA`` or ``QA`` when ``tokens`` name one country more than the other: a place,
    institution or term (``country_ma``, ``country_qa``) counts 2, a nationality
    (``nationality_ma``, ``nationality_qa``) 1, so that "a Moroccan in Qatar" is about Qatar."""
    lex = lexicon()
    ma = 2 * _hits(tokens, lex["country_ma"], _PLACE_CLITICS) + _hits(
        tokens, lex["nationality_ma"], _PLACE_CLITICS
    )
    qa = 2 * _hits(tokens, lex["country_qa"], _PLACE_CLITICS) + _hits(
        tokens, lex["nationality_qa"], _PLACE_CLITICS
    )
    return "MA" if ma > qa else "QA" if qa > ma else None


_DIGRAPHS = (
    ("kh", "خ"),
    ("gh", "غ"),
    ("ch", "ش"),
    ("sh", "ش"),
    ("th", "ث"),
    ("dh", "ذ"),
    ("ou", "و"),
    ("oo", "و"),
    ("ee", "ي"),
    ("iy", "ي"),
    ("aa", "ا"),
)
_LETTERS = {
    "2": "ء",
    "3": "ع",
    "5": "خ",
    "7": "ح",
    "9": "ق",
    "b": "ب",
    "c": "ك",
    "d": "د",
    "f": "ف",
    "g": "ك",
    "h": "ه",
    "i": "ي",
    "j": "ج",
    "k": "ك",
    "l": "ل",
    "m": "م",
    "n": "ن",
    "o": "و",
    "p": "ب",
    "q": "ق",
    "r": "ر",
    "s": "س",
    "t": "ت",
    "u": "و",
    "v": "ف",
    "w": "و",
    "x": "كس",
    "y": "ي",
    "z": "ز",
}


_ACRONYM = re.compile(r"^[b-df-hj-np-tv-xz]+$")
_DOUBLED_CONSONANT = re.compile(r"([b-df-hj-np-tv-xz])\1+")


_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "t": ("ت", "ط"),
    "d": ("د", "ض"),
    "s": ("س", "ص"),
    "h": ("ه", "ح"),
    "k": ("ك", "ق"),
    "g": ("ك", "ق", "ج"),
    "z": ("ز", "ظ"),
    "c": ("ك", "س"),
    "2": ("ء", "ا"),
    "th": ("ث", "ت"),
    "dh": ("ذ", "ض", "د"),
}
"""Other Arabic letters a Latin letter or digraph stands for (the first is the default): Latin
letters do not tell ت from ط, د from ض, س from ص, ه from ح, ك from ق (``bitaqa``/بطاقة,
``da3et``/ضاعت)."""
MAX_CANDIDATE_CHANGES = 3
"""At most this many letters of a word are read another way than the default."""
MAX_SPELLINGS = 200
"""At most this many spellings of one word are tried (fewest changes first), whatever its
length: a question of one 500-letter word costs no more than a short one."""


def _word_options(word: str, acronyms: bool = True) -> tuple[str, list[tuple[str, ...]]] | None:
    """The article and, letter by letter, the Arabic spellings of one Arabizi word (the
    default first), or None for a word left as it is (a number; an acronym, unless
    ``acronyms`` is false)."""
    word = strip_accents(word.casefold()).replace("'", "")
    if not word or word.isdigit() or (acronyms and _ACRONYM.match(word)):
        return None  # numbers and acronyms (cnss, cnie's letters stay Latin: nothing to gain)
    word = _DOUBLED_CONSONANT.sub(r"\1", word)  # "rasso", "sajjal": one letter in Arabic
    article = ""
    if len(word) >= 3 and word[0] == "l" and word[1] not in "aeiouy":
        article, word = "ال", word[1:]  # "lbirmi", "lkhedma": the Darija article l-
    digraphs = dict(_DIGRAPHS)
    options: list[tuple[str, ...]] = []
    i = 0
    while i < len(word):
        pair = word[i : i + 2]
        if pair in digraphs:
            options.append(_ALTERNATIVES.get(pair, (digraphs[pair],)))
            i += 2
            continue
        char = word[i]
        last = i == len(word) - 1
        if char in "aei" and i == 0:
            options.append(("ا",))
        elif char == "a" and last:
            options.append(("ه", "ا") if len(word) >= 4 else ("ا",))  # "jdida" جديدة, "la" لا
        elif char == "a":
            options.append(("", "ا"))  # a short vowel, or the long ا of "kifach" كيفاش
        elif char == "e":
            options.append(("",))
        elif char == "i" and not last:
            options.append(("ي", ""))
        elif char in "ou" and not last:
            options.append(("و", ""))
        else:
            options.append(_ALTERNATIVES.get(char, (_LETTERS.get(char, char),)))
        i += 1
    return article, options


def _spellings(article: str, options: list[tuple[str, ...]]) -> list[str]:
    """The spellings of a word, the default first, then with one, two… letters read another
    way (at most ``MAX_CANDIDATE_CHANGES``), at most ``MAX_SPELLINGS`` of them."""
    ambiguous = [n for n, choices in enumerate(options) if len(choices) > 1]
    out: list[str] = []
    for changes in range(min(MAX_CANDIDATE_CHANGES, len(ambiguous)) + 1):
        for positions in itertools.combinations(ambiguous, changes):
            for picks in itertools.product(*(options[n][1:] for n in positions)):
                chosen = [choices[0] for choices in options]
                for n, pick in zip(positions, picks, strict=True):
                    chosen[n] = pick
                out.append(normalize_arabic(article + "".join(chosen)))
                if len(out) >= MAX_SPELLINGS:
                    return out
    return out


def _transliterate_word(word: str, vocabulary: frozenset[str] = frozenset()) -> str:
    options = _word_options(word)
    if options is None:
        plain = strip_accents(word.casefold()).replace("'", "")
        if vocabulary and len(plain) >= 4 and _ACRONYM.match(plain):
            # letters only, no vowel: an acronym (cnss), or a word written without its
            # vowels (nkhrj نخرج, ndwz ندوز), read as such when the vocabulary knows it
            options = _word_options(plain, acronyms=False)
            assert options is not None
            known = [s for s in _spellings(*options) if s in vocabulary]
            return known[0] if known else plain
        return plain
    spellings = _spellings(*options)
    if vocabulary:
        for spelling in spellings:  # a word of the vocabulary as it is, else its stem
            if spelling in vocabulary:
                return spelling
        for spelling in spellings:
            if stem(spelling) in vocabulary:
                return spelling
    return spellings[0]


def transliterate_arabizi(text: str, vocabulary: frozenset[str] = frozenset()) -> str:
    """Arabizi (Darija in Latin letters with digits) in Arabic script, word by word.

    ``"bghit n9der njded lbirmi"`` → ``"بغيت نقدر نجدد البيرمي"``. Latin letters stand for
    several Arabic ones (``t`` for ت or ط, ``a`` for nothing or ا): with a ``vocabulary``
    (``vocabulary_of``: the Arabic words of the catalogue and of ``lexicon.json``), each word
    is spelled the first way, fewest letters read otherwise first, that the vocabulary knows
    as a word, else as a stem (``bitaqa`` → بطاقه, ``da3et`` → ضاعت), else the default
    way. Best effort: it serves
    search, never display."""
    return " ".join(_transliterate_word(w, vocabulary) for w in _WORD.findall(text))


def vocabulary_of(texts: Iterable[str]) -> frozenset[str]:
    """The Arabic words of ``texts`` and of the Arabic word lists of ``lexicon.json``, folded,
    each also as its stem (``stem``): what ``transliterate_arabizi`` checks spellings
    against."""
    found: set[str] = set()
    listed = (w for entries in lexicon().values() for w in entries)
    for text in (*texts, *listed, *expansions("darija"), *expansions("gulf")):
        for word in words(text):
            if contains_arabic(word) and len(word) >= 2:
                found.add(word)
                found.add(stem(word))
    return frozenset(found)


def intents_of(text: str) -> frozenset[str]:
    """The intents ``text`` carries (see ``Understanding.intents``), by its words (an Arabic
    word also without its conjunction و, a French one without a Darija clitic); no ``lost``
    when the text names a job (``intent_lost_job``: losing one's job is not losing a
    document)."""
    tokens = words(text)
    tokens += [t[1:] for t in tokens if t[:1] == "و" and len(t) > 3]
    tokens += [f for t in tokens for f in _latin_clitic_forms(t)]  # nrenouveler, lpermis
    lex = lexicon()
    found = {name for name in ("lost", "renew") if any(t in lex[f"intent_{name}"] for t in tokens)}
    if any(t in lex["intent_lost_job"] for t in tokens):
        found.discard("lost")  # "perte d'emploi", "فقدان الشغل": a job, not a document
    return frozenset(found)


@functools.lru_cache(maxsize=4)
def _with_dialect_words(vocabulary: frozenset[str]) -> frozenset[str]:
    return vocabulary | dialect_vocabulary() if vocabulary else vocabulary


_VARIETY_COUNTRY: dict[str, str] = {"darija_ar": "MA", "darija_latn": "MA", "gulf": "QA"}


def identify(question: str, vocabulary: frozenset[str] = frozenset()) -> Understanding:
    """The script, variety and answer language of ``question`` (see the module docstring);
    ``vocabulary`` (``vocabulary_of``) for the Arabizi transliteration."""
    text = clean(question)
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    tokens = words(text)
    lex = lexicon()
    country_hint = country_of(tokens)
    out_marker = _carries(tokens, lex["out_of_scope"])
    off_topic = _carries(tokens, lex["off_topic"])
    script: Script
    variety: Variety
    if arabic == 0 and latin == 0:
        script, variety = "none", "unknown"
    elif arabic > latin:
        script = "arabic"
        darija = _hits(tokens, lex["darija_ar"])
        gulf = _hits(tokens, lex["gulf"])
        if darija > gulf or (darija and darija == gulf and country_hint == "MA"):
            variety = "darija_ar"
        elif gulf:
            variety = "gulf"
        else:
            variety = "msa"
    else:
        script = "latin"
        lowered = text.casefold()
        arabizi = len(_ARABIZI_WORD.findall(lowered))
        darija = 2 * (_hits(tokens, lex["darija_latn"]) + arabizi)
        french = _hits(tokens, lex["fr"]) + len(_FRENCH_ACCENTS.findall(lowered))
        english = _hits(tokens, lex["en"])
        if darija > max(french, english) or (arabizi and darija >= max(french, english)):
            variety = "darija_latn"
        elif french >= english and french > 0:
            variety = "fr"
        elif english > 0:
            variety = "en"
        else:
            variety = "darija_latn" if darija else "en"
    language: Language = "fr" if variety == "fr" else "en" if variety in ("en", "unknown") else "ar"
    if variety == "unknown":
        language = "ar"
    search = normalize_arabic(text)
    if variety == "darija_latn":
        search = f"{search} {transliterate_arabizi(text, vocabulary)}"
    dialect = {"darija_ar": "darija", "darija_latn": "darija", "gulf": "gulf"}.get(variety)
    standard = expand(search, dialect) if dialect else ""
    search = f"{search} {standard}".strip()
    embed = normalize_arabic(text)
    if variety in ("darija_ar", "gulf"):
        embed = render_msa(text, "darija" if variety == "darija_ar" else "gulf") or embed
    elif variety == "darija_latn":
        embed = render_arabizi_msa(text, _with_dialect_words(vocabulary)) or embed
    if embed != normalize_arabic(text):
        search = f"{search} {embed}"
    country_prior = country_hint or _VARIETY_COUNTRY.get(variety)
    return Understanding(
        text=text,
        script=script,
        variety=variety,
        language=language,
        country_hint=country_hint,
        country_prior=country_prior,
        out_of_scope_marker=out_marker,
        off_topic_marker=off_topic,
        intents=intents_of(search),
        search_text=search,
        embed_text=embed,
    )


__all__ = [
    "MAX_QUESTION_CHARS",
    "Language",
    "Script",
    "Understanding",
    "Variety",
    "clean",
    "clitic_forms",
    "masdar_root",
    "DIALECT_PATH",
    "dialect_table",
    "dialect_vocabulary",
    "expand",
    "expansions",
    "render_arabizi_msa",
    "render_msa",
    "fold",
    "stem",
    "identify",
    "intents_of",
    "lexicon",
    "transliterate_arabizi",
    "vocabulary_of",
    "words",
]
