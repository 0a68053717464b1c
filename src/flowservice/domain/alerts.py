"""Alert rules: what they watch, when they fire, what they send, and how it is signed.

Pure functions, so every rule's firing condition is tested without a database. The kinds follow
Adobe's alert rules for source dataflows (run start, success, failure, ingestion delay, failed
record ratio) and add two Adobe lacks: a success that ingested nothing, and a volume drop.

Payloads are Adobe I/O Events shapes (digest 7.2) with the run object inside: success-like events
use the `{"event_id", "event": {...run, "header": {"_adobeio": …}}}` envelope, failure-like ones the
`[{"messages": [{… "value": run}]}]` envelope.
"""

from __future__ import annotations

import hashlib
import hmac
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# kind -> (event code sent, default threshold or None, what the threshold means)
KINDS: dict[str, tuple[str, float | None, str]] = {
    "runStart": ("sources_flow_run_start", None, ""),
    "runSuccess": ("sources_flow_run_success", None, ""),
    "runFailure": ("sources_flow_run_failed", None, ""),
    "ingestionDelay": ("sources_flow_run_delayed", 150.0, "minutes a run may stay in progress"),
    "failedRecordRatio": (
        "sources_flow_run_failed_records",
        0.005,
        "failed records / records read, above it fires",
    ),
    "zeroRecords": ("sources_flow_run_zero_records", None, ""),
    "volumeDrop": ("sources_flow_run_volume_drop", 0.5, "fraction of the recent median below which it fires"),
}
SUCCESS_SHAPED = frozenset({"runStart", "runSuccess"})
VOLUME_HISTORY = 10  # successful runs the median is taken over
VOLUME_MIN_HISTORY = 3  # fewer than this and there is no "usual" to drop from
SIGNATURE_HEADER = "x-flowservice-signature"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: str
    flow_id: str | None
    threshold: float | None
    wait_for_final_attempt: bool


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule's decision to notify: the dedupe key makes it once per run (and per kind of news)."""

    rule: Rule
    event_code: str
    dedupe_key: str
    detail: dict[str, Any]


def default_threshold(kind: str) -> float | None:
    return KINDS[kind][1]


def _records(doc: dict[str, Any], name: str) -> int | None:
    value = ((doc.get("metrics") or {}).get("recordSummary") or {}).get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def on_start(rules: Sequence[Rule], doc: dict[str, Any]) -> list[Firing]:
    return [
        Firing(rule, KINDS["runStart"][0], f"start:{doc['id']}", {})
        for rule in rules
        if rule.kind == "runStart"
    ]


def on_finish(
    rules: Sequence[Rule], doc: dict[str, Any], *, retrying: bool, recent_outputs: Sequence[int]
) -> list[Firing]:
    """The rules a finished run sets off. `retrying`: an automatic retry of this run is scheduled;
    `recent_outputs`: records ingested by the flow's previous successful runs, newest first."""
    status = doc.get("state")
    read, ingested, failed = (
        _records(doc, n) for n in ("inputRecordCount", "outputRecordCount", "failedRecordCount")
    )
    run_id = doc["id"]
    fired = []
    for rule in rules:
        code = KINDS[rule.kind][0]
        if rule.kind == "runSuccess" and status == "success":
            fired.append(Firing(rule, code, f"end:{run_id}", {}))
        elif rule.kind == "runFailure" and status == "failed":
            if retrying and rule.wait_for_final_attempt:
                continue  # the retry's own end decides
            fired.append(Firing(rule, code, f"end:{run_id}", {"willRetry": retrying}))
        elif (
            rule.kind == "failedRecordRatio"
            and read
            and failed is not None
            and status in ("success", "failed")
        ):
            ratio = failed / read
            limit = rule.threshold if rule.threshold is not None else KINDS[rule.kind][1] or 0.0
            if ratio > limit:
                fired.append(Firing(rule, code, f"ratio:{run_id}", {"ratio": ratio, "threshold": limit}))
        elif rule.kind == "zeroRecords" and status == "success" and ingested == 0:
            fired.append(Firing(rule, code, f"zero:{run_id}", {"outputRecordCount": 0}))
        elif rule.kind == "volumeDrop" and status == "success" and ingested is not None:
            history = list(recent_outputs[:VOLUME_HISTORY])
            if len(history) < VOLUME_MIN_HISTORY:
                continue
            median = statistics.median(history)
            fraction = rule.threshold if rule.threshold is not None else KINDS[rule.kind][1] or 0.0
            if median > 0 and ingested < fraction * median:
                detail = {"outputRecordCount": ingested, "recentMedian": median, "fraction": fraction}
                fired.append(Firing(rule, code, f"drop:{run_id}", detail))
    return fired


def delayed(rule: Rule, started_at: int, now: int) -> bool:
    """An in-progress run has been going longer than the rule allows."""
    minutes = rule.threshold if rule.threshold is not None else KINDS["ingestionDelay"][1] or 0.0
    return now - started_at > minutes * 60_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(
    kind: str, event_code: str, run: dict[str, Any], org_id: str, now: int, detail: dict[str, Any]
) -> Any:
    """The body a webhook receives, in Adobe I/O Events' shapes (digest 7.2)."""
    event_id = str(uuid.uuid4())
    alert = {"kind": kind, **detail} if detail else {"kind": kind}
    if kind in SUCCESS_SHAPED:
        started = ((run.get("metrics") or {}).get("durationSummary") or {}).get("startedAtUTC")
        return {
            "event_id": event_id,
            "event": {
                **run,
                "slaCreatedAt": now,
                "processStartTime": started if isinstance(started, int) else now,
                "transformedTime": now,
                "header": {
                    "_adobeio": {
                        "imsOrgId": org_id,
                        "providerMetadata": "platform_notifications",
                        "eventCode": event_code,
                    }
                },
                "flowserviceAlert": alert,
            },
        }
    return [
        {
            "messages": [
                {
                    "msgType": "eventNotification",
                    "version": "1.0",
                    "timestamp": _iso(now),
                    "imsOrgId": org_id,
                    "schema": {"name": "run-notification", "version": "1.0"},
                    "provider": "FlowService",
                    "_eventNotificationMeta": {"category": "Platform Notifications", "type": event_code},
                    "eventId": event_id,
                    "flowserviceAlert": alert,
                    "value": run,
                }
            ]
        }
    ]


def signature(secret: str, timestamp_s: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: the receiver recomputes it with the
    rule's secret and refuses a stale timestamp, so a captured delivery cannot be replayed later."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={mac}"


def verify(secret: str, header: str, body: bytes, now_s: int, tolerance_s: int = 300) -> bool:
    """What a receiver does with the signature header (and what the tests do)."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now_s - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


def retry_delay_ms(attempts: int, base_s: float, cap_s: float = 3600.0) -> int:
    """Exponential backoff: base, 2·base, 4·base, … up to the cap, after the n-th failed attempt."""
    return int(min(base_s * 2 ** max(attempts - 1, 0), cap_s) * 1000)


def retryable(status: int | None) -> bool:
    """A timeout or connection error (None), a 5xx, 408 or 429 is worth another try; other answers are final."""
    return status is None or status >= 500 or status in (408, 429)
