"""Demo step: MA and QA federate, and QA verifies an MA birth certificate across the border.

``federation_step(world)`` (run it before ``credentials_step``; it needs only the served
instances and the register of MA): the two registries exchange their key thumbprints out of
band, MA offers an agreement (QA accepts MA birth certificates; MA opens its birth-record
exchange service to QA subsystems), QA countersigns, both
install it (skipped when a valid one is already installed: the step is idempotent on a
reused world). QA then fetches MA's trust list over HTTP, verified against the pinned
trust-list key. MA issues a birth certificate; QA verifies it with no call to MA's verifier
or registry (only MA's status list, through the TTL cache); MA prints it as a QR (PNG in the
demo directory) and QA verifies the printed copy from the image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jisr.core import federation
from jisr.core.instance import REGISTRY_NODE, Instance
from jisr.credentials import qr, service, trust
from jisr.credentials.verify import VerificationResult
from jisr.demo.people import FATIMA

if TYPE_CHECKING:
    from jisr.demo.scenario import World

ACCEPTED_FROM_MA = ["birth-certificate", "residence-certificate"]
ACCEPTED_FROM_QA = ["residence-permit"]
# The exchange step's service that MA opens to QA subsystems (through both gateways).
OPENED_BY_MA = ["MA/GOV/CIVIL-REGISTRY/BIRTHS/birth-record"]


def _thumbprint(instance: Instance) -> str:
    registry = instance.node(REGISTRY_NODE)
    with registry.session() as session:
        return federation.registry_key_thumbprint(session, node=registry)


def agree(world: World) -> str:
    """MA and QA sign and install the agreement (idempotent: a valid one that opens
    ``OPENED_BY_MA`` is reused); says how."""
    ma, qa = world.instances["MA"], world.instances["QA"]
    with qa.node(REGISTRY_NODE).session() as session:
        try:
            found = federation.agreement_with(session, peer="MA")
            if set(OPENED_BY_MA) <= set(found.party("MA").opens_services):
                return f"reusing agreement {found.id}"
        except federation.FederationError:
            pass
    ma_kid, qa_kid = _thumbprint(ma), _thumbprint(qa)
    with ma.node(REGISTRY_NODE).session() as session:
        offer = federation.make_offer(
            session,
            node=ma.node(REGISTRY_NODE),
            peer="QA",
            peer_key_thumbprint=qa_kid,
            accept_types=ACCEPTED_FROM_QA,
            peer_accept_types=ACCEPTED_FROM_MA,
            open_services=OPENED_BY_MA,
        )
    with qa.node(REGISTRY_NODE).session() as session:
        document = federation.countersign(
            session, node=qa.node(REGISTRY_NODE), offer=offer, peer_key_thumbprint=ma_kid
        )
    agreement_id = ""
    for instance in (ma, qa):
        with instance.node(REGISTRY_NODE).session() as session:
            agreement_id = federation.install_agreement(
                session, node=instance.node(REGISTRY_NODE), document=document
            ).id
    return f"signed by both registries and installed on both sides: {agreement_id}"


def _verify_in_qa(world: World, document: str, *, printed: bool) -> VerificationResult:
    qa = world.instances["QA"]
    portal = qa.node(service.ISSUER_NODE)
    with portal.session() as session, qa.node(REGISTRY_NODE).session() as registry:
        # Whom to trust and the status lists: the copies QA keeps; no call to MA.
        verifier = trust.federated_verifier(session, node=portal, registry=registry)
        return verifier.verify_qr(document) if printed else verifier.verify(document)


def _refresh_ma_in_qa(world: World) -> tuple[dict[str, Any], trust.StatusRefresh]:
    """QA fetches MA's trust list and status lists over HTTP (``trust.refresh_peer``)."""
    qa = world.instances["QA"]
    qa_portal = qa.node(service.ISSUER_NODE)
    with qa.node(REGISTRY_NODE).session() as session, qa_portal.session() as portal_session:
        return trust.refresh_peer(
            portal_session,
            node=qa_portal,
            registry=session,
            registry_node=qa.node(REGISTRY_NODE),
            peer="MA",
            base_url=world.url("MA"),
        )


def federation_step(world: World) -> None:
    world.step("MA and QA sign a federation agreement; QA verifies an MA document through it")
    ma = world.instances["MA"]
    world.say(f"registries exchange key thumbprints out of band: MA {_thumbprint(ma)[:12]}…")
    world.say(
        f"agreement (QA accepts {', '.join(ACCEPTED_FROM_MA)} from MA; MA opens "
        f"{', '.join(OPENED_BY_MA)} to QA): {agree(world)}"
    )
    payload, refreshed = _refresh_ma_in_qa(world)
    world.say(
        f"QA fetched MA's trust list over HTTP ({len(payload['issuers'])} issuers), "
        f"verified with the pinned trust-list key, and {len(refreshed.stored)} status lists, "
        "verified with MA's issuer keys"
    )
    portal = ma.node(service.ISSUER_NODE)
    with ma.node("idp").session() as register, portal.session() as session:
        issued = service.issue_credential(
            session,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=FATIMA["national_id"],
            actor="demo",
        )
    result = _verify_in_qa(world, issued.token, printed=False)
    if not result.valid:
        raise RuntimeError(f"QA refused the MA birth certificate: {result.failed}")
    world.say(f"QA verifies MA birth certificate {issued.credential_id}: valid (no call to MA)")
    with portal.session() as session:
        text = qr.printed_document(session, node=portal, token=issued.token)
    png = qr.render(text, world.directory / "birth-certificate-qr.png")
    result = _verify_in_qa(world, qr.read_image(png.read_bytes()), printed=True)
    if not result.valid:
        raise RuntimeError(f"QA refused the printed MA birth certificate: {result.failed}")
    world.say(f"printed as a QR ({len(text)} characters): {png}; QA reads the image: valid")
    with portal.session() as session:
        service.revoke_credential(
            session, node=portal, credential_id=issued.credential_id, reason="demo", actor="demo"
        )
    _refresh_ma_in_qa(world)
    refused = [
        f"{c.check}: {c.reason}" for c in _verify_in_qa(world, issued.token, printed=False).failed
    ]
    if refused != ["status: revoked"]:
        raise RuntimeError(f"QA did not see MA's revocation after its refresh: {refused}")
    world.say(f"MA revokes it; after its next refresh of MA's lists QA refuses it ({refused[0]})")
