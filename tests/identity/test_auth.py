"""Authentication: argon2 passwords, TOTP codes, lockout with back-off, acr levels."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyotp
import pytest
from oidc_support import PASSWORD, make_person
from pydantic import SecretStr
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.errors import ConfigurationError, InvalidInput
from jisr.core.settings import Settings
from jisr.identity import auth
from jisr.identity.models import Account
from jisr.identity.oidc.errors import AccountLocked, AuthenticationFailed, OneTimeCodeRequired

pytestmark = pytest.mark.db

SETTINGS = Settings(keystore_passphrase=SecretStr("test-passphrase"), instance_code="MA")


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any], str | None]] = []

    def __call__(self, session: Session, event: str, data: dict[str, Any], **kwargs: Any) -> None:
        self.events.append((event, data, kwargs.get("subject")))

    @property
    def names(self) -> list[str]:
        return [event for event, _data, _subject in self.events]


def _login(session: Session, national_id: str, password: str = PASSWORD, **kw: Any) -> Any:
    return auth.authenticate(
        session, settings=SETTINGS, national_id=national_id, password=password, **kw
    )


@pytest.fixture
def person_id(session: Session) -> int:
    person = make_person(session, "MAAB100001")
    auth.set_credentials(session, settings=SETTINGS, person_id=person.id, password=PASSWORD)
    return person.id


class TestPassword:
    def test_success_is_password_level(self, session: Session, person_id: int) -> None:
        recorder = Recorder()
        result = _login(session, "MAAB100001", record=recorder)
        assert result.acr == auth.ACR_PASSWORD
        assert result.amr == ("pwd",)
        assert result.person_id == person_id
        assert recorder.names == ["identity.login.succeeded"]
        assert recorder.events[0][2] == "MAAB100001"

    def test_hash_is_argon2id(self, session: Session, person_id: int) -> None:
        account = session.query(Account).filter_by(person_id=person_id).one()
        assert account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash

    def test_wrong_password(self, session: Session, person_id: int) -> None:
        recorder = Recorder()
        with pytest.raises(AuthenticationFailed):
            _login(session, "MAAB100001", "wrong password!", record=recorder)
        assert recorder.names == ["identity.login.failed"]
        assert auth.account_info(session, national_id="MAAB100001").failed_attempts == 1

    def test_unknown_person_is_the_same_refusal(self, session: Session) -> None:
        with pytest.raises(AuthenticationFailed) as refused:
            _login(session, "MAZZ999999")
        assert refused.value.code == "authentication-failed"

    def test_short_password_refused(self, session: Session, person_id: int) -> None:
        with pytest.raises(InvalidInput):
            auth.set_credentials(session, settings=SETTINGS, person_id=person_id, password="short")


class TestLockout:
    def test_locked_after_max_failures_then_back_off(
        self, session: Session, person_id: int
    ) -> None:
        recorder = Recorder()
        now = utcnow()
        for _attempt in range(auth.MAX_FAILURES):
            with pytest.raises(AuthenticationFailed):
                _login(session, "MAAB100001", "wrong password!", record=recorder, now=now)
        assert "identity.account.locked" in recorder.names
        info = auth.account_info(session, national_id="MAAB100001")
        assert info.locked_until == now + dt.timedelta(seconds=auth.LOCK_SECONDS)
        # The right password is refused while locked, without being checked.
        with pytest.raises(AccountLocked):
            _login(session, "MAAB100001", now=now + dt.timedelta(seconds=1))
        # After the lock, one more failure doubles the lock (back-off).
        later = now + dt.timedelta(seconds=auth.LOCK_SECONDS + 1)
        with pytest.raises(AuthenticationFailed):
            _login(session, "MAAB100001", "wrong password!", now=later)
        info = auth.account_info(session, national_id="MAAB100001")
        assert info.locked_until == later + dt.timedelta(seconds=2 * auth.LOCK_SECONDS)
        # Once that lock expires, the right password works and resets the count.
        result = _login(session, "MAAB100001", now=later + dt.timedelta(hours=1))
        assert result.acr == auth.ACR_PASSWORD
        assert auth.account_info(session, national_id="MAAB100001").failed_attempts == 0


class TestTotp:
    @pytest.fixture
    def seed(self, session: Session) -> str:
        person = make_person(session, "QA28435612345")
        seed = auth.new_totp_secret()
        auth.set_credentials(
            session, settings=SETTINGS, person_id=person.id, password=PASSWORD, totp_secret=seed
        )
        return seed

    def test_two_factors(self, session: Session, seed: str) -> None:
        code = pyotp.TOTP(seed).now()
        result = _login(session, "QA28435612345", code=code)
        assert result.acr == auth.ACR_TWO_FACTOR
        assert result.amr == ("pwd", "otp", "mfa")

    def test_code_required(self, session: Session, seed: str) -> None:
        with pytest.raises(OneTimeCodeRequired):
            _login(session, "QA28435612345")

    def test_wrong_code(self, session: Session, seed: str) -> None:
        code = pyotp.TOTP(seed).now()
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        with pytest.raises(AuthenticationFailed):
            _login(session, "QA28435612345", code=wrong)
        assert auth.account_info(session, national_id="QA28435612345").failed_attempts == 1

    def test_code_reuse_refused(self, session: Session, seed: str) -> None:
        now = utcnow()
        code = pyotp.TOTP(seed).at(now)
        _login(session, "QA28435612345", code=code, now=now)
        with pytest.raises(AuthenticationFailed):
            _login(session, "QA28435612345", code=code, now=now + dt.timedelta(seconds=5))

    def test_seed_encrypted_at_rest(self, session: Session, seed: str) -> None:
        account = session.query(Account).filter_by(totp_secret=Account.totp_secret).all()
        stored = [a.totp_secret for a in account if a.totp_secret]
        assert stored and all(seed.encode() not in blob for blob in stored)

    def test_other_passphrase_cannot_read_the_seed(self, session: Session, seed: str) -> None:
        other = Settings(keystore_passphrase=SecretStr("another"), instance_code="MA")
        code = pyotp.TOTP(seed).now()
        with pytest.raises(ConfigurationError):
            auth.authenticate(
                session, settings=other, national_id="QA28435612345", password=PASSWORD, code=code
            )


def test_normalize_national_id() -> None:
    assert auth.normalize_national_id("MA:AB123456", country="MA") == "MAAB123456"
    assert auth.normalize_national_id("ab123456", country="MA") == "MAAB123456"
    assert auth.normalize_national_id("20012345678", country="QA") == "QA20012345678"
    assert auth.normalize_national_id("nonsense", country="MA") is None
