"""``jisr serve``: the internal ``registers`` role is served only when named, and a warning
says so when it is named on an address other than loopback (uvicorn not started here)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jisr.cli import app
from jisr.cli.core import is_loopback
from jisr.core.instance import Instance
from jisr.services import registries

runner = CliRunner()
HEADERS = {"Information-Mediator-Client": "MA/GOV/ESERVICES/PORTAL"}


@pytest.fixture(scope="module")
def with_registers(instance_factory: Any) -> Instance:
    made: Instance = instance_factory("MA")
    registries.ensure_registers_node(made)
    return made


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What ``jisr serve`` hands to uvicorn, instead of serving it."""
    seen: dict[str, Any] = {}

    def run(target: Any, **options: Any) -> None:
        seen.update(options, app=target)

    monkeypatch.setattr(uvicorn, "run", run)
    return seen


def serve(instance: Instance, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        app, ["serve", "--dir", str(instance.path), *args], env={"JISR_LANGUAGE": "en"}
    )
    return result.exit_code, result.stdout, result.stderr


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org", ""):
        assert not is_loopback(host), host


def test_help_says_registers_is_left_out() -> None:
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "registers" in result.stdout and "127.0.0.1" in result.stdout


@pytest.mark.db
def test_default_serve_leaves_the_registers_out(
    with_registers: Instance, served: dict[str, Any]
) -> None:
    code, out, _err = serve(with_registers, "--host", "0.0.0.0", "--port", "8123")
    assert code == 0, out
    assert "registers" not in out.split("\n")[0]
    assert "Not served: registers" in out and "--roles registers --host 127.0.0.1" in out
    application: FastAPI = served["app"]
    with TestClient(application) as client:
        for path in ("/databases", "/data/ma-births/1.0"):
            assert client.get(path, headers=HEADERS).status_code == 404
        assert "registers" not in client.get("/readyz").json()["nodes"]


@pytest.mark.db
def test_registers_served_when_named_on_loopback(
    with_registers: Instance, served: dict[str, Any]
) -> None:
    code, out, err = serve(with_registers, "--roles", "registers", "--host", "127.0.0.1")
    assert code == 0, out + err
    assert "Serving MA (registers) on http://127.0.0.1:" in out
    assert "Warning" not in err and "Not served" not in out
    assert served["host"] == "127.0.0.1"
    with TestClient(served["app"]) as client:
        assert client.get("/databases", headers=HEADERS).status_code == 200


@pytest.mark.db
def test_registers_on_a_public_address_is_warned(
    with_registers: Instance, served: dict[str, Any]
) -> None:
    code, out, err = serve(with_registers, "--roles", "registers,portal", "--host", "0.0.0.0")
    assert code == 0, out + err
    assert "Warning: registers trusts the client id its callers send" in err
    assert "internal-roles-on-non-loopback-address" in err
    assert served["host"] == "0.0.0.0"


@pytest.mark.db
def test_an_unknown_role_is_refused_before_serving(
    with_registers: Instance, served: dict[str, Any]
) -> None:
    code, _out, err = serve(with_registers, "--roles", "nope")
    assert code == 1 and "Error:" in err
    assert served == {}
