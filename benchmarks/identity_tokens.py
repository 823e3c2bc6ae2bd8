"""OpenID Connect rates: token endpoint requests and ID-token verifications per second.

In one run: an MA instance in a temporary directory, served by uvicorn on loopback (one
process, the server in a thread), its demo relying party and citizen (``jisr.demo.login``),
one scripted login; then

* ``refresh_token`` grants over HTTP for a few seconds, one after the other, each rotating
  the refresh token (client_secret_basic, an audit record and two token rows per request);
* ID-token verifications as a relying party does them: ``jisr.core.crypto.jws.verify_compact``
  against the JWKS, then ``iss``, ``aud``, ``exp`` and ``nonce``;
* raw ES256 verifications (cryptography) on the same machine, for the ratio.

Ends with one JSON line.

    .venv/bin/python benchmarks/identity_tokens.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console

from jisr.core.crypto import jws
from jisr.core.instance import init_instance
from jisr.core.logging import configure_logging
from jisr.core.settings import LogFormat, Settings
from jisr.demo import login, people, servers
from jisr.demo.scenario import World


def rate(operation: Callable[[], object], seconds: float, *, warm: int = 20) -> float:
    """Operations per second over at least ``seconds`` of wall time, after a warm-up."""
    for _ in range(warm):
        operation()
    count, started = 0, time.perf_counter()
    while True:
        operation()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    seconds = parser.parse_args().seconds
    configure_logging(Settings(log_level="WARNING", log_format=LogFormat.CONSOLE))
    directory = Path(tempfile.mkdtemp(prefix="jisr-bench-"))
    world = World(directory=directory, console=Console(file=io.StringIO()))
    try:
        instance = init_instance(directory / "MA", code="MA")
        world.instances["MA"] = instance
        world.running["MA"] = servers.start(instance)
        instance.settings.public_url = world.url("MA")
        with instance.node("idp").session() as session:
            people.seed_people(session, country="MA", count=0)
        party = login.RELYING_PARTIES["MA"]
        secret, _fresh = login.register_relying_party(instance, party, directory)
        login.enrol_citizen(instance, "MA:AB123456")
        token, _info = login.scripted_login(world, "MA", party, secret, "MA:AB123456")
        results = measure(world.url("MA"), party, secret, token, seconds)
    finally:
        world.close()
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{'measure':<34} {'per second':>12}")
    for name, value in results.items():
        print(f"{name:<34} {value:>12,.0f}")
    ratio = results["id_token_verify_per_s"] / results["raw_es256_verify_per_s"]
    print(f"ID-token verification / raw ES256: {ratio:.2f}")
    print(json.dumps({name: round(value, 1) for name, value in results.items()}))


def measure(
    base: str, party: login.RelyingParty, secret: str, token: dict[str, Any], seconds: float
) -> dict[str, float]:
    metadata = httpx.get(f"{base}/.well-known/openid-configuration").json()
    jwks = httpx.get(metadata["jwks_uri"]).json()
    id_token = token["id_token"]
    nonce = json.loads(jws.verify_compact(id_token, jwks).payload)["nonce"]
    refresh = [token["refresh_token"]]

    with httpx.Client(auth=(party.client_id, secret), timeout=10) as client:

        def refresh_grant() -> None:
            response = client.post(
                metadata["token_endpoint"],
                data={"grant_type": "refresh_token", "refresh_token": refresh[0]},
            )
            response.raise_for_status()
            refresh[0] = response.json()["refresh_token"]

        token_rps = rate(refresh_grant, seconds, warm=5)

    def verify_id_token() -> None:
        claims = jws.verify_compact(id_token, jwks, algorithms=["ES256"]).json()
        if (
            claims["iss"] != metadata["issuer"]
            or claims["aud"] != party.client_id
            or claims["exp"] <= time.time()
            or claims["nonce"] != nonce
        ):
            raise RuntimeError("the ID token's claims do not check out")

    key = ec.generate_private_key(ec.SECP256R1())
    message = id_token.rsplit(".", 1)[0].encode("ascii")
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()

    def raw_verify() -> None:
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))

    return {
        "token_endpoint_rps": token_rps,
        "id_token_verify_per_s": rate(verify_id_token, seconds, warm=200),
        "raw_es256_verify_per_s": rate(raw_verify, seconds, warm=200),
    }


if __name__ == "__main__":
    main()
