"""``jisr credentials …``: issue, verify and revoke verifiable documents; print issuer keys.

The command names and ``--json`` outputs are a contract other checks rely on:

* ``issue --dir D --type TYPE --person ID [--holder-key FILE] [--format sd-jwt|vc-jose]
  --out FILE [--json]`` writes the SD-JWT VC to FILE; ``--json`` prints
  ``{"id": …, "format": …, "out": …}``;
* ``verify --dir D [--json] FILE`` exits 0 only when valid; ``--json`` prints
  ``{"valid": bool, "checks": [...]}``;
* ``revoke --dir D CREDENTIAL_ID``;
* ``jwks --dir D`` prints the issuers' public JWKS;
* ``offer --dir D --type TYPE --person ID [--tx-code/--no-tx-code] [--qr PNG] [--json]``
  prints the ``openid-credential-offer://`` link (OpenID4VCI pre-authorized code);
* ``refresh --dir D --peer P`` refreshes a federated peer's trust list and status lists.

Each command opens one transaction on the instance's ``portal`` node (and reads the
population register on its ``idp`` node) and calls ``jisr.credentials.service``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance, Node
from jisr.credentials import doctypes, service
from jisr.credentials.errors import InvalidHolderKey, MalformedCredential
from jisr.credentials.verify import VerificationResult

app = typer.Typer(
    help="Verifiable documents: issue, verify and revoke SD-JWT VCs.", no_args_is_help=True
)

_out = Console(highlight=False, soft_wrap=True)
_DIR = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")
_JSON = typer.Option(False, "--json", help="Print JSON instead of text.")


@contextmanager
def _instance(directory: Path) -> Iterator[Instance]:
    instance = Instance.open(directory)
    try:
        yield instance
    finally:
        instance.close()


@contextmanager
def _portal(directory: Path) -> Iterator[tuple[Node, Session]]:
    with _instance(directory) as instance:
        portal = instance.node(service.ISSUER_NODE)
        with portal.session() as session:
            yield portal, session


@contextmanager
def _issuer(directory: Path) -> Iterator[tuple[Node, Session, Session]]:
    """The issuer node, a session of it and one of the population register (the idp node)."""
    with _instance(directory) as instance:
        portal = instance.node(service.ISSUER_NODE)
        with instance.node("idp").session() as register, portal.session() as session:
            yield portal, session, register


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False))


def _read_text(path: Path, *, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        if what == "trust-list":
            from jisr.credentials.trust import TrustListRefused

            raise TrustListRefused(
                _("Cannot read the trust list {path}: {reason}"), path=str(path), reason=str(error)
            ) from error
        if what == "holder-key":
            raise InvalidHolderKey(
                _("Cannot read the holder key {path}: {reason}"), path=str(path), reason=str(error)
            ) from error
        raise MalformedCredential(
            _("Cannot read the credential {path}: {reason}"), path=str(path), reason=str(error)
        ) from error


@app.command("issue")
def issue(
    directory: Path = _DIR,
    doc_type: str = typer.Option(
        ..., "--type", help=f"The document type: {', '.join(sorted(doctypes.document_types()))}."
    ),
    person: str = typer.Option(..., "--person", help="National identifier, e.g. MA:AB123456."),
    holder_key: Path | None = typer.Option(
        None, "--holder-key", help="The holder's public key (JWK or PEM) to bind with cnf."
    ),
    format: str = typer.Option(
        "sd-jwt", "--format", help="sd-jwt (SD-JWT VC) or vc-jose (W3C VC 2.0 as vc+jwt)."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the credential."),
    as_json: bool = _JSON,
) -> None:
    """Issue a document to a person of the population register, as an SD-JWT VC or a W3C
    VC 2.0 (vc+jwt)."""
    jwk = service.holder_jwk(_read_text(holder_key, what="holder-key")) if holder_key else None
    with _issuer(directory) as (portal, session, register):
        issued = service.issue_credential(
            session,
            node=portal,
            register=register,
            doc_type=doc_type,
            national_id=person,
            holder_key=jwk,
            format=format,
            actor="cli",
        )
    out.write_text(issued.token + "\n", encoding="utf-8")
    if as_json:
        _print_json({"id": issued.credential_id, "format": issued.format, "out": str(out)})
    else:
        typer.echo(
            f"Issued {issued.doc_type} {issued.credential_id} ({issued.format}), valid until "
            f"{issued.expires_at.isoformat()}: {out}"
        )


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="The SD-JWT VC, presentation or vc+jwt to check."),
    directory: Path = _DIR,
    nonce: str | None = typer.Option(None, help="The nonce the key-binding JWT must carry."),
    aud: str | None = typer.Option(None, help="The audience the key-binding JWT must name."),
    as_json: bool = _JSON,
) -> None:
    """Check a credential: signature, issuer, validity, disclosures, key binding, status.
    Exits 0 only when every check passes."""
    result = _verify_printed(file, directory)  # a QR text file or an image of one
    if result is None:
        from jisr.credentials import trust

        token = _read_text(file, what="credential").strip()
        with _instance(directory) as instance:
            portal = instance.node(service.ISSUER_NODE)
            registry = instance.node(REGISTRY_NODE)
            with (
                portal.session() as session,
                trust.verifier_for(session, node=portal, registry_node=registry) as verifier,
            ):
                result = verifier.verify(token, nonce=nonce, aud=aud)
    if as_json:
        _print_json(result.to_dict())
    else:
        typer.echo("valid" if result.valid else "NOT valid")
        for check in result.checks:
            mark = "ok" if check.ok else f"FAILED ({check.reason})"
            typer.echo(f"  {check.check}: {mark}{': ' + check.detail if check.detail else ''}")
    if not result.valid:
        raise typer.Exit(1)


@app.command("revoke")
def revoke(
    credential_id: str = typer.Argument(..., help="The id `issue` printed."),
    directory: Path = _DIR,
    reason: str | None = typer.Option(None, help="Why (kept in the audit record)."),
    as_json: bool = _JSON,
) -> None:
    """Revoke a credential: its status list entry flips; verifiers see it within one TTL."""
    with _portal(directory) as (portal, session):
        credential = service.revoke_credential(
            session, node=portal, credential_id=credential_id, reason=reason, actor="cli"
        )
        revoked_at = credential.revoked_at
    if as_json:
        _print_json({"id": credential_id, "revoked_at": revoked_at and revoked_at.isoformat()})
    else:
        typer.echo(f"Revoked {credential_id}.")


@app.command("jwks")
def jwks(directory: Path = _DIR) -> None:
    """Print the public JWKS of every issuing agency of this instance."""
    with _portal(directory) as (_node, session):
        _print_json(service.issuer_jwks(session))


def _verify_printed(file: Path, directory: Path) -> VerificationResult | None:
    """Verify ``file`` when it is a printed document (QR text or image), with this
    instance's issuers and its federated peers'; None when it is something else."""
    from jisr.credentials import qr, trust

    try:
        data = file.read_bytes()
    except OSError as error:
        raise MalformedCredential(
            _("Cannot read the credential {path}: {reason}"), path=str(file), reason=str(error)
        ) from error
    if qr.is_image(data):
        text = qr.read_image(data)
    elif data.lstrip().startswith(qr.PREFIX.encode("ascii")):
        text = data.decode("ascii", "replace")
    else:
        return None
    with _instance(directory) as instance:
        portal = instance.node(service.ISSUER_NODE)
        registry = instance.node(REGISTRY_NODE)
        with (
            portal.session() as session,
            trust.verifier_for(session, node=portal, registry_node=registry) as verifier,
        ):
            return verifier.verify_qr(text)


@app.command("offer")
def offer(
    directory: Path = _DIR,
    doc_type: str = typer.Option(..., "--type", help="The document type, e.g. birth-certificate."),
    person: str = typer.Option(..., "--person", help="The person's national id, e.g. MA:AB123456."),
    tx_code: bool = typer.Option(
        True, "--tx-code/--no-tx-code", help="Protect the offer with a 6-digit transaction code."
    ),
    qr_out: Path | None = typer.Option(None, "--qr", help="Also write the offer as a QR PNG."),
    as_json: bool = _JSON,
) -> None:
    """An agency desk offers a document to a person who was checked at the desk: prints the
    `openid-credential-offer://` link for the wallet (valid 10 minutes, usable once) and the
    transaction code to give the person through another channel."""
    from jisr.credentials import oid4vci, qr

    with _issuer(directory) as (portal, session, register):
        made = oid4vci.create_offer(
            session,
            node=portal,
            register=register,
            doc_type=doc_type,
            national_id=person,
            tx_code=tx_code,
            actor="cli",
        )
    if qr_out is not None:
        qr.render(made.wallet_link, qr_out)
    if as_json:
        _print_json(
            {
                "offer_id": made.offer_id,
                "uri": made.wallet_link,
                "tx_code": made.tx_code,
                "expires_at": made.expires_at.isoformat(),
                "qr": str(qr_out) if qr_out is not None else None,
            }
        )
        return
    typer.echo(made.wallet_link)
    if made.tx_code is not None:
        typer.echo(f"Transaction code (tell the person, never in the link): {made.tx_code}")
    typer.echo(f"Valid until {made.expires_at.isoformat()}, once.")
    if qr_out is not None:
        typer.echo(f"QR written to {qr_out}")


@app.command("refresh")
def refresh(
    directory: Path = _DIR,
    peer: str = typer.Option(..., "--peer", help="The federated peer instance code."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Fetch from here instead of the peer's public URL."
    ),
    file: Path | None = typer.Option(
        None, "--trust-list", help="Import this trust list file instead of fetching it."
    ),
    as_json: bool = _JSON,
) -> None:
    """Refresh what this instance keeps of a federated peer: its trust list (verified with
    the pinned key) and its status lists (verified with its issuers' keys). Verifying the
    peer's documents then makes no call to the peer; run it at least once per status TTL."""
    from jisr.credentials import trust

    token = _read_text(file, what="trust-list") if file is not None else None
    with _instance(directory) as instance:
        portal = instance.node(service.ISSUER_NODE)
        registry_node = instance.node(REGISTRY_NODE)
        with registry_node.session() as registry, portal.session() as session:
            payload, refreshed = trust.refresh_peer(
                session,
                node=portal,
                registry=registry,
                registry_node=registry_node,
                peer=peer,
                token=token,
                base_url=base_url,
            )
    if as_json:
        _print_json(
            {
                "peer": peer,
                "issuers": len(payload["issuers"]),
                "status_lists": list(refreshed.stored),
                "refused": refreshed.refused,
            }
        )
        return
    typer.echo(
        f"Trust list of {peer}: {len(payload['issuers'])} issuers; "
        f"{len(refreshed.stored)} status lists stored."
    )
    for uri, why in refreshed.refused.items():
        typer.echo(f"  refused {uri}: {why}")


@app.command("qr")
def print_qr(
    file: Path = typer.Argument(..., help="An SD-JWT VC issued by this instance."),
    directory: Path = _DIR,
    out: Path = typer.Option(..., "--out", help="The image to write: .png, or .svg."),
    text_out: Path | None = typer.Option(None, "--text", help="Also write the QR text here."),
) -> None:
    """Print a document: a compact signed QR (CWT, COSE ES256, zlib, Base45) for offline
    verification, rendered as PNG or SVG."""
    from jisr.credentials import qr

    token = _read_text(file, what="credential").strip()
    with _portal(directory) as (portal, session):
        text = qr.printed_document(session, node=portal, token=token)
    qr.render(text, out)
    if text_out is not None:
        text_out.write_text(text + "\n", encoding="ascii")
    typer.echo(f"QR ({len(text)} characters) written to {out}")
