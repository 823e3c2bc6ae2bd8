"""``jisr federation …``: agreements between sovereign instances, exchanged as files.

    jisr federation key --dir MA                      # the thumbprint to give the peer
    jisr federation offer --dir MA --peer QA --peer-key-thumbprint T_QA \\
        --accept-types residence-permit --peer-accept-types birth-certificate --out offer.json
    jisr federation countersign --dir QA offer.json --peer-key-thumbprint T_MA \\
        --out agreement.json
    jisr federation install --dir QA agreement.json   # and on MA with the same file
    jisr federation trust-list --dir QA --peer MA [--file MA.jwt]   # fetch or import
    jisr federation list --dir QA
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import typer

from jisr.core import federation
from jisr.core.errors import InvalidInput
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Instance

app = typer.Typer(
    help="Federation agreements with other instances: offer, countersign, install.",
    no_args_is_help=True,
)
_DIR = typer.Option(..., "--dir", "-d", help="The instance directory (made by `jisr init`).")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="federation")


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InvalidInput(
            _("Cannot read {path}: {reason}"), path=str(path), reason=str(error)
        ) from error
    if not isinstance(value, dict):
        raise InvalidInput(_("{path} is not a JSON object."), path=str(path))
    return value


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


@app.command("key")
def key(directory: Path = _DIR) -> None:
    """Print this registry's federation key thumbprint (give it to peers out of band)."""
    instance = Instance.open(directory)
    try:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            typer.echo(federation.registry_key_thumbprint(session, node=registry))
    finally:
        instance.close()


@app.command("offer")
def offer(
    directory: Path = _DIR,
    peer: str = typer.Option(..., "--peer", help="The peer instance code, e.g. QA."),
    peer_key_thumbprint: str = typer.Option(
        ..., "--peer-key-thumbprint", help="The peer registry's key thumbprint (out of band)."
    ),
    accept_types: str = typer.Option("", help="Credential types this side accepts from the peer."),
    open_services: str = typer.Option("", help="Services this side opens to the peer."),
    peer_accept_types: str = typer.Option("", help="Types the peer accepts from this side."),
    peer_open_services: str = typer.Option("", help="Services the peer opens to this side."),
    validity_days: int = typer.Option(365, min=1, max=3650, help="Days the agreement is valid."),
    out: Path = typer.Option(..., "--out", help="Where to write the signed offer."),
) -> None:
    """Write an offer signed by this registry, to hand to the peer."""
    instance = Instance.open(directory)
    try:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            document = federation.make_offer(
                session,
                node=registry,
                peer=peer,
                peer_key_thumbprint=peer_key_thumbprint,
                accept_types=_split(accept_types),
                open_services=_split(open_services),
                peer_accept_types=_split(peer_accept_types),
                peer_open_services=_split(peer_open_services),
                validity=dt.timedelta(days=validity_days),
            )
    finally:
        instance.close()
    _write_json(out, document)
    typer.echo(f"Offer to {peer} written to {out}.")


@app.command("countersign")
def countersign(
    file: Path = typer.Argument(..., help="The offer received from the peer."),
    directory: Path = _DIR,
    peer_key_thumbprint: str = typer.Option(
        ..., "--peer-key-thumbprint", help="The offering registry's key thumbprint (out of band)."
    ),
    out: Path = typer.Option(..., "--out", help="Where to write the doubly signed agreement."),
) -> None:
    """Check an offer against the pinned key of its signer and add this registry's signature."""
    instance = Instance.open(directory)
    try:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            document = federation.countersign(
                session,
                node=registry,
                offer=_read_json(file),
                peer_key_thumbprint=peer_key_thumbprint,
            )
    finally:
        instance.close()
    _write_json(out, document)
    typer.echo(f"Agreement written to {out}; install it on both sides.")


@app.command("install")
def install(
    file: Path = typer.Argument(..., help="The doubly signed agreement."), directory: Path = _DIR
) -> None:
    """Verify and install a doubly signed agreement on this instance."""
    instance = Instance.open(directory)
    try:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            agreement = federation.install_agreement(
                session, node=registry, document=_read_json(file)
            )
            peer = agreement.peer_of(instance.code)
    finally:
        instance.close()
    typer.echo(
        f"Installed agreement {agreement.id} with {peer.instance}, valid until "
        f"{agreement.valid_until.isoformat()}."
    )


@app.command("trust-list")
def trust_list(
    directory: Path = _DIR,
    peer: str = typer.Option(..., "--peer", help="The peer instance code."),
    file: Path | None = typer.Option(
        None, "--file", help="Import this trust list file instead of fetching it over HTTP."
    ),
) -> None:
    """Fetch (or import) the peer's trust list, verified with the key the agreement pins;
    when fetched, the peer's status lists are fetched and kept with it."""
    from jisr.credentials import trust

    instance = Instance.open(directory)
    stored = ""
    try:
        registry = instance.node(REGISTRY_NODE)
        with registry.session() as session:
            if file is not None:
                payload = trust.import_trust_list(
                    session, node=registry, peer=peer, token=file.read_text(encoding="ascii")
                )
            else:
                portal = instance.node("portal")
                with portal.session() as portal_session:
                    payload, refreshed = trust.refresh_peer(
                        portal_session,
                        node=portal,
                        registry=session,
                        registry_node=registry,
                        peer=peer,
                    )
                stored = f" {len(refreshed.stored)} status lists stored."
    finally:
        instance.close()
    typer.echo(f"Trust list of {peer}: {len(payload['issuers'])} issuers.{stored}")


@app.command("list")
def list_agreements(directory: Path = _DIR) -> None:
    """The installed agreements, as JSON lines."""
    instance = Instance.open(directory)
    try:
        with instance.node(REGISTRY_NODE).session() as session:
            for agreement in federation.list_agreements(session):
                peer = agreement.peer_of(instance.code)
                mine = agreement.party(instance.code)
                line = {
                    "id": agreement.id,
                    "peer": peer.instance,
                    "valid_until": agreement.valid_until.isoformat(),
                    "accepts_credential_types": list(mine.accepts_credential_types),
                    "opens_services": list(mine.opens_services),
                }
                typer.echo(json.dumps(line, ensure_ascii=False))
    finally:
        instance.close()
