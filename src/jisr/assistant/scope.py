"""Whether a question is for the catalogue at all: ``outside(understood, best_category=...)``.

The assistant answers questions about the procedures of its catalogue and nothing else. Before
the scores are read, the question itself is checked, in this order (word lists are data, in
``lexicon.json``; every entry is compared in its folded form, ``language.words``; an Arabic
word is also read without the clitic written before it, ``و ف ب ل`` and the article, and an
Arabizi word without its article ``l``):

1. **An instruction to the assistant** (``instruction``), whatever else the question names:

   * an override verb in the imperative (``out_of_scope_override``: ignore, forget, disregard,
     oublie, تجاهل, انس, نسى, ignori) followed within a few words by what it overrides
     (``out_of_scope_override_targets``: rules, instructions, consignes, التعليمات, القواعد,
     l9awanin), or, when the verb opens a clause, by "all" or "everything"
     (``out_of_scope_override_all``: everything, tout, كلشي, kolchi);
   * a phrase that only addresses an assistant (``out_of_scope``: "system prompt", "you are
     now", "developer mode", "tu es maintenant", "من دابا نتا", "بدون قيود");
   * a role to play, when it opens a clause (``out_of_scope_roleplay``: act as, pretend to be,
     fais comme si, تخيل انك, دير راسك);
   * an order to state a fee (``out_of_scope_say``: say, dis, قل, قول, goul, opening a clause
     or after "and"/"just", followed within three words by ``out_of_scope_that``: that, que,
     ان, بلي, bli, then by a number or ``out_of_scope_claim``: free, gratuit, مجاني, فابور);
     "dis-moi ce que je dois faire" and "tell me that I can apply online" are questions;
   * an order to make up a fee or a delay (``out_of_scope_invent``: invent, make up, اخترع,
     with ``out_of_scope_invent_targets``: fee, délai, رسوم);
   * a secret asked for (``out_of_scope_secret``: password, mot de passe, كلمة السر, with
     ``out_of_scope_secret_context``: admin, system, give me, عطيني).

   Words such as "ignore" or "forget" inside a real question ("I ignored the reminder and my
   passport expired", "j'ai oublié de renouveler ma carte") are none of these.
2. **Harm** (``harm``): forging, falsifying or breaking into something (``out_of_scope_harm``:
   forge, counterfeit, hack, falsifier, تزوير, اختراق, nzawer).
3. **Another subject** (``off_topic``): a word of ``off_topic`` (weather, food and recipes,
   sport, films, music, books and jokes, general knowledge, arithmetic, programming, devices
   and social networks, shopping, markets and currencies, medicine, small talk), a sum to
   work out (``_ARITHMETIC``) or a place to go out (``off_topic_venue``: restaurant, café,
   hotel, مطعم, with
   ``off_topic_recommend``: best, where, meilleur, أحسن, وين, a7san), unless the question also
   names a catalogue term (``catalogue_terms``: the words of the procedures' titles and short
   aliases, less stop words and country names): "the weather was bad and my Qatar ID got
   damaged" and "I want to open a restaurant, how do I get a commercial licence?" are answered
   (by the scores, as any other question).
4. **Another country's papers** (``abroad``): a foreign place or nationality
   (``off_topic_abroad``: France, French, Canada, the Emirates, Dubai, فرنسا, سبانيا) within
   three words of a visa, residence, passport or licence word (``off_topic_abroad_papers``):
   "a visa for Canada", "my French passport", "رخصة سواقة في السعودية"; not when the question
   names Morocco or Qatar, nor when the place is where the asker lives
   (``off_topic_abroad_living``: "I live in France", "ساكن ففرنسا": a citizen abroad), nor
   when its best procedure recognises papers from abroad (the categories of
   ``ABROAD_FRIENDLY``: a diploma's equivalence, an attestation). A country named for
   another reason ("born in France", "travelling to Saudi Arabia") is no reason.

Nothing here is a model and no list holds a question: the lists are vocabularies of subjects
and of ways of addressing an assistant, in the six varieties. ``outside`` returns the reason
(``Reason``); the assistant then says ``REFUSALS[reason]`` or ``NOTHING_FITS``, names no
procedure and, for an instruction or harm, lists no candidate either.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Literal

from jisr.assistant.language import Understanding, lexicon, words
from jisr.core.i18n import _
from jisr.services import service as catalogue_service

Reason = Literal["instruction", "harm", "off_topic", "abroad"]

NOTHING_FITS = _(
    "I can only help with the administrative procedures of the catalogue, "
    "and none of them fits this question. Name the procedure you need "
    "(for example a birth certificate, a passport or a residence permit), "
    "or browse the catalogue of procedures."
)
"""What the assistant says when no procedure fits (an off-topic subject, a weak best score)."""
REFUSALS: dict[str | None, str] = {
    "instruction": _(
        "I answer only from the catalogue of administrative procedures, and I cannot follow "
        "instructions to do otherwise. Name the procedure you need (for example a birth "
        "certificate, a passport or a residence permit), or browse the catalogue of procedures."
    ),
    "harm": _(
        "I cannot help with that. I answer only from the catalogue of administrative "
        "procedures: name the procedure you need, or browse the catalogue of procedures."
    ),
    "abroad": _(
        "The catalogue covers the administrative procedures of Morocco and Qatar only, and none "
        "of them fits this question. Name the procedure you need in Morocco or Qatar, or browse "
        "the catalogue of procedures."
    ),
}
"""What the assistant says for each ``Reason`` other than an off-topic subject
(``NOTHING_FITS``)."""

ABROAD_FRIENDLY = frozenset({"education", "general"})
"""Categories whose procedures take papers from another country (a diploma's equivalence, an
attestation, a legalisation): naming that country is no reason to refuse."""
TERM_WORDS = 2
"""Aliases of at most this many words are names of a procedure (longer ones are sentences
whose other words say nothing of the procedure)."""
ABROAD_WINDOW = 3
"""How many words apart a foreign place and a paper may be ("a visa for Canada", "UK student
visa", "رخصة سواقة في السعودية")."""
WINDOW = 4
"""How many words after an override verb its object may come."""

_CLITICS = ("وال", "فال", "بال", "لل", "ال", "و", "ف", "ب", "ل")
_LATIN_CLITICS = ("l", "el")
_CLAUSE_BREAK = re.compile(r"[.,;:!?؟،\n]+|\s+(?:and|et|w|then|puis|ensuite)\s+", re.IGNORECASE)
_OPENERS = frozenset(
    {"and", "just", "now", "please", "then", "et", "maintenant", "stp", "svp", "alors", "w",
     "daba", "و", "الان", "الحين", "دابا", "عافاك", "لو", "سمحت", "ثم", "فقط", "غير"}
)  # fmt: skip
"""Words that may come before an imperative that opens a clause ("and say", "just say")."""


@functools.cache
def _list(name: str) -> frozenset[str]:
    return lexicon().get(name, frozenset())


def _forms(token: str) -> set[str]:
    """``token`` and the same word without a clitic or article written before it."""
    found = {token}
    prefixes = _CLITICS if token[:1] and "\u0600" <= token[0] <= "\u06ff" else _LATIN_CLITICS
    for prefix in prefixes:
        if token.startswith(prefix) and len(token) - len(prefix) >= 2:
            found.add(token[len(prefix) :])
    return found


def _matches(tokens: Sequence[str], start: int, entries: frozenset[str]) -> int:
    """The length in words of the longest entry of ``entries`` starting at ``tokens[start]``
    (its first word also without a clitic), 0 when none does."""
    for length in range(min(_longest(entries), len(tokens) - start), 0, -1):
        tail = " ".join(tokens[start + 1 : start + length])
        for first in _forms(tokens[start]):
            if " ".join(filter(None, (first, tail))) in entries:
                return length
    return 0


@functools.cache
def _longest(entries: frozenset[str]) -> int:
    return max((entry.count(" ") + 1 for entry in entries), default=0)


def _find(tokens: Sequence[str], entries: frozenset[str]) -> list[int]:
    """The positions in ``tokens`` where an entry of ``entries`` starts."""
    return [i for i in range(len(tokens)) if _matches(tokens, i, entries)]


def _clauses(text: str) -> list[list[str]]:
    """The folded words of each clause of ``text`` (split at punctuation and at "and")."""
    return [found for part in _CLAUSE_BREAK.split(text) if (found := words(part))]


def _opens(clause: Sequence[str], position: int) -> bool:
    """Whether the word at ``position`` opens ``clause`` (only openers such as "just" or
    "please" before it)."""
    return all(t in _OPENERS for t in clause[:position])


def _followed(
    tokens: Sequence[str], position: int, entries: frozenset[str], span: int, head: frozenset[str]
) -> bool:
    """Whether an entry of ``entries`` starts within ``span`` words after the entry of
    ``head`` found at ``position``."""
    after = position + max(1, _matches(tokens, position, head))
    return any(_matches(tokens, j, entries) for j in range(after, after + span))


def _claims(tokens: Sequence[str]) -> bool:
    """Whether ``tokens`` state a fee or a price (a number, "free", "costs nothing")."""
    return any(t.isdigit() for t in tokens) or bool(_find(tokens, _list("out_of_scope_claim")))


def instruction(text: str) -> bool:
    """Whether ``text`` carries an instruction to the assistant (1. of the module docstring)."""
    tokens = words(text)
    if _find(tokens, _list("out_of_scope")):
        return True
    for position in _find(tokens, _list("out_of_scope_override")):
        targets = _list("out_of_scope_override_targets")
        if _followed(tokens, position, targets, WINDOW + 1, _list("out_of_scope_override")):
            return True
    if _find(tokens, _list("out_of_scope_invent")) and _find(
        tokens, _list("out_of_scope_invent_targets")
    ):
        return True
    secrets = _find(tokens, _list("out_of_scope_secret"))
    if secrets and _find(tokens, _list("out_of_scope_secret_context")):
        return True
    for clause in _clauses(text):
        for position in _find(clause, _list("out_of_scope_override")):
            everything = _list("out_of_scope_override_all")
            if _opens(clause, position) and _followed(
                clause, position, everything, WINDOW, _list("out_of_scope_override")
            ):
                return True
        for position in _find(clause, _list("out_of_scope_roleplay")):
            if _opens(clause, position):
                return True
        for position in _find(clause, _list("out_of_scope_say")):
            if (
                _opens(clause, position)
                and _followed(
                    clause, position, _list("out_of_scope_that"), 3, _list("out_of_scope_say")
                )
                and _claims(clause[position:])
            ):
                return True
    return False


def harm(text: str) -> bool:
    """Whether ``text`` asks how to forge, falsify or break into something."""
    return bool(_find(words(text), _list("out_of_scope_harm")))


def _stems(tokens: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for token in tokens:
        found |= _forms(token)
    return found


_ACRONYM = re.compile(r"\b[A-Z]{3,}\b")


def _term(word: str) -> bool:
    """Long enough to name something: three Arabic letters, four Latin ones, not a number."""
    return not word.isdigit() and len(word) >= (3 if "\u0600" <= word[0] <= "\u06ff" else 4)


@functools.cache
def catalogue_terms() -> frozenset[str]:
    """The words of the catalogue's titles (in its three languages) and short aliases (every
    variety, ``TERM_WORDS``), less stop words, nationality words, off-topic words, everyday
    words and country names that name no procedure alone (``off_topic_not_terms``: good, new,
    Qatar) and short words (``_term``): a question naming one of them speaks of a procedure
    (an acronym of three capitals or more such as QID or AMO does)."""
    left_out = set().union(
        *(
            _list(name)
            for name in (
                "stopwords",
                "nationality_ma",
                "nationality_qa",
                "off_topic",
                "off_topic_not_terms",
            )
        )
    )
    found: set[str] = set()
    for procedure in catalogue_service.list_procedures():
        aliases = procedure.aliases
        texts = [procedure.title.ar, procedure.title.fr, procedure.title.en]
        for variety in ("darija_ar", "darija_latn", "gulf", "gulf_latn", "msa", "fr", "en"):
            texts.extend(a for a in getattr(aliases, variety) if len(words(a)) <= TERM_WORDS)
        for text in texts:
            found.update(w for w in words(text) if _term(w))
            found.update(a.casefold() for a in _ACRONYM.findall(text))  # QID, AMO, RSU
    return frozenset(found - left_out)


def _subject_words(tokens: Sequence[str]) -> set[int]:
    """The positions of the words of ``tokens`` that name an off-topic subject."""
    covered: set[int] = set()
    for name in ("off_topic", "off_topic_venue"):
        for position in _find(tokens, _list(name)):
            covered.update(range(position, position + _matches(tokens, position, _list(name))))
    return covered


_ARITHMETIC = re.compile(
    r"\d\s*(?:[+*×÷=]|\b(?:times|plus|minus|moins|fois|divided by|multiplied by)\b"
    r"|(?:ضرب|زائد|ناقص|تقسيم)\s)\s*\d",
    re.IGNORECASE,
)
"""A sum to work out ("17 fois 23", "345 divided by 5", "12 ضرب 8"); not a date or a
photo size (``12/05``, ``2024-2025``, ``3x4``)."""


def off_topic(understood: Understanding) -> bool:
    """Whether the question names an off-topic subject (3. of the module docstring), before
    the catalogue-term check."""
    tokens = words(understood.text)
    if _find(tokens, _list("off_topic")) or _ARITHMETIC.search(understood.text):
        return True
    venue = _find(tokens, _list("off_topic_venue"))
    return bool(venue and _find(tokens, _list("off_topic_recommend")))


def names_procedure(understood: Understanding) -> bool:
    """Whether the question names a catalogue term, as typed or, for a dialect question, in
    its MSA rendering; the words naming the off-topic subject do not count ("green card")."""
    tokens = words(understood.text)
    covered = _subject_words(tokens)
    kept = [t for i, t in enumerate(tokens) if i not in covered]
    if understood.variety in ("darija_ar", "darija_latn", "gulf"):
        subject = {tokens[i] for i in covered}
        kept += [t for t in words(understood.embed_text) if t not in subject]
    return bool(_stems(kept) & catalogue_terms())


def abroad(understood: Understanding) -> bool:
    """Whether the question asks for another country's papers (4. of the module docstring,
    before the category check): a foreign place or nationality within ``ABROAD_WINDOW`` words
    of a visa, residence, passport or licence word, and neither Morocco nor Qatar named."""
    if understood.country_hint is not None:
        return False
    tokens = words(understood.text)
    papers = _find(tokens, _list("off_topic_abroad_papers"))
    living = _find(tokens, _list("off_topic_abroad_living"))
    return any(
        abs(place - paper) <= ABROAD_WINDOW
        for place in _find(tokens, _list("off_topic_abroad"))
        if not any(0 < place - word <= 2 for word in living)  # "I live in France": a citizen
        for paper in papers
    )


def outside(understood: Understanding, *, best_category: str | None) -> Reason | None:
    """Why the question is not for the catalogue (the module docstring), or None;
    ``best_category`` is the category of the best-ranked procedure (None: none)."""
    if instruction(understood.text):
        return "instruction"
    if harm(understood.text):
        return "harm"
    if off_topic(understood) and not names_procedure(understood):
        return "off_topic"
    if abroad(understood) and best_category not in ABROAD_FRIENDLY:
        return "abroad"
    return None


__all__ = [
    "ABROAD_FRIENDLY",
    "NOTHING_FITS",
    "REFUSALS",
    "ABROAD_WINDOW",
    "Reason",
    "abroad",
    "catalogue_terms",
    "harm",
    "instruction",
    "names_procedure",
    "off_topic",
    "outside",
]
