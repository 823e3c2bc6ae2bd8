"""``jisr exchange``: administration through the CLI, and ``log verify`` finding tampering."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.instance import Instance
from jisr.exchange.gateway import MESSAGE_LOG

from .conftest import ExchangeWorld, build_world

pytestmark = [pytest.mark.db, pytest.mark.slow]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["exchange", *args])
    return result.exit_code, result.output


class TestAdministration:
    def test_members_subsystems_services_access(self, instance_factory: Any) -> None:
        instance: Instance = instance_factory("QA", nodes=["registry"])
        d = str(instance.path)
        assert invoke("member", "add", "QA/GOV/MOI", "--name", "Interior", "--dir", d)[0] == 0
        code, output = invoke("member", "add", "QA/GOV/MOI", "--name", "Again", "--dir", d)
        assert code == 1 and "already exists" in output
        code, output = invoke("member", "add", "QA/BAD/MOI", "--name", "X", "--dir", d)
        assert code == 1 and "Member class" in output
        assert invoke("subsystem", "add", "QA/GOV/MOI/IDS", "--dir", d)[0] == 0
        assert invoke("subsystem", "add", "QA/GOV/MOI/APP", "--dir", d)[0] == 0
        code, output = invoke("subsystem", "add", "QA/GOV/NOPE/IDS", "--dir", d)
        assert code == 1 and "no member QA/GOV/NOPE" in output
        code, output = invoke(
            "service", "add", "QA/GOV/MOI/IDS/qid", "--url", "http://127.0.0.1:9/", "--dir", d
        )
        assert code == 0, output
        code, output = invoke(
            "access",
            "grant",
            "QA/GOV/MOI/IDS/qid",
            "QA/GOV/MOI/APP",
            "--method",
            "GET",
            "--path",
            "/qid/*",
            "--dir",
            d,
        )
        assert code == 0, output
        code, output = invoke("access", "list", "--dir", d, "--json")
        assert json.loads(output) == [
            {
                "service": "QA/GOV/MOI/IDS/qid",
                "client": "QA/GOV/MOI/APP",
                "method": "GET",
                "path": "/qid/*",
            }
        ]
        code, output = invoke(
            "access",
            "revoke",
            "QA/GOV/MOI/IDS/qid",
            "QA/GOV/MOI/APP",
            "--method",
            "GET",
            "--path",
            "/qid/*",
            "--dir",
            d,
        )
        assert code == 0, output
        assert json.loads(invoke("access", "list", "--dir", d, "--json")[1]) == []
        members = json.loads(invoke("member", "list", "--dir", d, "--json")[1])
        assert members == [{"id": "QA/GOV/MOI", "name": "Interior"}]
        assert json.loads(invoke("subsystem", "list", "--dir", d, "--json")[1]) == [
            "QA/GOV/MOI/APP",
            "QA/GOV/MOI/IDS",
        ]
        services = json.loads(invoke("service", "list", "--dir", d, "--json")[1])
        assert services[0]["base_url"] == "http://127.0.0.1:9"
        code, output = invoke(
            "gateway", "add", "--member", "QA/GOV/MOI", "--address", "127.0.0.1:18443", "--dir", d
        )
        assert code == 0, output
        assert (instance.path / "nodes" / "gateway-moi" / "anchor.json").is_file()
        gateways = json.loads(invoke("gateway", "list", "--dir", d, "--json")[1])
        assert gateways == [
            {"name": "gateway-moi", "member": "QA/GOV/MOI", "address": "127.0.0.1:18443"}
        ]
        code, output = invoke(
            "gateway", "add", "--member", "QA/GOV/MOI", "--address", "127.0.0.1:18444", "--dir", d
        )
        assert code == 1 and "already has gateway gateway-moi" in output
        code, output = invoke("globalconf", "show", "--dir", d, "--json")
        assert code == 0, output
        document = json.loads(output)
        assert document["instance"] == "QA" and len(document["gateways"]) == 1
        code, output = invoke("log", "verify", "--dir", d)
        assert code == 0 and "gateway-moi/message-log: 0 records, intact" in output


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Any:
    made = build_world(instance_factory("MA"))
    for number in range(3):
        assert made.call(headers={"X-Road-Id": f"cli-{number}"}).status_code == 200
    yield made
    made.close()


TAMPERING = {
    "changed": ['UPDATE audit_records SET data = \'{"id":"forged"}\' WHERE seq = 2'],
    "deleted": ["DELETE FROM audit_records WHERE seq = 2"],
    "reordered": [
        "UPDATE audit_records SET seq = -1 WHERE seq = 2",
        "UPDATE audit_records SET seq = 2 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = -1",
    ],
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_log_verify_names_the_broken_record(world: ExchangeWorld, kind: str) -> None:
    d = str(world.instance.path)
    code, output = invoke("log", "verify", "--dir", d, "--json")
    assert code == 0, output
    node = world.instance.node("gateway-civil-registry")
    with node.engine.begin() as connection:
        backup = (
            connection.execute(
                sa.text("SELECT * FROM audit_records WHERE chain = :c"), {"c": MESSAGE_LOG}
            )
            .mappings()
            .all()
        )
        for statement in TAMPERING[kind]:
            connection.execute(
                sa.text(statement.replace("WHERE", "WHERE chain = 'message-log' AND"))
            )
    try:
        code, output = invoke("log", "verify", "--dir", d, "--json")
        assert code == 1, output
        report = json.loads(output)
        broken = [g for g in report["gateways"] if not g["ok"]]
        assert [g["node"] for g in broken] == ["gateway-civil-registry"]
        assert broken[0]["findings"][0]["kind"] == kind
        assert broken[0]["findings"][0]["seq"] == 2
        code, output = invoke("log", "verify", "--dir", d)
        assert code == 1 and "gateway-civil-registry/message-log" in output and "BROKEN" in output
    finally:
        with node.engine.begin() as connection:
            connection.execute(
                sa.text("DELETE FROM audit_records WHERE chain = :c"), {"c": MESSAGE_LOG}
            )
            for row in backup:
                connection.execute(
                    sa.insert(sa.table("audit_records", *[sa.column(name) for name in row])).values(
                        **row
                    )
                )
    assert invoke("log", "verify", "--dir", d)[0] == 0
    assert httpx.get(world.registry.url + "/healthz", timeout=5).status_code == 200
