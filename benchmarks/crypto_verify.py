"""Signature rates on one core: why ES256 is the default signing algorithm.

Measures, in one run: raw ES256 and Ed25519 verifications per second (cryptography), and our
JWS verification (``jisr.core.crypto.jws.verify_compact``, joserfc underneath) for each, so
the JOSE overhead is the ratio to the raw rate measured beside it. Ends with one JSON line.

    .venv/bin/python benchmarks/crypto_verify.py [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from jisr.core import db
from jisr.core.crypto import jws, keystore
from jisr.core.crypto.keystore import SoftwareBackend
from jisr.core.settings import KeyAlgorithm


def rate(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, over at least ``seconds`` of wall time after a warm-up."""
    for _ in range(50):
        operation()
    count, started = 0, time.perf_counter()
    while True:
        for _ in range(100):
            operation()
        count += 100
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    seconds = parser.parse_args().seconds
    message = b'{"iss":"MA/registry","sub":"MAAB123456","iat":1764400000}'

    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_signature = ec_key.sign(message, ec.ECDSA(hashes.SHA256()))
    ec_public = ec_key.public_key()
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_signature = ed_key.sign(message)
    ed_public = ed_key.public_key()

    backend = SoftwareBackend("benchmark passphrase")
    directory = tempfile.mkdtemp(prefix="jisr-bench-")
    engine = db.make_engine(f"sqlite:///{directory}/keys.db")
    db.upgrade(engine)
    factory = db.make_sessionmaker(engine)
    results: dict[str, float] = {
        "raw_es256_verify_per_s": rate(
            lambda: ec_public.verify(ec_signature, message, ec.ECDSA(hashes.SHA256())), seconds
        ),
        "raw_ed25519_verify_per_s": rate(lambda: ed_public.verify(ed_signature, message), seconds),
    }
    for algorithm, label in ((KeyAlgorithm.ES256, "es256"), (KeyAlgorithm.ED25519, "ed25519")):
        with db.session_scope(factory) as session:
            keystore.generate_key(session, backend, purpose=label, algorithm=algorithm)
            key = keystore.active_key(session, backend, purpose=label)
            keys = keystore.public_jwks(session, purpose=label)
        token = jws.sign_compact(message, key)
        results[f"jws_{label}_verify_per_s"] = rate(
            lambda t=token, k=keys: jws.verify_compact(t, k), seconds
        )
        results[f"jws_{label}_sign_per_s"] = rate(
            lambda k=key: jws.sign_compact(message, k), seconds
        )

    engine.dispose()
    shutil.rmtree(directory, ignore_errors=True)
    print(f"{'measure':32} {'per second':>12}")
    for name, value in results.items():
        print(f"{name:32} {value:12,.0f}")
    es_vs_ed = results["raw_es256_verify_per_s"] / results["raw_ed25519_verify_per_s"]
    jose_share = results["jws_es256_verify_per_s"] / results["raw_es256_verify_per_s"]
    print(f"raw verify, ES256 / Ed25519: {es_vs_ed:.2f}x")
    print(f"JWS ES256 verify / raw ES256 verify: {jose_share:.2f}")
    print(json.dumps({k: round(v) for k, v in results.items()}))


if __name__ == "__main__":
    main()
