"""Every refusal of the verifier, written from the attacker's side, each with its reason."""

from __future__ import annotations

import json
import time
from typing import Any

from jisr.credentials import sdjwt
from jisr.credentials.status_list import INVALID, SUSPENDED
from jisr.credentials.verify import StaticTrust, Verifier

from .conftest import AUD, NONCE, FakeStatus, Issuer, software_key


def failed(result: Any) -> dict[str, str]:
    return {c.check: c.reason for c in result.failed}


class TestAccepted:
    def test_full_credential_with_key_binding(self, issuer: Issuer) -> None:
        token = issuer.issue()
        result = issuer.verifier().verify(issuer.present(token), nonce=NONCE, aud=AUD)
        assert result.valid, result.to_dict()
        assert result.claims["given_name"] == "Fatima Zahra"
        assert result.claims["address"]["country"] == "MA"
        assert [c.check for c in result.checks] == [
            "format",
            "type",
            "issuer",
            "signature",
            "validity",
            "disclosures",
            "key_binding",
            "status",
        ]
        assert result.to_dict()["valid"] is True

    def test_selective_disclosure_hides_the_rest(self, issuer: Issuer) -> None:
        token = issuer.issue()
        shown = issuer.present(token, [("given_name",), ("birthdate",)])
        result = issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)
        assert result.valid
        assert {"given_name", "birthdate"} <= result.claims.keys()
        assert "family_name" not in result.claims and "address" not in result.claims

    def test_one_array_element_and_one_nested_property(self, issuer: Issuer) -> None:
        token = issuer.issue()
        shown = issuer.present(token, [("nationalities", 1), ("address", "country")])
        result = issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)
        assert result.valid, result.to_dict()
        assert result.claims["address"] == {"country": "MA"}
        assert result.claims["nationalities"] == ["FR"]


class TestRefused:
    def test_bad_signature(self, issuer: Issuer) -> None:
        token = issuer.issue()
        head, payload, signature = token.split("~")[0].split(".")
        forged_payload = json.loads(sdjwt.b64url_decode(payload))
        forged_payload["exp"] += 10**6
        forged = ".".join((head, sdjwt.b64url(sdjwt.json_bytes(forged_payload)), signature))
        result = issuer.verifier().verify(forged + token[token.index("~") :])
        assert failed(result) == {"signature": "bad-signature", "status": "not-checked"}

    def test_signed_by_another_key(self, issuer: Issuer) -> None:
        other = Issuer(key=software_key(), holder=issuer.holder)
        other.key.kid = issuer.key.kid  # claims the trusted key's kid
        result = issuer.verifier().verify(other.issue())
        assert failed(result)["signature"] == "bad-signature"

    def test_alg_none(self, issuer: Issuer) -> None:
        token = issuer.issue()
        jwt, rest = token.split("~", 1)
        header = sdjwt.b64url(json.dumps({"alg": "none", "typ": "dc+sd-jwt"}).encode())
        unsigned = f"{header}.{jwt.split('.')[1]}."
        result = issuer.verifier().verify(f"{unsigned}~{rest}")
        assert failed(result)["signature"] == "algorithm-refused"
        assert not result.valid

    def test_hmac_algorithm(self, issuer: Issuer) -> None:
        token = issuer.issue()
        jwt, rest = token.split("~", 1)
        header = sdjwt.b64url(json.dumps({"alg": "HS256", "typ": "dc+sd-jwt"}).encode())
        result = issuer.verifier().verify(f"{header}.{jwt.split('.')[1]}.AAAA~{rest}")
        assert failed(result)["signature"] == "algorithm-refused"

    def test_untrusted_issuer(self, issuer: Issuer) -> None:
        stranger = Issuer()
        result = Verifier(StaticTrust({}), status=FakeStatus()).verify(stranger.issue())
        assert failed(result) == {
            "issuer": "untrusted-issuer",
            "signature": "not-checked",
            "status": "not-checked",
        }

    def test_expired(self, issuer: Issuer) -> None:
        now = int(time.time())
        token = issuer.issue(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        assert failed(issuer.verifier().verify(token)) == {
            "validity": "expired",
            "status": "not-checked",
        }

    def test_not_yet_valid(self, issuer: Issuer) -> None:
        now = int(time.time())
        token = issuer.issue(iat=now, nbf=now + 3600, exp=now + 7200)
        assert failed(issuer.verifier().verify(token))["validity"] == "not-yet-valid"

    def test_unreferenced_disclosure(self, issuer: Issuer) -> None:
        token = issuer.issue()
        extra = sdjwt.make_disclosure("admin", "role")
        result = issuer.verifier().verify(token + extra + "~")
        assert failed(result) == {"disclosures": "unreferenced-disclosure"}

    def test_disclosure_from_another_credential(self, issuer: Issuer) -> None:
        mine, theirs = issuer.issue(), issuer.issue({"given_name": "Someone Else"})
        borrowed = theirs.split("~")[1]
        result = issuer.verifier().verify(mine + borrowed + "~")
        assert failed(result)["disclosures"] == "unreferenced-disclosure"

    def test_duplicated_disclosure(self, issuer: Issuer) -> None:
        token = issuer.issue()
        first = token.split("~")[1]
        result = issuer.verifier().verify(token + first + "~")
        assert failed(result) == {"disclosures": "duplicate-disclosure"}

    def test_tampered_disclosure(self, issuer: Issuer) -> None:
        token = issuer.issue()
        parts = token.split("~")
        salt, name, _value = json.loads(sdjwt.b64url_decode(parts[1]))
        parts[1] = sdjwt.b64url(sdjwt.json_bytes([salt, name, "forged"]))
        result = issuer.verifier().verify("~".join(parts))
        assert failed(result) == {"disclosures": "unreferenced-disclosure"}

    def test_wrong_nonce(self, issuer: Issuer) -> None:
        shown = issuer.present(issuer.issue(), nonce="replayed")
        assert failed(issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)) == {
            "key_binding": "nonce-mismatch"
        }

    def test_wrong_aud(self, issuer: Issuer) -> None:
        shown = issuer.present(issuer.issue(), aud="https://someone-else.example")
        assert failed(issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)) == {
            "key_binding": "aud-mismatch"
        }

    def test_key_binding_missing(self, issuer: Issuer) -> None:
        result = issuer.verifier().verify(issuer.issue(), nonce=NONCE, aud=AUD)
        assert failed(result) == {"key_binding": "missing"}

    def test_key_binding_by_another_holder(self, issuer: Issuer) -> None:
        token = issuer.issue()
        thief = software_key()
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(token), thief, nonce=NONCE, aud=AUD, iat=int(time.time())
        )
        assert failed(issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)) == {
            "key_binding": "bad-signature"
        }

    def test_key_binding_for_other_disclosures(self, issuer: Issuer) -> None:
        token = issuer.issue()
        shown = issuer.present(token, [("given_name",)])
        jwt, *disclosures, kb = shown.split("~")
        more = sdjwt.present(token, [("family_name",)]).split("~")[1]
        tampered = "~".join((jwt, *disclosures, more, kb))
        assert failed(issuer.verifier().verify(tampered, nonce=NONCE, aud=AUD)) == {
            "key_binding": "sd-hash-mismatch"
        }

    def test_stale_key_binding(self, issuer: Issuer) -> None:
        shown = issuer.present(issuer.issue(), iat=int(time.time()) - 3600)
        assert failed(issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)) == {
            "key_binding": "stale"
        }

    def test_revoked(self, issuer: Issuer) -> None:
        verifier = issuer.verifier(status=FakeStatus({7: INVALID}))
        assert failed(verifier.verify(issuer.issue())) == {"status": "revoked"}

    def test_suspended(self, issuer: Issuer) -> None:
        verifier = issuer.verifier(status=FakeStatus({7: SUSPENDED}))
        assert failed(verifier.verify(issuer.issue())) == {"status": "suspended"}

    def test_every_failure_is_reported(self, issuer: Issuer) -> None:
        now = int(time.time())
        token = issuer.issue(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
        shown = issuer.present(token + token.split("~")[1] + "~", nonce="old")
        result = issuer.verifier().verify(shown, nonce=NONCE, aud=AUD)
        assert failed(result) == {
            "validity": "expired",
            "disclosures": "duplicate-disclosure",
            "key_binding": "nonce-mismatch",
            "status": "not-checked",
        }

    def test_wrong_typ_and_garbage(self, issuer: Issuer) -> None:
        verifier = issuer.verifier()
        assert failed(verifier.verify("not a credential")) == {"format": "malformed"}
        assert failed(verifier.verify("a.b~")) == {"format": "malformed"}
        jwt, rest = issuer.issue().split("~", 1)
        header = sdjwt.b64url(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
        token = f"{header}.{jwt.split('.', 1)[1]}~{rest}"
        assert failed(verifier.verify(token)) == {"format": "wrong-typ"}

    def test_missing_vct(self, issuer: Issuer) -> None:
        assert failed(issuer.verifier().verify(issuer.issue(vct=None))) == {"type": "missing-vct"}
