"""Typed settings for one Jisr instance.

Sources, highest priority first: keyword arguments, ``JISR_*`` environment variables, the
``.env`` file of the working directory, the instance's ``jisr.toml`` and the defaults below.
Every field carries a help text; ``docs/configuration.md`` is generated from them
(``jisr settings docs``) and a test keeps the two in sync.

Outside development, a secret left at its placeholder is refused at start-up.
"""

from __future__ import annotations

import enum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

SETTINGS_FILE = "jisr.toml"
PLACEHOLDER_SECRET = "change-me"


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TESTING = "testing"
    PRODUCTION = "production"


class KeystoreBackend(enum.StrEnum):
    SOFTWARE = "software"
    PKCS11 = "pkcs11"


class KeyAlgorithm(enum.StrEnum):
    ES256 = "ES256"
    ED25519 = "Ed25519"


class LogFormat(enum.StrEnum):
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """All settings of one instance; see ``docs/configuration.md``."""

    model_config = SettingsConfigDict(
        env_prefix="JISR_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    environment: Environment = Field(
        Environment.DEVELOPMENT,
        description="Where this instance runs: `development`, `testing` or `production`. "
        "Outside development, placeholder secrets are refused at start-up.",
    )
    instance_dir: Path = Field(
        Path("var/instance"),
        description="The instance directory made by `jisr init`: settings file, keystore "
        "passphrase and one sub-directory per node. CLI commands take it as `--dir`.",
    )
    instance_code: str = Field(
        "MA",
        description="The instance identifier (X-Road instance), an ISO 3166 alpha-2 country "
        "code in capitals such as `MA` or `QA`.",
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,16})?$",
    )
    instance_name: str = Field(
        "Jisr",
        description="A human name for the instance, shown in pages and certificates.",
        min_length=1,
        max_length=200,
    )
    nodes: list[str] = Field(
        default_factory=lambda: ["registry", "idp", "portal"],
        description="The nodes of this instance. Each has its own database and keystore under "
        "`<instance_dir>/nodes/<name>/`.",
    )
    database_url: str = Field(
        "sqlite:///{instance_dir}/nodes/{node}/jisr.db",
        description="SQLAlchemy URL of a node's database. `{node}`, `{instance}` and "
        "`{instance_dir}` are replaced per node, so one URL serves every node, e.g. "
        "`postgresql+psycopg://jisr@localhost/jisr_{instance}_{node}`.",
    )
    database_pool_size: int = Field(
        5, ge=1, le=200, description="Connections kept open per node database (PostgreSQL)."
    )
    keystore_backend: KeystoreBackend = Field(
        KeystoreBackend.SOFTWARE,
        description="Where private keys live: `software` (in the node database, encrypted with "
        "the keystore passphrase) or `pkcs11` (in a PKCS#11 token such as SoftHSM2 or an HSM).",
    )
    keystore_passphrase: SecretStr = Field(
        SecretStr(PLACEHOLDER_SECRET),
        description="Passphrase that encrypts software private keys at rest. `jisr init` "
        "writes a random one to `<instance_dir>/secrets.toml` (mode 0600).",
    )
    key_algorithm: KeyAlgorithm = Field(
        KeyAlgorithm.ES256,
        description="Algorithm of newly generated signing keys: `ES256` (P-256, default: it "
        "verifies faster here) or `Ed25519`.",
    )
    pkcs11_module: Path | None = Field(
        None,
        description="Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`) when "
        "`keystore_backend` is `pkcs11`.",
    )
    pkcs11_token_label: str = Field(
        "jisr",
        description="Label of the PKCS#11 token that holds this instance's keys; `{node}` is "
        "replaced by the node name, to give each node its own token.",
    )
    pkcs11_pin: SecretStr = Field(
        SecretStr(PLACEHOLDER_SECRET),
        description="User PIN of the PKCS#11 token.",
    )
    ca_validity_days: int = Field(
        3650, ge=1, le=36500, description="Validity of the instance CA certificate, in days."
    )
    certificate_validity_days: int = Field(
        365, ge=1, le=3650, description="Validity of certificates the instance CA issues."
    )
    crl_validity_hours: int = Field(
        24, ge=1, le=24 * 90, description="How long a published CRL stays valid (nextUpdate)."
    )
    audit_checkpoint_every: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="A signed checkpoint is written on an audit chain every this many records.",
    )
    default_language: str = Field(
        "ar",
        pattern=r"^(ar|fr|en)$",
        description="Language of pages and messages when the person has not chosen one "
        "(`ar`, `fr` or `en`).",
    )
    log_level: str = Field(
        "INFO",
        pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
        description="Lowest level of log records written.",
    )
    log_format: LogFormat = Field(
        LogFormat.JSON,
        description="`json` (one object per line, for production) or `console` (readable).",
    )
    host: str = Field("127.0.0.1", description="Address `jisr serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `jisr serve` listens on.")
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="The URL people and other nodes reach this instance at (issuer URLs, links).",
    )
    max_request_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted, in bytes; larger ones get 413.",
    )

    exchange_registry_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL of the registry node that gateways download the signed global "
        "configuration from (`<url>/exchange/globalconf`).",
    )
    exchange_globalconf_validity_seconds: int = Field(
        3600,
        ge=60,
        le=7 * 24 * 3600,
        description="How long a global configuration the registry signs stays valid; gateways "
        "keep working on their cached copy while the registry is down, until it expires.",
    )
    exchange_globalconf_refresh_seconds: float = Field(
        60.0,
        gt=0,
        le=24 * 3600,
        description="How often a gateway downloads the global configuration.",
    )
    exchange_max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1,
        description="Largest request or response body a gateway carries, in bytes.",
    )
    exchange_log_bodies: bool = Field(
        False,
        description="Keep message bodies in the gateways' message log (base64); by default "
        "only their SHA-256 digests are logged.",
    )
    exchange_log_encrypt_bodies: bool = Field(
        False,
        description="Encrypt the message bodies kept in the message log (with "
        "`exchange_log_bodies`) with AES-256-GCM, under a key each gateway derives from the "
        "keystore passphrase; the hash chain covers the encrypted form, so logs and archives "
        "still verify without the key.",
    )
    exchange_max_clock_skew_seconds: int = Field(
        300,
        ge=1,
        le=3600,
        description="How old (or early) a signed gateway message may be; older ones are "
        "refused, which bounds how long message ids are kept against replay.",
    )
    exchange_service_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="How long a gateway waits for another gateway or a provider's system.",
    )
    exchange_pubsub_retention_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="How long a gateway keeps pub/sub deliveries that are over (acknowledged, "
        "expired or cancelled) and events left with none; older ones are pruned (the message "
        "log keeps its records).",
    )
    credentials_status_ttl_seconds: int = Field(
        300,
        ge=1,
        le=7 * 24 * 3600,
        description="How long verifiers may cache a credential status list (its `ttl`); a "
        "revocation is seen by every verifier within this time.",
    )
    credentials_status_list_size: int = Field(
        131072,
        ge=8,
        le=8 * 1024 * 1024,
        description="Entries in each issuing agency's status list (1 bit each); indices are "
        "drawn at random among the free ones.",
    )
    credentials_key_binding_max_age_seconds: int = Field(
        300,
        ge=1,
        le=24 * 3600,
        description="How old (by its `iat`) a holder's key-binding JWT may be when verified.",
    )
    services_upload_max_bytes: int = Field(
        5 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="The largest document a person may upload with an application (bytes); "
        "PDF, JPEG and PNG only.",
    )
    services_default_decision_days: int = Field(
        30,
        ge=1,
        le=365,
        description="Days an agency has to decide an application when its procedure states "
        "no maximum processing time.",
    )

    services_gateway_url: str = Field(
        "",
        description="Client-proxy URL of the portal's own exchange gateway (e.g. "
        "`http://127.0.0.1:8082`), through which applications fetch evidence once-only; empty: "
        "nothing is fetched and every document is asked of the person.",
    )
    services_exchange_client: str = Field(
        "",
        description="The portal's subsystem id sent as `X-Road-Client` with evidence calls "
        "(e.g. `MA/GOV/ESERVICES/PORTAL`); required when `services_gateway_url` is set.",
    )
    services_metadata_cache_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="How long the portal keeps the exchange's answer to which evidence "
        "services it may call (`allowedMethods`) before asking its gateway again.",
    )

    assistant_llm_url: str = Field(
        "",
        description="Base URL of an OpenAI-compatible chat-completions endpoint (a llama.cpp "
        "server or vLLM on this network, e.g. `http://127.0.0.1:8080/v1`) that rewords the "
        "assistant's answers from the cited catalogue entries; empty (default): off, answers "
        "are composed from the entries alone. A reply stating anything the entries do not "
        "support is dropped for the composed answer.",
    )
    assistant_llm_model: str = Field(
        "local",
        max_length=200,
        description="Model name sent to the endpoint (e.g. `fanar`, `allam`, `jais`, "
        "`atlas-chat`).",
    )
    assistant_llm_timeout_s: float = Field(
        20.0,
        gt=0,
        le=300,
        description="How long the assistant waits for the language model before it gives the "
        "composed answer instead.",
    )
    assistant_llm_api_key: SecretStr | None = Field(
        None,
        description="Bearer token for the endpoint, when it asks for one (keep it in "
        "`secrets.toml` or the environment).",
    )
    assistant_warm_at_start: bool = Field(
        True,
        description="Load the assistant's index and model in the background when the portal "
        "starts, so that the first question is as fast as the next.",
    )

    @field_validator("instance_code", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("nodes")
    @classmethod
    def _valid_nodes(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(f"node name {name!r} may hold only letters, digits, - and _")
        if len(set(value)) != len(value):
            raise ValueError("node names must be unique")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment is Environment.DEVELOPMENT:
            return self
        secrets = {"keystore_passphrase": self.keystore_passphrase}
        if self.keystore_backend is KeystoreBackend.PKCS11:
            secrets["pkcs11_pin"] = self.pkcs11_pin
        for name, secret in secrets.items():
            if secret.get_secret_value() in ("", PLACEHOLDER_SECRET):
                raise ValueError(
                    f"{name} is still the placeholder {PLACEHOLDER_SECRET!r}; set JISR_"
                    f"{name.upper()} (refused outside development)"
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        instance_dir = _instance_dir_hint(init_settings)
        if instance_dir is not None:
            for name in (SETTINGS_FILE, "secrets.toml"):
                path = instance_dir / name
                if path.is_file():
                    sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def database_url_for(self, node: str) -> str:
        """The database URL of one node, placeholders filled in."""
        return self.database_url.format(
            node=node,
            instance=self.instance_code.lower(),
            instance_dir=self.instance_dir.resolve().as_posix(),
        )

    def node_dir(self, node: str) -> Path:
        return self.instance_dir / "nodes" / node

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT


def _instance_dir_hint(init_settings: PydanticBaseSettingsSource) -> Path | None:
    """Where to look for ``jisr.toml``: the ``instance_dir`` argument or ``JISR_INSTANCE_DIR``."""
    import os

    given: Any = init_settings().get("instance_dir") or os.environ.get("JISR_INSTANCE_DIR")
    return Path(given) if given else None


def load_settings(instance_dir: Path | str | None = None, **overrides: Any) -> Settings:
    """Settings of the instance in ``instance_dir`` (its ``jisr.toml``, then the environment)."""
    if instance_dir is not None:
        overrides["instance_dir"] = Path(instance_dir)
    return Settings(**overrides)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; a FastAPI dependency that tests override."""
    return load_settings()


def settings_reference() -> str:
    """Markdown reference of every setting, written to ``docs/configuration.md``."""
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by `jisr settings docs`; a test keeps this file in sync with "
        "`jisr.core.settings`. Do not edit by hand. -->",
        "",
        "Jisr reads its settings, highest priority first, from `JISR_*` environment variables, "
        "a `.env` file in the working directory, the instance's `jisr.toml` and "
        "`secrets.toml` (both written by `jisr init`), and the defaults below.",
        "",
        "| setting | environment variable | default | description |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if isinstance(default, SecretStr):
            shown = f"`{PLACEHOLDER_SECRET}` (secret)"
        elif isinstance(default, enum.Enum):
            shown = f"`{default.value}`"
        elif default is None:
            shown = "unset"
        else:
            shown = f"`{default}`"
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name}` | `JISR_{name.upper()}` | {shown} | {description} |")
    lines += [
        "",
        "Lists (such as `nodes`) are given in the environment as JSON: "
        '`JISR_NODES=\'["registry","idp"]\'`.',
        "",
    ]
    return "\n".join(lines)
