"""The ASGI app: health, readiness, OpenAPI, problem details, headers, body limit, pages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import APIRouter, Body
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from jisr.core.audit.models import AuditChain
from jisr.core.clock import utcnow
from jisr.core.errors import Conflict
from jisr.core.http import session_of
from jisr.core.i18n import _
from jisr.core.instance import Instance
from jisr.web import create_app

pytestmark = pytest.mark.db


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    app = create_app(instance)
    probe = APIRouter()

    @probe.post("/api/probe/echo")
    def echo(payload: dict[str, int] = Body(...)) -> dict[str, int]:  # noqa: B008
        return payload

    @probe.get("/api/probe/conflict")
    def conflict() -> None:
        raise Conflict(
            _("Instance {instance} has no node {node}; its nodes are: {nodes}."),
            instance="MA",
            node="x",
            nodes="y",
        )

    app.include_router(probe)
    yield TestClient(app)


class TestProbes:
    def test_healthz(self, client: TestClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz_reports_every_node(self, client: TestClient) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["nodes"] == {
            n: {"status": "ok"} for n in ("registry", "idp", "portal")
        }

    def test_readyz_roles(self, instance: Instance) -> None:
        response = TestClient(create_app(instance, roles=["idp"])).get("/readyz")
        assert list(response.json()["nodes"]) == ["idp"]


class TestOpenAPI:
    def test_is_3_1(self, client: TestClient) -> None:
        spec = client.get("/openapi.json").json()
        assert spec["openapi"].startswith("3.1")
        assert "/healthz" in spec["paths"]
        assert "503" in spec["paths"]["/readyz"]["get"]["responses"]


class TestProblems:
    def test_unknown_path_is_problem_json(self, client: TestClient) -> None:
        response = client.get("/nowhere", headers={"accept-language": "fr"})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == "urn:jisr:problem:not-found"
        assert body["status"] == 404
        assert body["instance"] == "/nowhere"
        assert body["title"] != "Not found"

    def test_domain_error(self, client: TestClient) -> None:
        response = client.get("/api/probe/conflict", headers={"accept-language": "en"})
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "conflict"
        assert body["node"] == "x"
        assert "has no node x" in body["detail"]

    def test_validation_error_is_400_problem(self, client: TestClient) -> None:
        response = client.post("/api/probe/echo", json={"a": "not a number"})
        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid-input"
        assert body["errors"][0]["loc"] == ["body", "a"]

    def test_malformed_json(self, client: TestClient) -> None:
        response = client.post(
            "/api/probe/echo", content=b"{", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400

    def test_html_error_page_in_arabic(self, client: TestClient) -> None:
        response = client.get("/nowhere", headers={"accept": "text/html"})
        assert response.status_code == 404
        assert response.template.name == "errors/error.html"  # type: ignore[attr-defined]
        assert 'dir="rtl"' in response.text
        assert 'lang="ar"' in response.text


class TestBodyLimit:
    def test_declared_length_over_limit(self, client: TestClient, instance: Instance) -> None:
        size = instance.settings.max_request_bytes + 1
        response = client.post(
            "/api/probe/echo", content=b"x" * size, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["code"] == "payload-too-large"

    def test_streamed_body_over_limit(self, client: TestClient, instance: Instance) -> None:
        chunk = b"x" * 65536
        count = instance.settings.max_request_bytes // len(chunk) + 2

        def stream() -> Iterator[bytes]:
            for _index in range(count):
                yield chunk

        response = client.post(
            "/api/probe/echo", content=stream(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


class TestHeaders:
    def test_security_headers(self, client: TestClient) -> None:
        headers = client.get("/healthz").headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]

    def test_request_id_generated_and_echoed(self, client: TestClient) -> None:
        generated = client.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32
        given = client.get("/healthz", headers={"x-request-id": "abc-12345678"})
        assert given.headers["x-request-id"] == "abc-12345678"

    def test_insane_request_id_replaced(self, client: TestClient) -> None:
        response = client.get("/healthz", headers={"x-request-id": "<script>"})
        assert response.headers["x-request-id"] != "<script>"


class TestHome:
    @pytest.mark.parametrize("language,direction", [("ar", "rtl"), ("fr", "ltr"), ("en", "ltr")])
    def test_languages(self, client: TestClient, language: str, direction: str) -> None:
        response = client.get(f"/?lang={language}")
        assert response.status_code == 200
        assert response.template.name == "home.html"  # type: ignore[attr-defined]
        assert response.context["page"].language == language  # type: ignore[attr-defined]
        assert f'dir="{direction}"' in response.text
        assert response.cookies.get("lang") == language

    def test_arabic_by_default(self, client: TestClient) -> None:
        response = client.get("/")
        assert 'lang="ar"' in response.text
        assert "مرحبا" in response.text or "جسر" in response.text


class TestTransactions:
    """A write is committed before its response leaves: never acknowledged, then lost."""

    def test_failed_commit_is_not_acknowledged(self, instance: Instance) -> None:
        app = create_app(instance)
        probe = APIRouter()

        @probe.post("/api/probe/write")
        def write(session: Annotated[Session, session_of("portal")]) -> dict[str, str]:
            now = utcnow()
            for _copy in range(2):  # the same primary key twice: the commit must fail
                session.add(
                    AuditChain(
                        name="probe", head_seq=0, head_hash="0" * 64, created_at=now, updated_at=now
                    )
                )
            return {"status": "stored"}

        app.include_router(probe)
        response = TestClient(app, raise_server_exceptions=False).post("/api/probe/write")
        assert response.status_code == 500
        assert "stored" not in response.text

    def test_every_route_commits_before_responding(self) -> None:
        source = Path(__file__).resolve().parents[2] / "src"
        offenders = [
            str(path)
            for path in source.rglob("*.py")
            if "Depends(node_session(" in path.read_text(encoding="utf-8")
            and path.name != "http.py"  # where session_of itself is defined
        ]
        assert not offenders, f"use jisr.core.http.session_of instead: {offenders}"
