"""``jisr credentials offer`` (an agency desk's Credential Offer, with its QR) and
``jisr credentials refresh`` (a peer's trust list and status lists), and their refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from jisr.cli import app
from jisr.credentials import oid4vci, qr
from jisr.demo.people import FATIMA

pytestmark = pytest.mark.db
runner = CliRunner()


def _offer(directory: Path, *extra: str) -> Any:
    return runner.invoke(
        app,
        [
            "credentials",
            "offer",
            "--dir",
            str(directory),
            "--type",
            "birth-certificate",
            "--person",
            FATIMA["national_id"],
            *extra,
        ],
    )


def test_an_offer_with_its_qr_is_redeemed_with_its_tx_code(
    portal_instance: Any, tmp_path: Path
) -> None:
    png = tmp_path / "offer.png"
    made = _offer(portal_instance.path, "--json", "--qr", str(png))
    assert made.exit_code == 0, made.output
    answer = json.loads(made.output)
    assert answer["uri"].startswith("openid-credential-offer://?credential_offer=")
    assert len(answer["tx_code"]) == 6 and answer["tx_code"] not in answer["uri"]
    assert qr.read_image(png.read_bytes()) == answer["uri"]
    offer = json.loads(parse_qs(urlsplit(answer["uri"]).query)["credential_offer"][0])
    assert offer["credential_configuration_ids"] == ["birth-certificate"]
    code = offer["grants"][oid4vci.PRE_AUTHORIZED_GRANT]["pre-authorized_code"]
    portal = portal_instance.node("portal")
    with portal.session() as session:
        token = oid4vci.exchange_pre_authorized_code(
            session, node=portal, code=code, tx_code=answer["tx_code"]
        )
    assert token["token_type"] == "Bearer"


def test_an_offer_without_tx_code_prints_the_link(portal_instance: Any) -> None:
    made = _offer(portal_instance.path, "--no-tx-code")
    assert made.exit_code == 0, made.output
    assert made.output.startswith("openid-credential-offer://")
    assert "Transaction code" not in made.output


def test_offers_refused(portal_instance: Any) -> None:
    base = ["credentials", "offer", "--dir", str(portal_instance.path)]
    unknown = runner.invoke(app, [*base, "--type", "birth-certificate", "--person", "MA:ZZ0"])
    assert unknown.exit_code == 1 and "Traceback" not in unknown.output
    foreign = runner.invoke(
        app, [*base, "--type", "residence-permit", "--person", FATIMA["national_id"]]
    )
    assert foreign.exit_code == 1 and "QA" in foreign.output
    bad_type = runner.invoke(app, [*base, "--type", "passport", "--person", FATIMA["national_id"]])
    assert bad_type.exit_code == 1 and "passport" in bad_type.output


def test_refresh_needs_an_agreement_and_a_readable_trust_list(
    portal_instance: Any, tmp_path: Path
) -> None:
    base = ["credentials", "refresh", "--dir", str(portal_instance.path)]
    no_agreement = runner.invoke(app, [*base, "--peer", "ZZ"])
    assert no_agreement.exit_code == 1 and "ZZ" in no_agreement.output
    missing = runner.invoke(app, [*base, "--peer", "QA", "--trust-list", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "trust list" in missing.output
