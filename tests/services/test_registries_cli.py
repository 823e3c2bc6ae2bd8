"""``jisr registries``: init the node, create a database, import JSON lines, list; refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.instance import Instance
from jisr.services import registries

pytestmark = pytest.mark.db

runner = CliRunner()

SCHEMA = {
    "type": "object",
    "properties": {
        "nid": {"type": "string", "primaryKey": True},
        "name": {"type": "string", "minLength": 1},
    },
    "required": ["nid", "name"],
    "additionalProperties": False,
}


def invoke(*args: Any) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def test_init_create_import_list(instance_factory: Any, tmp_path: Path) -> None:
    instance: Instance = instance_factory("MA")
    directory = instance.path
    assert invoke("registries", "list", "--dir", directory).exit_code == 1  # no node yet

    first = invoke("registries", "init", "--dir", directory)
    assert first.exit_code == 0, first.output
    assert "registers node added" in first.output
    again = invoke("registries", "init", "--dir", directory)
    assert again.exit_code == 0 and "already there" in again.output
    assert registries.REGISTERS_NODE in Instance.open(directory).settings.nodes

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    made = invoke(
        "registries", "create", "--dir", directory, "--schema", schema,
        "--name", "people", "--code", "PPL", "--personal-id", "/nid",
        "--catalog", "Tests", "--institution", "MA/GOV/TEST",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    duplicate = invoke(
        "registries", "create", "--dir", directory, "--schema", schema, "--name", "people",
        "--code", "PPL",
    )  # fmt: skip
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output

    lines = tmp_path / "people.jsonl"
    lines.write_text(
        '{"nid": "MA:A1", "name": "Fatima"}\n\n{"nid": "MA:B2", "name": "Omar"}\n',
        encoding="utf-8",
    )
    imported = invoke("registries", "import", "people", "1.0", lines, "--dir", directory)
    assert imported.exit_code == 0, imported.output
    assert "2 records imported" in imported.output

    listed = invoke("registries", "list", "--dir", directory, "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["version"], r["code"], r["records"]) for r in rows] == [
        ("people", "1.0", "PPL", 2)
    ]
    text = invoke("registries", "list", "--dir", directory)
    assert "people\t1.0\tPPL\t2" in text.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"nid": "MA:C3", "name": "ok"}\n{"nid": "MA:D4"}\n', "Record 2"),
        ('{"nid": "MA:C3", "name": "ok"}\nnot json\n', "Line 2"),
        ('{"nid": "MA:C3", "name": "a"}\n{"nid": "MA:C3", "name": "b"}\n', "Record 2"),
        ('{"nid": "MA:A1", "name": "taken"}\n', "already has a record"),
    ],
)
def test_import_is_all_or_none(
    instance_factory: Any, tmp_path: Path, content: str, message: str
) -> None:
    instance: Instance = instance_factory("MA")
    registries.ensure_registers_node(instance)
    node = instance.node(registries.REGISTERS_NODE)
    with node.session() as session:
        database = registries.create_database(
            session,
            name="people",
            version="1.0",
            code="PPL",
            schema=SCHEMA,
            auditor=registries.node_auditor(node, session, "test"),
        )
        registries.create_record(
            session,
            database=database,
            content={"nid": "MA:A1", "name": "first"},
            auditor=registries.node_auditor(node, session, "test"),
        )
    instance.close()
    lines = tmp_path / "bad.jsonl"
    lines.write_text(content, encoding="utf-8")
    result = invoke("registries", "import", "people", "1.0", lines, "--dir", instance.path)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    listed = json.loads(invoke("registries", "list", "--dir", instance.path, "--json").stdout)
    assert listed[0]["records"] == 1


def test_refusals_are_plain_sentences(instance_factory: Any, tmp_path: Path) -> None:
    instance: Instance = instance_factory("MA")
    registries.ensure_registers_node(instance)
    directory = instance.path
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    result = invoke(
        "registries", "create", "--dir", directory, "--schema", bad_json, "--name", "x",
        "--code", "X",
    )  # fmt: skip
    assert result.exit_code == 1 and "is not a readable JSON file" in result.output
    not_object = tmp_path / "array.json"
    not_object.write_text('{"type": "array"}')
    result = invoke(
        "registries", "create", "--dir", directory, "--schema", not_object, "--name", "x",
        "--code", "X",
    )  # fmt: skip
    assert result.exit_code == 1 and "must describe objects" in result.output
    result = invoke(
        "registries", "import", "nope", "1.0", tmp_path / "missing.jsonl", "--dir", directory
    )
    assert result.exit_code == 1 and "not a readable text file" in result.output
    lines = tmp_path / "one.jsonl"
    lines.write_text("{}\n")
    result = invoke("registries", "import", "nope", "1.0", lines, "--dir", directory)
    assert result.exit_code == 1 and "There is no registry nope version 1.0" in result.output
    assert invoke("registries", "list", "--dir", tmp_path / "none").exit_code == 1
