"""``jisr services``: the ``--json`` contract and the text output."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from jisr.cli import app
from jisr.services import service

runner = CliRunner()


@pytest.mark.parametrize("country", [None, "MA", "QA"])
def test_list_json_contract(country: str | None) -> None:
    args = ["services", "list", "--json"] + (["--country", country] if country else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    procedures = json.loads(result.stdout)
    assert isinstance(procedures, list)
    assert len(procedures) == len(service.list_procedures(country))
    for item in procedures:
        assert {"id", "country", "title"} <= set(item)
        assert set(item["title"]) == {"ar", "fr", "en"}
        assert country is None or item["country"] == country
    assert [p["id"] for p in procedures] == [p.id for p in service.list_procedures(country)]


def test_list_text_and_bad_country() -> None:
    result = runner.invoke(app, ["services", "list", "--language", "fr"])
    assert result.exit_code == 0
    assert "ma-residence-certificate\tMA\tCertificat de résidence" in result.stdout
    assert runner.invoke(app, ["services", "list", "--country", "FR"]).exit_code == 2


def test_show() -> None:
    result = runner.invoke(app, ["services", "show", "ma-residence-certificate", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["id"] == "ma-residence-certificate"
    assert shown["issued_credential"] == "residence-certificate"
    text = runner.invoke(app, ["services", "show", "ma-residence-certificate"])
    assert text.exit_code == 0
    assert "Fees:" in text.stdout and "Steps:" in text.stdout


def test_show_unknown() -> None:
    result = runner.invoke(app, ["services", "show", "ma-nothing"])
    assert result.exit_code == 1
    assert "No procedure ma-nothing" in result.output
