"""The instance CA on both keystore backends: issuance, revocation, CRLs, validation, mTLS."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto import (
    CertificateUsage,
    KeyAlgorithm,
    KeyBackend,
    SoftwareBackend,
    ca_certificate,
    create_ca,
    issue_certificate,
    latest_crl,
    list_certificates,
    list_keys,
    load_certificate,
    load_crl,
    publish_crl,
    revoke_certificate,
    to_der,
    to_pem,
    validate_certificate,
)
from jisr.core.errors import (
    CertificateRefused,
    ConfigurationError,
    Conflict,
    CryptoError,
    InvalidInput,
    NotFound,
)

pytestmark = pytest.mark.db

Usage = CertificateUsage


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(session: Session, backend: KeyBackend, **overrides: Any) -> x509.Certificate:
    arguments: dict[str, Any] = {
        "common_name": "Jisr MA Instance CA",
        "organization": "Royaume du Maroc",
        "country": "MA",
        "validity_days": 30,
    }
    return create_ca(session, backend, **{**arguments, **overrides})


def issue(
    session: Session, backend: KeyBackend, usage: Usage, **overrides: Any
) -> x509.Certificate:
    arguments: dict[str, Any] = {
        "public_key": new_key().public_key(),
        "common_name": f"MA/GOV/1000/{usage.value}",
        "organization": "Ministry",
        "usage": usage,
        "validity_days": 10,
    }
    return issue_certificate(session, backend, **{**arguments, **overrides})


@pytest.fixture
def ca(session: Session, backend: KeyBackend) -> x509.Certificate:
    return make_ca(session, backend)


def foreign_ca(subject: x509.Name) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA outside the keystore with the *same name* as ours (an impersonator)."""
    key = new_key()
    now = utcnow()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


class TestCreate:
    def test_root_certificate(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        assert ca.subject == ca.issuer
        assert ca.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "MA"
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == 0
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = ca.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ski.digest
        ca.verify_directly_issued_by(ca)
        assert ca_certificate(session) == ca
        assert [info.purpose for info in list_keys(session, purpose="ca")] == ["ca"]
        stored = list_certificates(session)[0]
        assert stored.usage == "ca" and stored.is_ca
        assert stored.serial == format(ca.serial_number, "x")

    def test_only_one_ca(self, session: Session, backend: KeyBackend, ca: x509.Certificate) -> None:
        with pytest.raises(Conflict, match="already has a CA"):
            make_ca(session, backend)

    def test_bad_country(self, session: Session, software_backend: KeyBackend) -> None:
        with pytest.raises(InvalidInput, match="two-letter"):
            make_ca(session, software_backend, country="Morocco")

    def test_no_ca_yet(self, session: Session, software_backend: KeyBackend) -> None:
        with pytest.raises(NotFound, match="no certificate authority"):
            issue(session, software_backend, Usage.TLS)

    def test_ed25519_ca(self, session: Session, backend: KeyBackend) -> None:
        root = make_ca(session, backend, algorithm=KeyAlgorithm.ED25519)
        assert root.signature_hash_algorithm is None  # pure Ed25519
        leaf = issue(session, backend, Usage.SIGNING)
        leaf.verify_directly_issued_by(root)
        crl = publish_crl(session, backend)
        validate_certificate(leaf, ca_cert=root, crl=crl, usage=Usage.SIGNING)


class TestIssue:
    @pytest.mark.parametrize("usage", list(Usage))
    def test_issue_and_validate(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate, usage: Usage
    ) -> None:
        leaf = issue(
            session,
            backend,
            usage,
            dns_names=["gw.gov.ma"],
            ip_addresses=["10.0.0.1"],
            crl_url="http://registry.gov.ma/ca.crl",
        )
        leaf.verify_directly_issued_by(ca)
        extensions = leaf.extensions
        assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
        assert key_usage.digital_signature
        assert key_usage.content_commitment is (usage is Usage.SIGNING)
        expected_ekus = {
            Usage.TLS_SERVER: {ExtendedKeyUsageOID.SERVER_AUTH},
            Usage.TLS_CLIENT: {ExtendedKeyUsageOID.CLIENT_AUTH},
            Usage.TLS: {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
        }.get(usage)
        if expected_ekus is None:
            with pytest.raises(x509.ExtensionNotFound):
                extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        else:
            assert set(extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == (
                expected_ekus
            )
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["gw.gov.ma"]
        assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
        ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        assert aki.key_identifier == ca_ski.digest
        points = extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert points[0].full_name[0].value == "http://registry.gov.ma/ca.crl"  # type: ignore[index]
        crl = publish_crl(session, backend)
        validate_certificate(leaf, ca_cert=ca, crl=crl, usage=usage)

    def test_validity_is_capped_by_the_ca(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        root = make_ca(session, software_backend, validity_days=5)
        leaf = issue(session, software_backend, Usage.TLS, validity_days=365)
        assert leaf.not_valid_after_utc == root.not_valid_after_utc

    def test_naive_datetimes_are_refused(
        self, session: Session, software_backend: KeyBackend
    ) -> None:
        make_ca(session, software_backend)
        with pytest.raises(InvalidInput, match="timezone-aware"):
            issue(session, software_backend, Usage.TLS, not_before=dt.datetime(2030, 1, 1))


class TestRefusals:
    def test_expired(self, session: Session, backend: KeyBackend, ca: x509.Certificate) -> None:
        start = utcnow() - dt.timedelta(days=3)
        leaf = issue(session, backend, Usage.TLS, not_before=start, validity_days=1)
        crl = publish_crl(session, backend)
        with pytest.raises(CertificateRefused, match="expired at"):
            validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS)

    def test_expired_later(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        leaf = issue(session, backend, Usage.TLS, validity_days=2)
        crl = publish_crl(session, backend, validity_hours=24 * 5)
        later = utcnow() + dt.timedelta(days=3)
        validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS)
        with pytest.raises(CertificateRefused, match="expired at"):
            validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS, at=later)

    def test_not_yet_valid(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        leaf = issue(session, backend, Usage.TLS, not_before=utcnow() + dt.timedelta(days=1))
        crl = publish_crl(session, backend)
        with pytest.raises(CertificateRefused, match="not valid yet"):
            validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS)

    def test_revoked(self, session: Session, backend: KeyBackend, ca: x509.Certificate) -> None:
        leaf = issue(session, backend, Usage.TLS_CLIENT)
        before = publish_crl(session, backend)
        info = revoke_certificate(
            session, backend, serial=leaf.serial_number, reason="key_compromise"
        )
        assert info.revoked_at is not None and info.revocation_reason == "keyCompromise"
        after = publish_crl(session, backend)
        entry = after.get_revoked_certificate_by_serial_number(leaf.serial_number)
        assert entry is not None
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
            x509.ReasonFlags.key_compromise
        )
        validate_certificate(leaf, ca_cert=ca, crl=before, usage=Usage.TLS_CLIENT)  # old CRL
        with pytest.raises(CertificateRefused, match=r"was revoked on .*keyCompromise") as raised:
            validate_certificate(leaf, ca_cert=ca, crl=after, usage=Usage.TLS_CLIENT)
        problem = raised.value.to_problem()
        assert problem["reason"] == "revoked"  # machine-readable
        assert problem["serial"] == format(leaf.serial_number, "x")
        assert problem["revocation_reason"] == "keyCompromise"

    def test_from_another_ca(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        impostor, impostor_key = foreign_ca(ca.subject)
        now = utcnow()
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")]))
            .issuer_name(ca.subject)  # claims our CA as issuer
            .public_key(new_key().public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(impostor_key, hashes.SHA256())
        )
        crl = publish_crl(session, backend)
        with pytest.raises(CertificateRefused, match="was not issued by this CA"):
            validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS_SERVER)
        ours = issue(session, backend, Usage.TLS)
        with pytest.raises(CertificateRefused, match="not issued by this CA"):
            validate_certificate(ours, ca_cert=impostor, crl=crl, usage=Usage.TLS)

    @pytest.mark.parametrize(
        "issued,wanted,message",
        [
            (Usage.TLS_SERVER, Usage.TLS_CLIENT, "lacks clientAuth"),
            (Usage.TLS_CLIENT, Usage.TLS_SERVER, "lacks serverAuth"),
            (Usage.TLS_CLIENT, Usage.TLS, "lacks serverAuth"),
            (Usage.SIGNING, Usage.TLS_SERVER, "lacks serverAuth"),
            (Usage.TLS, Usage.SIGNING, "no nonRepudiation"),
        ],
    )
    def test_wrong_usage(
        self,
        session: Session,
        software_backend: KeyBackend,
        issued: Usage,
        wanted: Usage,
        message: str,
    ) -> None:
        root = make_ca(session, software_backend)
        leaf = issue(session, software_backend, issued)
        crl = publish_crl(session, software_backend)
        with pytest.raises(CertificateRefused, match=message) as raised:
            validate_certificate(leaf, ca_cert=root, crl=crl, usage=wanted)
        assert raised.value.to_problem()["reason"] == "wrong-usage"

    def test_the_ca_is_not_a_leaf(self, session: Session, software_backend: KeyBackend) -> None:
        root = make_ca(session, software_backend)
        crl = publish_crl(session, software_backend)
        with pytest.raises(CertificateRefused, match="is a CA certificate"):
            validate_certificate(root, ca_cert=root, crl=crl, usage=Usage.TLS)

    def test_stale_crl(self, session: Session, backend: KeyBackend, ca: x509.Certificate) -> None:
        leaf = issue(session, backend, Usage.TLS)
        crl = publish_crl(session, backend, validity_hours=1, now=utcnow() - dt.timedelta(hours=2))
        with pytest.raises(CertificateRefused, match="CRL is stale"):
            validate_certificate(leaf, ca_cert=ca, crl=crl, usage=Usage.TLS)
        fresh = publish_crl(session, backend, validity_hours=1)
        validate_certificate(leaf, ca_cert=ca, crl=fresh, usage=Usage.TLS)
        with pytest.raises(CertificateRefused, match="CRL is stale"):
            validate_certificate(
                leaf, ca_cert=ca, crl=fresh, usage=Usage.TLS, at=utcnow() + dt.timedelta(hours=2)
            )

    def test_crl_not_signed_by_the_ca(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        leaf = issue(session, backend, Usage.TLS)
        _, impostor_key = foreign_ca(ca.subject)
        now = utcnow()
        forged = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(hours=1))
            .sign(impostor_key, hashes.SHA256())
        )
        with pytest.raises(CertificateRefused, match="CRL is not signed by this CA"):
            validate_certificate(leaf, ca_cert=ca, crl=forged, usage=Usage.TLS)


class TestRevocationAndCrls:
    def test_crls_are_numbered_and_stored(
        self, session: Session, backend: KeyBackend, ca: x509.Certificate
    ) -> None:
        first = publish_crl(session, backend, validity_hours=6)
        second = publish_crl(session, backend)
        number = first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert second.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == (
            number + 1
        )
        assert first.next_update_utc - first.last_update_utc == dt.timedelta(hours=6)
        assert latest_crl(session) == second
        ca_public = ca.public_key()
        assert isinstance(ca_public, ec.EllipticCurvePublicKey)
        assert second.is_signature_valid(ca_public)

    def test_revocation_errors(self, session: Session, software_backend: KeyBackend) -> None:
        root = make_ca(session, software_backend)
        leaf = issue(session, software_backend, Usage.TLS)
        with pytest.raises(NotFound):
            revoke_certificate(session, software_backend, serial=12345)
        with pytest.raises(InvalidInput, match="CA certificate"):
            revoke_certificate(session, software_backend, serial=root.serial_number)
        with pytest.raises(InvalidInput, match="unknown revocation reason"):
            revoke_certificate(
                session, software_backend, serial=leaf.serial_number, reason="because"
            )
        with pytest.raises(ConfigurationError, match="passphrase does not decrypt"):
            revoke_certificate(session, SoftwareBackend("not the CA"), serial=leaf.serial_number)
        with pytest.raises(InvalidInput, match="not a certificate serial"):
            revoke_certificate(session, software_backend, serial="xyz")
        colons = ":".join(f"{b:02X}" for b in leaf.serial_number.to_bytes(20, "big"))
        revoke_certificate(
            session, software_backend, serial=colons
        )  # the way openssl prints serials
        with pytest.raises(Conflict, match="already revoked"):
            revoke_certificate(session, software_backend, serial=leaf.serial_number)
        crl = publish_crl(session, software_backend)
        entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
        assert entry is not None
        with pytest.raises(x509.ExtensionNotFound):  # unspecified: no reason code (RFC 5280)
            entry.extensions.get_extension_for_class(x509.CRLReason)
        infos = {info.serial: info for info in list_certificates(session)}
        assert infos[format(leaf.serial_number, "x")].revocation_reason == "unspecified"


def test_pem_and_der_helpers(session: Session, software_backend: KeyBackend) -> None:
    root = make_ca(session, software_backend)
    crl = publish_crl(session, software_backend)
    assert load_certificate(to_pem(root)) == root
    assert load_certificate(to_der(root)) == root
    assert load_crl(to_pem(crl)) == crl
    assert load_crl(to_der(crl)) == crl
    with pytest.raises(CryptoError, match="not a valid X.509"):
        load_certificate("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    with pytest.raises(CryptoError, match="not a valid CRL"):
        load_crl(b"\x30\x03garbage")


# --- a real mutual-TLS handshake with certificates from the CA -------------------------------


def _write(path: Path, *parts: str | bytes) -> Path:
    path.write_bytes(b"".join(p.encode() if isinstance(p, str) else p for p in parts))
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> dict[str, Any]:
    """Run one TLS connection over loopback; what the server saw (peer) or its error."""
    result: dict[str, Any] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)

        def serve() -> None:
            try:
                connection, _ = listener.accept()
                connection.settimeout(5)
                with server.wrap_socket(connection, server_side=True) as tls:
                    result["peer"] = tls.getpeercert()
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as error:
                result["error"] = error

        thread = threading.Thread(target=serve)
        thread.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=5) as raw:
                with client.wrap_socket(raw, server_hostname="localhost") as tls:
                    result["reply"] = tls.recv(2)
        except (ssl.SSLError, OSError) as error:
            result["client_error"] = error
        thread.join(10)
    return result


def test_mutual_tls_handshake(session: Session, backend: KeyBackend, tmp_path: Path) -> None:
    root = make_ca(session, backend)
    server_key, client_key, revoked_key = new_key(), new_key(), new_key()
    server_cert = issue(
        session,
        backend,
        Usage.TLS_SERVER,
        public_key=server_key.public_key(),
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    client_cert = issue(
        session,
        backend,
        Usage.TLS_CLIENT,
        public_key=client_key.public_key(),
        common_name="MA/GOV/1000/client",
    )
    revoked_cert = issue(
        session,
        backend,
        Usage.TLS_CLIENT,
        public_key=revoked_key.public_key(),
        common_name="MA/GOV/1000/revoked",
    )
    revoke_certificate(session, backend, serial=revoked_cert.serial_number, reason="keyCompromise")
    crl = publish_crl(session, backend)

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(
        _write(tmp_path / "server.pem", to_pem(server_cert)),
        _write(tmp_path / "server.key", _key_pem(server_key)),
    )
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_verify_locations(cafile=_write(tmp_path / "trust.pem", to_pem(root), to_pem(crl)))
    server.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_X509_STRICT

    def client_context(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=to_pem(root).decode())
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        name = cert.subject.rfc4514_string().replace("/", "_")
        context.load_cert_chain(
            _write(tmp_path / f"{name}.pem", to_pem(cert)),
            _write(tmp_path / f"{name}.key", _key_pem(key)),
        )
        return context

    accepted = _handshake(server, client_context(client_cert, client_key))
    assert accepted.get("reply") == b"ok", accepted
    subject = dict(item[0] for item in accepted["peer"]["subject"])
    assert subject["commonName"] == "MA/GOV/1000/client"

    refused = _handshake(server, client_context(revoked_cert, revoked_key))
    assert "reply" not in refused or refused["reply"] != b"ok"
    assert "revoked" in str(refused.get("error")), refused
