"""X-Road identifiers: members, subsystems (clients) and services.

``INSTANCE/CLASS/MEMBER`` names a member, ``INSTANCE/CLASS/MEMBER/SUBSYSTEM`` a subsystem (the
client of a call), ``INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE`` a service. Each part may hold
only ``A-Z a-z 0-9`` and ``'()+,-.=?`` (the message protocol for REST, §4.8), at most 64
characters; the instance is the platform's instance code and the class one of ``GOV``,
``COM``, ``NGO``. Parsing is strict: anything else raises ``InvalidIdentifier``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote

from jisr.core.i18n import _
from jisr.exchange.errors import InvalidIdentifier

MEMBER_CLASSES = ("GOV", "COM", "NGO")
_PART = re.compile(r"^[A-Za-z0-9'()+,\-.=?]{1,64}$")
_INSTANCE = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,16})?$")


def _check(kind: str, text: str, parts: list[str], count: int) -> list[str]:
    if len(parts) != count or not all(_PART.match(p) for p in parts):
        raise InvalidIdentifier(
            _("{text!r} is not a {kind} identifier ({form})."),
            text=text,
            kind=kind,
            form="/".join(["INSTANCE", "CLASS", "MEMBER", "SUBSYSTEM", "SERVICE"][:count]),
        )
    if not _INSTANCE.match(parts[0]):
        raise InvalidIdentifier(_("{instance!r} is not an instance code."), instance=parts[0])
    if parts[1] not in MEMBER_CLASSES:
        raise InvalidIdentifier(
            _("Member class {member_class!r} is not one of {classes}."),
            member_class=parts[1],
            classes=", ".join(MEMBER_CLASSES),
        )
    return parts


@dataclass(frozen=True, order=True)
class MemberId:
    instance: str
    member_class: str
    code: str

    @classmethod
    def parse(cls, text: str) -> MemberId:
        return cls(*_check("member", text, text.split("/"), 3))

    @functools.cached_property
    def _text(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.code}"

    def __str__(self) -> str:
        return self._text


@dataclass(frozen=True, order=True)
class SubsystemId:
    instance: str
    member_class: str
    member_code: str
    code: str

    @classmethod
    def parse(cls, text: str, *, percent_encoded: bool = False) -> SubsystemId:
        return _parse_subsystem(text, percent_encoded)

    @functools.cached_property
    def member(self) -> MemberId:
        return MemberId(self.instance, self.member_class, self.member_code)

    @functools.cached_property
    def _text(self) -> str:
        return f"{self.instance}/{self.member_class}/{self.member_code}/{self.code}"

    def __str__(self) -> str:
        return self._text


@dataclass(frozen=True, order=True)
class ServiceId:
    instance: str
    member_class: str
    member_code: str
    subsystem_code: str
    code: str

    @classmethod
    def parse(cls, text: str) -> ServiceId:
        return _parse_service(text)

    @functools.cached_property
    def subsystem(self) -> SubsystemId:
        return SubsystemId(self.instance, self.member_class, self.member_code, self.subsystem_code)

    @property
    def member(self) -> MemberId:
        return self.subsystem.member

    @functools.cached_property
    def _text(self) -> str:
        return f"{self.subsystem}/{self.code}"

    def __str__(self) -> str:
        return self._text


# Identifiers are immutable, and a gateway parses the same few on every call (py-spy and
# cProfile of ``benchmarks/exchange_overhead.py``: parsing and formatting them was 3-4 % of a
# gateway's CPU): parsed ones are kept, and each keeps its text. A refusal is never kept.
@functools.lru_cache(maxsize=4096)
def _parse_service(text: str) -> ServiceId:
    return ServiceId(*_check("service", text, text.split("/"), 5))


@functools.lru_cache(maxsize=4096)
def _parse_subsystem(text: str, percent_encoded: bool) -> SubsystemId:
    parts = text.split("/")
    if percent_encoded:
        parts = [unquote(p, errors="strict") for p in parts]
    return SubsystemId(*_check("subsystem", text, parts, 4))


def gateway_name(member: MemberId) -> str:
    """The node name of a member's gateway: ``gateway-<member code, lower case>``."""
    safe = re.sub(r"[^a-z0-9_-]+", "-", member.code.lower()).strip("-")
    return f"gateway-{safe or 'member'}"


__all__ = ["MEMBER_CLASSES", "MemberId", "ServiceId", "SubsystemId", "gateway_name"]
