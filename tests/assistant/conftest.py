"""A small assistant (six procedures) built once per session and used as the process-wide one,
so that ``ask``, the CLI and the API answer from it without the whole catalogue's index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jisr.assistant import service as assistant_service
from jisr.assistant.index import Index
from jisr.assistant.service import Assistant
from jisr.services import service as catalogue_service

SMALL = (
    "ma-residence-certificate",
    "ma-cnie-renewal",
    "ma-passport",
    "ma-company-registration",
    "qa-qid-replacement",
    "qa-residence-permit-renewal",
)


@pytest.fixture(scope="session")
def small_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    procedures = [catalogue_service.get_procedure(i) for i in SMALL]
    directory = tmp_path_factory.mktemp("assistant-cache")
    assistant = Assistant(Index.load_or_build(procedures, directory=directory))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(assistant_service, "_assistant", assistant)
        yield assistant
