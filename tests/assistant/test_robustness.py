"""Hard questions through the service, ``jisr ask`` (one question and ``--batch``) and
``POST /api/assistant/ask``: empty, blank, very long, mixed-script, emoji-only, control
characters, null bytes, lone surrogates; every one gets a clear answer, or a clear refusal
(a 400 problem, a plain sentence) when over 20,000 characters; none crashes. And the portal
warms the assistant when it starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jisr.assistant import service as assistant_service
from jisr.assistant.errors import QuestionTooLong
from jisr.assistant.schemas import MAX_QUESTION_LENGTH, Answer
from jisr.assistant.service import Assistant
from jisr.cli import app as cli_app
from jisr.core.i18n import gettext
from jisr.web.app import create_app

SHAPE = {"answer", "language", "procedure", "candidates", "confidence", "citations"}
ASK_IN_WORDS = (
    "Please write your question about an administrative procedure in words, "
    "for example: how do I get a residence certificate?"
)

# (name, question, expected procedure: None, an id, or "any" when any answer will do)
HARD: list[tuple[str, str, str | None]] = [
    ("empty", "", None),
    ("whitespace", "   \n\t \u00a0 ", None),
    ("long", ("جواز السفر " * 1000)[:10_000], "ma-passport"),
    ("mixed-script", "bghit njded passport ديالي au Maroc 3afak", "any"),
    ("emoji", "🙏😀🇲🇦👍🏽", None),
    ("control", "pass\x1b[31mport \x07renew\u202e\ufeff\x7f", "any"),
    ("null-bytes", "\x00\x00\x00", None),
    ("null-inside", "certificate\x00 of residence", "ma-residence-certificate"),
    ("surrogate", "\ud800 passport \udfff", "any"),
    ("digits-only", "٠٦١٢٣٤٥٦٧٨ 0612345678", None),
    ("rtl-marks", "\u200f\u202b شهادة السكنى \u202c", "ma-residence-certificate"),
]
IDS = [name for name, _q, _p in HARD]


def _check(data: dict[str, Any], expected: str | None) -> None:
    assert set(data) == SHAPE
    assert isinstance(data["answer"], str) and data["answer"].strip()
    assert "\x00" not in data["answer"]
    if expected is None:
        assert data["procedure"] is None and data["confidence"] == 0
    elif expected != "any":
        assert data["procedure"]["id"] == expected


@pytest.mark.parametrize(("name", "question", "expected"), HARD, ids=IDS)
def test_service(
    small_assistant: Assistant, name: str, question: str, expected: str | None
) -> None:
    answer = assistant_service.ask(question)
    _check(json.loads(answer.model_dump_json()), expected)
    if name in ("empty", "whitespace", "emoji", "null-bytes", "digits-only"):
        assert answer.answer == gettext(ASK_IN_WORDS, answer.language)


def test_service_refuses_over_the_limit(small_assistant: Assistant) -> None:
    assert isinstance(assistant_service.ask("a" * MAX_QUESTION_LENGTH), Answer)
    with pytest.raises(QuestionTooLong) as refused:
        assistant_service.ask("a" * (MAX_QUESTION_LENGTH + 1))
    assert refused.value.status_code == 400
    assert "20000" in refused.value.message("en")


runner = CliRunner()


@pytest.mark.parametrize(
    ("name", "question", "expected"),
    [h for h in HARD if h[0] not in ("surrogate",)],  # an argv cannot hold a lone surrogate
    ids=[n for n in IDS if n != "surrogate"],
)
def test_cli(small_assistant: Assistant, name: str, question: str, expected: str | None) -> None:
    result = runner.invoke(cli_app, ["ask", "--json", question])
    assert result.exit_code == 0, result.output
    _check(json.loads(result.stdout.strip().splitlines()[-1]), expected)


def test_cli_text_for_an_empty_question(small_assistant: Assistant) -> None:
    result = runner.invoke(cli_app, ["ask", "--country", "MA", ""])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    result = runner.invoke(cli_app, ["ask"])
    assert result.exit_code == 0, result.output


def test_cli_refuses_over_the_limit_with_a_sentence(small_assistant: Assistant) -> None:
    result = runner.invoke(cli_app, ["ask", "x" * (MAX_QUESTION_LENGTH + 1)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "at most 20000" in result.stderr


def test_cli_batch_with_hard_and_bad_lines(small_assistant: Assistant) -> None:
    good = [json.dumps({"question": q}, ensure_ascii=True) for _n, q, _e in HARD]
    bad = [
        b"not json",
        b"[1, 2]",
        b'{"question": 42}',
        b'{"question": "passport", "country": 5}',
        b'{"question": "passport", "country": "FR"}',
        b'{"question": "\xff\xfe invalid utf-8"}',
        json.dumps({"question": "x" * (MAX_QUESTION_LENGTH + 1)}).encode(),
        b'{"question": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"question": "passport"',
    ]
    stdin = b"\n".join([line.encode() for line in good] + [b"", b"   "] + bad) + b"\n"
    result = runner.invoke(cli_app, ["ask", "--json", "--batch"], input=stdin)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(rows) == len(HARD) + len(bad)
    for row, (_name, _q, expected) in zip(rows, HARD, strict=False):
        _check(row, expected)
    first_bad = len(HARD) + 3  # two blank lines are skipped, numbering goes on
    errors = rows[len(HARD) :]
    assert [e["line"] for e in errors] == list(range(first_bad, first_bad + len(bad)))
    assert all(set(e) == {"error", "line"} and e["error"] for e in errors)
    assert "UTF-8" in errors[5]["error"]
    assert "20000" in errors[6]["error"]


@pytest.fixture(scope="module")
def client(instance_factory: Any) -> Iterator[TestClient]:
    with TestClient(create_app(instance_factory("MA"), roles=["portal"])) as test_client:
        yield test_client


@pytest.mark.parametrize(("name", "question", "expected"), HARD, ids=IDS)
def test_api(
    client: TestClient, small_assistant: Assistant, name: str, question: str, expected: str | None
) -> None:
    body = json.dumps({"question": question, "country": "MA"}, ensure_ascii=True)
    response = client.post(
        "/api/assistant/ask", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    _check(response.json(), expected)


def test_api_refuses_over_the_limit_with_a_problem(
    client: TestClient, small_assistant: Assistant
) -> None:
    response = client.post(
        "/api/assistant/ask",
        json={"question": "x" * (MAX_QUESTION_LENGTH + 1)},
        headers={"accept-language": "fr"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 400 and problem["type"].endswith("question-too-long")
    assert "20000" in problem["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"question": 42}',
        b'{"question": null}',
        b'{"question": "x", "country": "FR"}',
        b'{"question": "x", "extra": 1}',
        b"[]",
        b'{"question": "raw \x01 control \x00 characters"}',  # JSON wants them escaped
        b'{"question": "not UTF-8 \xff"}',
    ],
)
def test_api_refuses_a_bad_body_with_a_problem(
    client: TestClient, small_assistant: Assistant, body: bytes
) -> None:
    response = client.post(
        "/api/assistant/ask", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


def test_the_portal_warms_the_assistant_when_it_starts(
    small_assistant: Assistant, instance_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed: list[bool] = []
    real_warm = assistant_service.warm

    def spy(progress: Any = None) -> None:
        real_warm(progress)
        warmed.append(True)

    monkeypatch.setattr(assistant_service, "warm", spy)
    monkeypatch.setenv("JISR_ASSISTANT_WARM_AT_START", "true")
    on = instance_factory("MA")
    monkeypatch.setenv("JISR_ASSISTANT_WARM_AT_START", "false")
    off = instance_factory("MA")
    with TestClient(create_app(on, roles=["portal"])) as started:
        thread = started.app.state.assistant_warming  # type: ignore[attr-defined]
        assert thread is not None
        thread.join()
    assert warmed == [True]
    with TestClient(create_app(off, roles=["portal"])) as started:
        assert started.app.state.assistant_warming is None  # type: ignore[attr-defined]
    assert warmed == [True]
