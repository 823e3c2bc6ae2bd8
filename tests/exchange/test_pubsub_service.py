"""Pub/sub service functions without gateways: schemas, formats, back-off."""

from __future__ import annotations

import pytest

from jisr.exchange import pubsub


def test_backoff_doubles_up_to_the_most(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pubsub, "RETRY_FIRST_SECONDS", 1.0)
    monkeypatch.setattr(pubsub, "RETRY_MAX_SECONDS", 10.0)
    assert [pubsub.backoff_seconds(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-05-01T11:25:00+01:00", True),
        ("2026-05-01T11:25:00.5Z", True),
        ("2026-05-01 11:25:00Z", True),
        ("2026-05-01T11:25:00", False),  # no offset
        ("2026-13-01T11:25:00Z", False),  # no 13th month
        ("yesterday", False),
    ],
)
def test_date_time_format_is_checked(value: str, ok: bool) -> None:
    schema = {"type": "string", "format": "date-time"}
    if ok:
        pubsub.check_event(schema, value)
    else:
        with pytest.raises(pubsub.EventRefused):
            pubsub.check_event(schema, value)


def test_references_outside_the_schema_are_never_fetched() -> None:
    schema = {"$ref": "https://example.org/remote.json"}
    pubsub.check_schema(schema)
    with pytest.raises(pubsub.EventRefused, match="not in it"):
        pubsub.check_event(schema, {"a": 1})


def test_the_schema_dialect_is_honoured() -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": True}
    with pytest.raises(pubsub.InvalidPubSubRequest):
        pubsub.check_schema({**draft4, "minimum": "zero"})
    with pytest.raises(pubsub.InvalidPubSubRequest, match="JSON object"):
        pubsub.check_schema(True)
