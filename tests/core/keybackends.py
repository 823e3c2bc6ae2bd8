"""Constants of the test keystores (imported by ``conftest`` and the crypto tests)."""

from __future__ import annotations

import os
from pathlib import Path

SOFTHSM_MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
    Path("/opt/homebrew/lib/softhsm/libsofthsm2.so"),
)
TOKEN_LABEL = "jisr"
OTHER_TOKEN_LABEL = "jisr-other"  # never logged in: the wrong-PIN test needs that
USER_PIN = "1234"
SO_PIN = "5678"
PASSPHRASE = "correct horse battery staple"


def softhsm_module() -> Path | None:
    given = os.environ.get("SOFTHSM2_MODULE")
    candidates = (Path(given),) if given else SOFTHSM_MODULES
    return next((path for path in candidates if path.is_file()), None)
