"""``init_instance`` and ``Instance``: layout, refusal to overwrite, clean failure."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from jisr.core import db
from jisr.core.crypto import ca, keystore
from jisr.core.errors import Conflict, InstanceExists, InvalidInput, NotFound
from jisr.core.instance import Instance, add_node, init_instance

pytestmark = pytest.mark.db


class TestInit:
    def test_layout(self, instance: Instance) -> None:
        path = instance.path
        assert (path / "jisr.toml").is_file()
        assert stat.S_IMODE((path / "secrets.toml").stat().st_mode) == 0o600
        assert b"BEGIN CERTIFICATE" in (path / "ca.pem").read_bytes()
        assert set(instance.nodes) == {"registry", "idp", "portal"}
        for node in instance.nodes.values():
            assert (path / "nodes" / node.name).is_dir()
            assert db.is_up_to_date(node.engine)
            with node.session() as session:
                assert keystore.active_key(session, node.keys, purpose="signing").kid

    def test_ca_matches_file(self, instance: Instance) -> None:
        with instance.node("registry").session() as session:
            assert ca.to_pem(ca.ca_certificate(session)) == instance.ca_certificate_pem()

    def test_reopen(self, instance: Instance) -> None:
        again = Instance.open(instance.path)
        assert again.code == "MA"
        assert again.settings.keystore_passphrase == instance.settings.keystore_passphrase
        again.close()

    def test_refuses_existing_instance_untouched(self, instance: Instance) -> None:
        before = _snapshot(instance.path)
        with pytest.raises(InstanceExists, match="already holds"):
            init_instance(instance.path, code="MA")
        assert _snapshot(instance.path) == before

    def test_refuses_non_empty_directory(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("mine")
        with pytest.raises(InstanceExists, match="not empty"):
            init_instance(tmp_path, code="MA")
        assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]

    def test_refuses_bad_code_and_leaves_nothing(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="not valid"):
            init_instance(tmp_path / "x", code="Morocco")
        assert not (tmp_path / "x").exists()

    def test_refuses_instance_without_registry(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="registry"):
            init_instance(tmp_path / "x", code="MA", nodes=["idp"])
        assert not (tmp_path / "x").exists()

    def test_failure_midway_removes_what_it_made(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(ca, "create_ca", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            init_instance(tmp_path / "x", code="MA", nodes=["registry"])
        assert not (tmp_path / "x").exists()


class TestOpen:
    def test_missing_instance(self, tmp_path: Path) -> None:
        with pytest.raises(NotFound, match="jisr init"):
            Instance.open(tmp_path)

    def test_unknown_node(self, instance: Instance) -> None:
        with pytest.raises(NotFound, match="has no node gateway"):
            instance.node("gateway")


class TestAddNode:
    def test_adds_node_and_keeps_it_in_the_settings(self, instance_factory: Any) -> None:
        made: Instance = instance_factory("QA", nodes=["registry"])
        node = add_node(made, "gateway-x")
        assert made.node("gateway-x") is node
        assert db.is_up_to_date(node.engine)
        with node.session() as session:
            assert keystore.active_key(session, node.keys, purpose="signing").kid
        again = Instance.open(made.path)
        assert again.settings.nodes == ["registry", "gateway-x"]
        assert again.settings.instance_code == "QA"
        again.close()

    def test_refuses_taken_or_bad_names_untouched(self, instance_factory: Any) -> None:
        made: Instance = instance_factory("QA", nodes=["registry"])
        before = (made.path / "jisr.toml").read_text()
        with pytest.raises(Conflict, match="already has a node registry"):
            add_node(made, "registry")
        with pytest.raises(InvalidInput, match="not a valid node name"):
            add_node(made, "../evil")
        assert (made.path / "jisr.toml").read_text() == before
        assert list(made.nodes) == ["registry"]

    def test_failure_removes_the_node_directory(
        self, instance_factory: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        made: Instance = instance_factory("QA", nodes=["registry"])
        before = (made.path / "jisr.toml").read_text()

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full")

        monkeypatch.setattr(keystore, "generate_key", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            add_node(made, "gateway-y")
        assert not (made.path / "nodes" / "gateway-y").exists()
        assert (made.path / "jisr.toml").read_text() == before
        assert "gateway-y" not in made.nodes


def _snapshot(path: Path) -> dict[str, tuple[int, float]]:
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime)
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.mark.pkcs11
def test_init_with_keys_in_a_pkcs11_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, softhsm_settings: Any
) -> None:
    """Every private key of a new instance, the CA's included, lives in the token."""
    monkeypatch.setenv("JISR_KEYSTORE_BACKEND", "pkcs11")
    monkeypatch.setenv("JISR_PKCS11_MODULE", str(softhsm_settings.pkcs11_module))
    monkeypatch.setenv("JISR_PKCS11_TOKEN_LABEL", softhsm_settings.pkcs11_token_label)
    monkeypatch.setenv("JISR_PKCS11_PIN", softhsm_settings.pkcs11_pin.get_secret_value())
    created = init_instance(tmp_path / "HSM", code="MA", nodes=["registry"])
    try:
        assert "pkcs11" in (tmp_path / "HSM" / "jisr.toml").read_text()
        node = created.node("registry")
        with node.session() as session:
            infos = keystore.list_keys(session)
            assert {info.backend for info in infos} == {"pkcs11"}
            root = ca.ca_certificate(session)
        root.verify_directly_issued_by(root)
    finally:
        created.close()
