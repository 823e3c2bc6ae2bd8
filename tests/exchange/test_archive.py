"""``jisr exchange log export`` and ``log verify ARCHIVE``: archives verifiable offline, and
every kind of damage named (a record changed, deleted or reordered, a forged checkpoint, a
damaged manifest)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from jisr.cli import app
from jisr.core.audit import canonical_json
from jisr.core.crypto import jws, keystore
from jisr.core.settings import KeyAlgorithm

from .conftest import ExchangeWorld, build_world

pytestmark = [pytest.mark.db, pytest.mark.slow]
runner = CliRunner()
LOG = "gateway-civil-registry/message-log.jsonl"


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["exchange", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[tuple[ExchangeWorld, str]]:
    """Three calls, a boundary time, three more; checkpoints every 4 records."""
    instance = instance_factory("MA")
    instance.settings.audit_checkpoint_every = 4
    made = build_world(instance)
    try:
        for number in range(3):
            assert made.call(headers={"X-Road-Id": f"a-{number}"}).status_code == 200
        time.sleep(0.01)
        boundary = dt.datetime.now(dt.UTC).isoformat()
        time.sleep(0.01)
        for number in range(3):
            assert made.call(headers={"X-Road-Id": f"b-{number}"}).status_code == 200
    except BaseException:
        made.close()
        raise
    yield made, boundary
    made.close()


@pytest.fixture(scope="module")
def archive(world: tuple[ExchangeWorld, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    made, _boundary = world
    path = tmp_path_factory.mktemp("archive") / "log.zip"
    code, output = invoke("log", "export", "--dir", str(made.instance.path), "--out", str(path))
    assert code == 0, output
    assert "gateway-civil-registry/message-log: records 1–12, 3 checkpoints" in output
    return path


def rewrite(
    source: Path,
    target: Path,
    change: Callable[[dict[str, bytes]], None],
    *,
    fix_manifest: bool = True,
) -> Path:
    """Copy an archive, letting ``change`` edit its members; re-hash the manifest as an
    attacker would (unless ``fix_manifest`` is false)."""
    with zipfile.ZipFile(source) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    change(members)
    if fix_manifest and "manifest.json" in members:
        manifest = json.loads(members["manifest.json"])
        manifest["members"] = {
            name: hashlib.sha256(data).hexdigest()
            for name, data in members.items()
            if name != "manifest.json"
        }
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(target, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return target


def edit_lines(change: Callable[[list[str]], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        lines = members[LOG].decode().splitlines()
        change(lines)
        members[LOG] = ("\n".join(lines) + "\n").encode()

    return edit


def record_line(lines: list[str], seq: int) -> int:
    return next(
        i
        for i, line in enumerate(lines)
        if json.loads(line)["type"] == "record" and json.loads(line)["seq"] == seq
    )


def verify(path: Path) -> tuple[int, dict[str, Any], str]:
    code, output = invoke("log", "verify", str(path), "--json")
    text_code, text = invoke("log", "verify", str(path))
    assert text_code == code
    return code, json.loads(output), text


def first_finding(report: dict[str, Any]) -> dict[str, Any]:
    broken = {g["node"]: g for g in report["gateways"] if not g["ok"]}
    assert list(broken) == ["gateway-civil-registry"], report
    finding: dict[str, Any] = broken["gateway-civil-registry"]["findings"][0]
    return finding


def test_intact_archive_verifies(archive: Path, world: tuple[ExchangeWorld, str]) -> None:
    code, report, text = verify(archive)
    assert code == 0, text
    assert report["ok"] and report["manifest"] == []
    assert {g["node"]: g["records"] for g in report["gateways"]} == {
        "gateway-civil-registry": 12,
        "gateway-eservices": 12,
    }
    assert all(g["checkpoints"] == 3 for g in report["gateways"])
    assert "gateway-civil-registry/message-log: 12 records, intact" in text
    made, _ = world
    ca_pem = made.instance.path / "ca.pem"
    assert invoke("log", "verify", str(archive), "--ca", str(ca_pem))[0] == 0
    assert invoke("log", "verify", "--dir", str(made.instance.path))[0] == 0


def test_either_archive_or_dir(archive: Path, world: tuple[ExchangeWorld, str]) -> None:
    assert invoke("log", "verify")[0] == 2
    assert invoke("log", "verify", str(archive), "--dir", str(world[0].instance.path))[0] == 2


def _change(lines: list[str]) -> None:
    i = record_line(lines, 5)
    item = json.loads(lines[i])
    item["data"] = item["data"].replace("b-", "x-") if "b-" in item["data"] else '{"id":"x"}'
    lines[i] = json.dumps(item)


def _delete(lines: list[str]) -> None:
    del lines[record_line(lines, 5)]


def _reorder(lines: list[str]) -> None:
    i, j = record_line(lines, 5), record_line(lines, 6)
    a, b = json.loads(lines[i]), json.loads(lines[j])
    a["seq"], b["seq"] = 6, 5
    lines[i], lines[j] = json.dumps(b), json.dumps(a)


@pytest.mark.parametrize(
    ("kind", "edit"), [("changed", _change), ("deleted", _delete), ("reordered", _reorder)]
)
@pytest.mark.parametrize("fix_manifest", [True, False])
def test_tampered_line_is_named(
    archive: Path,
    tmp_path: Path,
    kind: str,
    edit: Callable[[list[str]], None],
    fix_manifest: bool,
) -> None:
    target = rewrite(archive, tmp_path / "t.zip", edit_lines(edit), fix_manifest=fix_manifest)
    code, report, text = verify(target)
    assert code == 1
    finding = first_finding(report)
    assert (finding["kind"], finding["seq"]) == (kind, 5), report
    assert f"record 5 of chain 'message-log' was {kind}" in text
    assert bool(report["manifest"]) is not fix_manifest
    if not fix_manifest:
        assert f"member {LOG} does not match its SHA-256" in text


def test_forged_checkpoint(archive: Path, tmp_path: Path) -> None:
    """Rewrite record 1 and every hash after it, then sign new checkpoints with a key of the
    attacker's, added to the JWKS: the key is not certified by the CA."""
    private = ec.generate_private_key(ec.SECP256R1())
    public_jwk = dict(keystore.public_jwk_of(private.public_key()))
    forger = keystore.SoftwareSigningKey(
        kid=keystore.jwk_thumbprint(public_jwk),
        key_algorithm=KeyAlgorithm.ES256,
        public_jwk={**public_jwk, "kid": keystore.jwk_thumbprint(public_jwk), "alg": "ES256"},
        private_key=private,
    )

    def forge(members: dict[str, bytes]) -> None:
        jwks = json.loads(members["gateway-civil-registry/jwks.json"])
        jwks["keys"].append(forger.public_jwk)
        members["gateway-civil-registry/jwks.json"] = json.dumps(jwks).encode()
        lines = members[LOG].decode().splitlines()
        for i, line in enumerate(lines):
            item = json.loads(line)
            if item["type"] == "checkpoint":
                payload = {"chain": "message-log", "seq": item["seq"], "hash": "f" * 64}
                payload["iat"] = int(
                    dt.datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).timestamp()
                )
                item.update(
                    hash="f" * 64,
                    kid=forger.kid,
                    signature=jws.sign_compact(canonical_json(payload).encode(), forger),
                )
                lines[i] = json.dumps(item)
        members[LOG] = ("\n".join(lines) + "\n").encode()

    code, report, text = verify(rewrite(archive, tmp_path / "f.zip", forge))
    assert code == 1
    finding = first_finding(report)
    assert finding["kind"] == "checkpoint-invalid" and finding["seq"] == 4, finding
    assert "not certified by the archive's CA" in finding["message"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.__setitem__("manifest.json", b"{not json"),
        lambda m: m.__setitem__(
            "manifest.json", m["manifest.json"].replace(b'"ca.pem": "', b'"ca.pem": "0')
        ),
        lambda m: m.pop("manifest.json"),
        lambda m: m.pop("gateway-eservices/seal.jws"),
    ],
    ids=["not-json", "wrong-digest", "missing", "member-missing"],
)
def test_damaged_manifest(archive: Path, tmp_path: Path, damage: Callable[..., Any]) -> None:
    code, report, text = verify(rewrite(archive, tmp_path / "m.zip", damage, fix_manifest=False))
    assert code == 1
    assert report["manifest"], report
    assert "BROKEN" in text


def test_not_an_archive(tmp_path: Path) -> None:
    bogus = tmp_path / "x.zip"
    bogus.write_text("no")
    code, output = invoke("log", "verify", str(bogus))
    assert code == 1 and "is not a message-log archive" in output


def test_period_archive(world: tuple[ExchangeWorld, str], tmp_path: Path) -> None:
    made, boundary = world
    path = tmp_path / "period.zip"
    code, output = invoke(
        "log",
        "export",
        "--dir",
        str(made.instance.path),
        "--out",
        str(path),
        "--node",
        "gateway-civil-registry",
        "--since",
        boundary,
    )
    assert code == 0, output
    assert "records 7–12, 2 checkpoints" in output
    code, report, text = verify(path)
    assert code == 0, text
    assert [g["records"] for g in report["gateways"]] == [6]
    assert report["since"] and report["until"] is None

    def relink(lines: list[str]) -> None:  # the first record no longer links to the period's link
        i = record_line(lines, 7)
        item = json.loads(lines[i])
        item["prev_hash"] = "0" * 64
        lines[i] = json.dumps(item)

    code, report, _text = verify(rewrite(path, tmp_path / "r.zip", edit_lines(relink)))
    assert code == 1 and first_finding(report)["seq"] == 7
    code, output = invoke(
        "log",
        "export",
        "--dir",
        str(made.instance.path),
        "--out",
        str(tmp_path / "e.zip"),
        "--until",
        boundary,
        "--since",
        boundary,
    )
    assert code == 1 and "must come after its start" in output
