"""`scheduleParams`: validation with Adobe's codes (digest 5.1) and the rules for changing a schedule.

Clients send numbers or numeric strings (the docs use strings, the spec integers); the flow keeps
what was sent and echoes it, and this module parses it into a typed `Schedule` for every use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from flowservice.errors import InvalidRequest, shown

Frequency = Literal["once", "minute", "hour", "day", "week"]
FREQUENCIES: tuple[Frequency, ...] = ("once", "minute", "hour", "day", "week")
MIN_INTERVAL = {"minute": 15, "hour": 1, "day": 1, "week": 1}
FIELDS = ("startTime", "frequency", "interval", "backfill")


@dataclass(frozen=True, slots=True)
class Schedule:
    start_time: int  # epoch seconds
    frequency: Frequency
    interval: int | None
    backfill: bool


def parse(params: Any) -> Schedule:
    """Validate `scheduleParams` as the flow spec's schedule schema does, with the documented codes."""
    if not isinstance(params, dict) or not params:
        raise InvalidRequest("1317", "scheduleParams is required for a batch flow.", field="scheduleParams")
    unknown = sorted(set(params) - set(FIELDS))
    if unknown:
        raise InvalidRequest(
            "1000",
            f"Unknown field 'scheduleParams.{unknown[0]}'; allowed: {', '.join(FIELDS)}.",
            field=f"scheduleParams.{unknown[0]}",
        )
    if "startTime" not in params:
        raise InvalidRequest(
            "1317", "scheduleParams.startTime is required.", field="scheduleParams.startTime"
        )
    start_time = _integer(params["startTime"], "startTime")
    if start_time < 0:
        raise InvalidRequest(
            "1000",
            "scheduleParams.startTime must be epoch seconds, not negative.",
            field="scheduleParams.startTime",
        )
    frequency = params.get("frequency")
    if frequency is None:
        raise InvalidRequest(
            "1317", "scheduleParams.frequency is required.", field="scheduleParams.frequency"
        )
    if frequency not in FREQUENCIES:
        raise InvalidRequest(
            "1397",
            f"Invalid frequency '{frequency}'; supported: {', '.join(FREQUENCIES)}.",
            field="scheduleParams.frequency",
        )
    if frequency == "once":
        if "interval" in params:
            raise InvalidRequest(
                "1361", "interval is not allowed when frequency is once.", field="scheduleParams.interval"
            )
        if "backfill" in params:
            raise InvalidRequest(
                "1364", "backfill is not allowed when frequency is once.", field="scheduleParams.backfill"
            )
        return Schedule(start_time, "once", None, False)
    if "interval" not in params:
        raise InvalidRequest(
            "1363", f"interval is required when frequency is {frequency}.", field="scheduleParams.interval"
        )
    interval = _integer(params["interval"], "interval")
    minimum = MIN_INTERVAL[frequency]
    if interval < minimum:
        raise InvalidRequest(
            "1362",
            f"Interval cannot be less than {minimum} for frequency {frequency} (got {interval}).",
            field="scheduleParams.interval",
        )
    backfill = _boolean(params.get("backfill", True))
    return Schedule(start_time, cast(Frequency, frequency), interval, backfill)


def check_update(old: Schedule, new: Schedule, now_s: int) -> None:
    """The rules for PATCHing a schedule of an existing flow (digest 5.1, [D-update])."""
    started = now_s >= old.start_time
    if new.start_time != old.start_time:
        if started:
            raise InvalidRequest(
                "1366",
                f"startTime cannot be changed after it has passed ({old.start_time}).",
                field="scheduleParams.startTime",
            )
        if new.start_time < now_s:
            raise InvalidRequest(
                "1360", f"startTime {new.start_time} is in the past.", field="scheduleParams.startTime"
            )
    if started and new.frequency == "once" and old.frequency != "once":
        raise InvalidRequest(
            "1403",
            "frequency cannot be changed to once after the schedule has started.",
            field="scheduleParams.frequency",
        )
    if started and new.backfill != old.backfill:
        raise InvalidRequest(
            "1404",
            "backfill cannot be changed after the schedule has started.",
            field="scheduleParams.backfill",
        )


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return value
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise InvalidRequest(
        "1000",
        f"scheduleParams.{name} must be an integer or a numeric string, not {shown(value)}.",
        field=f"scheduleParams.{name}",
    )


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(
        "1000",
        f"scheduleParams.backfill must be true or false, not {shown(value)}.",
        field="scheduleParams.backfill",
    )


# --- fire times -----------------------------------------------------------------------------------
#
# A periodic flow fires at t_k = startTime + k * period. The run fired at t_k ingests the window
# (end of the previous window, t_k]: what changed since the last run. With backfill (the default) the
# first run fires at startTime and its window starts at 0, so it takes everything already there;
# without backfill the first run fires one period later and takes only what arrived since startTime.
# A scheduler that was down for several slots fires once, at the latest slot, over the whole gap:
# nothing is skipped and nothing is created twice. A flow scheduled `once` fires at startTime only.

UNIT_SECONDS = {"minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a flow's schedule stands: the start of its next window and when that window closes."""

    window_start: int  # epoch ms
    next_fire: int | None  # epoch ms; None once a `once` flow has fired


@dataclass(frozen=True, slots=True)
class Firing:
    window: tuple[int, int]  # (start, end] in epoch ms
    key: str  # unique per flow and window: two schedulers cannot both create this run
    after: Cursor


def period_ms(schedule: Schedule) -> int:
    if schedule.frequency == "once" or schedule.interval is None:
        raise ValueError("a flow scheduled once has no period")
    return UNIT_SECONDS[schedule.frequency] * schedule.interval * 1000


def first_cursor(schedule: Schedule) -> Cursor:
    start = schedule.start_time * 1000
    if schedule.frequency == "once" or schedule.backfill:
        return Cursor(0, start)
    return Cursor(start, start + period_ms(schedule))


def due(schedule: Schedule, cursor: Cursor, now_ms: int) -> Firing | None:
    """The run to create now, if one is due: one run for the latest slot, over every missed window."""
    if cursor.next_fire is None or now_ms < cursor.next_fire:
        return None
    if schedule.frequency == "once":
        end = cursor.next_fire
        return Firing((cursor.window_start, end), f"once:{end}", Cursor(end, None))
    period = period_ms(schedule)
    start = schedule.start_time * 1000
    latest = start + ((now_ms - start) // period) * period  # the last slot at or before now
    latest = max(latest, cursor.next_fire)
    return Firing(
        (cursor.window_start, latest), f"window:{cursor.window_start}", Cursor(latest, latest + period)
    )


def reschedule(schedule: Schedule, cursor: Cursor | None) -> Cursor:
    """The cursor after a schedule changed: the next window still starts where the last one ended."""
    if cursor is None:
        return first_cursor(schedule)
    if schedule.frequency == "once":
        start = schedule.start_time * 1000
        return Cursor(cursor.window_start, start if start > cursor.window_start else None)
    period = period_ms(schedule)
    start = schedule.start_time * 1000
    if cursor.window_start < start:  # the new schedule has not started yet
        fresh = first_cursor(schedule)
        return Cursor(min(cursor.window_start, fresh.window_start), fresh.next_fire)
    slots = (cursor.window_start - start) // period + 1  # the first slot after the last window
    return Cursor(cursor.window_start, start + slots * period)


def fire_times(schedule: Schedule, until_ms: int) -> list[int]:
    """Every slot from the first one up to `until_ms`, for a scheduler that never misses one."""
    cursor = first_cursor(schedule)
    times: list[int] = []
    while cursor.next_fire is not None and cursor.next_fire <= until_ms:
        times.append(cursor.next_fire)
        firing = due(schedule, cursor, cursor.next_fire)
        assert firing is not None
        cursor = firing.after
    return times


_UNITS = {
    "minute": ("minute", "minutes"),
    "hour": ("hour", "hours"),
    "day": ("day", "days"),
    "week": ("week", "weeks"),
}


def describe(params: Any) -> str:
    """A schedule in words for people ("every 15 minutes", "once"); never raises on a stored value."""
    try:
        parsed = parse(params)
    except InvalidRequest:
        return "not scheduled"
    if parsed.frequency == "once":
        return "once"
    one, many = _UNITS[parsed.frequency]
    interval = parsed.interval or 1
    return f"every {one}" if interval == 1 else f"every {interval} {many}"
