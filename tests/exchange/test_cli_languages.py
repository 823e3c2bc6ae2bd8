"""``jisr exchange`` speaks the operator's language (``JISR_LANGUAGE``, else the locale):
success lines, empty lists, the message-log report, usage errors and help texts in Arabic,
French and English; the ``--json`` outputs and the exit statuses are the same in every
language, and every text the two CLIs mark has its ar and fr translations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core import i18n
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.core.net import free_port
from jisr.exchange import cli as exchange_cli
from jisr.exchange import provisioning, pubsub_cli, service
from jisr.exchange.identifiers import MemberId, SubsystemId

pytestmark = [pytest.mark.db]
runner = CliRunner()
ROOM = "MA/GOV/CIVIL-REGISTRY/BIRTHS"


def invoke(language: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["exchange", *args], env={"JISR_LANGUAGE": language})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def instance(instance_factory: Any) -> Instance:
    made: Instance = instance_factory("MA")
    registry = made.node(REGISTRY_NODE)
    with registry.session() as session:
        signer = registry.checkpoint_signer(session)
        service.add_member(
            session, member=MemberId.parse("MA/GOV/CIVIL-REGISTRY"), name="CR", signer=signer
        )
        service.add_subsystem(session, subsystem=SubsystemId.parse(ROOM), signer=signer)
    provisioning.create_gateway(
        made, member=MemberId.parse("MA/GOV/CIVIL-REGISTRY"), address=f"127.0.0.1:{free_port()}"
    )
    return made


@pytest.mark.parametrize(
    "language,added",
    [
        ("en", "Member MA/GOV/EN added."),
        ("fr", "Membre MA/GOV/FR ajouté."),
        ("ar", "أُضيف العضو MA/GOV/AR."),
    ],
)
def test_success_lines(instance: Instance, language: str, added: str) -> None:
    d = str(instance.path)
    member = f"MA/GOV/{language.upper()}"
    code, output = invoke(language, "member", "add", member, "--name", "X", "--dir", d)
    assert code == 0, output
    assert output.strip() == added


@pytest.mark.parametrize("language,none", [("en", "(none)"), ("fr", "(aucun)"), ("ar", "(لا شيء)")])
def test_empty_lists(instance: Instance, language: str, none: str) -> None:
    code, output = invoke(language, "access", "list", "--dir", str(instance.path))
    assert (code, output.strip()) == (0, none)
    code, output = invoke(language, "pubsub", "type", "list", ROOM, "--dir", str(instance.path))
    assert (code, output.strip()) == (0, none)


@pytest.mark.parametrize(
    "language,intact",
    [
        ("en", "gateway-civil-registry/message-log: 0 records, intact"),
        ("fr", "gateway-civil-registry/message-log : 0 enregistrements, intact"),
        ("ar", "gateway-civil-registry/message-log: 0 سجلًا، سليم"),
    ],
)
def test_log_verify_report_and_json(instance: Instance, language: str, intact: str) -> None:
    d = str(instance.path)
    code, output = invoke(language, "log", "verify", "--dir", d)
    assert code == 0 and intact in output, output
    code, output = invoke(language, "log", "verify", "--dir", d, "--json")
    assert code == 0
    assert json.loads(output) == {
        "ok": True,
        "gateways": [{"node": "gateway-civil-registry", "ok": True, "records": 0, "findings": []}],
    }


def test_json_is_the_same_in_every_language(instance: Instance) -> None:
    d = str(instance.path)
    for args in (("member", "list"), ("subsystem", "list"), ("gateway", "list")):
        outputs = {
            language: invoke(language, *args, "--dir", d, "--json")
            for language in "ar fr en".split()
        }
        assert outputs["ar"] == outputs["fr"] == outputs["en"], args
        assert outputs["en"][0] == 0


@pytest.mark.parametrize(
    "language,said",
    [
        ("en", "Give either ARCHIVE or --dir"),
        ("fr", "Donnez soit ARCHIVE, soit --dir"),
        ("ar", "أعطِ إما ARCHIVE وإما --dir"),
    ],
)
def test_usage_error(language: str, said: str) -> None:
    code, output = invoke(language, "log", "verify")
    assert code == 2 and said in output, output


def test_help_texts_follow_the_language_at_start() -> None:
    """Help texts are read when the command loads: a fresh process per language."""

    def help_of(language: str) -> str:
        env = {**os.environ, "JISR_LANGUAGE": language}
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from jisr.cli import main; main()",
                "exchange",
                "member",
                "--help",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    assert "Register a member organisation." in help_of("en")
    assert "Enregistrer une organisation membre." in help_of("fr")
    assert "تسجيل منظمة عضو." in help_of("ar")


@pytest.mark.parametrize("module", [exchange_cli, pubsub_cli])
def test_every_marked_text_is_translated(module: Any) -> None:
    with Path(module.__file__).open("rb") as handle:
        marked = {
            message
            for _line, _function, message, _comments in extract_python(handle, ["_"], [], {})
            if isinstance(message, str) and message
        }
    assert len(marked) > 20
    for language in ("ar", "fr"):
        with i18n.catalog_path(language).open("rb") as handle:
            catalog = read_po(handle, locale=language)
        missing = sorted(m for m in marked if not (catalog.get(m) and catalog[m].string))
        assert not missing, (language, missing)
