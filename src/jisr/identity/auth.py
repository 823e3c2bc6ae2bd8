"""Authentication of persons: password (argon2) plus a one-time code (TOTP, RFC 6238).

Design
------
An ``Account`` (table ``identity_accounts``) belongs to one ``Person`` and holds an argon2id
password hash (argon2-cffi defaults, rehashed on login when the parameters change) and,
optionally, a TOTP seed sealed with AES-256-GCM under a key derived from the keystore
passphrase (``jisr.identity._secrets``).

``authenticate`` checks, in this order, and refuses with one error each:

1. the account is locked (``locked_until`` in the future) → ``AccountLocked``, without even
   looking at the password, so a locked account cannot be used as a password oracle;
2. the person or account does not exist, or the password is wrong → ``AuthenticationFailed``
   (a dummy argon2 check runs for unknown persons, so timing does not tell them apart);
3. the account has a second factor and no code was given → ``OneTimeCodeRequired``;
4. the code is wrong, or its time step is not later than the last accepted one (a code is
   accepted once: ``totp_last_step``) → ``AuthenticationFailed``.

Each failure counts in ``failed_attempts``; at ``MAX_FAILURES`` the account is locked for
``LOCK_SECONDS``, doubling with every further failure up to ``MAX_LOCK_SECONDS`` (back-off).
A success resets the count. Failures are *flushed before the error is raised*: the caller
(the login view) catches the error and commits, so the count and the audit record survive.

Authentication context (``acr``): ``ACR_PASSWORD`` for a password alone, ``ACR_TWO_FACTOR``
for password and one-time code; ``amr`` (RFC 8176) is ``["pwd"]`` or ``["pwd", "otp", "mfa"]``.

Every outcome is written to the security audit chain through the ``record`` callable the
caller passes (``Node.record`` of the idp node).
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.errors import InvalidInput, NotFound
from jisr.core.i18n import _
from jisr.core.settings import Settings
from jisr.identity import _secrets
from jisr.identity import service as register
from jisr.identity.errors import InvalidNationalId
from jisr.identity.identifiers import parse_national_id
from jisr.identity.models import Account, Person
from jisr.identity.oidc.errors import AccountLocked, AuthenticationFailed, OneTimeCodeRequired

ACR_PASSWORD = "urn:jisr:acr:password"
ACR_TWO_FACTOR = "urn:jisr:acr:password-totp"
ACR_VALUES = (ACR_PASSWORD, ACR_TWO_FACTOR)
MAX_FAILURES = 5
LOCK_SECONDS = 60
MAX_LOCK_SECONDS = 3600
MIN_PASSWORD_LENGTH = 10
TOTP_PERIOD = 30
TOTP_WINDOW = 1  # steps accepted either side of now (clock drift)

Recorder = Callable[..., None]
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("jisr-dummy-password-for-timing")


@dataclass(frozen=True)
class Authentication:
    """A successful authentication: who, how strongly, when."""

    person_id: int
    national_id: str
    acr: str
    amr: tuple[str, ...]
    auth_time: dt.datetime


@dataclass(frozen=True)
class AccountInfo:
    person_id: int
    national_id: str
    has_totp: bool
    failed_attempts: int
    locked_until: dt.datetime | None


def normalize_national_id(value: str, *, country: str) -> str | None:
    """``MA:AB123456``, ``maab123456`` or, typed at a ``country`` login page, ``AB123456`` →
    ``MAAB123456``; None when it is no valid national identifier."""
    for candidate in (value, f"{country[:2]}:{value}"):
        try:
            return parse_national_id(candidate).compact
        except InvalidNationalId:
            continue
    return None


def find_person(session: Session, national_id: str) -> Person | None:
    """The person with ``national_id`` (the register's lookup), ``None`` when it is not even a
    valid identifier: a login form must not tell a malformed identifier from a wrong one."""
    try:
        return register.find_person(session, national_id)
    except InvalidNationalId:
        return None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            _("A password needs at least {length} characters."), length=MIN_PASSWORD_LENGTH
        )
    return _hasher.hash(password)


def new_totp_secret() -> str:
    """A fresh base32 TOTP seed (160 bits) to show once, e.g. as an ``otpauth://`` QR code."""
    return pyotp.random_base32(32)


def set_credentials(
    session: Session,
    *,
    settings: Settings,
    person_id: int,
    password: str,
    totp_secret: str | None = None,
) -> AccountInfo:
    """Create or replace the account of a person: password and, optionally, a TOTP seed."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(_("No person with id {id}."), id=person_id)
    now = utcnow()
    account = person.account
    if account is None:
        account = Account(person_id=person.id, password_hash="", created_at=now)
        session.add(account)
    account.password_hash = hash_password(password)
    account.totp_secret = (
        _secrets.seal(settings, totp_secret.encode("ascii"), context=_context(person.id))
        if totp_secret
        else None
    )
    account.totp_last_step = None
    account.failed_attempts = 0
    account.locked_until = None
    account.updated_at = now
    session.flush()
    return _info(person, account)


def account_info(session: Session, *, national_id: str) -> AccountInfo:
    person = find_person(session, national_id)
    if person is None or person.account is None:
        raise NotFound(_("No account for {national_id}."), national_id=national_id)
    return _info(person, person.account)


def _info(person: Person, account: Account) -> AccountInfo:
    return AccountInfo(
        person_id=person.id,
        national_id=person.national_id,
        has_totp=account.totp_secret is not None,
        failed_attempts=account.failed_attempts,
        locked_until=account.locked_until,
    )


def _context(person_id: int) -> bytes:
    return f"identity_accounts.person_id={person_id}".encode()


def authenticate(
    session: Session,
    *,
    settings: Settings,
    national_id: str,
    password: str,
    code: str | None = None,
    record: Recorder | None = None,
    now: dt.datetime | None = None,
) -> Authentication:
    """Check a password and, when the account has one, a TOTP code; see the module docstring."""
    now = now or utcnow()
    log = record or (lambda *args, **kwargs: None)
    person = find_person(session, national_id)
    account = person.account if person is not None else None
    if person is None or account is None:
        _verify(_DUMMY_HASH, password)
        log(session, "identity.login.failed", {"reason": "unknown"}, subject=national_id)
        session.flush()
        raise AuthenticationFailed(_("The national identifier, password or code is not correct."))
    if account.locked_until is not None and account.locked_until > now:
        log(
            session,
            "identity.login.refused",
            {"reason": "locked", "until": account.locked_until.isoformat()},
            subject=national_id,
        )
        session.flush()
        raise AccountLocked(
            _("Too many failed attempts: the account is locked until {until}."),
            until=account.locked_until.strftime("%H:%M:%S UTC"),
        )
    if not _verify(account.password_hash, password):
        _fail(session, account, now, "password", national_id, log)
    amr: tuple[str, ...] = ("pwd",)
    acr = ACR_PASSWORD
    if account.totp_secret is not None:
        if not code:
            session.flush()
            raise OneTimeCodeRequired(_("Enter the one-time code from your authenticator app."))
        step = _match_totp(settings, account, code.strip(), now)
        if step is None:
            _fail(session, account, now, "code", national_id, log)
        assert step is not None
        account.totp_last_step = step
        amr, acr = ("pwd", "otp", "mfa"), ACR_TWO_FACTOR
    if _hasher.check_needs_rehash(account.password_hash):
        account.password_hash = _hasher.hash(password)
    account.failed_attempts = 0
    account.locked_until = None
    account.last_login_at = now
    account.updated_at = now
    log(session, "identity.login.succeeded", {"acr": acr, "amr": list(amr)}, subject=national_id)
    session.flush()
    return Authentication(
        person_id=person.id, national_id=national_id, acr=acr, amr=amr, auth_time=now
    )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _match_totp(settings: Settings, account: Account, code: str, now: dt.datetime) -> int | None:
    """The time step ``code`` belongs to, if valid and later than the last one accepted."""
    if not code.isdigit() or account.totp_secret is None:
        return None
    seed = _secrets.unseal(settings, account.totp_secret, context=_context(account.person_id))
    totp = pyotp.TOTP(seed.decode("ascii"), interval=TOTP_PERIOD)
    current = totp.timecode(now)
    for offset in range(-TOTP_WINDOW, TOTP_WINDOW + 1):
        step = current + offset
        if hmac.compare_digest(totp.generate_otp(step), code):
            if account.totp_last_step is not None and step <= account.totp_last_step:
                return None  # replayed: each code is accepted once
            return step
    return None


def _fail(
    session: Session,
    account: Account,
    now: dt.datetime,
    reason: str,
    national_id: str,
    log: Recorder,
) -> None:
    account.failed_attempts += 1
    account.updated_at = now
    data: dict[str, Any] = {"reason": reason, "failed_attempts": account.failed_attempts}
    log(session, "identity.login.failed", data, subject=national_id)
    if account.failed_attempts >= MAX_FAILURES:
        extra = account.failed_attempts - MAX_FAILURES
        seconds = min(LOCK_SECONDS * 2**extra, MAX_LOCK_SECONDS)
        account.locked_until = now + dt.timedelta(seconds=seconds)
        log(
            session,
            "identity.account.locked",
            {"until": account.locked_until.isoformat(), "seconds": seconds},
            subject=national_id,
        )
    session.flush()
    raise AuthenticationFailed(_("The national identifier, password or code is not correct."))
