"""The login and consent pages in a real browser (Chromium), Arabic first and right to left."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from oidc_support import (
    PASSWORD,
    REDIRECT_URI,
    Idp,
    begin,
    register_client,
    register_person,
    start_idp,
)

pytestmark = [pytest.mark.db, pytest.mark.slow]

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture(scope="module")
def idp(instance_factory: Any) -> Iterator[Idp]:
    for served in start_idp(instance_factory("MA")):
        register_client(served, "browser-rp")
        register_person(served, "MAJ654321", totp_secret=TOTP)
        yield served


def _callback_page(route: Any) -> None:
    # The relying party is not running; answer its callback inside the browser instead.
    route.fulfill(status=200, content_type="text/html", body="<h1>relying party</h1>")


def test_login_and_consent_in_arabic(chromium: Any, idp: Idp) -> None:
    flow = begin(idp, idp.client("browser-rp"))
    context = chromium.new_context(locale="ar-MA")
    context.route(REDIRECT_URI + "*", _callback_page)
    page = context.new_page()
    page.goto(flow.url)
    assert page.locator("html").get_attribute("lang") == "ar"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    page.fill("input[name=national_id]", "MA:J654321")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", pyotp.TOTP(TOTP).now())
    page.locator("form[action='/authorize/login'] button[type=submit]").click()
    page.wait_for_selector("form[action='/authorize/consent']")
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    page.locator("form[action='/authorize/consent'] button[value=allow]").click()
    page.wait_for_url(REDIRECT_URI + "*")
    query = parse_qs(urlsplit(page.url).query)
    assert query["state"] == [flow.state]
    assert query["code"][0]
    context.close()


def test_wrong_password_is_said_in_french(chromium: Any, idp: Idp) -> None:
    flow = begin(idp, idp.client("browser-rp"), ui_locales="fr")
    context = chromium.new_context(locale="fr-FR")
    page = context.new_page()
    page.goto(flow.url)
    assert page.locator("html").get_attribute("lang") == "fr"
    page.fill("input[name=national_id]", "MA:J654321")
    page.fill("input[name=password]", "not the password")
    page.locator("form[action='/authorize/login'] button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("form[action='/authorize/login']").count() == 1
    assert "mot de passe" in page.content().lower()
    context.close()
