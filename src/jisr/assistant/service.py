"""Answering a question from the catalogue: ``ask(question, country=None) -> Answer``.

1. ``language.identify`` cleans the question (control characters out, cut to 500
   characters) and finds its variety and the language to answer in (Darija, Arabizi and Gulf
   questions get Arabic).
2. ``index.Index.search`` ranks the procedures (e5 first, BM25 for exact terms).
3. The decision, on the fused score of the best procedure:

   * no letters at all (empty, emoji-only) → ask for a question;
   * a question that is not for the catalogue (``jisr.assistant.scope``: an instruction to
     the assistant such as "ignore the rules" or "you are now", a request to forge or break
     into something, an off-topic subject such as the weather or a recipe naming no catalogue
     term, a procedure of another country), or a best score under ``NO_MATCH_BELOW`` → say
     that nothing fits and point to the catalogue, ``procedure`` null;
   * the two best closer than ``CLOSE_MARGIN`` and siblings (``siblings``: the same country
     and category) → one clarifying question naming both, ``procedure`` null, both cited;
   * otherwise the answer, composed **only** from the chosen entry's fields (title,
     description, documents, steps, fees, processing time, agency) in the answer language,
     through the ``_()`` templates below, and the entry cited. A fee or a delay the entry
     marks unknown is given as the entry's own note, never as a number.

A question longer than ``MAX_QUESTION_LENGTH`` (20,000) characters is refused
(``QuestionTooLong``); a shorter one is cleaned and cut by ``language.identify``. With a local
language model (``jisr.assistant.llm``, off by default) an answer naming a procedure may be
reworded from the cited entry, when every fee, delay and document of the reply is in it.

Questions are logged with national identifiers, phone numbers and e-mail addresses redacted
(``jisr.assistant.redact``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jisr.assistant.errors import QuestionTooLong
from jisr.assistant.index import BM25_WEIGHT, BM25_WEIGHT_ARABIZI, Index, Progress, Scored
from jisr.assistant.language import Understanding, identify
from jisr.assistant.redact import redact
from jisr.assistant.schemas import (
    MAX_QUESTION_LENGTH,
    Answer,
    Citation,
    ProcedureRef,
    ProcedureTitle,
)
from jisr.assistant.scope import NOTHING_FITS, REFUSALS, outside
from jisr.core.arabic import normalize_arabic
from jisr.core.i18n import _, gettext
from jisr.core.logging import get_logger
from jisr.services import service as catalogue_service

if TYPE_CHECKING:
    from jisr.assistant.llm import LocalLLM
    from jisr.services.schemas import Procedure

log = get_logger("jisr.assistant")

NO_MATCH_BELOW = 0.91
"""Fused score under which no procedure is said to fit (chosen on the dev set: 98% of the
right answers score above 0.924, all but two out-of-scope questions below 0.91)."""
CLOSE_MARGIN = 0.005
"""Two best procedures closer than this get a clarifying question (chosen on the dev set)."""
CONFIDENT_AT = 1.0
"""Fused score at which confidence reaches 1 (about the median right answer)."""


def _ref(procedure: Procedure) -> ProcedureRef:
    return ProcedureRef(
        id=procedure.id,
        country=procedure.country,
        title=ProcedureTitle(ar=procedure.title.ar, fr=procedure.title.fr, en=procedure.title.en),
    )


def _citation(procedure: Procedure, language: str) -> Citation:
    return Citation(
        id=procedure.id,
        title=procedure.title.get(language),
        url=f"/api/services/{procedure.id}",
        sources=list(procedure.sources),
    )


def _t(template: str, language: str, **params: object) -> str:
    return gettext(template, language).format(**params)


def _list(items: Sequence[str], language: str) -> str:
    return ("، " if language == "ar" else "; ").join(items)


def compose(procedure: Procedure, language: str) -> str:
    """The answer about ``procedure`` in ``language``, only from the entry's own fields."""
    lines = [
        _t(
            _("{title}: {description}"),
            language,
            title=procedure.title.get(language),
            description=procedure.description.get(language),
        )
    ]
    documents = [d.name.get(language) for d in procedure.required_documents]
    if documents:
        lines.append(
            _t(_("Documents: {documents}."), language, documents=_list(documents, language))
        )
    steps = [f"{n}. {step.get(language)}" for n, step in enumerate(procedure.steps, 1)]
    lines.append(_t(_("Steps: {steps}"), language, steps=" ".join(steps)))
    fees = procedure.fees
    if fees.unknown or fees.amount is None:
        note = fees.note.get(language) if fees.note else ""
        lines.append(_t(_("Fees: {note}"), language, note=note))
    else:
        lines.append(
            _t(
                _("Fees: {amount} {currency}."),
                language,
                amount=f"{fees.amount:g}",
                currency=fees.currency,
            )
        )
    delay = procedure.processing_time
    if delay.unknown or delay.text is None:
        note = delay.note.get(language) if delay.note else ""
        lines.append(_t(_("Processing time: {time}"), language, time=note))
    else:
        lines.append(_t(_("Processing time: {time}"), language, time=delay.text.get(language)))
    lines.append(_t(_("Agency: {agency}."), language, agency=procedure.agency.name.get(language)))
    lines.append(
        _t(
            _("Source: the catalogue entry {id} ({sources})."),
            language,
            id=procedure.id,
            sources=", ".join(procedure.sources),
        )
    )
    return "\n".join(lines)


def _confidence(best: Scored, second: Scored | None) -> float:
    span = CONFIDENT_AT - NO_MATCH_BELOW
    level = min(1.0, max(0.0, (best.score - NO_MATCH_BELOW) / span))
    margin = 1.0 if second is None else min(1.0, (best.score - second.score) / (4 * CLOSE_MARGIN))
    return round(level * (0.5 + 0.5 * max(0.0, margin)), 3)


class Assistant:
    """An index over some procedures and the decisions of the module docstring."""

    def __init__(self, index: Index) -> None:
        self.index = index

    @classmethod
    def over(
        cls,
        procedures: Sequence[Procedure] | None = None,
        *,
        progress: Progress | None = None,
    ) -> Assistant:
        """An assistant over ``procedures`` (the whole catalogue by default), its index
        loaded from the cache or built."""
        chosen = list(procedures) if procedures is not None else catalogue_service.list_procedures()
        return cls(Index.load_or_build(chosen, progress=progress))

    def ask(
        self,
        question: str,
        *,
        country: str | None = None,
        mode: str = "fused",
        llm: LocalLLM | None = None,
    ) -> Answer:
        started = time.perf_counter()
        if len(question) > MAX_QUESTION_LENGTH:
            raise QuestionTooLong(length=len(question), limit=MAX_QUESTION_LENGTH)
        understood = identify(question, self.index.vocabulary)
        if country is not None:
            country = country.strip().upper()
            catalogue_service.list_procedures(country)  # UnknownCountry for anything else
        answer = self._decide(understood, country, mode)
        if llm is not None:  # the cited entries reworded, when the reply passes the check
            answer = llm.refine(answer, understood.text)
        log.info(
            "assistant.ask",
            question=redact(understood.text),
            variety=understood.variety,
            country=country,
            procedure=answer.procedure.id if answer.procedure else None,
            confidence=answer.confidence,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return answer

    def rank(
        self, question: str, *, country: str | None = None, mode: str = "fused"
    ) -> list[Scored]:
        """The three best procedures for ``question`` (what the evaluation measures)."""
        understood = identify(question, self.index.vocabulary)
        if understood.script == "none":
            return []
        return self._search(understood, country, mode)

    def _search(self, understood: Understanding, country: str | None, mode: str) -> list[Scored]:
        return self.index.search(
            understood.search_text,
            country=country,
            country_hint=None if country else understood.country_hint,
            country_prior=None if country else understood.country_prior,
            mode=mode,
            bm25_weight=BM25_WEIGHT_ARABIZI if understood.variety == "darija_latn" else BM25_WEIGHT,
            # the e5 baseline reads the question as typed, the assistant its MSA rendering
            embed_text=normalize_arabic(understood.text) if mode == "e5" else understood.embed_text,
            intents=understood.intents,
        )

    def _decide(self, understood: Understanding, country: str | None, mode: str) -> Answer:
        language = understood.language
        if understood.script == "none":
            return Answer(
                answer=gettext(
                    _(
                        "Please write your question about an administrative procedure in words, "
                        "for example: how do I get a residence certificate?"
                    ),
                    language,
                ),
                language=language,
                procedure=None,
                candidates=[],
                confidence=0.0,
                citations=[],
            )
        ranked = self._search(understood, country, mode)
        procedures = [catalogue_service.get_procedure(s.id) for s in ranked]
        candidates = [_ref(p) for p in procedures]
        reason = outside(
            understood,
            best_category=procedures[0].category if procedures else None,
        )
        if reason is not None or not ranked or ranked[0].score < NO_MATCH_BELOW:
            return Answer(
                answer=gettext(REFUSALS.get(reason, NOTHING_FITS), language),
                language=language,
                procedure=None,
                candidates=[] if reason in ("instruction", "harm") else candidates,
                confidence=0.0,
                citations=[],
            )
        best = ranked[0]
        second = ranked[1] if len(ranked) > 1 else None
        confidence = _confidence(best, second)
        first_p = procedures[0]
        if (
            second is not None
            and best.score - second.score < CLOSE_MARGIN
            and siblings(first_p, procedures[1])
        ):
            second_p = procedures[1]
            return Answer(
                answer=_t(
                    _("Do you mean “{first}” or “{second}”?"),
                    language,
                    first=first_p.title.get(language),
                    second=second_p.title.get(language),
                ),
                language=language,
                procedure=None,
                candidates=candidates,
                confidence=confidence,
                citations=[_citation(first_p, language), _citation(second_p, language)],
            )
        chosen = procedures[0]
        return Answer(
            answer=compose(chosen, language),
            language=language,
            procedure=_ref(chosen),
            candidates=candidates,
            confidence=confidence,
            citations=[_citation(chosen, language)],
        )


def siblings(first: Procedure, second: Procedure) -> bool:
    """Whether two procedures are close enough in kind for a question to hesitate between
    them: the same country and the same category (a lost or a renewed identity card, a birth
    or a death declaration). Two close scores of unrelated procedures are a coincidence of the
    scores, not an ambiguity of the question: the best is answered."""
    return first.country == second.country and first.category == second.category


_lock = threading.Lock()
_assistant: Assistant | None = None


def default_assistant(progress: Progress | None = None) -> Assistant:
    """The process-wide assistant over the whole catalogue (built or loaded once)."""
    global _assistant
    with _lock:
        if _assistant is None:
            _assistant = Assistant.over(progress=progress)
        return _assistant


def warm(progress: Progress | None = None) -> None:
    """Load the index and the model now, so that the first question is as fast as the next."""
    default_assistant(progress).index.e5_scores("warm")


def ask(question: str, *, country: str | None = None, llm: LocalLLM | None = None) -> Answer:
    """The answer to ``question`` from the catalogue (of ``country``, MA or QA, when given),
    reworded by ``llm`` when one is given and its reply passes the check (``jisr.assistant.llm``).
    ``QuestionTooLong`` over ``MAX_QUESTION_LENGTH`` characters."""
    return default_assistant().ask(question, country=country, llm=llm)


__all__ = [
    "CLOSE_MARGIN",
    "CONFIDENT_AT",
    "NO_MATCH_BELOW",
    "Assistant",
    "ask",
    "compose",
    "default_assistant",
    "redact",
    "siblings",
    "warm",
]
