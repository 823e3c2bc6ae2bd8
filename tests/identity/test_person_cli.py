"""``jisr identity person …`` through Typer's runner."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from register_factories import FATIMA, MOHAMMED
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.instance import Instance
from jisr.identity._import import COLUMNS

pytestmark = pytest.mark.db

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["identity", "person", *args])
    return result.exit_code, result.output


def add_args(data: dict[str, Any]) -> list[str]:
    return [
        item for key, value in data.items() for item in (f"--{key.replace('_', '-')}", str(value))
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def directory(instance_factory: Any) -> str:
    instance: Instance = instance_factory("MA")
    return str(instance.path)


def test_help() -> None:
    for command in ([], ["add"], ["show"], ["search"], ["import"], ["deceased"]):
        code, output = invoke(*command, "--help")
        assert code == 0 and "Usage" in output


def test_add_show_search(directory: str) -> None:
    code, output = invoke("add", "--dir", directory, *add_args(FATIMA))
    assert (code, output) == (0, "Added MA:AB123456.\n")
    code, output = invoke("show", "maab123456", "--dir", directory, "--json")
    assert code == 0, output
    assert json.loads(output)["given_name_ar"] == "فاطمة الزهراء"
    code, output = invoke("show", "MA:AB123456", "--dir", directory)
    assert "MA:AB123456" in output and "birth_place: Rabat" in output
    code, output = invoke("search", "فاطمه العمرانى", "--dir", directory, "--json")
    assert [p["national_id"] for p in json.loads(output)] == ["MAAB123456"]
    code, output = invoke("search", "Fatema Al-Amrani", "--dir", directory)
    assert output.startswith("MA:AB123456  Fatima Zahra El Amrani")
    assert invoke("search", "Nobody", "--dir", directory)[1] == "No person found.\n"


def test_add_refusals(directory: str) -> None:
    data = {**FATIMA, "national_id": "MA:C100000"}
    assert invoke("add", "--dir", directory, *add_args(data))[0] == 0
    code, output = invoke("add", "--dir", directory, *add_args(data))
    assert code == 1
    assert "already in the register" in output
    code, output = invoke("add", "--dir", directory, *add_args({**data, "national_id": "C1"}))
    assert code == 1 and "must start with a country code" in output
    code, output = invoke("add", "--dir", directory, *add_args({**data, "sex": "X"}))
    assert code == 1 and "sex:" in output
    assert "Traceback" not in output


def test_show_unknown(directory: str) -> None:
    code, output = invoke("show", "MA:ZZ999999", "--dir", directory)
    assert code == 1
    assert "No person with identifier MA:ZZ999999." in output


def test_deceased(directory: str) -> None:
    invoke("add", "--dir", directory, *add_args({**FATIMA, "national_id": "MA:D200000"}))
    code, output = invoke("deceased", "MA:D200000", "--date", "2024-03-01", "--dir", directory)
    assert code == 0, output
    code, output = invoke("deceased", "MA:D200000", "--date", "2024-03-01", "--dir", directory)
    assert code == 1 and "already recorded as deceased" in output


def test_import(directory: str, tmp_path: Path) -> None:
    rows = [{**MOHAMMED}, *({**FATIMA, "national_id": f"MA:K{n:06d}"} for n in range(50))]
    code, output = invoke("import", str(write_csv(tmp_path / "ok.csv", rows)), "--dir", directory)
    assert code == 0, output
    assert "Imported 51 person(s) from 51 row(s)" in output
    code, output = invoke(
        "import", str(tmp_path / "ok.csv"), "--dir", directory, "--skip-existing", "--json"
    )
    assert json.loads(output[output.index("{") :]) == {"rows": 51, "imported": 0, "skipped": 51}


def test_import_rejected(directory: str, tmp_path: Path) -> None:
    rows = [
        {**FATIMA, "national_id": "MA:L000001"},
        {**FATIMA, "national_id": "MA:L000002", "birth_date": "yesterday"},
        {**FATIMA, "national_id": "QA:1"},
    ]
    path = write_csv(tmp_path / "bad.csv", rows)
    code, output = invoke("import", str(path), "--dir", directory)
    assert code == 1
    assert "line 3 (birth_date)" in output
    assert "line 4 (national_id)" in output
    assert "2 problem(s), the first on line 3" in output
    assert invoke("show", "MA:L000001", "--dir", directory)[0] == 1
