"""``jisr credentials qr`` and ``jisr credentials verify`` on a QR text or a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jisr.cli import app
from jisr.demo.people import FATIMA

pytestmark = pytest.mark.db
runner = CliRunner()


def test_qr_png_svg_and_verify(portal_instance: Any, tmp_path: Path) -> None:
    d = str(portal_instance.path)
    cred = tmp_path / "birth.sdjwt"
    issued = runner.invoke(
        app,
        [
            "credentials",
            "issue",
            "--dir",
            d,
            "--type",
            "birth-certificate",
            "--person",
            FATIMA["national_id"],
            "--out",
            str(cred),
        ],
    )
    assert issued.exit_code == 0, issued.output
    png, svg, text = tmp_path / "doc.png", tmp_path / "doc.svg", tmp_path / "doc.txt"
    made = runner.invoke(
        app, ["credentials", "qr", "--dir", d, str(cred), "--out", str(png), "--text", str(text)]
    )
    assert made.exit_code == 0, made.output
    assert runner.invoke(app, ["credentials", "qr", "--dir", d, str(cred), "--out", str(svg)])
    assert "<svg" in svg.read_text()
    for file in (png, text):
        result = runner.invoke(app, ["credentials", "verify", "--dir", d, "--json", str(file)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["valid"] is True
    damaged = tmp_path / "damaged.txt"
    body = text.read_text().strip()
    damaged.write_text(body[:30] + ("A" if body[30] != "A" else "B") + body[31:])
    result = runner.invoke(app, ["credentials", "verify", "--dir", d, "--json", str(damaged)])
    assert result.exit_code == 1
    assert json.loads(result.output)["valid"] is False
