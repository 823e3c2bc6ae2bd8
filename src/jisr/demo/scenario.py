"""The end-to-end scenario over the two-country demo world, narrated step by step.

A step is a function ``(world) -> None`` that tells what it does through ``world.say``.
Later capabilities append their steps to ``STEPS``; keep each step short and real: it calls
public services or HTTP APIs exactly as a deployer would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console

from jisr.core.audit import service as audit
from jisr.core.crypto import ca, jws, keystore
from jisr.core.errors import CertificateRefused, CryptoError
from jisr.core.instance import REGISTRY_NODE, Instance, init_instance
from jisr.demo import (
    credentials,
    evidence,
    exchange,
    federation,
    login,
    people,
    procedures,
    registries,
    servers,
)

COUNTRIES: dict[str, str] = {"MA": "Jisr Maroc — المغرب", "QA": "Jisr Qatar — قطر"}


@dataclass
class World:
    """The demo world: both instances, their servers, and the narrated trace."""

    directory: Path
    console: Console
    instances: dict[str, Instance] = field(default_factory=dict)
    running: dict[str, servers.RunningServer] = field(default_factory=dict)
    # Anything else a step starts (gateways, agencies' own systems): stopped on close, last
    # started first.
    closers: list[Callable[[], None]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    step_number: int = 0

    def step(self, title: str) -> None:
        self.step_number += 1
        line = f"[{self.step_number}] {title}"
        self.trace.append(line)
        self.console.print(f"\n[bold green]{line}[/]")

    def say(self, message: str) -> None:
        self.trace.append(f"    {message}")
        self.console.print(f"    {message}", highlight=False)

    def url(self, code: str) -> str:
        return self.running[code].url

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()
        for running in self.running.values():
            running.stop()
        for instance in self.instances.values():
            instance.close()


def create_instances(world: World) -> None:
    world.step("Two sovereign instances: Morocco (MA) and Qatar (QA)")
    for code, name in COUNTRIES.items():
        path = world.directory / code
        if (path / "jisr.toml").exists():
            world.instances[code] = Instance.open(path)
            world.say(f"{code}: reusing the instance in {path}")
            continue
        world.instances[code] = init_instance(
            path, code=code, name=name, progress=_prefixed(world, code)
        )
        world.say(f"{code}: created in {path}, with its own CA, keys and databases")


def _prefixed(world: World, prefix: str) -> Callable[[str], None]:
    return lambda message: world.say(f"{prefix}: {message}")


def serve_instances(world: World, *, port: int = 0) -> None:
    world.step("Each instance serves its nodes over HTTP on loopback")
    for offset, (code, instance) in enumerate(world.instances.items()):
        world.running[code] = servers.start(instance, port=port + offset if port else 0)
        # The port may be chosen at run time: issuer URLs (OpenID Connect) follow it.
        instance.settings.public_url = world.url(code)
        world.say(f"{code}: {world.url(code)}  (API docs at {world.url(code)}/docs)")


def check_health(world: World) -> None:
    world.step("Health and readiness, over HTTP")
    with httpx.Client(timeout=10) as client:
        for code in world.instances:
            live = client.get(f"{world.url(code)}/healthz")
            ready = client.get(f"{world.url(code)}/readyz")
            nodes = ", ".join(f"{n} {v['status']}" for n, v in ready.json()["nodes"].items())
            world.say(f"{code}: /healthz {live.status_code}, /readyz {ready.status_code} ({nodes})")
            if live.status_code != 200 or ready.status_code != 200:
                raise RuntimeError(f"{code} is not ready: {ready.text}")


def certificates(world: World) -> None:
    world.step("The MA certificate authority issues, checks and revokes certificates")
    instance = world.instances["MA"]
    registry = instance.node(REGISTRY_NODE)
    days = instance.settings.certificate_validity_days
    with registry.session() as session:
        root = ca.ca_certificate(session)
        world.say(f"root: {root.subject.rfc4514_string()}")
        server_key = ec.generate_private_key(ec.SECP256R1())
        server_cert = ca.issue_certificate(
            session,
            registry.keys,
            public_key=server_key.public_key(),
            common_name="gateway.demo.ma",
            usage=ca.CertificateUsage.TLS_SERVER,
            dns_names=["gateway.demo.ma", "localhost"],
            validity_days=days,
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client_cert = ca.issue_certificate(
            session,
            registry.keys,
            public_key=client_key.public_key(),
            common_name="MA/GOV/CIVIL-REGISTRY",
            usage=ca.CertificateUsage.TLS_CLIENT,
            validity_days=days,
        )
        crl = ca.publish_crl(
            session, registry.keys, validity_hours=instance.settings.crl_validity_hours
        )
        for label, cert, usage in (
            ("TLS server", server_cert, ca.CertificateUsage.TLS_SERVER),
            ("TLS client", client_cert, ca.CertificateUsage.TLS_CLIENT),
        ):
            ca.validate_certificate(cert, ca_cert=root, crl=crl, usage=usage)
            world.say(
                f"issued {label} certificate {cert.serial_number:x} "
                f"for {cert.subject.rfc4514_string()}: valid"
            )
        ca.revoke_certificate(
            session, registry.keys, serial=client_cert.serial_number, reason="key_compromise"
        )
        crl = ca.publish_crl(
            session, registry.keys, validity_hours=instance.settings.crl_validity_hours
        )
        try:
            ca.validate_certificate(
                client_cert, ca_cert=root, crl=crl, usage=ca.CertificateUsage.TLS_CLIENT
            )
        except CertificateRefused as refused:
            world.say(f"revoked the client certificate; checked again: refused ({refused})")
        else:
            raise RuntimeError("a revoked certificate was accepted")
        registry.record(session, "demo.certificates", {"issued": 2, "revoked": 1})


def signed_statement(world: World) -> None:
    world.step("QA verifies a statement signed by the MA registry, by key id")
    ma, qa = world.instances["MA"], world.instances["QA"]
    ma_registry = ma.node(REGISTRY_NODE)
    with ma_registry.session() as session:
        key = keystore.active_key(session, ma_registry.keys, purpose="signing")
        statement = {
            "iss": f"{ma.code}/registry",
            "iat": int(dt.datetime.now(dt.UTC).timestamp()),
            "statement": "MA registry is reachable and signs with ES256",
        }
        token = jws.sign_compact(statement, key, typ="JWT")
        published = keystore.public_jwks(session)
    world.say(f"MA signed a JWS with kid {key.kid}")
    verified = jws.verify_compact(token, published)
    world.say(
        f"{qa.code} verified it against MA's published keys: "
        f"{verified.header['alg']} kid {verified.kid} ok"
    )
    head, payload, signature = token.split(".")
    forged = ".".join(
        (head, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature)
    )
    try:
        jws.verify_compact(forged, published)
    except CryptoError as refused:
        world.say(f"a tampered copy is refused: {refused}")
    else:
        raise RuntimeError("a tampered JWS was accepted")


def verify_audit(world: World) -> None:
    world.step("Every node's audit chain is intact")
    for code, instance in world.instances.items():
        for node in instance.nodes.values():
            with node.session() as session:
                reports = audit.verify_all(session, verifier=jws.keystore_verifier(session))
            for report in reports:
                state = "intact" if report.ok else f"BROKEN: {report.findings[0].message}"
                world.say(
                    f"{code}/{node.name}/{report.chain}: {report.records_checked} records, {state}"
                )
                if not report.ok:
                    raise RuntimeError(f"audit chain {report.chain} of {code} is broken")


Step = Callable[[World], None]

STEPS: list[Step] = [
    create_instances,
    registries.add_registries,
    serve_instances,
    check_health,
    people.register_people,
    login.login_step,
    certificates,
    signed_statement,
    federation.federation_step,
    credentials.credentials_step,
    exchange.exchange_step,
    evidence.evidence_step,
    registries.use_registries,
    procedures.procedures_step,
    verify_audit,
]


def run(directory: Path, *, console: Console | None = None, port: int = 0) -> World:
    """Build (or reuse) the world in ``directory``, serve it and run every step.

    The caller owns the returned world: ``world.close()`` stops the servers.
    """
    world = World(directory=directory, console=console or Console())
    try:
        for step in STEPS:
            if step is serve_instances:
                serve_instances(world, port=port)
            else:
                step(world)
    except BaseException:
        world.close()
        raise
    return world
