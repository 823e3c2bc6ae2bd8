"""Settings: sources, validation, the refusal of placeholder secrets, the generated docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from jisr.core.settings import (
    PLACEHOLDER_SECRET,
    Environment,
    KeystoreBackend,
    Settings,
    load_settings,
    settings_reference,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("JISR_") and name != "JISR_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


class TestSources:
    def test_defaults(self) -> None:
        settings = Settings()
        assert settings.environment is Environment.DEVELOPMENT
        assert settings.default_language == "ar"
        assert settings.nodes == ["registry", "idp", "portal"]

    def test_toml_of_the_instance_then_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "jisr.toml").write_text('instance_code = "QA"\nport = 9000\n')
        assert load_settings(tmp_path).instance_code == "QA"
        assert load_settings(tmp_path).port == 9000
        monkeypatch.setenv("JISR_PORT", "9100")
        assert load_settings(tmp_path).port == 9100

    def test_database_url_per_node(self, tmp_path: Path) -> None:
        settings = load_settings(
            tmp_path,
            instance_code="QA",
            database_url="postgresql+psycopg://h/jisr_{instance}_{node}",
        )
        assert settings.database_url_for("idp") == "postgresql+psycopg://h/jisr_qa_idp"
        sqlite = load_settings(tmp_path).database_url_for("registry")
        assert sqlite == f"sqlite:///{tmp_path.resolve()}/nodes/registry/jisr.db"


class TestValidation:
    @pytest.mark.parametrize("code", ["ma", "QA"])
    def test_instance_code_upper(self, code: str) -> None:
        assert Settings(instance_code=code).instance_code == code.upper()

    @pytest.mark.parametrize(
        "field,value",
        [
            ("instance_code", "Morocco"),
            ("port", 70000),
            ("default_language", "de"),
            ("nodes", ["idp", "idp"]),
            ("nodes", ["bad/name"]),
            ("log_level", "LOUD"),
        ],
    )
    def test_bad_values_refused(self, field: str, value: object) -> None:
        with pytest.raises(ValidationError):
            Settings(**{field: value})

    def test_placeholder_secret_refused_outside_development(self) -> None:
        with pytest.raises(ValidationError, match="keystore_passphrase"):
            Settings(environment=Environment.PRODUCTION)
        with pytest.raises(ValidationError, match="keystore_passphrase"):
            Settings(environment=Environment.TESTING, keystore_passphrase="")

    def test_placeholder_pin_refused_for_pkcs11(self) -> None:
        with pytest.raises(ValidationError, match="pkcs11_pin"):
            Settings(
                environment=Environment.PRODUCTION,
                keystore_passphrase="s3cret-long",
                keystore_backend=KeystoreBackend.PKCS11,
            )

    def test_development_accepts_placeholders(self) -> None:
        settings = Settings()
        assert settings.keystore_passphrase.get_secret_value() == PLACEHOLDER_SECRET

    def test_real_secret_accepted_in_production(self) -> None:
        settings = Settings(environment=Environment.PRODUCTION, keystore_passphrase="x" * 32)
        assert "x" * 32 not in repr(settings)


class TestReference:
    def test_every_setting_has_help(self) -> None:
        for name, field in Settings.model_fields.items():
            assert field.description and len(field.description) > 10, name

    def test_docs_are_in_sync(self) -> None:
        assert DOCS.read_text(encoding="utf-8") == settings_reference(), (
            "docs/configuration.md is stale: run `make docs`"
        )

    def test_reference_names_every_variable(self) -> None:
        text = settings_reference()
        for name in Settings.model_fields:
            assert f"`JISR_{name.upper()}`" in text
