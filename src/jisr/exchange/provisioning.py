"""Creating a member's gateway node: its database and keys, its certificates, its anchor.

``create_gateway(instance, member=…, address=…)`` (``jisr exchange gateway add``):

1. refuses an unknown member or one that already has a gateway (nothing is created then);
2. adds the node ``gateway-<member code>`` (``jisr.core.instance.add_node``: directory,
   migrated database, signing key);
3. generates the gateway's TLS key pair, has the instance CA (registry node) issue a TLS
   certificate (server and client authentication, the address's host as subject alternative
   name) and a signing certificate for the node's signing key, and registers the gateway;
4. writes into the node directory what the gateway needs to start on its own machine::

       tls.pem      its TLS certificate
       tls.key      its TLS private key, PKCS#8 encrypted with the keystore passphrase (0600)
       ca.pem       the instance CA certificate (trust anchor for TLS and the configuration)
       anchor.json  {"instance", "member", "gateway", "address", "registry_url", "jwks"}:
                    jwks holds the registry's signing keys, that verify the configuration
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from jisr.core.crypto import ca, keystore
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance, Node, Progress, add_node
from jisr.exchange import service
from jisr.exchange.errors import ExchangeError, GatewayAlreadyExists
from jisr.exchange.identifiers import MemberId, gateway_name

ANCHOR_FILE = "anchor.json"


@dataclass(frozen=True)
class GatewayFiles:
    """Where a gateway node keeps its TLS material and anchor."""

    directory: Path

    @property
    def tls_certificate(self) -> Path:
        return self.directory / "tls.pem"

    @property
    def tls_key(self) -> Path:
        return self.directory / "tls.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def anchor(self) -> Path:
        return self.directory / ANCHOR_FILE

    def read_anchor(self) -> dict[str, Any]:
        if not self.anchor.is_file():
            raise ExchangeError(
                _("{path} is missing: is this node a gateway (jisr exchange gateway add)?"),
                path=str(self.anchor),
            )
        anchor: dict[str, Any] = json.loads(self.anchor.read_text(encoding="utf-8"))
        return anchor


def files_of(node: Node) -> GatewayFiles:
    return GatewayFiles(node.settings.node_dir(node.name))


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def create_gateway(
    instance: Instance,
    *,
    member: MemberId,
    address: str,
    registry_url: str | None = None,
    validity_days: int | None = None,
    not_before: dt.datetime | None = None,
    progress: Progress | None = None,
) -> service.GatewayInfo:
    """Create, certify and register the gateway of ``member``; see the module docstring.

    ``validity_days`` and ``not_before`` shape both certificates (default: the instance's
    ``certificate_validity_days``, starting now).
    """
    say = progress or (lambda _message: None)
    host, _port = service.parse_address(address)
    registry = instance.node(REGISTRY_NODE)
    name = gateway_name(member)
    with registry.session() as session:
        taken = [g for g in service.list_gateways(session) if g.member == str(member)]
        if taken:
            raise GatewayAlreadyExists(
                _("Member {member} already has gateway {gateway}."),
                member=str(member),
                gateway=taken[0].name,
            )
        service.get_member(session, member=member)  # MemberNotFound before anything is made
    node = add_node(instance, name, progress=progress)
    files = files_of(node)
    days = validity_days or instance.settings.certificate_validity_days
    tls_key = ec.generate_private_key(ec.SECP256R1())
    with node.session() as session:
        signing = keystore.active_key(session, node.keys, purpose="signing")
    try:
        ip_addresses = [ipaddress.ip_address(host)]
        dns_names: list[str] = []
    except ValueError:
        ip_addresses, dns_names = [], [host]
    with registry.session() as session:
        tls_certificate = ca.issue_certificate(
            session,
            registry.keys,
            public_key=tls_key.public_key(),
            common_name=name,
            organization=str(member),
            usage=ca.CertificateUsage.TLS,
            dns_names=dns_names,
            ip_addresses=ip_addresses,
            validity_days=days,
            not_before=not_before,
        )
        signing_certificate = ca.issue_certificate(
            session,
            registry.keys,
            public_key=signing.public_key(),
            common_name=name,
            organization=str(member),
            usage=ca.CertificateUsage.SIGNING,
            validity_days=days,
            not_before=not_before,
        )
        info = service.register_gateway(
            session,
            name=name,
            member=member,
            address=address,
            tls_certificate=ca.to_pem(tls_certificate).decode("ascii"),
            signing_certificate=ca.to_pem(signing_certificate).decode("ascii"),
            signer=registry.checkpoint_signer(session),
        )
        jwks = keystore.public_jwks(session, purpose="signing")
    passphrase = instance.settings.keystore_passphrase.get_secret_value().encode("utf-8")
    _write_private(
        files.tls_key,
        tls_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        ),
    )
    files.tls_certificate.write_bytes(ca.to_pem(tls_certificate))
    files.ca.write_bytes(instance.ca_certificate_pem())
    anchor = {
        "instance": instance.code,
        "member": str(member),
        "gateway": name,
        "address": address,
        "registry_url": registry_url or instance.settings.exchange_registry_url,
        "jwks": jwks,
    }
    files.anchor.write_text(json.dumps(anchor, indent=2) + "\n", encoding="utf-8")
    with node.session() as session:
        node.record(
            session,
            "exchange.gateway.created",
            {
                "member": str(member),
                "address": address,
                "tls_serial": ca.serial_hex(tls_certificate.serial_number),
                "signing_serial": ca.serial_hex(signing_certificate.serial_number),
            },
        )
    say(f"gateway {name}: certificates issued, anchor written to {files.anchor}")
    return info
