"""Demo step: a citizen asks the assistant in Darija, then applies once-only and gets her document.

``procedures_step(world)``: Fatima asks the MA portal's assistant, in Moroccan Darija, how to
get a residence certificate (``POST /api/assistant/ask``); the answer cites the catalogue's
``ma-residence-certificate``. She follows it into an application: the portal fetches her
identity and birth records through the exchange (once-only, under the procedure's purpose),
asks her only for what no agency holds (a proof of housing, uploaded as a PDF), an MOI
officer takes the application in review and approves it, and the residence certificate is
issued to her wallet as an SD-JWT VC, which the MA verifier accepts. Last, the simplification
figures of the Moroccan catalogue.

Runs after ``jisr.demo.evidence.evidence_step``, which publishes the evidence services and
points the portal at its gateway.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import httpx

from jisr.credentials import sdjwt
from jisr.demo.credentials import VERIFIER_AUD, wallet_key
from jisr.demo.people import FATIMA
from jisr.identity.identifiers import parse_national_id
from jisr.services import applications as apps
from jisr.services.evidence import evidence_source

if TYPE_CHECKING:
    from jisr.demo.scenario import World

PROCEDURE = "ma-residence-certificate"
QUESTION = "كيفاش نجيب شهادة السكنى؟ شنو خاصني من وراق؟"
OFFICER = apps.Officer(agency="MA/GOV/MOI", officer_id="moi-officer-rabat-1")

# A one-page PDF (the housing proof she scans): uploads are recognised by their first bytes.
HOUSING_PROOF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def procedures_step(world: World) -> None:
    world.step("Asked in Darija, the assistant leads to a once-only application; MOI approves")
    instance = world.instances["MA"]
    portal = instance.node("portal")
    with httpx.Client(timeout=120) as client:
        response = client.post(
            f"{world.url('MA')}/api/assistant/ask", json={"question": QUESTION, "country": "MA"}
        )
        response.raise_for_status()
        answer = response.json()
        procedure = answer["procedure"]
        if procedure is None or procedure["id"] != PROCEDURE:
            raise RuntimeError(f"the assistant did not point to {PROCEDURE}: {answer}")
        world.say(f"asked «{QUESTION}» ({answer['language']}):")
        title = procedure["title"]
        world.say(f"  → {title['ar']} / {title['fr']} ({procedure['id']})")
        world.say(f"  cites {', '.join(c['id'] for c in answer['citations'] if 'id' in c)}")

        national_id = parse_national_id(FATIMA["national_id"]).compact
        wallet = wallet_key()
        source = evidence_source(portal)
        with portal.session() as session:
            upload = apps.upload_document(
                session,
                node=portal,
                national_id=national_id,
                filename="attestation-logement.pdf",
                content=HOUSING_PROOF,
            )
        with portal.session() as session:
            application = apps.start_application(
                session,
                node=portal,
                procedure_id=PROCEDURE,
                national_id=national_id,
                form={"purpose": "Ouverture d'un compte bancaire", "declaration": True},
                evidence=source,
                documents=[upload.document_id],
                holder_key=wallet.public_jwk,
            )
        for fetched in application.evidence:
            world.say(
                f"fetched once-only: {fetched.document['en']} from {fetched.provider} "
                f"(message {fetched.message_id[:8]}…, purpose {fetched.purpose.split('/')[0]})"
            )
        asked = [application.uploads[0].filename] if application.uploads else []
        world.say(
            f"asked of her: {len(application.documents_asked)} document(s) ({', '.join(asked)}); "
            f"application {application.application_id[:8]}… is {application.state}"
        )
        if application.state != apps.SUBMITTED or not application.documents_fetched:
            raise RuntimeError(f"the application was not submitted once-only: {application}")

        with portal.session() as session:
            apps.take_in_review(
                session, node=portal, application_id=application.application_id, officer=OFFICER
            )
        with instance.node("idp").session() as register, portal.session() as session:
            decision = apps.approve(
                session,
                node=portal,
                register=register,
                application_id=application.application_id,
                officer=OFFICER,
            )
        if decision.issued is None:
            raise RuntimeError("approval issued no credential")
        world.say(
            f"{OFFICER.agency} officer approved; {decision.issued.doc_type} "
            f"{decision.issued.credential_id} issued to her wallet"
        )

        nonce = secrets.token_urlsafe(12)
        shown = sdjwt.key_binding_jwt(
            sdjwt.present(decision.issued.token),
            wallet,
            nonce=nonce,
            aud=VERIFIER_AUD,
            iat=int(time.time()),
        )
        verified = client.post(
            f"{world.url('MA')}/api/credentials/verify",
            json={"presentation": shown, "nonce": nonce, "aud": VERIFIER_AUD},
        ).json()
        if not verified["valid"]:
            raise RuntimeError(f"the issued residence certificate was refused: {verified}")
        world.say("she presents it to a verifier: valid")

    with portal.session() as session:
        figures = apps.simplification_figures(session, country="MA").as_dict()
    o = figures["overall"]
    world.say(
        f"simplification, MA: of {o['documents_required']} documents the catalogue requires, "
        f"{o['documents_fetchable']} can come through the exchange; so far "
        f"{o['applications']} application(s), {o['documents_fetched']} document(s) fetched, "
        f"{o['documents_asked']} asked, {o['visits_avoided']} visit(s) avoided"
    )
