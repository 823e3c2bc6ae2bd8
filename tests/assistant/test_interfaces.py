"""``jisr ask`` (text, ``--json``, ``--json --batch``) and ``POST /api/assistant/ask``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jisr.assistant.service import Assistant
from jisr.cli import app
from jisr.web.app import create_app

runner = CliRunner()


def test_ask_json(small_assistant: Assistant) -> None:
    result = runner.invoke(app, ["ask", "--country", "MA", "--json", "bghit chahadat sokna"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["procedure"]["id"] == "ma-residence-certificate"
    assert data["language"] == "ar"


def test_ask_text(small_assistant: Assistant) -> None:
    result = runner.invoke(app, ["ask", "How do I get a certificate of residence?"])
    assert result.exit_code == 0, result.output
    assert "ma-residence-certificate" in result.stdout


def test_ask_batch_keeps_the_order(small_assistant: Assistant) -> None:
    lines = [
        {"question": "Replacement of my lost Qatar ID", "country": "QA"},
        {"question": "شهادة السكنى", "country": "MA"},
        {"question": ""},
    ]
    stdin = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\nnot json\n"
    result = runner.invoke(app, ["ask", "--json", "--batch"], input=stdin)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(answers) == 4
    assert answers[0]["procedure"]["id"] == "qa-qid-replacement"
    assert answers[1]["procedure"]["id"] == "ma-residence-certificate"
    assert answers[2]["procedure"] is None
    assert answers[3]["line"] == 4 and "error" in answers[3]


@pytest.fixture(scope="module")
def client(instance_factory: Any) -> Iterator[TestClient]:
    with TestClient(create_app(instance_factory("MA"), roles=["portal"])) as test_client:
        yield test_client


def test_api_ask(client: TestClient, small_assistant: Assistant) -> None:
    response = client.post(
        "/api/assistant/ask", json={"question": "كيفاش ندير شهادة السكنى", "country": "MA"}
    )
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"answer", "language", "procedure", "candidates", "confidence", "citations"}
    assert data["procedure"]["id"] == "ma-residence-certificate"


def test_api_refuses_an_unknown_country(client: TestClient, small_assistant: Assistant) -> None:
    response = client.post("/api/assistant/ask", json={"question": "x", "country": "FR"})
    assert response.status_code in (400, 422)
