"""Local groups: access rights granted to a member's group of subsystems, administered with
``jisr exchange group`` and ``access grant --group``; a subsystem taken out of the group is
refused at its next call."""

from __future__ import annotations

import json

import pytest

from jisr.core import federation as agreements
from jisr.core.instance import REGISTRY_NODE
from jisr.exchange import globalconf, service
from jisr.exchange.errors import (
    ExchangeError,
    GroupAlreadyExists,
    GroupMemberAlreadyExists,
    GroupNotFound,
    SubsystemNotFound,
)
from jisr.exchange.identifiers import SubsystemId

from .conftest import (
    BIRTH_RECORD,
    CONSUMER,
    OTHER,
    PORTAL,
    PROVIDER,
    ExchangeWorld,
    invoke,
)
from .conftest import refusals as logged_refusals

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _refresh(world: ExchangeWorld) -> None:
    for running in world.gateways.values():
        assert running.refresh_now(), running.runtime.last_refresh_error


class TestGroupRights:
    def test_right_through_group_and_refusal_after_removal(self, world: ExchangeWorld) -> None:
        d = str(world.instance.path)
        provider = str(PROVIDER)
        # OTHER has no right of its own
        assert world.call(headers={"X-Road-Client": str(OTHER)}).status_code == 403
        code, output = invoke(
            "group", "create", provider, "partners", "--description", "Partner systems", "--dir", d
        )
        assert code == 0, output
        assert invoke("group", "add", provider, "partners", str(OTHER), "--dir", d)[0] == 0
        code, output = invoke(
            "access",
            "grant",
            str(BIRTH_RECORD),
            "--group",
            "partners",
            "--method",
            "GET",
            "--path",
            "/births/*",
            "--dir",
            d,
        )
        assert code == 0, output
        code, output = invoke("group", "list", "--dir", d, "--json")
        assert json.loads(output) == [
            {
                "member": provider,
                "code": "partners",
                "description": "Partner systems",
                "clients": [str(OTHER)],
            }
        ]
        code, output = invoke("access", "list", "--service", str(BIRTH_RECORD), "--dir", d)
        assert "group:partners -> " in output
        _refresh(world)
        response = world.call(headers={"X-Road-Client": str(OTHER)})
        assert response.status_code == 200, response.text
        # the configuration lists the group's right once per subsystem in it
        conf = world.provider_gateway.runtime.usable_conf()
        assert conf is not None
        assert {
            "service": str(BIRTH_RECORD),
            "client": str(OTHER),
            "method": "GET",
            "path": "/births/*",
            "group": "partners",
        } in conf.document["access_rights"]

        code, output = invoke("group", "remove", provider, "partners", str(OTHER), "--dir", d)
        assert code == 0 and "(empty)" in output, output
        _refresh(world)
        response = world.call(headers={"X-Road-Client": str(OTHER)})
        assert response.status_code == 403
        assert response.headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
        logged = logged_refusals(world, "gateway-civil-registry", "Server.ServerProxy.AccessDenied")
        assert logged[-1]["id"] == response.json()["detail"]
        # PORTAL's own right is untouched
        assert world.call().status_code == 200

    def test_refusals_change_nothing(self, world: ExchangeWorld) -> None:
        registry = world.instance.node(REGISTRY_NODE)
        with registry.session() as session:
            groups = service.list_groups(session)
            service.add_group(session, member=CONSUMER, code="own")
            before = service.list_access(session)
            with pytest.raises(GroupAlreadyExists):
                service.add_group(session, member=CONSUMER, code="own")
            with pytest.raises(ExchangeError, match="not a group code"):
                service.add_group(session, member=CONSUMER, code="no spaces")
            with pytest.raises(SubsystemNotFound):
                service.add_group_member(
                    session,
                    member=CONSUMER,
                    code="own",
                    client=SubsystemId.parse("MA/GOV/ESERVICES/NOPE"),
                )
            service.add_group_member(session, member=CONSUMER, code="own", client=PORTAL)
            with pytest.raises(GroupMemberAlreadyExists):
                service.add_group_member(session, member=CONSUMER, code="own", client=PORTAL)
            with pytest.raises(GroupNotFound):
                service.remove_group_member(session, member=CONSUMER, code="own", client=OTHER)
            # a group is the provider member's: the e-services' group cannot be granted
            # the civil registry's service
            with pytest.raises(GroupNotFound):
                service.grant_access(session, service=BIRTH_RECORD, group="own")
            with pytest.raises(ExchangeError, match="not both"):
                service.grant_access(session, service=BIRTH_RECORD, client=OTHER, group="own")
            with pytest.raises(ExchangeError, match="not both"):
                service.grant_access(session, service=BIRTH_RECORD)
            # a subsystem of another instance needs a federation agreement with it
            with pytest.raises(agreements.AgreementNotFound):
                service.grant_access(
                    session, service=BIRTH_RECORD, client=SubsystemId.parse("QA/GOV/MOI/APP")
                )
            with pytest.raises(agreements.AgreementNotFound):
                service.add_group_member(
                    session,
                    member=CONSUMER,
                    code="own",
                    client=SubsystemId.parse("QA/GOV/MOI/APP"),
                )
            assert service.list_access(session) == before
            service.delete_group(session, member=CONSUMER, code="own")
            assert service.list_groups(session) == groups
            content = globalconf.build_content(session, instance="MA")
            assert content["federations"] == []

    def test_cli_refusals_are_sentences(self, world: ExchangeWorld) -> None:
        d = str(world.instance.path)
        code, output = invoke("group", "add", str(PROVIDER), "nope", str(OTHER), "--dir", d)
        assert code == 1 and "has no local group nope" in output
        code, output = invoke("access", "grant", str(BIRTH_RECORD), "--dir", d)
        assert code == 1 and "not both" in output
        code, output = invoke("federation", "sync", "QA", "--dir", d)
        assert code == 1 and "No federation agreement with QA" in output
        code, output = invoke("federation", "list", "--dir", d)
        assert code == 0 and "(none)" in output
