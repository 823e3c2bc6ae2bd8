"""The acceptance path exactly as a deployer runs it: `jisr serve` in its own process, and a
relying party (Authlib's OAuth 2 client) logging a citizen in over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from oidc_support import (
    Idp,
    begin,
    exchange,
    register_client,
    register_person,
    sign_in,
    verify_id_token,
)

from jisr.core.net import free_port

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def idp(instance_factory: Any) -> Iterator[Idp]:
    instance = instance_factory("QA")
    url = f"http://127.0.0.1:{free_port()}"
    instance.settings.public_url = url
    served = Idp(instance=instance, running=SimpleNamespace(url=url))  # type: ignore[arg-type]
    register_client(served, "hukoomi-rp")
    register_person(served, "QA28435612345", given_name_latin="Mohammed")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jisr",
            "serve",
            "--dir",
            str(instance.path),
            "--roles",
            "idp",
            "--port",
            url.rsplit(":", 1)[1],
        ],
        env={**os.environ, "JISR_PUBLIC_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    errors = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"jisr serve did not start: {errors[-2000:]}")
                time.sleep(0.1)
        yield served
    finally:
        served.close_clients()
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def test_relying_party_logs_in_against_jisr_serve(idp: Idp) -> None:
    rp = idp.client("hukoomi-rp", scope="openid profile national_id")
    with httpx.Client(base_url=idp.url, timeout=10, headers={"accept": "text/html"}) as browser:
        flow = sign_in(browser, begin(idp, rp), "QA:28435612345")
    token = exchange(idp, rp, flow)
    claims = verify_id_token(idp, token["id_token"], audience="hukoomi-rp", nonce=flow.nonce)
    userinfo = rp.get(idp.endpoint("/oidc/userinfo")).json()
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["given_name"] == "Mohammed"
    assert userinfo["national_id"] == "QA28435612345"
