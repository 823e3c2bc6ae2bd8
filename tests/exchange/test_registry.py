"""The registry's services and the X-Road identifiers (no network)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from jisr.core.audit import service as audit
from jisr.exchange import service
from jisr.exchange.errors import (
    AccessRightAlreadyGranted,
    AccessRightNotFound,
    ExchangeError,
    InvalidIdentifier,
    MemberAlreadyExists,
    MemberNotFound,
    ServiceAlreadyExists,
    SubsystemNotFound,
)
from jisr.exchange.identifiers import MemberId, ServiceId, SubsystemId, gateway_name

MOI = MemberId.parse("MA/GOV/MOI")
APP = SubsystemId.parse("MA/GOV/MOI/APP")
IDS = SubsystemId.parse("MA/GOV/MOI/IDS")
LOOKUP = ServiceId.parse("MA/GOV/MOI/IDS/lookup")


class TestIdentifiers:
    @pytest.mark.parametrize(
        "text",
        ["MA/GOV", "MA/gov/X", "ma/GOV/X", "MA/GOV/X Y", "MA/GOV/", "MA/GOV/X/", "MA/GOV/é"],
    )
    def test_refused(self, text: str) -> None:
        with pytest.raises(InvalidIdentifier):
            MemberId.parse(text)

    def test_round_trip_and_parts(self) -> None:
        assert str(LOOKUP) == "MA/GOV/MOI/IDS/lookup"
        assert LOOKUP.subsystem == IDS and LOOKUP.member == MOI
        assert SubsystemId.parse("MA/GOV/A%28B%29/X", percent_encoded=True).member_code == "A(B)"
        assert gateway_name(MemberId.parse("MA/GOV/CIVIL-REGISTRY")) == "gateway-civil-registry"


@pytest.mark.db
class TestRegistry:
    def _setup(self, session: Session) -> None:
        service.add_member(session, member=MOI, name="Interior")
        service.add_subsystem(session, subsystem=APP)
        service.add_subsystem(session, subsystem=IDS)
        service.add_service(session, service=LOOKUP, base_url="http://127.0.0.1:9/api/")

    def test_build_and_list(self, session: Session) -> None:
        self._setup(session)
        assert [m.id for m in service.list_members(session)] == ["MA/GOV/MOI"]
        assert service.list_subsystems(session) == [str(APP), str(IDS)]
        assert service.list_services(session)[0].base_url == "http://127.0.0.1:9/api"
        events = [r.event for r in session.query(audit.AuditRecord).filter_by(chain="security")]
        assert "exchange.subsystem.added" in events

    def test_duplicates_and_unknowns(self, session: Session) -> None:
        self._setup(session)
        with pytest.raises(MemberAlreadyExists):
            service.add_member(session, member=MOI, name="Again")
        with pytest.raises(ServiceAlreadyExists):
            service.add_service(session, service=LOOKUP, base_url="http://x")
        with pytest.raises(MemberNotFound):
            service.add_subsystem(session, subsystem=SubsystemId.parse("MA/GOV/NOPE/A"))
        with pytest.raises(SubsystemNotFound):
            service.grant_access(session, service=LOOKUP, client=SubsystemId.parse("MA/GOV/MOI/Z"))

    @pytest.mark.parametrize("url", ["ftp://x", "http://x/?q=1", "x", "http://a b"])
    def test_bad_base_url(self, session: Session, url: str) -> None:
        self._setup(session)
        with pytest.raises(ExchangeError, match="base URL"):
            service.add_service(session, service=ServiceId.parse("MA/GOV/MOI/IDS/x"), base_url=url)

    def test_grant_revoke(self, session: Session) -> None:
        self._setup(session)
        service.grant_access(session, service=LOOKUP, client=APP, method="get", path="/p/*")
        with pytest.raises(AccessRightAlreadyGranted):
            service.grant_access(session, service=LOOKUP, client=APP, method="GET", path="/p/*")
        assert service.list_access(session, service=LOOKUP)[0].method == "GET"
        with pytest.raises(AccessRightNotFound):
            service.revoke_access(session, service=LOOKUP, client=APP)
        service.revoke_access(session, service=LOOKUP, client=APP, method="GET", path="/p/*")
        assert service.list_access(session) == []
        with pytest.raises(ExchangeError, match="Method"):
            service.grant_access(session, service=LOOKUP, client=APP, method="BREW")
        with pytest.raises(ExchangeError, match="Path pattern"):
            service.grant_access(session, service=LOOKUP, client=APP, path="no-slash")

    @pytest.mark.parametrize("address", ["127.0.0.1", "host:0", "a b:80", ":80", "h:99999"])
    def test_bad_address(self, address: str) -> None:
        with pytest.raises(ExchangeError, match="host:port"):
            service.parse_address(address)
