"""Test data for the population register: ``person_data(**overrides)``."""

from __future__ import annotations

from typing import Any

from jisr.identity.schemas import PersonCreate

FATIMA: dict[str, Any] = {
    "national_id": "MA:AB123456",
    "given_name_ar": "فاطمة الزهراء",
    "family_name_ar": "العمراني",
    "given_name_latin": "Fatima Zahra",
    "family_name_latin": "El Amrani",
    "birth_date": "1990-04-12",
    "birth_place": "Rabat",
    "sex": "F",
    "nationality": "MA",
    "address": "12 avenue Mohammed V, Rabat",
}

MOHAMMED: dict[str, Any] = {
    "national_id": "QA:28435612345",
    "given_name_ar": "محمد",
    "family_name_ar": "الكواري",
    "given_name_latin": "Mohammed",
    "family_name_latin": "Al-Kuwari",
    "birth_date": "1984-02-03",
    "birth_place": "Doha",
    "sex": "M",
    "nationality": "QA",
}


def person_data(base: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    return {**(base or FATIMA), **overrides}


def person_create(base: dict[str, Any] | None = None, **overrides: Any) -> PersonCreate:
    return PersonCreate.model_validate(person_data(base, **overrides))
