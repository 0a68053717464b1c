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
