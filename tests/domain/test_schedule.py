from typing import Any

import pytest

from flowservice.domain import schedule
from flowservice.errors import InvalidRequest


def code(params: Any) -> str:
    with pytest.raises(InvalidRequest) as exc:
        schedule.parse(params)
    return exc.value.code


def test_docs_strings_and_spec_integers_parse_the_same() -> None:
    as_strings = schedule.parse(
        {"startTime": "1597784298", "frequency": "minute", "interval": "30", "backfill": "true"}
    )
    as_numbers = schedule.parse(
        {"startTime": 1597784298, "frequency": "minute", "interval": 30, "backfill": True}
    )
    assert as_strings == as_numbers == schedule.Schedule(1597784298, "minute", 30, True)


def test_backfill_defaults_to_true_and_once_has_no_interval() -> None:
    assert schedule.parse({"startTime": 1, "frequency": "hour", "interval": 1}).backfill is True
    assert schedule.parse({"startTime": 1, "frequency": "once"}) == schedule.Schedule(1, "once", None, False)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (None, "1317"),
        ({}, "1317"),
        ({"frequency": "hour", "interval": 1}, "1317"),
        ({"startTime": 1}, "1317"),
        ({"startTime": 1, "frequency": "yearly", "interval": 1}, "1397"),
        ({"startTime": 1, "frequency": "once", "interval": 1}, "1361"),
        ({"startTime": 1, "frequency": "once", "backfill": True}, "1364"),
        ({"startTime": 1, "frequency": "day"}, "1363"),
        ({"startTime": 1, "frequency": "minute", "interval": 14}, "1362"),
        ({"startTime": 1, "frequency": "hour", "interval": 0}, "1362"),
        ({"startTime": "soon", "frequency": "hour", "interval": 1}, "1000"),
        ({"startTime": 1, "frequency": "hour", "interval": "often"}, "1000"),
        ({"startTime": 1, "frequency": "hour", "interval": 1, "backfill": "maybe"}, "1000"),
        ({"startTime": 1, "frequency": "hour", "interval": 1, "cron": "* * * * *"}, "1000"),
        ({"startTime": -5, "frequency": "hour", "interval": 1}, "1000"),
    ],
)
def test_documented_codes(params: Any, expected: str) -> None:
    assert code(params) == expected


def test_minute_needs_15_but_other_frequencies_1_as_the_schema_says() -> None:
    assert schedule.parse({"startTime": 1, "frequency": "minute", "interval": 15}).interval == 15
    assert schedule.parse({"startTime": 1, "frequency": "week", "interval": 1}).interval == 1


class TestUpdate:
    old = schedule.Schedule(start_time=1000, frequency="hour", interval=1, backfill=True)

    def check(self, new: schedule.Schedule, now: int) -> str | None:
        try:
            schedule.check_update(self.old, new, now)
        except InvalidRequest as exc:
            return exc.code
        return None

    def test_start_time_cannot_change_once_passed(self) -> None:
        assert self.check(schedule.Schedule(5000, "hour", 1, True), now=2000) == "1366"

    def test_start_time_cannot_move_into_the_past(self) -> None:
        assert self.check(schedule.Schedule(400, "hour", 1, True), now=500) == "1360"

    def test_start_time_can_move_before_it_passes(self) -> None:
        assert self.check(schedule.Schedule(5000, "hour", 1, True), now=500) is None

    def test_no_switch_to_once_after_start(self) -> None:
        assert self.check(schedule.Schedule(1000, "once", None, False), now=2000) == "1403"

    def test_backfill_frozen_after_start(self) -> None:
        assert self.check(schedule.Schedule(1000, "hour", 1, False), now=2000) == "1404"

    def test_interval_can_change_any_time(self) -> None:
        assert self.check(schedule.Schedule(1000, "hour", 6, True), now=2000) is None
