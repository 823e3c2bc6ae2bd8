"""The error hierarchy and its RFC 9457 rendering."""

from __future__ import annotations

import pytest

from jisr.core import errors
from jisr.core.errors import JisrError, NotFound, SignatureInvalid
from jisr.core.i18n import _


def test_problem_details_fields() -> None:
    error = NotFound(
        _("No Jisr instance in {path}: run `jisr init --dir {path}` first."), path="/srv/x"
    )
    problem = error.to_problem(instance="/readyz")
    assert problem == {
        "type": "urn:jisr:problem:not-found",
        "title": "Not found",
        "status": 404,
        "detail": "No Jisr instance in /srv/x: run `jisr init --dir /srv/x` first.",
        "code": "not-found",
        "instance": "/readyz",
        "path": "/srv/x",
    }
    assert str(error) == problem["detail"]


@pytest.mark.parametrize("language", ["ar", "fr"])
def test_translated_title_and_detail(language: str) -> None:
    error = NotFound(
        _("No Jisr instance in {path}: run `jisr init --dir {path}` first."), path="/srv/x"
    )
    problem = error.to_problem(language=language)
    assert problem["title"] != "Not found"
    assert "/srv/x" in problem["detail"]
    assert problem["detail"] != str(error)


def test_subclasses_keep_status_and_have_distinct_codes() -> None:
    assert issubclass(SignatureInvalid, errors.CryptoError)
    assert SignatureInvalid.status_code == 400
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, JisrError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))


def test_missing_parameter_does_not_crash() -> None:
    assert str(
        NotFound(_("No Jisr instance in {path}: run `jisr init --dir {path}` first."))
    ).startswith("No Jisr instance in {path}")
