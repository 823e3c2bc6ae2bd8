"""``jisr identity client add``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.instance import Instance
from jisr.identity.oidc import service

pytestmark = pytest.mark.db
runner = CliRunner()


def _client(instance: Instance, client_id: str) -> Any:
    with instance.node("idp").session() as session:
        return service.client_info(session, client_id=client_id)


def test_add_secret_client(instance: Instance) -> None:
    result = runner.invoke(
        app,
        [
            "identity",
            "client",
            "add",
            "--dir",
            str(instance.path),
            "--name",
            "Portail",
            "--redirect-uri",
            "https://portal.example/cb",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert len(printed["client_secret"]) >= 40
    info = _client(instance, printed["client_id"])
    assert info.auth_method == "client_secret_basic"
    assert info.redirect_uris == ["https://portal.example/cb"]


def test_add_private_key_jwt_client(instance: Instance, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}))
    result = runner.invoke(
        app,
        [
            "identity",
            "client",
            "add",
            "--dir",
            str(instance.path),
            "--name",
            "Banque",
            "--redirect-uri",
            "https://bank.example/cb",
            "--auth-method",
            "private_key_jwt",
            "--jwks",
            str(jwks),
            "--client-id",
            "bank-cli",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "client_id: bank-cli" in result.output and "client_secret" not in result.output


def test_bad_redirect_uri_is_a_plain_sentence(instance: Instance) -> None:
    result = runner.invoke(
        app,
        [
            "identity",
            "client",
            "add",
            "--dir",
            str(instance.path),
            "--name",
            "X",
            "--redirect-uri",
            "not-a-uri",
        ],
    )
    assert result.exit_code == 1
    assert "not an absolute http(s) URI" in result.output
