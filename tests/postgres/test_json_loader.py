"""Our pool's jsonb loader (empty object/array fast path) returns what psycopg's would."""

from __future__ import annotations

from typing import Any

from .helpers import add, claim_one


def test_jsonb_values_round_trip(make_backend: Any) -> None:
    backend = make_backend(database_config={"max_size": 1})
    payloads: list[Any] = [{}, [], {"a": [1, {}]}, [{}], "{}", 0, None, {"k": "[]"}]
    ids = [add(backend, "t", payload=p) for p in payloads]
    assert [backend.get_job(i).payload for i in ids] == payloads  # type: ignore[union-attr]
    first, second = claim_one(backend), claim_one(backend)
    assert first.step_data == {} and len(first.error_history) == 0
    first.step_data["x"] = 1  # every record gets its own empty containers
    assert second.step_data == {} and first.payload == {} and second.payload == []
