"""Fire times and windows, as pure functions of the schedule, the cursor and the time."""

from __future__ import annotations

import pytest

from flowservice.domain import schedule
from flowservice.domain.schedule import Cursor, Schedule

MIN = 60_000
START = 1_700_000_000  # seconds


def test_backfill_fires_at_the_start_and_takes_everything_before_it() -> None:
    every_15 = Schedule(START, "minute", 15, True)
    cursor = schedule.first_cursor(every_15)
    assert cursor == Cursor(0, START * 1000)
    first = schedule.due(every_15, cursor, START * 1000)
    assert first is not None and first.window == (0, START * 1000)
    second = schedule.due(every_15, first.after, START * 1000 + 15 * MIN)
    assert second is not None and second.window == (START * 1000, START * 1000 + 15 * MIN)
    assert first.key != second.key


def test_without_backfill_the_first_run_waits_a_period_and_takes_only_what_came_after_the_start() -> None:
    hourly = Schedule(START, "hour", 1, False)
    cursor = schedule.first_cursor(hourly)
    assert schedule.due(hourly, cursor, START * 1000) is None
    first = schedule.due(hourly, cursor, START * 1000 + 60 * MIN)
    assert first is not None and first.window == (START * 1000, START * 1000 + 60 * MIN)


def test_nothing_is_due_before_the_next_slot() -> None:
    daily = Schedule(START, "day", 2, True)
    cursor = schedule.first_cursor(daily)
    assert schedule.due(daily, cursor, START * 1000 - 1) is None


def test_missed_slots_are_caught_up_once_over_the_whole_gap() -> None:
    every_15 = Schedule(START, "minute", 15, True)
    after_first = schedule.due(every_15, schedule.first_cursor(every_15), START * 1000)
    assert after_first is not None
    # down for 2 hours and 7 minutes: 8 slots passed
    back = START * 1000 + 127 * MIN
    catch_up = schedule.due(every_15, after_first.after, back)
    assert catch_up is not None
    assert catch_up.window == (START * 1000, START * 1000 + 120 * MIN)  # up to the latest slot, one run
    assert schedule.due(every_15, catch_up.after, back) is None
    assert catch_up.after.next_fire == START * 1000 + 135 * MIN


def test_once_fires_a_single_time() -> None:
    once = Schedule(START, "once", None, False)
    firing = schedule.due(once, schedule.first_cursor(once), START * 1000 + 5)
    assert firing is not None and firing.window == (0, START * 1000)
    assert firing.after.next_fire is None
    assert schedule.due(once, firing.after, START * 1000 + 10 * MIN) is None


def test_fire_times_follow_the_interval() -> None:
    weekly = Schedule(START, "week", 1, True)
    assert schedule.fire_times(weekly, START * 1000 + 15 * 86_400_000) == [
        START * 1000,
        START * 1000 + 7 * 86_400_000,
        START * 1000 + 14 * 86_400_000,
    ]


def test_windows_tile_time_without_gaps_or_overlaps() -> None:
    every_20 = Schedule(START, "minute", 20, False)
    cursor = schedule.first_cursor(every_20)
    ends = []
    now = START * 1000
    previous_end = START * 1000
    for step in range(1, 40):
        now = START * 1000 + step * 7 * MIN  # a scheduler looking at odd moments
        firing = schedule.due(every_20, cursor, now)
        if firing is None:
            continue
        assert firing.window[0] == previous_end
        previous_end = firing.window[1]
        ends.append(firing.window[1])
        cursor = firing.after
    assert ends == sorted(set(ends)) and all((e - START * 1000) % (20 * MIN) == 0 for e in ends)


def test_rescheduling_keeps_the_window_start() -> None:
    hourly = Schedule(START, "hour", 1, True)
    firing = schedule.due(hourly, schedule.first_cursor(hourly), START * 1000)
    assert firing is not None
    every_6h = Schedule(START, "hour", 6, True)
    moved = schedule.reschedule(every_6h, firing.after)
    assert moved == Cursor(START * 1000, START * 1000 + 6 * 60 * MIN)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"startTime": "1", "frequency": "minute", "interval": "15"}, "every 15 minutes"),
        ({"startTime": 1, "frequency": "hour", "interval": 1}, "every hour"),
        ({"startTime": "1", "frequency": "week", "interval": "2"}, "every 2 weeks"),
        ({"startTime": "1", "frequency": "once"}, "once"),
        ({"frequency": "fortnight"}, "not scheduled"),
        (None, "not scheduled"),
    ],
)
def test_schedules_in_words(params: object, words: str) -> None:
    assert schedule.describe(params) == words
