"""The instance certificate authority: a self-signed root, the certificates it issues
(mutual TLS between gateways, signing), revocation and CRLs, and certificate validation.

Design
------
The CA key is a keystore key of purpose ``ca``, in whichever backend the node uses; the CA
certificate is found in ``ca_certificates`` (usage ``ca``) and its key by the kid (RFC 7638
thumbprint) of the certificate's public key. Every certificate issued and every CRL published
is stored (``ca_certificates``, ``ca_crls``); CRLs are numbered (cRLNumber).

Every signature goes through ``SigningKey`` (software or PKCS#11 alike): ``cryptography``
has no external-signer API, so ``_der.sign_certificate`` / ``_der.sign_crl`` swap the
signature of a structure built and signed with a throw-away key (explained there).

Validation (``validate_certificate``) refuses, each with a precise ``CertificateRefused``:
a certificate not issued by this CA, a CRL not signed by it or stale, an expired or not yet
valid certificate (or CA), a revoked one, and one whose key usages do not fit the use.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto import _der
from jisr.core.crypto._der import load_certificate as load_certificate
from jisr.core.crypto._der import load_crl as load_crl
from jisr.core.crypto._der import to_der as to_der
from jisr.core.crypto._der import to_pem as to_pem  # PEM/DER helpers, re-exported here
from jisr.core.crypto.keystore import (
    KeyBackend,
    SigningKey,
    jwk_thumbprint,
    public_jwk_of,
    rotate_key,
    signing_key,
)
from jisr.core.crypto.models import IssuedCertificate, PublishedCrl
from jisr.core.errors import CertificateRefused, Conflict, CryptoError, InvalidInput, NotFound
from jisr.core.settings import KeyAlgorithm

CA_USAGE = "ca"
CA_KEY_PURPOSE = "ca"
# Certificates start a little in the past so that a peer whose clock is behind accepts them.
BACKDATE = dt.timedelta(minutes=5)


class CertificateUsage(enum.StrEnum):
    TLS_SERVER = "tls-server"
    TLS_CLIENT = "tls-client"
    TLS = "tls"
    SIGNING = "signing"


_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
}
_EKUS: dict[CertificateUsage, tuple[x509.ObjectIdentifier, ...]] = {
    CertificateUsage.TLS_SERVER: (ExtendedKeyUsageOID.SERVER_AUTH,),
    CertificateUsage.TLS_CLIENT: (ExtendedKeyUsageOID.CLIENT_AUTH,),
    CertificateUsage.TLS: (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    CertificateUsage.SIGNING: (),
}


@dataclass(frozen=True)
class CertificateInfo:
    serial: str
    subject: str
    usage: str
    is_ca: bool
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: dt.datetime
    revoked_at: dt.datetime | None
    revocation_reason: str | None

    @classmethod
    def of(cls, row: IssuedCertificate) -> CertificateInfo:
        return cls(**{field.name: getattr(row, field.name) for field in dataclasses.fields(cls)})


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def _ca_key(session: Session, backend: KeyBackend, ca_cert: x509.Certificate) -> SigningKey:
    public_key = ca_cert.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        raise CryptoError("the CA certificate's key type is not supported")
    return signing_key(session, backend, kid=jwk_thumbprint(public_jwk_of(public_key)))


def _store(session: Session, certificate: x509.Certificate, usage: str, *, is_ca: bool) -> None:
    session.add(
        IssuedCertificate(
            serial=serial_hex(certificate.serial_number),
            subject=certificate.subject.rfc4514_string()[:512],
            usage=usage,
            is_ca=is_ca,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            pem=to_pem(certificate).decode("ascii"),
            issued_at=utcnow(),
        )
    )
    session.flush()


def _key_usage(
    *, digital_signature: bool = False, non_repudiation: bool = False, ca: bool = False
) -> x509.KeyUsage:
    # Positional: digitalSignature, nonRepudiation, keyEncipherment, dataEncipherment,
    # keyAgreement, keyCertSign, cRLSign, encipherOnly, decipherOnly (RFC 5280 §4.2.1.3).
    return x509.KeyUsage(
        digital_signature, non_repudiation, False, False, False, ca, ca, False, False
    )


def _aware(value: dt.datetime | None, name: str) -> dt.datetime:
    """``value`` (default: now), refused when naive: every time here is UTC-aware."""
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime")
    return value


def _name(
    common_name: str, organization: str | None = None, country: str | None = None
) -> x509.Name:
    attributes = []
    if country is not None:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    try:
        return x509.Name(attributes)
    except ValueError as error:
        raise InvalidInput(f"invalid certificate name: {error}") from error


# --- the CA service --------------------------------------------------------------------------


def _ca_row(session: Session) -> IssuedCertificate | None:
    return session.scalars(
        sa.select(IssuedCertificate)
        .where(IssuedCertificate.is_ca.is_(True), IssuedCertificate.revoked_at.is_(None))
        .order_by(IssuedCertificate.issued_at.desc(), IssuedCertificate.id.desc())
        .limit(1)
    ).first()


def create_ca(
    session: Session,
    backend: KeyBackend,
    *,
    common_name: str,
    organization: str,
    country: str,
    validity_days: int = 3650,
    algorithm: KeyAlgorithm = KeyAlgorithm.ES256,
    not_before: dt.datetime | None = None,
) -> x509.Certificate:
    """Create the node's self-signed root CA (path length 0) and its ``ca`` keystore key."""
    existing = _ca_row(session)
    if existing is not None:
        raise Conflict(f"this node already has a CA ({existing.subject})")
    if not common_name or len(country) != 2 or not country.isalpha():
        raise InvalidInput("the CA needs a common name and a two-letter country code")
    if validity_days < 1:
        raise InvalidInput("validity_days must be at least 1")
    info = rotate_key(session, backend, purpose=CA_KEY_PURPOSE, algorithm=algorithm)
    key = signing_key(session, backend, kid=info.kid)
    public_key = key.public_key()
    name = _name(common_name, organization, country.upper())
    start = _aware(not_before, "not_before") if not_before else utcnow() - BACKDATE
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=validity_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
    )
    certificate = _der.sign_certificate(builder, key, None)
    _store(session, certificate, CA_USAGE, is_ca=True)
    return certificate


def ca_certificate(session: Session) -> x509.Certificate:
    """The node's CA certificate; ``NotFound`` if no CA was created."""
    row = _ca_row(session)
    if row is None:
        raise NotFound("this node has no certificate authority yet; create it first")
    return load_certificate(row.pem)


def issue_certificate(
    session: Session,
    backend: KeyBackend,
    *,
    public_key: CertificatePublicKeyTypes,
    common_name: str,
    organization: str | None = None,
    usage: CertificateUsage,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str | ipaddress.IPv4Address | ipaddress.IPv6Address] = (),
    validity_days: int = 365,
    not_before: dt.datetime | None = None,
    crl_url: str | None = None,
) -> x509.Certificate:
    """Issue an end-entity certificate for ``public_key`` with the key usages of ``usage``.

    It never outlives the CA: ``notAfter`` is capped at the CA's.
    """
    usage = CertificateUsage(usage)
    if validity_days < 1:
        raise InvalidInput("validity_days must be at least 1")
    ca = ca_certificate(session)
    key = _ca_key(session, backend, ca)
    start = _aware(not_before, "not_before") if not_before else utcnow() - BACKDATE
    end = min(start + dt.timedelta(days=validity_days), ca.not_valid_after_utc)
    if end <= start:
        raise InvalidInput("the certificate would start after the CA expires")
    try:
        ips = [ipaddress.ip_address(address) for address in ip_addresses]
    except ValueError as error:
        raise InvalidInput(str(error)) from error
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(address) for address in ips]
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    signing = usage is CertificateUsage.SIGNING
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, non_repudiation=signing), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if _EKUS[usage]:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(_EKUS[usage])), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    certificate = _der.sign_certificate(builder, key, ca)
    _store(session, certificate, usage.value, is_ca=False)
    return certificate


def _parse_serial(serial: int | str) -> str:
    if isinstance(serial, int):
        return serial_hex(serial)
    text = serial.strip().lower().replace(":", "").removeprefix("0x")
    try:
        return serial_hex(int(text, 16))
    except ValueError as error:
        raise InvalidInput(f"{serial!r} is not a certificate serial number (hex)") from error


def _reason(reason: x509.ReasonFlags | str) -> x509.ReasonFlags:
    """A reason flag from itself, its RFC 5280 name (``keyCompromise``) or its Python name."""
    if isinstance(reason, x509.ReasonFlags):
        return reason
    for flag in x509.ReasonFlags:
        if reason in (flag.value, flag.name):
            return flag
    choices = ", ".join(flag.value for flag in x509.ReasonFlags)
    raise InvalidInput(f"unknown revocation reason {reason!r} ({choices})")


def revoke_certificate(
    session: Session,
    backend: KeyBackend,
    *,
    serial: int | str,
    reason: x509.ReasonFlags | str = x509.ReasonFlags.unspecified,
    at: dt.datetime | None = None,
) -> CertificateInfo:
    """Mark a certificate revoked; it appears on the next CRL (``publish_crl``).

    Only the node that holds the CA key may revoke: the key is loaded through ``backend``
    first, so a revocation that could never be published is refused.
    """
    flag = _reason(reason)
    _ca_key(session, backend, ca_certificate(session))
    if flag is x509.ReasonFlags.remove_from_crl:
        raise InvalidInput("removeFromCRL is only for delta CRLs")
    hex_serial = _parse_serial(serial)
    row = session.scalars(
        sa.select(IssuedCertificate).where(IssuedCertificate.serial == hex_serial)
    ).first()
    if row is None:
        raise NotFound(f"this CA issued no certificate with serial {hex_serial}")
    if row.is_ca:
        raise InvalidInput("the CA certificate cannot be revoked on its own CRL")
    if row.revoked_at is not None:
        raise Conflict(f"certificate {hex_serial} was already revoked on {row.revoked_at}")
    row.revoked_at = _aware(at, "at")
    row.revocation_reason = flag.value
    session.flush()
    return CertificateInfo.of(row)


def list_certificates(session: Session) -> list[CertificateInfo]:
    """Every certificate this CA issued (its own included), newest first."""
    rows = session.scalars(
        sa.select(IssuedCertificate).order_by(
            IssuedCertificate.issued_at.desc(), IssuedCertificate.id.desc()
        )
    )
    return [CertificateInfo.of(row) for row in rows]


def publish_crl(
    session: Session,
    backend: KeyBackend,
    *,
    validity_hours: int = 24,
    now: dt.datetime | None = None,
) -> x509.CertificateRevocationList:
    """Sign and store the next CRL, listing every revoked certificate."""
    if validity_hours < 1:
        raise InvalidInput("validity_hours must be at least 1")
    ca = ca_certificate(session)
    key = _ca_key(session, backend, ca)
    this_update = _aware(now, "now")
    last = session.scalar(sa.select(sa.func.max(PublishedCrl.number)))
    number = (last or 0) + 1
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(this_update)
        .next_update(this_update + dt.timedelta(hours=validity_hours))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    revoked = session.scalars(
        sa.select(IssuedCertificate)
        .where(IssuedCertificate.revoked_at.is_not(None), IssuedCertificate.is_ca.is_(False))
        .order_by(IssuedCertificate.revoked_at)
    )
    for row in revoked:
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(int(row.serial, 16))
            .revocation_date(row.revoked_at or this_update)
        )
        flag = x509.ReasonFlags(row.revocation_reason or "unspecified")
        if flag is not x509.ReasonFlags.unspecified:  # RFC 5280 §5.3.1: omit unspecified
            entry = entry.add_extension(x509.CRLReason(flag), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    crl = _der.sign_crl(builder, key, ca)
    session.add(
        PublishedCrl(
            number=number,
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc or this_update,
            pem=to_pem(crl).decode("ascii"),
        )
    )
    session.flush()
    return crl


def latest_crl(session: Session) -> x509.CertificateRevocationList | None:
    """The most recent CRL published, or None."""
    pem = session.scalar(sa.select(PublishedCrl.pem).order_by(PublishedCrl.number.desc()).limit(1))
    return load_crl(pem) if pem is not None else None


# --- validation ------------------------------------------------------------------------------


def _describe(certificate: x509.Certificate) -> str:
    serial = serial_hex(certificate.serial_number)
    return f"{certificate.subject.rfc4514_string()} (serial {serial})"


def validate_certificate(
    certificate: x509.Certificate,
    *,
    ca_cert: x509.Certificate,
    crl: x509.CertificateRevocationList,
    usage: CertificateUsage,
    at: dt.datetime | None = None,
) -> None:
    """Check that ``certificate`` was issued by ``ca_cert``, is valid at ``at`` (default: now),
    is not revoked on ``crl`` (which must be signed by the CA and current) and fits ``usage``.
    Raises ``CertificateRefused`` saying which check failed."""
    usage = CertificateUsage(usage)
    moment = _aware(at, "at")
    who = _describe(certificate)
    serial = serial_hex(certificate.serial_number)
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise CertificateRefused(f"{_describe(ca_cert)} is not a CA certificate", reason="not-a-ca")
    try:
        certificate.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as error:
        raise CertificateRefused(
            f"{who} was not issued by this CA ({ca_cert.subject.rfc4514_string()}); its issuer "
            f"is {certificate.issuer.rfc4514_string()}",
            reason="wrong-issuer",
            serial=serial,
        ) from error
    ca_key = ca_cert.public_key()
    if crl.issuer != ca_cert.subject or not (
        isinstance(ca_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey)
        and crl.is_signature_valid(ca_key)
    ):
        raise CertificateRefused(
            f"the CRL is not signed by this CA (issuer {crl.issuer.rfc4514_string()})",
            reason="crl-signature",
        )
    next_update = crl.next_update_utc
    if next_update is None or next_update < moment:
        raise CertificateRefused(
            f"the CRL is stale: its nextUpdate {next_update} has passed "
            f"({moment}); a newer CRL is needed",
            reason="crl-stale",
        )
    if crl.last_update_utc > moment:
        raise CertificateRefused(
            f"the CRL is not valid yet (thisUpdate {crl.last_update_utc})",
            reason="crl-not-yet-valid",
        )
    if ca_cert.not_valid_after_utc < moment or ca_cert.not_valid_before_utc > moment:
        raise CertificateRefused(
            f"the CA certificate is not valid at {moment}", reason="ca-expired"
        )
    if certificate.not_valid_before_utc > moment:
        raise CertificateRefused(
            f"{who} is not valid yet: it starts at {certificate.not_valid_before_utc}",
            reason="not-yet-valid",
            serial=serial,
        )
    if certificate.not_valid_after_utc < moment:
        raise CertificateRefused(
            f"{who} expired at {certificate.not_valid_after_utc}", reason="expired", serial=serial
        )
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is not None and entry.revocation_date_utc <= moment:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = "unspecified"
        raise CertificateRefused(
            f"{who} was revoked on {entry.revocation_date_utc} (reason: {reason})",
            reason="revoked",
            serial=serial,
            revocation_reason=reason,
        )
    _check_usage(certificate, usage, who, serial)


def _check_usage(
    certificate: x509.Certificate, usage: CertificateUsage, who: str, serial: str
) -> None:
    def refuse(message: str) -> CertificateRefused:
        return CertificateRefused(message, reason="wrong-usage", serial=serial, usage=usage.value)

    extensions = certificate.extensions
    try:
        if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise refuse(f"{who} is a CA certificate, not an end-entity one")
    except x509.ExtensionNotFound:
        pass
    try:
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as error:
        raise refuse(f"{who} has no key usage extension") from error
    if not key_usage.digital_signature:
        raise refuse(f"{who} may not be used for {usage.value}: no digitalSignature")
    if usage is CertificateUsage.SIGNING and not key_usage.content_commitment:
        raise refuse(f"{who} may not be used for signing: no nonRepudiation")
    try:
        ekus = set(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = set()
    missing = [_EKU_NAMES[oid] for oid in _EKUS[usage] if oid not in ekus]
    if missing:
        raise refuse(
            f"{who} may not be used for {usage.value}: its extended key usage lacks "
            f"{', '.join(missing)}"
        )
