"""The IETF example vectors, read in place from ``../shared/specs/ietf/``.

* RFC 9901 (SD-JWT) and draft-ietf-oauth-sd-jwt-vc: every compact SD-JWT and SD-JWT+KB
  printed in the rendered drafts verifies with our verifier (the issuer key of the examples'
  ``settings.yml``; KB-JWT nonce and audience from the settings), and every
  ``specification.yml`` whose example is printed is reproduced exactly by processing it.
* Token Status List: the encodings in ``status-list/examples`` decode to the byte arrays and
  statuses the draft lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
import yaml

from jisr.credentials import sdjwt
from jisr.credentials.status_list import decode_list, encode_list, get_status
from jisr.credentials.verify import TrustedKey, Verifier, trusted_key

_COMPACT = re.compile(r"^eyJ[A-Za-z0-9_\-.~]+$")
_META = {"iss", "iat", "exp", "cnf", "_sd_alg", "vct", "status", "nbf"}


class SD:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SD) and other.value == self.value


class _Loader(yaml.SafeLoader):
    pass


def _sd(loader: yaml.SafeLoader, node: yaml.Node) -> SD:
    if isinstance(node, yaml.MappingNode):
        return SD(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return SD(loader.construct_sequence(node, deep=True))
    return SD(loader.construct_scalar(node))  # type: ignore[arg-type]


_Loader.add_constructor("!sd", _sd)


def unwrap(value: Any) -> Any:
    if isinstance(value, SD):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {unwrap(k): unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def load(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506


def compact_figures(text: str) -> list[str]:
    """Every compact SD-JWT printed in a rendered draft (wrapped lines joined)."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        joined = "".join(line.strip() for line in paragraph.splitlines())
        if _COMPACT.match(joined) and "~" in joined:
            found.append(joined)
    return found


class AnyIssuer:
    """The examples' issuer key, whatever the example's ``iss``."""

    def __init__(self, jwks: list[dict[str, Any]]) -> None:
        self.keys = [trusted_key({k: v for k, v in jwk.items() if k != "d"}) for jwk in jwks]

    def keys_for(self, issuer: str) -> Collection[TrustedKey] | None:
        return self.keys


@pytest.fixture
def ietf(shared_specs: Path) -> Path:
    path = shared_specs / "ietf"
    if not (path / "sd-jwt" / "rendered").is_dir():
        pytest.skip(f"the IETF vectors are absent from {path}")
    return path


def _verify_figure(figure: str, settings: dict[str, Any]) -> dict[str, Any]:
    keys = settings["key_settings"]
    issuer_keys = keys.get("issuer_keys") or [keys["issuer_key"]]
    parsed = sdjwt.parse(figure)
    now = 1683000000 + 60
    aud = None
    if parsed.kb_jwt:
        kb = sdjwt.decode_segment(parsed.kb_jwt.split(".")[1])
        now, aud = kb["iat"], settings["identifiers"]["verifier"]
    verifier = Verifier(
        AnyIssuer(issuer_keys), typ=(), require_vct=False, require_issuer=False, clock=lambda: now
    )
    result = verifier.verify(figure, nonce=settings["key_binding_nonce"] if aud else None, aud=aud)
    assert result.valid, result.to_dict()
    return result.claims


@pytest.mark.parametrize("draft", ["sd-jwt", "sd-jwt-vc"])
def test_every_printed_sd_jwt_verifies(ietf: Path, draft: str) -> None:
    settings = load(ietf / draft / "examples" / "settings.yml")
    rendered = next((ietf / draft / "rendered").glob("*.txt")).read_text(encoding="utf-8")
    figures = compact_figures(rendered)
    assert len(figures) >= 3
    with_kb = 0
    for figure in figures:
        _verify_figure(figure, settings)
        with_kb += bool(sdjwt.parse(figure).kb_jwt)
    assert with_kb >= 1


def test_the_rfc_presentation_gives_the_printed_payload(ietf: Path) -> None:
    settings = load(ietf / "sd-jwt" / "examples" / "settings.yml")
    rendered = next((ietf / "sd-jwt" / "rendered").glob("*.txt")).read_text(encoding="utf-8")
    presentation = next(f for f in compact_figures(rendered) if sdjwt.parse(f).kb_jwt)
    claims = _verify_figure(presentation, settings)
    assert claims["given_name"] == "John" and claims["family_name"] == "Doe"
    assert claims["nationalities"] == ["US"]
    assert "email" not in claims


@pytest.mark.parametrize("draft", ["sd-jwt", "sd-jwt-vc"])
def test_specifications_are_reproduced(ietf: Path, draft: str) -> None:
    """Each example specification printed in the draft: processing the printed SD-JWT with
    all its Disclosures gives exactly the specification's claims."""
    settings = load(ietf / draft / "examples" / "settings.yml")
    rendered = next((ietf / draft / "rendered").glob("*.txt")).read_text(encoding="utf-8")
    processed = []
    for figure in compact_figures(rendered):
        if sdjwt.parse(figure).kb_jwt is None:
            claims = _verify_figure(figure, settings)
            processed.append({k: v for k, v in claims.items() if k not in _META})
    matched = []
    for spec_path in sorted((ietf / draft / "examples").glob("*/specification.yml")):
        expected = unwrap(load(spec_path)["user_claims"])
        expected = {k: v for k, v in expected.items() if k not in _META}
        if expected in processed:
            matched.append(spec_path.parent.name)
    wanted = {"sd-jwt": {"simple", "arf-pid", "jsonld"}, "sd-jwt-vc": {"01", "02", "03-pid"}}[draft]
    assert wanted <= set(matched), matched


# --- Token Status List -----------------------------------------------------------------------


def _json_example(path: Path) -> tuple[list[int] | None, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    byte_array = None
    match = re.search(r"byte_array = \[([^\]]*)\]", text)
    if match:
        byte_array = [int(b, 16) for b in match.group(1).split(",") if b.strip()]
    body = text[text.index("{") :]
    squashed = re.sub(
        r'"lst":\s*"([^"]*)"',
        lambda m: '"lst": "' + re.sub(r"\s+", "", m.group(1)) + '"',
        body,
        flags=re.S,
    )
    return byte_array, json.loads(squashed)


def _draft_statuses(draft: str, marker_index: int) -> dict[int, int]:
    """The ``status[i] = 0b…`` table starting at the ``marker_index``-th ``status[0]``."""
    starts = [m.start() for m in re.finditer(r"^status\[0\] = ", draft, flags=re.M)]
    block = draft[starts[marker_index] :].split("~~~")[0]
    return {int(i): int(v, 2) for i, v in re.findall(r"status\[(\d+)\] = 0b([01]+)", block)}


@pytest.fixture
def status_examples(ietf: Path) -> Path:
    return ietf / "status-list"


def test_status_list_one_bit(status_examples: Path) -> None:
    byte_array, encoded = _json_example(
        status_examples / "examples" / "status_list_encoding_json.md"
    )
    data, bits = decode_list(encoded)
    assert bits == 1 and list(data) == byte_array
    draft = (status_examples / "draft-ietf-oauth-status-list.md").read_text(encoding="utf-8")
    for index, value in _draft_statuses(draft, 0).items():
        assert get_status(data, index, 1) == value
    assert decode_list(encode_list(data, 1)) == (data, 1)


def test_status_list_two_bits(status_examples: Path) -> None:
    byte_array, encoded = _json_example(
        status_examples / "examples" / "status_list_encoding2_json.md"
    )
    data, bits = decode_list(encoded)
    assert bits == 2 and list(data) == byte_array
    draft = (status_examples / "draft-ietf-oauth-status-list.md").read_text(encoding="utf-8")
    for index, value in _draft_statuses(draft, 1).items():
        assert get_status(data, index, 2) == value


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("status_list_encoding1_long_json.md", 1),
        ("status_list_encoding2_long_json.md", 2),
        ("status_list_encoding4_json.md", 4),
        ("status_list_encoding8_json.md", 8),
    ],
)
def test_status_list_long_vectors(status_examples: Path, name: str, bits: int) -> None:
    _bytes, encoded = _json_example(status_examples / "examples" / name)
    data, found_bits = decode_list(encoded)
    assert found_bits == bits
    assert len(data) * 8 // bits >= 1_000_000 or bits >= 4
    nonzero = {i for i in range(len(data) * 8 // bits) if get_status(data, i, bits)}
    assert nonzero  # the draft's examples set a handful of entries in a large list


def test_status_list_token_example(status_examples: Path) -> None:
    raw = (status_examples / "examples" / "status_list_jwt_raw.md").read_text(encoding="utf-8")
    token = "".join(raw.split())
    header = sdjwt.decode_segment(token.split(".")[0])
    payload = sdjwt.decode_segment(token.split(".")[1])
    assert header["typ"] == "statuslist+jwt"
    data, bits = decode_list(payload["status_list"])
    assert (list(data), bits) == ([0xB9, 0xA3], 1)
    assert payload["sub"] == "https://example.com/statuslists/1" and payload["ttl"] == 43200
