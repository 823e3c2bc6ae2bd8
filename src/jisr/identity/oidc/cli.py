"""``jisr identity client …``: register the relying parties of the OpenID Connect provider.

Commands open the instance's idp node and call ``jisr.identity.oidc.service``; a client
secret is printed once and only its hash is kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from jisr.core.instance import Instance
from jisr.identity.oidc import service

client_app = typer.Typer(
    help="OpenID Connect clients (relying parties): register them.", no_args_is_help=True
)


@client_app.command("add")
def add(
    directory: Path = typer.Option(..., "--dir", "-d", help="The instance directory."),
    name: str = typer.Option(..., "--name", help="The relying party's name, shown to people."),
    redirect_uri: list[str] = typer.Option(
        [],
        "--redirect-uri",
        help="A redirect URI (repeat for several); required unless --grant client_credentials.",
    ),
    auth_method: str = typer.Option(
        "client_secret_basic",
        "--auth-method",
        help="Token endpoint authentication: client_secret_basic or private_key_jwt.",
    ),
    jwks: Path | None = typer.Option(
        None, "--jwks", help="JSON file with the client's public JWKS (private_key_jwt)."
    ),
    client_id: str | None = typer.Option(None, "--client-id", help="Default: a random id."),
    post_logout_redirect_uri: list[str] = typer.Option(
        [], "--post-logout-redirect-uri", help="Where logout may send people back to."
    ),
    grant: list[str] = typer.Option(
        [],
        "--grant",
        help="A grant type (repeat): authorization_code and refresh_token by default; "
        "client_credentials alone for an administrative client.",
    ),
    scope: list[str] = typer.Option(
        [],
        "--scope",
        help="A scope the client may ask for (repeat); client_mgmt for the GovStack client "
        "management API (with --grant client_credentials).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Register a relying party (or an administrative client) and print its client_id (and
    its secret, once)."""
    administrative = service.ADMIN_GRANT in grant
    keys = json.loads(jwks.read_text(encoding="utf-8")) if jwks is not None else None
    instance = Instance.open(directory)
    try:
        with instance.node("idp").session() as session:
            made = service.create_client(
                session,
                name=name,
                redirect_uris=redirect_uri,
                auth_method=auth_method,
                jwks=keys,
                client_id=client_id,
                post_logout_redirect_uris=post_logout_redirect_uri,
                grant_types=grant or service.GRANT_TYPES,
                scopes=scope or (service.ADMIN_SCOPES if administrative else service.SCOPES),
                claims=[] if administrative else service.SUPPORTED_CLAIMS,
            )
            instance.node("idp").record(
                session,
                "identity.client.registered",
                {
                    "client_id": made.client.client_id,
                    "auth_method": auth_method,
                    "grant_types": grant or list(service.GRANT_TYPES),
                },
            )
    finally:
        instance.close()
    if as_json:
        typer.echo(json.dumps({"client_id": made.client.client_id, "client_secret": made.secret}))
        return
    typer.echo(f"client_id: {made.client.client_id}")
    if made.secret:
        typer.echo(f"client_secret: {made.secret}  (shown once: keep it now)")
