"""Fixtures shared by the core tests: the keystore backends, software and PKCS#11.

``backend`` is parametrized over both, so the keystore, JWS and CA tests run on each. The
PKCS#11 one is a fresh SoftHSM2 token in a temporary directory; SoftHSM2 reads
``SOFTHSM2_CONF`` once, when the library is first loaded in the process, so there is one
token per test session. Without SoftHSM2 those tests skip with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest
from keybackends import OTHER_TOKEN_LABEL, PASSPHRASE, SO_PIN, TOKEN_LABEL, USER_PIN, softhsm_module

from jisr.core.crypto import KeyBackend, SoftwareBackend, open_backend
from jisr.core.settings import KeystoreBackend, Settings


@pytest.fixture(scope="session")
def softhsm_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a fresh SoftHSM2 token in a temporary directory (skips when absent)."""
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed (jisr[pkcs11])")
    util = shutil.which("softhsm2-util")
    if util is None:
        pytest.skip("softhsm2-util is not installed (apt-get install softhsm2)")
    module = softhsm_module()
    if module is None:
        pytest.skip("the SoftHSM2 PKCS#11 module libsofthsm2.so was not found")
    directory = tmp_path_factory.mktemp("softhsm")
    (directory / "tokens").mkdir()
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {directory / 'tokens'}\n"
        "objectstore.backend = file\nlog.level = ERROR\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        for label in (TOKEN_LABEL, OTHER_TOKEN_LABEL):
            subprocess.run(
                [
                    util,
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--pin",
                    USER_PIN,
                    "--so-pin",
                    SO_PIN,
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
        yield Settings(
            keystore_backend=KeystoreBackend.PKCS11,
            pkcs11_module=module,
            pkcs11_token_label=TOKEN_LABEL,
            pkcs11_pin=USER_PIN,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="session")
def pkcs11_backend(softhsm_settings: Settings) -> Iterator[KeyBackend]:
    backend = open_backend(softhsm_settings)
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def software_backend() -> Iterator[KeyBackend]:
    backend = SoftwareBackend(PASSPHRASE)
    yield backend
    backend.close()


@pytest.fixture(
    params=["software", pytest.param("pkcs11", marks=pytest.mark.pkcs11)],
)
def backend(request: pytest.FixtureRequest) -> KeyBackend:
    """Each keystore backend in turn."""
    value: KeyBackend = request.getfixturevalue(f"{request.param}_backend")
    return value
