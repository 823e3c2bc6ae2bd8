"""The local language model adapter against a fake OpenAI-compatible endpoint served over
HTTP (uvicorn on a free port): a faithful reply is shown, a reply with an invented fee,
document or delay is dropped for the composed answer, and so is every failure; the model is
sent only the cited entries and the redacted question."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jisr.assistant.llm import LocalLLM, unsupported
from jisr.assistant.service import Assistant, compose
from jisr.cli import app as cli_app
from jisr.core.net import free_port
from jisr.core.settings import load_settings
from jisr.services import service as catalogue_service
from jisr.web.app import create_app

RESIDENCE = "ma-residence-certificate"
FAITHFUL_EN = (
    "To get a certificate of residence, apply at the administrative annex or caïdat of your "
    "home with your electronic national identity card (CNIE), a birth certificate extract and "
    "a proof of housing (lease, water or electricity bill). The local agent (moqaddem) checks "
    "on site, then you collect the certificate signed by the local authority officer. The fee "
    "and the processing time are not confirmed in this catalogue: check them with the agency."
)
FAITHFUL_AR = (
    "للحصول على شهادة السكنى، قدم الطلب لدى الملحقة الإدارية أو القيادة لمحل السكنى مع البطاقة "
    "الوطنية للتعريف الإلكترونية ونسخة موجزة من رسم الولادة ووثيقة تثبت السكن (عقد كراء أو "
    "فاتورة ماء أو كهرباء). المبلغ والأجل غير مؤكدين في هذا الدليل."
)


@dataclass
class FakeModel:
    """What the fake endpoint answers next, and what it was sent."""

    reply: str = FAITHFUL_EN
    status: int = 200
    raw: str | None = None
    hold: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def fake_app(model: FakeModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Response:
        body = await request.json()
        model.requests.append({"body": body, "headers": dict(request.headers)})
        if model.hold:
            await asyncio.to_thread(model.release.wait)
        if model.raw is not None:
            return PlainTextResponse(model.raw, status_code=model.status)
        if model.status != 200:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=model.status)
        return JSONResponse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": model.reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    return app


@dataclass
class Endpoint:
    model: FakeModel
    url: str

    def client(self, **kwargs: Any) -> LocalLLM:
        return LocalLLM(self.url, "atlas-chat", **kwargs)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeModel, str]]:
    model = FakeModel()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            fake_app(model), host="127.0.0.1", port=port, log_config=None, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:  # waiting for the server, not measuring it
        assert thread.is_alive(), "the fake endpoint did not start"
        time.sleep(0.02)
    yield model, f"http://127.0.0.1:{port}/v1"
    model.release.set()
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def endpoint(served: tuple[FakeModel, str]) -> Iterator[Endpoint]:
    model, url = served
    model.reply, model.status, model.raw, model.hold = FAITHFUL_EN, 200, None, False
    model.requests.clear()
    model.release.clear()
    yield Endpoint(model, url)
    model.release.set()


def _fallback_reasons(logs: list[dict[str, Any]]) -> list[Any]:
    return [
        r.get("items") or r.get("reason") for r in logs if r["event"] == "assistant.llm.fallback"
    ]


def test_a_faithful_reply_is_shown(small_assistant: Assistant, endpoint: Endpoint) -> None:
    answer = small_assistant.ask(
        "How do I get a certificate of residence?", llm=endpoint.client(api_key="s3cret")
    )
    assert answer.procedure is not None and answer.procedure.id == RESIDENCE
    assert answer.answer.startswith(FAITHFUL_EN)
    assert f"{RESIDENCE}" in answer.answer  # the source line stays
    assert [c.id for c in answer.citations] == [RESIDENCE]
    (sent,) = endpoint.model.requests
    assert sent["headers"]["authorization"] == "Bearer s3cret"
    assert sent["body"]["model"] == "atlas-chat"
    assert sent["body"]["stream"] is False


def test_a_reasoning_trace_is_not_shown(small_assistant: Assistant, endpoint: Endpoint) -> None:
    endpoint.model.reply = "<think>Maybe the fee is 50 MAD?</think>\n" + FAITHFUL_EN
    answer = small_assistant.ask("Certificate of residence", llm=endpoint.client())
    assert answer.answer.startswith(FAITHFUL_EN) and "50" not in answer.answer


def test_darija_gets_the_arabic_reply(small_assistant: Assistant, endpoint: Endpoint) -> None:
    endpoint.model.reply = FAITHFUL_AR
    answer = small_assistant.ask("كيفاش ندير شهادة السكنى", llm=endpoint.client())
    assert answer.language == "ar" and answer.answer.startswith(FAITHFUL_AR)
    system = endpoint.model.requests[0]["body"]["messages"][0]["content"]
    assert "Arabic" in system


@pytest.mark.parametrize(
    ("invented", "kind"),
    [
        (" The fee is 50 dirhams.", "amount"),
        (" It is free.", "fee"),
        (" It takes 10 days.", "delay"),
        (" Also bring a copy of your marriage certificate.", "document"),
        (" Bring two recent photographs.", "document"),
        (" Bring your passport.", "document"),
    ],
)
def test_an_invented_fee_document_or_delay_is_rejected(
    small_assistant: Assistant, endpoint: Endpoint, invented: str, kind: str
) -> None:
    endpoint.model.reply = FAITHFUL_EN + invented
    with structlog.testing.capture_logs() as logs:
        answer = small_assistant.ask(
            "How do I get a certificate of residence?", llm=endpoint.client()
        )
    assert answer.answer == compose(catalogue_service.get_procedure(RESIDENCE), "en")
    (items,) = _fallback_reasons(logs)
    assert any(item.startswith(kind) for item in items), items


def test_a_reply_in_the_wrong_language_is_rejected(
    small_assistant: Assistant, endpoint: Endpoint
) -> None:
    answer = small_assistant.ask("كيفاش ندير شهادة السكنى", llm=endpoint.client())
    assert answer.answer == compose(catalogue_service.get_procedure(RESIDENCE), "ar")


@pytest.mark.parametrize(
    ("status", "raw", "reason"),
    [
        (503, None, "HTTP 503"),
        (200, "not json", "not an OpenAI chat completion"),
        (200, json.dumps({"choices": []}), "not an OpenAI chat completion"),
        (200, json.dumps({"choices": [{"message": {"content": "  "}}]}), "empty reply"),
    ],
)
def test_errors_fall_back(
    small_assistant: Assistant, endpoint: Endpoint, status: int, raw: str | None, reason: str
) -> None:
    endpoint.model.status, endpoint.model.raw = status, raw
    with structlog.testing.capture_logs() as logs:
        answer = small_assistant.ask("Certificate of residence", llm=endpoint.client())
    assert answer.answer == compose(catalogue_service.get_procedure(RESIDENCE), "en")
    assert _fallback_reasons(logs) == [reason]


def test_a_timeout_falls_back(small_assistant: Assistant, endpoint: Endpoint) -> None:
    endpoint.model.hold = True  # the endpoint answers only when the test ends
    with structlog.testing.capture_logs() as logs:
        answer = small_assistant.ask("Certificate of residence", llm=endpoint.client(timeout_s=0.2))
    assert answer.answer == compose(catalogue_service.get_procedure(RESIDENCE), "en")
    (reason,) = _fallback_reasons(logs)
    assert reason.startswith("timeout")


def test_a_closed_port_falls_back(small_assistant: Assistant) -> None:
    llm = LocalLLM(f"http://127.0.0.1:{free_port()}/v1", "m", timeout_s=5)
    answer = small_assistant.ask("Certificate of residence", llm=llm)
    assert answer.answer == compose(catalogue_service.get_procedure(RESIDENCE), "en")


def test_the_model_is_sent_only_the_cited_entries_redacted(
    small_assistant: Assistant, endpoint: Endpoint
) -> None:
    answer = small_assistant.ask(
        "Certificate of residence for CNIE AB123456, call me on 0612345678 or x@y.ma",
        llm=endpoint.client(),
    )
    assert len(answer.candidates) > 1  # retrieved, but not cited: not sent
    (sent,) = endpoint.model.requests
    messages = sent["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    text = json.dumps(sent["body"], ensure_ascii=False)
    for secret in ("AB123456", "0612345678", "x@y.ma"):
        assert secret not in text
    assert "[national-id]" in text and "[phone]" in text and "[email]" in text
    user = messages[1]["content"]
    listed = user.split("Catalogue entries (JSON):\n", 1)[1].split("\n\nQuestion:")[0]
    entries = json.loads(listed)
    assert [e["id"] for e in entries] == [RESIDENCE]
    others = [p for p in catalogue_service.list_procedures() if p.id != RESIDENCE]
    assert not any(p.id in text for p in others)
    assert not any(f'"{c.title.en}"' in text for c in answer.candidates[1:])
    assert "aliases" not in text and "uncertain" not in text


def test_clarifications_and_refusals_never_go_to_the_model(
    small_assistant: Assistant, endpoint: Endpoint
) -> None:
    for question in ("What's the weather in Rabat tomorrow?", "", "🙏"):
        answer = small_assistant.ask(question, llm=endpoint.client())
        assert answer.procedure is None
    assert endpoint.model.requests == []


def test_off_by_default(tmp_path: Any) -> None:
    assert LocalLLM.from_settings(load_settings(tmp_path)) is None
    settings = load_settings(
        tmp_path, assistant_llm_url="http://127.0.0.1:8080/v1/", assistant_llm_api_key="k"
    )
    llm = LocalLLM.from_settings(settings)
    assert llm is not None and llm.url == "http://127.0.0.1:8080/v1" and llm.api_key == "k"


@pytest.mark.parametrize(
    ("procedure_id", "reply", "language", "problem"),
    [
        ("ma-cnie-renewal", "The renewal costs 75 MAD (75 dirhams).", "en", None),
        ("ma-cnie-renewal", "The renewal costs 75 QAR.", "en", "amount 75 QAR"),
        ("ma-cnie-renewal", "يكلف التجديد 75 درهما. أحضر صورتين شمسيتين حديثتين.", "ar", None),
        ("ma-cnie-renewal", "يكلف التجديد ٨٠ درهما.", "ar", "number 80"),
        ("ma-residence-certificate", FAITHFUL_AR + " المدة ثلاثة أيام.", "ar", "delay 3 day"),
        ("ma-residence-certificate", FAITHFUL_AR + " مع صورتين شمسيتين.", "ar", "document"),
        ("ma-residence-certificate", FAITHFUL_AR + " الخدمة مجانية.", "ar", "fee claim"),
        ("ma-residence-certificate", "Le délai est de 15 jours.", "fr", "delay 15 day"),
        ("ma-residence-certificate", "Ajoutez une copie du livret de famille.", "fr", "document"),
        ("ma-residence-certificate", "Il faut trois semaines.", "fr", "delay 3 week"),
        ("ma-birth-declaration", "التصريح بالولادة مجاني ويتم عادة في نفس اليوم.", "ar", None),
        ("ma-birth-declaration", "Declaring a birth is free, usually the same day.", "en", None),
        ("ma-birth-declaration", "Il faut l'acte de mariage des parents.", "fr", "document"),
        ("ma-birth-declaration", "يلزم عقد الزواج.", "ar", "document"),
        ("ma-birth-declaration", "It must be done within 30 days.", "en", None),
        ("ma-birth-declaration", "It must be done within 60 days.", "en", "number 60"),
    ],
)
def test_the_check(procedure_id: str, reply: str, language: str, problem: str | None) -> None:
    problems = unsupported(reply, [catalogue_service.get_procedure(procedure_id)], language)
    if problem is None:
        assert problems == []
    else:
        assert any(p.startswith(problem) for p in problems), problems


runner = CliRunner()


def test_the_cli_and_the_api_use_the_configured_model(
    small_assistant: Assistant,
    endpoint: Endpoint,
    instance_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JISR_ASSISTANT_LLM_URL", endpoint.url)
    result = runner.invoke(cli_app, ["ask", "How do I get a certificate of residence?"])
    assert result.exit_code == 0, result.output
    assert FAITHFUL_EN in result.stdout
    instance = instance_factory("MA")
    with TestClient(create_app(instance, roles=["portal"])) as client:
        response = client.post(
            "/api/assistant/ask", json={"question": "Certificate of residence", "country": "MA"}
        )
    assert response.status_code == 200
    assert response.json()["answer"].startswith(FAITHFUL_EN)
    assert len(endpoint.model.requests) == 2
