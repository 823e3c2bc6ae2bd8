"""pytest-bdd hook of the GovStack Registration features (``test_govstack_registration``):
the scenarios that ask for behaviour Jisr deliberately does not have are skipped with the
reason (docs/services.md lists them); tests/conftest.py ignores GovStack's tags."""

from __future__ import annotations

from typing import Any

import pytest

SKIPPED: dict[str, str] = {
    "Could not get eForm information because provided eFormId was not found": (
        "it expects the 404 as content-type application/json; ours is an RFC 9457 problem, "
        "application/problem+json, like every refusal of the platform (the 404 itself is "
        "tested in tests/services/test_registration_api.py::test_eforms)"
    ),
    "Successfully created a new application file in the system": (
        "its examples apply for three other people (applicantId sgh123h5-…, fdae352d-…, "
        "11ed9397-…) and expect their ids back; an applicant here applies only for "
        "themselves, named by their login's access token (refusal tested in "
        "tests/services/test_registration_api.py::TestRefusals::test_applying_for_someone_else)"
    ),
    "Retrieve the list of services that match the name provided in optional parameter": (
        "the names (Good Health and Well-Being, Zero Hunger…) are GovStack's sample services, "
        "not procedures of our MA/QA catalogue; the name search is tested in "
        "tests/services/test_services_api.py"
    ),
}


def pytest_bdd_before_scenario(request: Any, feature: Any, scenario: Any) -> None:
    reason = SKIPPED.get(scenario.name)
    if reason:
        pytest.skip(f"deliberate difference: {reason}")
