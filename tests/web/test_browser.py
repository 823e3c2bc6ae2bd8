"""Pages in a real browser (Debian's Chromium driven by Playwright), over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jisr.core.instance import Instance
from jisr.demo import servers

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def base_url(instance: Instance) -> Iterator[str]:
    running = servers.start(instance)
    yield running.url
    running.stop()


def test_home_is_arabic_and_right_to_left(chromium: Any, base_url: str, tmp_path: Path) -> None:
    page = chromium.new_page(locale="ar-MA")
    page.goto(base_url + "/")
    assert page.locator("html").get_attribute("lang") == "ar"
    assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
    assert "جسر" in page.locator("header .brand").inner_text()
    page.screenshot(path=str(tmp_path / "home-ar.png"), full_page=True)
    page.close()


def test_language_switch_is_remembered(chromium: Any, base_url: str) -> None:
    context = chromium.new_context(locale="ar-MA")
    page = context.new_page()
    page.goto(base_url + "/")
    page.click("text=Français")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.evaluate("getComputedStyle(document.body).direction") == "ltr"
    page.goto(base_url + "/")  # no ?lang: the cookie keeps French
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.locator("h1").inner_text() == "Bienvenue sur Jisr"
    context.close()


def test_error_page_for_a_person(chromium: Any, base_url: str) -> None:
    page = chromium.new_page(locale="en-GB")
    response = page.goto(base_url + "/nowhere")
    assert response is not None and response.status == 404
    assert page.locator("h1").inner_text() == "Not found"
    page.close()
