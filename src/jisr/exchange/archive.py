"""Message-log archives: a gateway's log (or a period of it) that anyone can verify offline.

Layout
------
``export_archive`` writes one ZIP file::

    manifest.json                  {"format", "instance", "created_at", "since", "until",
                                    "gateways": [node, …], "members": {name: SHA-256 hex}}
    ca.pem                         the instance CA certificate (the trust anchor)
    <node>/message-log.jsonl       ``jisr.core.audit.export_chain`` lines for the period: the
                                   head (its last record, and ``after_seq``/``after_hash``:
                                   the record before the period, the *link*), the checkpoints
                                   inside the period, then the records
    <node>/seal.jws                the gateway's statement at export time, signed with its
                                   signing key (typ ``jisr-log-archive-seal+json``): instance,
                                   node, chain, period, ``after`` and ``last`` (seq and hash),
                                   the record count and the chain head then
    <node>/jwks.json               the gateway's signing keys (active and retired)
    <node>/signing-certificates.pem  the certificates the instance CA issued for those keys

``verify_archive`` checks, with no database and no network: every member against the
manifest (a missing, extra or altered member is reported); the certificates against the
archive's CA (issued by it; optionally the CA must equal one the verifier trusts); the seal
and every checkpoint against a key of ``jwks.json`` certified by one of those certificates;
then the records with ``jisr.core.audit.verify_exported`` starting from the seal's link and
ending at the seal's last record. It reports the first broken record of each gateway.

What a period archive proves (the link, the checkpoints inside it, the seal; not the history
before it) is explained in ``docs/exchange.md`` ("Archives").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding

from jisr.core.audit import format_timestamp
from jisr.core.audit import service as audit
from jisr.core.clock import utcnow
from jisr.core.crypto import ca, jws, keystore
from jisr.core.errors import CryptoError, InvalidInput, NotFound
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance, Node
from jisr.exchange import globalconf
from jisr.exchange import service as registry_service
from jisr.exchange.errors import ArchiveRefused, GatewayNotFound
from jisr.exchange.gateway import JOURNAL_WAIT_SECONDS, MESSAGE_LOG, wait_written

FORMAT = "jisr-message-log-archive/1"
SEAL_TYP = "jisr-log-archive-seal+json"
MANIFEST = "manifest.json"
CA_MEMBER = "ca.pem"
LOG_MEMBER = "message-log.jsonl"
SEAL_MEMBER = "seal.jws"
JWKS_MEMBER = "jwks.json"
CERTIFICATES_MEMBER = "signing-certificates.pem"


@dataclass(frozen=True)
class ExportedGateway:
    node: str
    records: int
    checkpoints: int
    first_seq: int | None
    last_seq: int | None


@dataclass(frozen=True)
class ArchiveSummary:
    path: Path
    gateways: list[ExportedGateway]


@dataclass
class GatewayReport:
    """One gateway's log in an archive; ``findings[0]`` names its first broken record."""

    node: str
    ok: bool = True
    records: int = 0
    checkpoints: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)

    def add(self, kind: str, message: str, seq: int | None = None) -> None:
        self.ok = False
        self.findings.append({"kind": kind, "seq": seq, "record_id": None, "message": message})


@dataclass
class ArchiveReport:
    ok: bool
    instance: str | None
    ca_sha256: str | None
    since: str | None
    until: str | None
    gateways: list[GatewayReport]
    manifest: list[str]  # problems with the manifest, members or trust anchor

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "instance": self.instance,
            "ca_sha256": self.ca_sha256,
            "since": self.since,
            "until": self.until,
            "manifest": self.manifest,
            "gateways": [g.__dict__ for g in self.gateways],
        }


# --- export ----------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _signing_certificates(instance: Instance, node: Node, gateway: str) -> list[str]:
    """The gateway's signing certificate(s), from the registry or its cached configuration."""
    if REGISTRY_NODE in instance.nodes:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            try:
                return [registry_service.get_gateway(session, name=gateway).signing_certificate]
            except GatewayNotFound:
                pass
    with node.session() as session:
        token = globalconf.latest_cached_token(session)
    if token is not None:
        document = json.loads(keystore.b64url_decode(token.split(".")[1]))
        return [g["signing_certificate"] for g in document["gateways"] if g["name"] == gateway]
    return []


def _period(
    items: Iterator[dict[str, Any]], since: str | None, until: str | None
) -> tuple[tuple[int, str] | None, tuple[int, str] | None, int, int | None]:
    """First pass: the link before the period, its last record, count and first seq."""
    after: tuple[int, str] | None = None
    last: tuple[int, str] | None = None
    count, first = 0, None
    for item in items:
        if item["type"] != "record":
            continue
        if since is not None and item["created_at"] < since and first is None:
            after = (item["seq"], item["hash"])
            continue
        if until is not None and item["created_at"] >= until:
            break
        first = item["seq"] if first is None else first
        last = (item["seq"], item["hash"])
        count += 1
    return after, last, count, first


def _write_log(
    handle: IO[bytes],
    items: Iterator[dict[str, Any]],
    *,
    head: dict[str, Any],
    first: int | None,
    last: int | None,
) -> int:
    """Second pass: the head line, the period's checkpoints, its records; checkpoints count."""
    handle.write((json.dumps(head, ensure_ascii=False) + "\n").encode("utf-8"))
    checkpoints = 0
    for item in items:
        seq = item.get("seq")
        if item["type"] == "head" or first is None or last is None or seq is None:
            continue
        if first <= seq <= last:
            checkpoints += item["type"] == "checkpoint"
            handle.write((json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8"))
    return checkpoints


def export_archive(
    instance: Instance,
    *,
    out: Path,
    nodes: Sequence[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> ArchiveSummary:
    """Write the message logs of ``nodes`` (default: every gateway node) for the period
    ``[since, until)`` into the archive ``out``; see the module docstring."""
    names = list(nodes) if nodes else sorted(n for n in instance.nodes if n.startswith("gateway-"))
    for name in names:
        if name not in instance.nodes or not name.startswith("gateway-"):
            raise GatewayNotFound(_("There is no gateway node {gateway}."), gateway=name)
    if since is not None and until is not None and until <= since:
        raise ArchiveRefused(_("The end of the period must come after its start."))
    since_text = format_timestamp(since) if since else None
    until_text = format_timestamp(until) if until else None
    for name in names:  # what a serving gateway acknowledged, in its chain first
        wait_written(instance.settings, name, timeout=JOURNAL_WAIT_SECONDS)
    digests: dict[str, str] = {}
    exported: list[ExportedGateway] = []
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:

        def put(name: str, data: bytes) -> None:
            archive.writestr(name, data)
            digests[name] = _sha256(data)

        put(CA_MEMBER, instance.ca_certificate_pem())
        for name in names:
            node = instance.node(name)
            with node.session() as session:
                try:
                    after, last, count, first = _period(
                        audit.export_chain(session, MESSAGE_LOG), since_text, until_text
                    )
                    chain_head = next(audit.export_chain(session, MESSAGE_LOG))
                except NotFound:
                    after, last, count, first = None, None, 0, None
                    chain_head = {"head_seq": None, "head_hash": None}
                head = {
                    "type": "head",
                    "chain": MESSAGE_LOG,
                    "head_seq": last[0] if last else (after[0] if after else None),
                    "head_hash": last[1] if last else (after[1] if after else None),
                    "after_seq": after[0] if after else None,
                    "after_hash": after[1] if after else None,
                }
                buffer = io.BytesIO()
                try:
                    items = audit.export_chain(session, MESSAGE_LOG)
                except NotFound:
                    items = iter(())
                checkpoints = _write_log(
                    buffer, items, head=head, first=first, last=last[0] if last else None
                )
                jwks = keystore.public_jwks(session, purpose="signing")
                seal = jws.sign_compact(
                    {
                        "format": FORMAT,
                        "instance": instance.code,
                        "node": name,
                        "chain": MESSAGE_LOG,
                        "since": since_text,
                        "until": until_text,
                        "after": _point(after),
                        "last": _point(last),
                        "records": count,
                        "chain_head": {
                            "seq": chain_head["head_seq"],
                            "hash": chain_head["head_hash"],
                        },
                        "exported_at": format_timestamp(utcnow()),
                    },
                    keystore.active_key(session, node.keys, purpose="signing"),
                    typ=SEAL_TYP,
                )
            put(f"{name}/{LOG_MEMBER}", buffer.getvalue())
            put(f"{name}/{SEAL_MEMBER}", seal.encode("ascii"))
            put(f"{name}/{JWKS_MEMBER}", json.dumps(jwks, indent=2).encode("utf-8"))
            certificates = _signing_certificates(instance, node, name)
            put(f"{name}/{CERTIFICATES_MEMBER}", "".join(certificates).encode("ascii"))
            exported.append(
                ExportedGateway(name, count, checkpoints, first, last[0] if last else None)
            )
        manifest = {
            "format": FORMAT,
            "instance": instance.code,
            "created_at": format_timestamp(utcnow()),
            "since": since_text,
            "until": until_text,
            "gateways": names,
            "members": digests,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    tmp.replace(out)
    return ArchiveSummary(out, exported)


def _point(value: tuple[int, str] | None) -> dict[str, Any] | None:
    return {"seq": value[0], "hash": value[1]} if value else None


# --- verification ----------------------------------------------------------------------------


class _Trust:
    """The archive's CA and the signing keys it certifies, per gateway."""

    def __init__(self, ca_pem: bytes) -> None:
        self.ca = ca.load_certificate(ca_pem)

    def certified_keys(
        self, jwks_bytes: bytes, pem: bytes, report: GatewayReport
    ) -> dict[str, dict[str, Any]]:
        """kid -> JWK for the keys of ``jwks.json`` that a certificate from the CA certifies."""
        try:
            listed = {str(k["kid"]): dict(k) for k in json.loads(jwks_bytes)["keys"]}
        except (ValueError, KeyError, TypeError):
            report.add("trust", f"{report.node}/{JWKS_MEMBER} is not a JWKS")
            return {}
        try:
            certificates = x509.load_pem_x509_certificates(pem) if pem.strip() else []
        except ValueError:
            report.add("trust", f"{report.node}/{CERTIFICATES_MEMBER} is not PEM certificates")
            return {}
        certified: dict[str, dict[str, Any]] = {}
        for certificate in certificates:
            try:
                certificate.verify_directly_issued_by(self.ca)
            except (ValueError, TypeError, InvalidSignature):
                subject = certificate.subject.rfc4514_string()
                report.add("trust", f"the signing certificate {subject} is not from the CA")
                continue
            public_key = certificate.public_key()
            if isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
                jwk: dict[str, Any] = dict(keystore.public_jwk_of(public_key))
                kid = keystore.jwk_thumbprint(jwk)
                if kid in listed:
                    certified[kid] = listed[kid]
        return certified


def _verifier(keys: Mapping[str, Mapping[str, Any]], typ: str | None) -> Any:
    """token -> payload, verified with a certified key; raises naming an uncertified key."""

    def verify(token: str) -> bytes:
        try:
            header = json.loads(keystore.b64url_decode(token.split(".")[0]))
            kid = header.get("kid") if isinstance(header, dict) else None
        except (ValueError, IndexError):
            kid = None
        if isinstance(kid, str) and kid not in keys:
            raise CryptoError(f"key {kid!r} is not certified by the archive's CA")
        return jws.verify_compact(token, {"keys": list(keys.values())}, typ=typ).payload

    return verify


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as error:
            raise InvalidInput(f"line {number} is not JSON ({error})") from error
        if not isinstance(item, dict):
            raise InvalidInput(f"line {number} is not a JSON object")
        yield item


def _check_manifest(
    archive: zipfile.ZipFile, problems: list[str]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    members = {info.filename: archive.read(info) for info in archive.infolist()}
    raw = members.pop(MANIFEST, None)
    manifest: dict[str, Any] = {}
    if raw is None:
        problems.append("the archive has no manifest.json")
    else:
        try:
            manifest = json.loads(raw)
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise ValueError("unknown format")
            if not isinstance(manifest.get("members"), dict):
                raise ValueError("no member list")
        except ValueError as error:
            problems.append(f"manifest.json is damaged ({error})")
            manifest = {}
    listed: dict[str, Any] = manifest.get("members", {})
    for name, digest in sorted(listed.items()):
        if name not in members:
            problems.append(f"member {name} is listed in the manifest but missing")
        elif _sha256(members[name]) != digest:
            problems.append(f"member {name} does not match its SHA-256 in the manifest")
    if manifest:
        for name in sorted(set(members) - set(listed)):
            problems.append(f"member {name} is not listed in the manifest")
    return manifest, members


def verify_archive(path: Path, *, trusted_ca: bytes | None = None) -> ArchiveReport:
    """Verify an archive made by ``export_archive``; see the module docstring.

    ``trusted_ca``: PEM of the CA the verifier trusts; the archive's CA must be that one.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ArchiveRefused(
            _("{path} is not a message-log archive: {reason}"), path=str(path), reason=str(error)
        ) from error
    problems: list[str] = []
    with archive:
        manifest, members = _check_manifest(archive, problems)
    ca_pem = members.get(CA_MEMBER)
    trust: _Trust | None = None
    ca_sha256 = None
    if ca_pem is None:
        problems.append("the archive holds no CA certificate (ca.pem)")
    else:
        try:
            trust = _Trust(ca_pem)
            ca_sha256 = _sha256(trust.ca.public_bytes(Encoding.DER))
        except (CryptoError, ValueError) as error:
            problems.append(f"ca.pem is not a certificate ({error})")
        if trust and trusted_ca and trust.ca != ca.load_certificate(trusted_ca):
            problems.append("the archive's CA is not the CA you trust")
    nodes = manifest.get("gateways")
    if not isinstance(nodes, list) or not all(isinstance(n, str) for n in nodes):
        nodes = sorted({name.split("/")[0] for name in members if "/" in name})
    reports = [_verify_gateway(node, members, trust, manifest) for node in nodes]
    ok = not problems and all(r.ok for r in reports)
    return ArchiveReport(
        ok=ok,
        instance=manifest.get("instance"),
        ca_sha256=ca_sha256,
        since=manifest.get("since"),
        until=manifest.get("until"),
        gateways=reports,
        manifest=problems,
    )


def _verify_gateway(
    node: str, members: Mapping[str, bytes], trust: _Trust | None, manifest: Mapping[str, Any]
) -> GatewayReport:
    report = GatewayReport(node)
    log_bytes = members.get(f"{node}/{LOG_MEMBER}")
    if log_bytes is None:
        report.add("missing", f"{node}/{LOG_MEMBER} is missing")
        return report
    keys: dict[str, dict[str, Any]] = {}
    if trust is not None:
        keys = trust.certified_keys(
            members.get(f"{node}/{JWKS_MEMBER}", b""),
            members.get(f"{node}/{CERTIFICATES_MEMBER}", b""),
            report,
        )
    verifier = _verifier(keys, None)
    seal: dict[str, Any] | None = None
    try:
        seal = json.loads(_verifier(keys, SEAL_TYP)(members[f"{node}/{SEAL_MEMBER}"].decode()))
        if not isinstance(seal, dict):
            raise ValueError("not an object")
        expected: dict[str, Any] = {"node": node, "chain": MESSAGE_LOG}
        if manifest:
            expected.update(
                instance=manifest.get("instance"),
                since=manifest.get("since"),
                until=manifest.get("until"),
            )
        wrong = [k for k, v in expected.items() if seal.get(k) != v]
        if wrong:
            raise ValueError(f"it names another {', '.join(wrong)}")
    except (KeyError, ValueError, UnicodeDecodeError, CryptoError) as error:
        detail = getattr(error, "detail", None) or str(error)
        report.add("seal-invalid", f"{node}/{SEAL_MEMBER} does not verify: {detail}")
        seal = None
    try:
        items = list(_lines(log_bytes))
        head_items = [i for i in items if i.get("type") == "head"]
        head = head_items[0] if head_items else None
        rest = [i for i in items if i.get("type") != "head"]
        after: tuple[int, str] | None = None
        if seal is not None:
            last, link = seal.get("last"), seal.get("after")
            head = {"type": "head", "chain": MESSAGE_LOG, "head_seq": None, "head_hash": None}
            if isinstance(last, dict):
                head.update(head_seq=last.get("seq"), head_hash=last.get("hash"))
            elif isinstance(link, dict):
                head.update(head_seq=link.get("seq"), head_hash=link.get("hash"))
            if isinstance(link, dict):
                after = (int(link["seq"]), str(link["hash"]))
        elif head is not None and head.get("after_seq") is not None:
            after = (int(head["after_seq"]), str(head["after_hash"]))
        if head is None and not rest:
            return report  # an empty log
        if head is not None and head.get("head_seq") is None and not rest:
            return report
        chain = audit.verify_exported(
            ([head] if head is not None else []) + rest, verifier=verifier, after=after
        )
    except (InvalidInput, ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        report.add("unreadable", f"{node}/{LOG_MEMBER} cannot be read: {error}")
        return report
    report.records, report.checkpoints = chain.records_checked, chain.checkpoints_checked
    if not chain.ok:
        report.ok = False
        report.findings[:0] = [f.to_dict() for f in chain.findings]
    return report


__all__ = ["FORMAT", "ArchiveReport", "ArchiveSummary", "export_archive", "verify_archive"]
