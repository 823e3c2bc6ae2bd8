"""The ``jisr`` command, through Typer's runner and, for ``serve``, a real process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import jisr
from jisr.cli import app
from jisr.cli.reference import reference
from jisr.core.instance import Instance
from jisr.core.net import free_port

runner = CliRunner()
DOCS = Path(__file__).resolve().parents[2] / "docs"


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_version() -> None:
    assert invoke("--version") == (0, f"jisr {jisr.__version__}\n")


def test_help_everywhere() -> None:
    for command in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["db", "--help"],
        ["keys", "rotate", "--help"],
        ["audit", "verify", "--help"],
        ["demo", "--help"],
    ):
        code, output = invoke(*command)
        assert code == 0, command
        assert "Usage" in output


def test_cli_reference_in_sync() -> None:
    assert (DOCS / "cli.md").read_text(encoding="utf-8") == reference(), (
        "docs/cli.md is stale: run `make docs`"
    )


def test_missing_instance_is_a_plain_sentence(tmp_path: Path) -> None:
    code, output = invoke("keys", "list", "--dir", str(tmp_path))
    assert code == 1
    assert "No Jisr instance in" in output
    assert "Traceback" not in output


def test_usage_error_exits_2() -> None:
    code, _ = invoke("init")
    assert code == 2


@pytest.mark.db
class TestInstanceCommands:
    def test_init_then_refuse(self, tmp_path: Path) -> None:
        target = tmp_path / "QA"
        code, output = invoke("init", "--dir", str(target), "--instance", "QA")
        assert code == 0, output
        assert "Instance QA created" in output
        before = (target / "jisr.toml").read_text()
        code, output = invoke("init", "--dir", str(target), "--instance", "QA")
        assert code == 1
        assert "already holds a Jisr instance" in output
        assert (target / "jisr.toml").read_text() == before

    def test_keys_list_and_rotate(self, instance: Instance) -> None:
        code, output = invoke("keys", "list", "--dir", str(instance.path), "--json")
        assert code == 0, output
        keys = json.loads(output)
        idp_before = [k for k in keys if k["node"] == "idp" and k["purpose"] == "signing"]
        assert [k["status"] for k in idp_before] == ["active"]
        code, output = invoke("keys", "rotate", "--dir", str(instance.path), "--node", "idp")
        assert code == 0, output
        keys = json.loads(invoke("keys", "list", "--dir", str(instance.path), "--json")[1])
        statuses = sorted(
            k["status"] for k in keys if k["node"] == "idp" and k["purpose"] == "signing"
        )
        assert statuses == ["active", "retired"]

    def test_unknown_node_refused(self, instance: Instance) -> None:
        code, output = invoke("keys", "rotate", "--dir", str(instance.path), "--node", "nope")
        assert code == 1
        assert "has no node nope" in output

    def test_db_upgrade_is_idempotent(self, instance: Instance) -> None:
        code, output = invoke("db", "upgrade", "--dir", str(instance.path))
        assert code == 0, output
        assert output.count("already up to date") == 3

    def test_settings_show_hides_secrets(self, instance: Instance) -> None:
        code, output = invoke("settings", "show", "--dir", str(instance.path))
        assert code == 0
        assert json.loads(output)["instance_code"] == "MA"
        secret = instance.settings.keystore_passphrase.get_secret_value()
        assert secret not in output


TAMPERING = {
    "changed": ['UPDATE audit_records SET data = \'{"instance":"XX"}\' WHERE seq = 2'],
    "deleted": ["DELETE FROM audit_records WHERE seq = 2"],
    "reordered": [
        "UPDATE audit_records SET seq = -1 WHERE seq = 2",
        "UPDATE audit_records SET seq = 2 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = -1",
    ],
}


@pytest.mark.db
class TestAuditVerify:
    @pytest.mark.parametrize("kind", sorted(TAMPERING))
    def test_finds_tampering(self, instance_factory, kind: str) -> None:  # type: ignore[no-untyped-def]
        instance = instance_factory("QA", nodes=["registry"])
        node = instance.node("registry")
        with node.session() as session:
            for number in range(4):
                node.record(session, "test.event", {"n": number}, chain="cli-test")
        code, output = invoke("audit", "verify", "--dir", str(instance.path), "--json")
        assert code == 0, output
        assert json.loads(output)["ok"] is True
        with node.engine.begin() as connection:
            for statement in TAMPERING[kind]:
                connection.execute(
                    sa.text(statement.replace("WHERE", "WHERE chain = 'cli-test' AND"))
                )
        code, output = invoke("audit", "verify", "--dir", str(instance.path), "--json")
        assert code == 1, output
        report = json.loads(output)
        broken = [c for c in report["chains"] if not c["ok"]]
        assert [c["chain"] for c in broken] == ["cli-test"]
        first = broken[0]["findings"][0]
        assert first["kind"] == kind
        assert first["seq"] == 2
        code, output = invoke("audit", "verify", "--dir", str(instance.path))
        assert code == 1
        assert "registry/cli-test" in output and "BROKEN" in output


@pytest.mark.db
@pytest.mark.slow
def test_serve_answers_healthz(instance: Instance) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jisr",
            "serve",
            "--dir",
            str(instance.path),
            "--port",
            str(port),
            "--roles",
            "idp,portal",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"jisr serve did not start: {output}")
                time.sleep(0.1)
        assert response.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert list(ready.json()["nodes"]) == ["idp", "portal"]
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
