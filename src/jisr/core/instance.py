"""An instance on disk: one country's deployment, with its settings, secrets and nodes.

Layout made by ``init_instance`` (``jisr init --dir D``)::

    D/jisr.toml            settings (instance code and name, nodes, database URL…)
    D/secrets.toml         the keystore passphrase (mode 0600)
    D/ca.pem               the instance CA certificate (public; the trust anchor to hand out)
    D/nodes/<node>/        one directory per node; with SQLite its database ``jisr.db``

Every node has its own database (the URL template of ``Settings.database_url``) holding its
own keystore and audit chains. The registry node holds the instance certificate authority.
CLI commands take ``--dir D`` and find the nodes here, so nobody needs the inner layout.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from jisr.core import db
from jisr.core.audit import service as audit
from jisr.core.crypto import ca, jws, keystore
from jisr.core.errors import (
    ConfigurationError,
    Conflict,
    InstanceExists,
    InvalidInput,
    NotFound,
)
from jisr.core.i18n import _
from jisr.core.settings import SETTINGS_FILE, Environment, KeyAlgorithm, Settings, load_settings

SECRETS_FILE = "secrets.toml"
CA_FILE = "ca.pem"
REGISTRY_NODE = "registry"
SECURITY_CHAIN = "security"

Progress = Callable[[str], None]


@dataclass
class Node:
    """One node of an instance: its name, database and keystore backend."""

    name: str
    settings: Settings
    _engine: Engine | None = field(default=None, repr=False)
    _factory: sessionmaker[Session] | None = field(default=None, repr=False)
    _backend: keystore.KeyBackend | None = field(default=None, repr=False)

    @property
    def database_url(self) -> str:
        return self.settings.database_url_for(self.name)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = db.make_engine(
                self.database_url, pool_size=self.settings.database_pool_size
            )
        return self._engine

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        if self._factory is None:
            self._factory = db.make_sessionmaker(self.engine)
        return self._factory

    @property
    def keys(self) -> keystore.KeyBackend:
        if self._backend is None:
            self._backend = keystore.open_backend(self.settings, node=self.name)
        return self._backend

    @contextmanager
    def session(self) -> Iterator[Session]:
        with db.session_scope(self.sessionmaker) as session:
            yield session

    def checkpoint_signer(self, session: Session) -> audit.CheckpointSigner:
        """The node's active signing key, as the audit log's checkpoint signer."""
        return jws.JwsSigner(keystore.active_key(session, self.keys, purpose="signing"))

    def record(
        self,
        session: Session,
        event: str,
        data: dict[str, Any],
        *,
        actor: str | None = None,
        subject: str | None = None,
        chain: str = SECURITY_CHAIN,
    ) -> None:
        """Append a security decision or administrative act to the node's audit chain."""
        audit.append(
            session,
            chain,
            event=event,
            data=data,
            actor=actor,
            subject=subject,
            signer=self.checkpoint_signer(session),
            checkpoint_every=self.settings.audit_checkpoint_every,
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
            self._factory = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None


class Instance:
    """An initialised instance directory and its nodes (opened lazily)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.nodes: dict[str, Node] = {name: Node(name, settings) for name in settings.nodes}

    @property
    def path(self) -> Path:
        return self.settings.instance_dir

    @property
    def code(self) -> str:
        return self.settings.instance_code

    @classmethod
    def open(cls, path: Path | str, **overrides: Any) -> Instance:
        path = Path(path)
        if not (path / SETTINGS_FILE).is_file():
            raise NotFound(
                _("No Jisr instance in {path}: run `jisr init --dir {path}` first."),
                path=str(path),
            )
        return cls(load_settings(path, **overrides))

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFound(
                _("Instance {instance} has no node {node}; its nodes are: {nodes}."),
                instance=self.code,
                node=name,
                nodes=", ".join(self.nodes),
            ) from None

    def select(self, names: list[str] | None) -> list[Node]:
        """The nodes named (all when ``names`` is empty), refusing unknown names."""
        return [self.node(n) for n in names] if names else list(self.nodes.values())

    def ca_certificate_pem(self) -> bytes:
        return (self.path / CA_FILE).read_bytes()

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


def init_instance(
    path: Path | str,
    *,
    code: str,
    name: str | None = None,
    environment: Environment = Environment.DEVELOPMENT,
    nodes: list[str] | None = None,
    database_url: str | None = None,
    key_algorithm: KeyAlgorithm = KeyAlgorithm.ES256,
    extra_settings: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> Instance:
    """Create an instance in ``path``: settings, secrets, node databases, keys and the CA.

    Refuses a directory that already holds an instance or any other file, and touches
    nothing then. If a step fails, what this call created is removed again.
    """
    path = Path(path)
    say = progress or (lambda _message: None)
    if (path / SETTINGS_FILE).exists():
        raise InstanceExists(
            _("{path} already holds a Jisr instance; nothing was changed."), path=str(path)
        )
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InstanceExists(
            _("{path} exists and is not empty; choose a new directory. Nothing was changed."),
            path=str(path),
        )
    node_names = nodes or ["registry", "idp", "portal"]
    if REGISTRY_NODE not in node_names:
        raise InvalidInput(
            _("An instance needs a {node} node (it holds the CA)."), node=REGISTRY_NODE
        )
    values: dict[str, Any] = {
        "instance_code": code,
        "instance_name": name or f"Jisr {code.upper()}",
        "environment": environment.value,
        "nodes": node_names,
        "key_algorithm": key_algorithm.value,
        **(extra_settings or {}),
    }
    if database_url:
        values["database_url"] = database_url
    passphrase = os.environ.get("JISR_KEYSTORE_PASSPHRASE") or secrets.token_urlsafe(32)
    try:
        settings = Settings(instance_dir=path, **values, keystore_passphrase=passphrase)
    except ValueError as error:
        raise InvalidInput(
            _("The instance settings are not valid: {reason}"), reason=str(error)
        ) from error

    if settings.keystore_backend.value == "pkcs11":
        # Keep where the keys live with the instance (the PIN stays in the environment).
        values["keystore_backend"] = settings.keystore_backend.value
        values["pkcs11_module"] = str(settings.pkcs11_module or "")
        values["pkcs11_token_label"] = settings.pkcs11_token_label

    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        _write_toml(path / SETTINGS_FILE, values)
        _write_toml(path / SECRETS_FILE, {"keystore_passphrase": passphrase}, private=True)
        settings = load_settings(path)
        instance = Instance(settings)
        for node in instance.nodes.values():
            node_dir = settings.node_dir(node.name)
            node_dir.mkdir(parents=True, exist_ok=True)
            say(f"node {node.name}: database {_safe_url(node.database_url)}")
            db.ensure_database(node.database_url)
            db.upgrade(node.engine)
            with node.session() as session:
                key = keystore.generate_key(
                    session, node.keys, purpose="signing", algorithm=settings.key_algorithm
                )
                say(f"node {node.name}: signing key {key.kid} ({key.algorithm})")
                if node.name == REGISTRY_NODE:
                    certificate = ca.create_ca(
                        session,
                        node.keys,
                        common_name=f"{settings.instance_name} Root CA",
                        organization=settings.instance_name,
                        country=settings.instance_code[:2],
                        validity_days=settings.ca_validity_days,
                    )
                    ca.publish_crl(session, node.keys, validity_hours=settings.crl_validity_hours)
                    (path / CA_FILE).write_bytes(ca.to_pem(certificate))
                    subject = certificate.subject.rfc4514_string()
                    say(f"node {node.name}: certificate authority {subject}")
                node.record(
                    session,
                    "instance.initialised",
                    {"instance": settings.instance_code, "node": node.name},
                )
        return instance
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        else:
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def add_node(instance: Instance, name: str, *, progress: Progress | None = None) -> Node:
    """Add a node to an initialised instance: its directory, database (migrated) and signing
    key, then its name in ``jisr.toml``'s ``nodes`` (written last, so a failure leaves the
    instance as it was). Refuses a name already taken or not a valid node name."""
    say = progress or (lambda _message: None)
    if name in instance.nodes:
        raise Conflict(
            _("Instance {instance} already has a node {node}."), instance=instance.code, node=name
        )
    if not name or len(name) > 63 or not all(c.isalnum() or c in "-_" for c in name):
        raise InvalidInput(_("{node} is not a valid node name."), node=name)
    names = [*instance.settings.nodes, name]
    settings = instance.settings
    node = Node(name, settings)
    node_dir = settings.node_dir(name)
    created = not node_dir.exists()
    try:
        node_dir.mkdir(parents=True, exist_ok=True)
        say(f"node {name}: database {_safe_url(node.database_url)}")
        db.ensure_database(node.database_url)
        db.upgrade(node.engine)
        with node.session() as session:
            key = keystore.generate_key(
                session, node.keys, purpose="signing", algorithm=settings.key_algorithm
            )
            say(f"node {name}: signing key {key.kid} ({key.algorithm})")
            node.record(session, "node.added", {"instance": instance.code, "node": name})
        path = instance.path / SETTINGS_FILE
        values = tomllib.loads(path.read_text(encoding="utf-8"))
        values["nodes"] = names
        _write_toml(path, values)
    except BaseException:
        node.close()
        if created:
            shutil.rmtree(node_dir, ignore_errors=True)
        raise
    instance.settings.nodes = names
    instance.nodes[name] = node
    return node


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _write_toml(path: Path, values: dict[str, Any], *, private: bool = False) -> None:
    """Write a flat TOML table (strings, numbers, booleans, lists of strings)."""
    lines = []
    for key, value in values.items():
        lines.append(f"{key} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # refuse to write what we could not read back
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    raise ConfigurationError(_("Cannot write setting value {value} to TOML."), value=repr(value))
