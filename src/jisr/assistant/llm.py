"""The optional local language model: an OpenAI-compatible chat-completions client that
rewords an answer from the cited catalogue entries, and the check its reply must pass.

Off by default (``assistant_llm_url`` empty). When on, for an answer that names a procedure:

1. the model is sent **only** the cited catalogue entries (their fields in the answer's
   language, as JSON) and the question, both redacted (``jisr.assistant.redact``), with the
   instruction to answer in the answer's language from the entries alone;
   ``POST <assistant_llm_url>/chat/completions`` (llama.cpp ``llama-server``, vLLM, or any
   server of the OpenAI protocol; ``temperature`` 0, no streaming);
2. its reply is checked against the cited entries (``unsupported``): every number (in
   digits or in words, Latin or Arabic-Indic), every amount with its currency, every delay
   with its unit, every "free"/"gratuit"/"مجاني", every document word and the words around it,
   every document name of the catalogue, and the script of the answer's language;
3. a reply that passes is shown, followed by the source line of the composed answer; a
   reply that fails, a timeout, a refused connection, an HTTP error or a malformed body
   leaves the composed answer as it was, and the reason is logged (redacted).

Clarifying questions and "nothing fits" answers never go to the model.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import httpx

from jisr.assistant.redact import redact
from jisr.core.arabic import normalize_arabic, western_digits
from jisr.core.i18n import _, gettext
from jisr.core.logging import get_logger
from jisr.services import service as catalogue_service

if TYPE_CHECKING:
    from jisr.assistant.schemas import Answer
    from jisr.core.settings import Settings
    from jisr.services.schemas import Procedure

log = get_logger("jisr.assistant.llm")

MAX_REPLY_CHARS = 6000
"""A longer reply is refused (a model that rambles has left the entries behind)."""

LANGUAGE_NAMES = {
    "ar": "Modern Standard Arabic (the person may have written in Darija, Gulf Arabic or "
    "Arabizi: answer in Arabic script)",
    "fr": "French",
    "en": "English",
}

SYSTEM_PROMPT = (
    "You are the assistant of a government portal. You answer questions about "
    "administrative procedures using ONLY the catalogue entries given to you as JSON. "
    "Never state a fee, amount, delay, number, document or step that is not written in "
    "those entries; if the entries do not say something, say that the catalogue does not "
    "confirm it. Do not give advice beyond the entries. Answer briefly, in {language}."
)


class LLMError(Exception):
    """The endpoint gave no usable reply (the reason is logged; the composed answer stays)."""


# -- the client ------------------------------------------------------------------------------


class LocalLLM:
    """A client of one OpenAI-compatible endpoint (``url`` ends before ``/chat/completions``,
    e.g. ``http://127.0.0.1:8080/v1``)."""

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout_s: float = 20.0,
        api_key: str | None = None,
        max_tokens: int = 600,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.max_tokens = max_tokens

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLLM | None:
        """The client the settings describe, or None when ``assistant_llm_url`` is empty."""
        if not settings.assistant_llm_url.strip():
            return None
        key = settings.assistant_llm_api_key
        return cls(
            settings.assistant_llm_url.strip(),
            settings.assistant_llm_model,
            timeout_s=settings.assistant_llm_timeout_s,
            api_key=key.get_secret_value() if key is not None else None,
        )

    def request_body(
        self, question: str, procedures: Sequence[Procedure], language: str
    ) -> dict[str, Any]:
        """The chat-completions request: the cited entries and the question, redacted."""
        entries = [entry(p, language) for p in procedures]
        user = (
            "Catalogue entries (JSON):\n"
            + redact(json.dumps(entries, ensure_ascii=False, indent=1))
            + "\n\nQuestion:\n"
            + redact(question)
        )
        return {
            "model": self.model,
            "messages": [
                {
                    "role": "system",
                    "content": SYSTEM_PROMPT.format(language=LANGUAGE_NAMES[language]),
                },
                {"role": "user", "content": user},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "stream": False,
        }

    def complete(self, body: dict[str, Any]) -> str:
        """The reply's text; ``LLMError`` for a timeout, a network or HTTP error, or a body
        that is not an OpenAI chat completion."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with httpx.Client(timeout=self.timeout_s, trust_env=False) as client:
                response = client.post(f"{self.url}/chat/completions", json=body, headers=headers)
        except httpx.TimeoutException as error:
            raise LLMError(f"timeout after {self.timeout_s:g} s") from error
        except httpx.HTTPError as error:
            raise LLMError(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise LLMError(f"HTTP {response.status_code}")
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as error:
            raise LLMError("not an OpenAI chat completion") from error
        if not isinstance(content, str) or not content.strip():
            raise LLMError("empty reply")
        return _without_thinking(content).strip()

    def refine(self, answer: Answer, question: str) -> Answer:
        """``answer`` in the model's words when its reply passes the check; else ``answer``."""
        if answer.procedure is None or not answer.citations:
            return answer
        language = answer.language
        procedures = [catalogue_service.get_procedure(c.id) for c in answer.citations]
        try:
            reply = self.complete(self.request_body(question, procedures, language))
        except LLMError as error:
            log.warning("assistant.llm.fallback", reason=redact(str(error)), model=self.model)
            return answer
        problems = unsupported(reply, procedures, language)
        if problems:
            log.warning(
                "assistant.llm.fallback",
                reason="unsupported",
                items=[redact(p) for p in problems[:10]],
                model=self.model,
            )
            return answer
        log.info("assistant.llm.used", model=self.model, chars=len(reply))
        sources = [
            gettext(_("Source: the catalogue entry {id} ({sources})."), language).format(
                id=p.id, sources=", ".join(p.sources)
            )
            for p in procedures
        ]
        return answer.model_copy(update={"answer": "\n".join([reply, *sources])})


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _without_thinking(text: str) -> str:
    return _THINK.sub("", text)


def entry(procedure: Procedure, language: str) -> dict[str, Any]:
    """What the model is told of ``procedure``: its fields in ``language``."""
    fees = procedure.fees
    delay = procedure.processing_time
    return {
        "id": procedure.id,
        "country": procedure.country,
        "title": procedure.title.get(language),
        "description": procedure.description.get(language),
        "eligibility": procedure.eligibility.get(language) if procedure.eligibility else None,
        "required_documents": [
            d.name.get(language) + (f" ({d.note.get(language)})" if d.note else "")
            for d in procedure.required_documents
        ],
        "steps": [s.get(language) for s in procedure.steps],
        "fees": (
            f"{fees.amount:g} {fees.currency}"
            if not fees.unknown and fees.amount is not None
            else (fees.note.get(language) if fees.note else "not confirmed")
        ),
        "processing_time": (
            delay.text.get(language)
            if not delay.unknown and delay.text is not None
            else (delay.note.get(language) if delay.note else "not confirmed")
        ),
        "agency": procedure.agency.name.get(language),
        "sources": list(procedure.sources),
    }


# -- the check -------------------------------------------------------------------------------

_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+|[.,;:!?؛،\n]", re.UNICODE)
_BOUNDARY = set(".,;:!?؛،\n")
_ARTICLES = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف")

_NUMBER_WORDS: dict[str, float] = {
    # English ("one" and "a" are articles as often as numbers; 1 is always a step number)
    "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100,
    "thousand": 1000,
    # French ("un", "une" are articles; "neuf" also means new)
    "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "huit": 8, "dix": 10,
    "onze": 11, "douze": 12, "quinze": 15, "vingt": 20, "trente": 30, "quarante": 40,
    "cinquante": 50, "soixante": 60, "cent": 100, "mille": 1000,
    # Arabic, in search form (ة → ه, أ → ا)
    "اثنان": 2, "اثنين": 2, "اثنتان": 2, "اثنتين": 2, "ثلاث": 3, "ثلاثه": 3, "اربع": 4,
    "اربعه": 4, "خمس": 5, "خمسه": 5, "ست": 6, "سته": 6, "سبع": 7, "سبعه": 7, "ثمان": 8,
    "ثماني": 8, "ثمانيه": 8, "تسع": 9, "تسعه": 9, "عشر": 10, "عشره": 10, "عشرين": 20,
    "عشرون": 20, "ثلاثين": 30, "ثلاثون": 30, "اربعين": 40, "خمسين": 50, "ستين": 60,
    "مائه": 100, "مئه": 100, "الف": 1000,
}  # fmt: skip

_UNITS: dict[str, str] = {
    **dict.fromkeys(("hour", "hours", "heure", "heures", "ساعه", "ساعات"), "hour"),
    **dict.fromkeys(("day", "days", "jour", "jours", "يوم", "يوما", "ايام"), "day"),
    **dict.fromkeys(("week", "weeks", "semaine", "semaines", "اسبوع", "اسبوعا", "اسابيع"), "week"),
    **dict.fromkeys(("month", "months", "mois", "شهر", "شهرا", "اشهر", "شهور"), "month"),
    **dict.fromkeys(
        ("year", "years", "an", "ans", "annee", "annees", "سنه", "سنوات", "عام", "عاما", "اعوام"),
        "year",
    ),
    **dict.fromkeys(("minute", "minutes", "دقيقه", "دقائق"), "minute"),
}
_DUALS = {"ساعتين": "hour", "يومين": "day", "اسبوعين": "week", "شهرين": "month", "سنتين": "year"}

_CURRENCIES: dict[str, str] = {
    **dict.fromkeys(("mad", "dh", "dhs", "dirham", "dirhams", "درهم", "دراهم", "درهما"), "MAD"),
    **dict.fromkeys(
        ("qar", "qr", "riyal", "riyals", "rial", "rials", "ريال", "ريالات", "ريالا"), "QAR"
    ),
}
_FREE = (
    "free", "no fee", "no charge", "gratuit", "gratuite", "gratuitement", "sans frais",
    "مجاني", "مجانيه", "مجانا", "بالمجان", "بدون رسوم", "دون رسوم",
)  # fmt: skip

_DOCUMENT_HEADS = frozenset(
    """certificate certificates attestation attestations copy copies photo photos photograph
    photographs receipt receipts form forms card cards passport passports extract extracts
    record records statement statements contract contracts licence license licences licenses
    deed deeds proof proofs permit permits declaration declarations diploma diplomas bill
    bills lease leases stamp stamps letter letters report reports
    certificat certificats copie copies photographie photographies recu recus quittance
    quittances formulaire formulaires carte cartes passeport passeports extrait extraits acte
    actes justificatif justificatifs releve releves contrat contrats permis fiche fiches timbre
    timbres declaration diplome diplomes facture factures bail baux lettre lettres rapport
    bulletin bulletins
    شهاده شهادات نسخه نسخ صوره صور وصل استماره مطبوع بطاقه جواز عقد عقود رخصه كشف اثبات طابع
    رسم وثيقه وثائق فاتوره تصريح دبلوم رساله تقرير""".split()
)
_STOP = frozenset(
    """a an the of to for and or with your you my by from in on at as is are be it this that
    these those its their our also any all each must should can may will need needs bring
    provide submit present have has get original valid recent new signed issued one
    le la les l d de du des un une et ou avec votre vos mon ma mes par pour en au aux sur ce
    cette ces son sa ses il elle est sont doit devez faut aussi tout tous toute
    issued delivered required needed requested given
    delivre delivree delivres delivrees demande demandee exige exigee requis requise
    necessaire fourni fournie
    في من الى على عن مع او و ثم هذه هذا ذلك تلك التي الذي كل ايضا يجب عليك لديك لدى عند
    حتى قبل بعد كما ان هو هي غير كذلك فقط مطلوب مطلوبه ضروري ضروريه يسلم تسلم يقدم تقدم""".split()
)


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    """A word's comparison form: case, accents, Arabic letter forms and digits folded."""
    word = normalize_arabic(word).casefold()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    word = _fold(word)
    if any("\u0600" <= c <= "\u06ff" for c in word):
        for article in _ARTICLES:
            if word.startswith(article) and len(word) - len(article) >= 2:
                return word[len(article) :]
        return word
    for suffix in ("es", "s", "x"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=65536)
def _forms(token: str) -> frozenset[str]:
    """``token``, its stem and, for Arabic, its singular under a dual or plural ending
    (``صورتين`` → ``صوره``)."""
    stem = _stem(token)
    forms = {token, stem}
    if any("\u0600" <= c <= "\u06ff" for c in stem):
        for ending, singular in (("تين", "ه"), ("تان", "ه"), ("ين", ""), ("ان", ""), ("ات", "ه")):
            if stem.endswith(ending) and len(stem) - len(ending) >= 2:
                forms.add(stem[: -len(ending)] + singular)
    return frozenset(forms)


def _tokens(text: str) -> list[str]:
    return [_fold(t) for t in _TOKEN.findall(western_digits(text).replace("'", " "))]


def _number(token: str) -> float | None:
    if token[:1].isdigit():
        return float(token.replace(",", "."))
    if token in _NUMBER_WORDS:
        return _NUMBER_WORDS[token]
    bare = _stem(token)
    return _NUMBER_WORDS.get(bare) if any("\u0600" <= c <= "\u06ff" for c in token) else None


def _pairs(tokens: list[str], kinds: dict[str, str]) -> set[tuple[float, str]]:
    """(number, kind) for each number with a unit or a currency at most two words after it
    (or, for currencies, just before it)."""
    found: set[tuple[float, str]] = set()
    for i, token in enumerate(tokens):
        value = _number(token)
        if value is None:
            if token in _DUALS and kinds is _UNITS:
                found.add((2.0, _DUALS[token]))
            continue
        for later in tokens[i + 1 : i + 3]:
            if later in _BOUNDARY:
                break
            kind = kinds.get(later) or kinds.get(_stem(later))
            if kind:
                found.add((value, kind))
                break
        if kinds is _CURRENCIES and i > 0 and tokens[i - 1] in kinds:
            found.add((value, kinds[tokens[i - 1]]))
    return found


def _reference(procedures: Iterable[Procedure]) -> list[str]:
    """The tokens of what the model is told of the cited entries, in every language (the
    curators' notes, such as ``uncertain``, are not part of it)."""
    texts = [
        json.dumps(entry(procedure, language), ensure_ascii=False)
        for procedure in procedures
        for language in ("ar", "fr", "en")
    ]
    return _tokens("\n".join(texts))


@lru_cache(maxsize=1)
def _catalogue_documents() -> dict[str, str]:
    """Every document name of the catalogue, in its comparison form, with its procedure."""
    names: dict[str, str] = {}
    for procedure in catalogue_service.list_procedures():
        for document in procedure.required_documents:
            for language in ("ar", "fr", "en"):
                folded = " ".join(t for t in _tokens(document.name.get(language)) if t.isalnum())
                if len(folded) >= 8:
                    names.setdefault(folded, procedure.id)
    return names


def unsupported(reply: str, procedures: Sequence[Procedure], language: str) -> list[str]:
    """What ``reply`` states that the cited ``procedures`` do not (empty: the reply may be
    shown)."""
    problems: list[str] = []
    if len(reply) > MAX_REPLY_CHARS:
        return [f"reply longer than {MAX_REPLY_CHARS} characters"]
    arabic = sum(1 for c in reply if "\u0600" <= c <= "\u06ff")
    latin = sum(1 for c in reply if c.isascii() and c.isalpha())
    if (language == "ar") != (arabic > latin):
        problems.append(f"not written in {language}")

    ref_tokens = _reference(procedures)
    tokens = _tokens(reply)
    vocabulary = {form for t in ref_tokens for form in _forms(t)}

    # numbers, in digits or in words
    allowed = {v for t in ref_tokens if (v := _number(t)) is not None}
    for procedure in procedures:
        allowed.update(range(1, max(len(procedure.steps), len(procedure.required_documents)) + 1))
        if procedure.processing_time.max_days is not None:
            allowed.add(float(procedure.processing_time.max_days))
    for token in tokens:
        value = _number(token)
        if value is not None and value not in allowed:
            problems.append(f"number {token}")

    # delays and amounts with their unit or currency
    allowed_delays = _pairs(ref_tokens, _UNITS)
    for procedure in procedures:
        if procedure.processing_time.max_days is not None:
            allowed_delays.add((float(procedure.processing_time.max_days), "day"))
    for value, unit in _pairs(tokens, _UNITS) - allowed_delays:
        problems.append(f"delay {value:g} {unit}")
    allowed_amounts = _pairs(ref_tokens, _CURRENCIES)
    currencies = {c for _v, c in allowed_amounts}
    for procedure in procedures:
        if procedure.fees.amount is not None and procedure.fees.currency:
            allowed_amounts.add((float(procedure.fees.amount), procedure.fees.currency))
            currencies.add(procedure.fees.currency)
    for value, currency in _pairs(tokens, _CURRENCIES) - allowed_amounts:
        problems.append(f"amount {value:g} {currency}")
    for token in tokens:
        if token in _CURRENCIES and _CURRENCIES[token] not in currencies:
            problems.append(f"currency {token}")

    # "free": only when an entry's fee is 0 or an entry says so
    folded_reply = " ".join(t for t in tokens if t not in _BOUNDARY)
    folded_text = " ".join(t for t in ref_tokens if t not in _BOUNDARY)
    free_fee = any(p.fees.amount == 0 for p in procedures)
    for word in _FREE:
        if (
            f" {word} " in f" {folded_reply} "
            and not free_fee
            and (f" {word} " not in f" {folded_text} ")
        ):
            problems.append(f"fee claim {word!r}")

    # document words, and the words that name them
    for i, token in enumerate(tokens):
        forms = _forms(token)
        if not forms & _DOCUMENT_HEADS:
            continue
        if not forms & vocabulary:
            problems.append(f"document {token}")
            continue
        window: list[str] = []
        for later in tokens[i + 1 : i + 5]:  # the first word that qualifies it
            if later in _BOUNDARY:
                break
            if later not in _STOP and _number(later) is None:
                window.append(later)
                break
        if language == "en" and i > 0 and tokens[i - 1] not in _BOUNDARY:
            before = tokens[i - 1]
            if before not in _STOP and _number(before) is None:
                window.append(before)
        for word in window:
            if not _forms(word) & vocabulary and len(word) > 1:
                problems.append(f"document {token} … {word}")

    # a document the catalogue knows, but not for the cited procedures
    reply_folded = " ".join(t for t in tokens if t.isalnum())
    text_folded = " ".join(t for t in ref_tokens if t.isalnum())
    for name, procedure_id in _catalogue_documents().items():
        if f" {name} " in f" {reply_folded} " and f" {name} " not in f" {text_folded} ":
            problems.append(f"document of {procedure_id}: {name}")
    return sorted(set(problems))


__all__ = ["LANGUAGE_NAMES", "SYSTEM_PROMPT", "LLMError", "LocalLLM", "entry", "unsupported"]
