"""Languages: Arabic first, then French and English.

Source strings are English and marked with ``_()``; catalogs ``locale/<lang>/LC_MESSAGES/
jisr.po`` hold Arabic and French (English is the source itself). Catalogs are compiled in
memory on first use, so no build step is needed; ``make messages`` re-extracts and updates
them with Babel, and a test fails when a marked string lacks a translation.
"""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES: tuple[str, ...] = ("ar", "fr", "en")
DEFAULT_LANGUAGE = "ar"
RTL_LANGUAGES = frozenset({"ar"})
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "jisr"


def _(message: str) -> str:
    """Marks a message for extraction; translate it with ``gettext`` when shown."""
    return message


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=len(LANGUAGES))
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (English and unknown languages: identity)."""
    path = catalog_path(language)
    if language == "en" or not path.is_file():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def gettext(message: str, language: str = DEFAULT_LANGUAGE) -> str:
    return translations(language).gettext(message)


def is_rtl(language: str) -> bool:
    return language in RTL_LANGUAGES


def direction(language: str) -> str:
    return "rtl" if is_rtl(language) else "ltr"


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best of our languages for an ``Accept-Language`` header (RFC 9110 q-values)."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _sep, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, position, primary))
    if not choices:
        return default
    return sorted(choices)[0][2]


def operator_language() -> str:
    """The language of a person at a terminal: ``JISR_LANGUAGE``, else the locale
    (``LANGUAGE``, ``LC_ALL``, ``LANG``); English by default (the CLI's)."""
    wanted = (
        os.environ.get("JISR_LANGUAGE")
        or os.environ.get("LANGUAGE")
        or os.environ.get("LC_ALL")
        or os.environ.get("LANG")
        or ""
    )
    return negotiate(wanted.replace("_", "-").split(".")[0], default="en")


__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "direction",
    "gettext",
    "is_rtl",
    "negotiate",
    "operator_language",
    "translations",
]
