"""GovStack Digital Registries features (Data API and Database API) against the registers
node (pytest-bdd; steps in ``registries_steps``).

The ``.feature`` files are read in place from
``../shared/specs/govstack/digital-registries/features`` (never copied); where that folder is
absent one test skips and says so. Before every scenario the registers node is wiped and
GovStack's test data loaded (``test-data/test-data.json``): the registry ``registryname``
version ``111`` (code ``MCTS``) with its records, keeping their uuids; an empty registry
``registryempty`` ``111``; and the Database API's databases with their ids (1, 123,
8438778473…). The test data's past reads ("PersonalData") are made for real, by East
Hospital's back office as the exchange client ``EE/GOV/EE70049837/healthcare-back-office``.

How the features' words map to ours:

* the records' fields are ``ID`` (the primary key; the test data writes ``id``), ``FirstName``,
  ``LastName``, ``BirthCertificateID``; the data subject is ``/ID``;
* the test data gives two records the ID ``EE6546273487865``: keys are unique here, so the
  second (Tobias Smith) is not loaded; it gives ten databases the same name and version: the
  databases after id 1 get their id appended to the version (``1.1.123``);
* requests carry ``Accept-Language: en``, the language of the template's messages (the 404
  ``detail`` is ``no record found`` in English, translated otherwise);
* error answers are RFC 9457 ``application/problem+json``, which the content-type step accepts
  where a feature says ``application/json``;
* ``GET /databases`` answers a JSON array of ``databasesSchema`` objects (the template's tag says
  "a list array" while its schema is one object): the schema step checks each;
* "should be returned in a timely manner": timed assertions do not belong in our tests (shared
  machines); the time is kept and only an answer is checked;
* "the existing record is successfully updated" (update-or-create): its Given says the record
  was "previously created", so the step creates the query's record first.

Skipped, with the reason printed (``registries_steps.SKIPPED``): the read smoke scenario
("John Helmut") and the read example ``BirthCertificateID`` ``EE6546273487865``: no record of
the test data has these values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import scenarios

try:  # a package when tests/services/bdd has an __init__.py, a rootdir module otherwise
    from .registries_steps import *  # noqa: F403
    from .registries_steps import FOLDER, register_hooks
except ImportError:
    from registries_steps import *  # type: ignore[no-redef]  # noqa: F403
    from registries_steps import FOLDER, register_hooks  # type: ignore[no-redef]

# named statically, so that pytest parametrises every scenario per database backend
pytestmark = [pytest.mark.db, pytest.mark.usefixtures("registers")]

FEATURES = FOLDER / "features"

if FEATURES.is_dir():
    register_hooks()
    scenarios(str(FEATURES))
else:

    def test_registries_features_absent(path: Path = FEATURES) -> None:
        pytest.skip(f"the GovStack features {path} are absent (../shared is not here)")
