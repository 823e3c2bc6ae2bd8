"""Languages: negotiation, direction, and complete ar/fr catalogs for every marked string."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from jisr.core import i18n

SRC = Path(i18n.__file__).resolve().parents[1]


def _marked_strings() -> set[str]:
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(SRC), method_map=method_map, keywords={"_": None, "gettext": None}
    ):
        if isinstance(message, str) and message:
            found.add(message)
    return found


def test_strings_are_found() -> None:
    assert "Not found" in _marked_strings()


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_catalog_translates_every_marked_string(language: str) -> None:
    with i18n.catalog_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    missing = sorted(_marked_strings() - translated)
    assert not missing, f"{language} lacks translations (run `make messages`): {missing}"


@pytest.mark.parametrize(
    "header,expected",
    [
        (None, "ar"),
        ("", "ar"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-US", "en"),
        ("de-DE,en;q=0.5,fr;q=0.7", "fr"),
        ("ar-MA", "ar"),
        ("de", "ar"),
        ("fr;q=0, en", "en"),
        ("fr;q=bogus, en;q=0.1", "en"),
    ],
)
def test_negotiate(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_direction() -> None:
    assert i18n.direction("ar") == "rtl"
    assert i18n.direction("fr") == "ltr"


def test_gettext_translates() -> None:
    assert i18n.gettext("Not found", "fr") != "Not found"
    assert i18n.gettext("Not found", "en") == "Not found"
