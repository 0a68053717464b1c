"""Alert rules (a resource of each org and sandbox) and the notifications they queue and deliver.

A run's start and end are judged in the run's own transaction (`run_hooks`), and what fires goes
into the outbox there; delays are found by a sweep. The notifier then posts each queued delivery
to its rule's webhook, signed, and retries with backoff until it is accepted or given up, writing
every attempt to the delivery's log.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from flowservice.domain import alerts as model
from flowservice.domain import etags
from flowservice.domain.query import parse_list_query, parse_orderby, parse_property
from flowservice.domain.tenancy import Caller, Tenant
from flowservice.errors import InvalidRequest, NotFound
from flowservice.schemas.alerts import AlertRuleCreate
from flowservice.services import resources
from flowservice.services.context import Services
from flowservice.services.resources import Prepared, Work, Written
from flowservice.store.repos import alerts as repo
from flowservice.store.repos import resources as repos
from flowservice.store.tables import AlertDelivery, AlertRule

log = logging.getLogger("flowservice.alerts")


def check_webhook_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials in it (they would be stored and logged)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest(
            "1000", "The webhook URL must start with https:// or http://.", field="webhook.url"
        )
    if not parts.hostname:
        raise InvalidRequest("1000", "The webhook URL has no host.", field="webhook.url")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest(
            "1000",
            "The webhook URL must not carry credentials; verify deliveries with their signature instead.",
            field="webhook.url",
        )
    if parts.fragment:
        raise InvalidRequest("1000", "The webhook URL must not have a #fragment.", field="webhook.url")
    try:
        _ = parts.port
    except ValueError:
        raise InvalidRequest("1000", "The webhook URL has an invalid port.", field="webhook.url") from None
    return url.strip()


class AlertRuleKind:
    collection = "alertRules"
    model = AlertRule
    create_model = AlertRuleCreate
    patchable = frozenset({"name", "description", "threshold", "waitForFinalAttempt", "webhook", "flowId"})
    record_ops = True

    def prepare(self, work: Work, body: AlertRuleCreate, previous: AlertRule | None) -> Prepared:
        if previous is not None and body.kind != previous.kind:
            raise InvalidRequest(
                "1000", "The kind of an alert rule cannot change; make a new rule.", field="kind"
            )
        threshold = body.threshold if body.threshold is not None else model.default_threshold(body.kind)
        if body.threshold is not None and model.default_threshold(body.kind) is None:
            raise InvalidRequest("1000", f"A {body.kind} rule takes no threshold.", field="threshold")
        if body.kind in ("failedRecordRatio", "volumeDrop") and threshold is not None and threshold > 1:
            raise InvalidRequest(
                "1000", f"The threshold of a {body.kind} rule is a ratio, at most 1.", field="threshold"
            )
        if body.kind == "ingestionDelay" and threshold is not None and threshold <= 0:
            raise InvalidRequest(
                "1000", "The delay threshold is a number of minutes above 0.", field="threshold"
            )
        if body.flowId is not None and repos.flows(work.session, work.caller.tenant).get(body.flowId) is None:
            raise InvalidRequest(
                "1000", f"The flow '{body.flowId}' does not exist in this sandbox.", field="flowId"
            )
        fields: dict[str, Any] = {
            "name": body.name,
            "kind": body.kind,
            "flowId": body.flowId,
            "threshold": threshold,
            "waitForFinalAttempt": body.waitForFinalAttempt,
            "webhook": {"url": check_webhook_url(body.webhook.url)},
        }
        if body.description is not None:
            fields["description"] = body.description
        extra: dict[str, Any] = {}
        if previous is None:  # the signing secret is made once; PATCH keeps it
            extra["secret"] = work.services.box.seal({"secret": "whsec_" + secrets.token_urlsafe(32)})
        return Prepared(fields, extra=extra)

    def editable(self, work: Work, row: AlertRule) -> dict[str, Any]:
        return dict(row.doc)

    def check_delete(self, work: Work, row: AlertRule) -> None:
        return None

    def after_write(self, work: Work, row_id: str, prepared: Prepared) -> None:
        return None


KIND = AlertRuleKind()


@dataclass(frozen=True, slots=True)
class NewRule:
    written: Written
    secret: str  # shown once, at creation


def create_rule(services: Services, caller: Caller, body: AlertRuleCreate) -> NewRule:
    written = resources.create(services, caller, KIND, body)
    return NewRule(written, signing_secret(services, caller.tenant, written.id))


def signing_secret(services: Services, tenant: Tenant, rule_id: str) -> str:
    with services.db.reader() as session:
        row = repos.alert_rules(session, tenant).get(rule_id)
    if row is None:
        raise InvalidRequest("1000", f"No alert rule {rule_id}.")
    return str(services.box.open(row.secret)["secret"])


def _rule(row: AlertRule) -> model.Rule:
    doc = row.doc
    threshold = doc.get("threshold")
    return model.Rule(
        row.id,
        row.kind,
        row.flow_id,
        float(threshold) if isinstance(threshold, int | float) else None,
        bool(doc.get("waitForFinalAttempt", True)),
    )


def _delivery(
    tenant: Tenant, row: AlertRule, firing: model.Firing, run: dict[str, Any], now: int
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "ruleId": row.id,
        "ruleName": row.name,
        "kind": row.kind,
        "runId": run.get("id"),
        "flowId": run.get("flowId"),
        "eventCode": firing.event_code,
        "dedupeKey": firing.dedupe_key,
        "status": "pending",
        "attempts": 0,
        "nextAttemptAt": now,
        "lastStatus": None,
        "lastError": None,
        "deliveredAt": None,
        "createdAt": now,
        "updatedAt": now,
        "etag": etags.new_etag(now),
        "imsOrgId": tenant.org_id,
        "sandboxName": tenant.sandbox_name,
        "payload": model.payload(row.kind, firing.event_code, run, tenant.org_id, now, firing.detail),
    }


def _queue(
    session: Session,
    tenant: Tenant,
    rows: list[AlertRule],
    firings: list[model.Firing],
    run: dict[str, Any],
    now: int,
) -> None:
    by_id = {r.id: r for r in rows}
    repo.queue(session, tenant, [_delivery(tenant, by_id[f.rule.id], f, run, now) for f in firings])


def on_run_started(session: Session, tenant: Tenant, doc: dict[str, Any], now: int) -> None:
    rows = repo.enabled_rules(session, tenant, ["runStart"], str(doc["flowId"]))
    if rows:
        _queue(session, tenant, rows, model.on_start([_rule(r) for r in rows], doc), doc, now)


FINISH_KINDS = ("runSuccess", "runFailure", "failedRecordRatio", "zeroRecords", "volumeDrop")


def on_run_finished(
    session: Session, tenant: Tenant, doc: dict[str, Any], now: int, *, retrying: bool
) -> None:
    flow_id = str(doc["flowId"])
    rows = repo.enabled_rules(session, tenant, FINISH_KINDS, flow_id)
    if not rows:
        return
    recent: list[int] = []
    if any(r.kind == "volumeDrop" for r in rows):
        recent = repo.recent_outputs(session, tenant, flow_id, str(doc["id"]), model.VOLUME_HISTORY)
    firings = model.on_finish([_rule(r) for r in rows], doc, retrying=retrying, recent_outputs=recent)
    if firings:
        _queue(session, tenant, rows, firings, doc, now)


def sweep_delays(services: Services) -> int:
    """Queue an `ingestionDelay` alert for each run in progress longer than its rule allows (once per run)."""
    with services.db.transaction() as session:
        now = services.clock.now_ms()
        rules = [(row, _rule(row)) for row in repo.rules_of_kind(session, "ingestionDelay")]
        if not rules:
            return 0
        shortest = min(r.threshold or model.KINDS["ingestionDelay"][1] or 0.0 for _, r in rules)
        queued = 0
        for run in repo.runs_in_progress_since(session, now - int(shortest * 60_000), limit=1000):
            tenant = Tenant(run.ims_org_id, run.sandbox_name, str(run.doc.get("sandboxId", "")))
            for row, rule in rules:
                if (row.ims_org_id, row.sandbox_name) != (run.ims_org_id, run.sandbox_name):
                    continue
                if rule.flow_id not in (None, run.flow_id) or not model.delayed(
                    rule, run.started_at or now, now
                ):
                    continue
                minutes = (now - (run.started_at or now)) / 60_000
                firing = model.Firing(
                    rule,
                    model.KINDS["ingestionDelay"][0],
                    f"delay:{run.id}",
                    {"minutesInProgress": round(minutes, 1), "threshold": rule.threshold},
                )
                repo.queue(session, tenant, [_delivery(tenant, row, firing, dict(run.doc), now)])
                queued += 1
        return queued


def deliver_due(services: Services, client: httpx.Client, limit: int = 50) -> int:
    """Post the deliveries that are due; the number attempted."""
    with services.db.transaction() as session:
        # a claimed delivery is offered to no other notifier until its attempt must be over
        hold_ms = int((services.settings.webhook_timeout_seconds * 2 + 5) * 1000)
        claimed = repo.claim_due(session, services.clock.now_ms(), limit, hold_ms)
    for item in claimed:
        _attempt(services, client, item)
    return len(claimed)


def _attempt(services: Services, client: httpx.Client, item: repo.Claimed) -> None:
    doc = dict(item.delivery)
    settings = services.settings
    status: int | None = None
    error: str | None = None
    if item.url is None or item.sealed_secret is None:
        error = "the alert rule was deleted"
        final = True
    else:
        body = json.dumps(doc["payload"], separators=(",", ":")).encode()
        now_s = services.clock.now_ms() // 1000
        secret = str(services.box.open(item.sealed_secret)["secret"])
        headers = {
            "content-type": "application/json",
            "user-agent": "flowservice-webhooks",
            "x-flowservice-event": doc["eventCode"],
            "x-flowservice-delivery": doc["id"],
            model.SIGNATURE_HEADER: model.signature(secret, now_s, body),
        }
        try:
            response = client.post(
                item.url, content=body, headers=headers, timeout=settings.webhook_timeout_seconds
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {response.text[:200]}"
        except httpx.TimeoutException:
            error = f"no answer within {settings.webhook_timeout_seconds:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        final = error is None or not model.retryable(status)
    now = services.clock.now_ms()
    attempts = int(doc.get("attempts", 0)) + 1
    doc.update(attempts=attempts, lastStatus=status, lastError=error, updatedAt=now, etag=etags.new_etag(now))
    if error is None:
        doc.update(status="delivered", deliveredAt=now, nextAttemptAt=None)
    elif final or attempts >= settings.alert_max_attempts:
        doc.update(status="failed", nextAttemptAt=None)
        log.warning("delivery %s of rule %s given up: %s", doc["id"], doc["ruleId"], error)
    else:
        doc.update(nextAttemptAt=now + model.retry_delay_ms(attempts, settings.alert_retry_seconds))
    with services.db.transaction() as session:
        repo.save(session, doc)


def get_delivery(services: Services, caller: Caller, delivery_id: str) -> dict[str, Any]:
    with services.db.reader() as session:
        row = repos.alert_deliveries(session, caller.tenant).get(delivery_id)
    if row is None:
        raise NotFound("alertDeliveries", delivery_id)
    return dict(row.doc)


def next_due(services: Services) -> int | None:
    with services.db.reader() as session:
        return repo.earliest_due(session)


# --- what the pages read (ui/alerts.py): the rows the API lists, shaped for people ---

DELIVERY_STATUSES = ("pending", "delivered", "failed")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # checked before it goes into a filter, so it cannot add to one


@dataclass(frozen=True, slots=True)
class RuleView:
    doc: dict[str, Any]
    flow_name: str | None  # None: the rule watches every flow, or its flow was deleted since
    last_delivery: dict[str, Any] | None  # the rule's newest delivery


def rules_page(
    services: Services, caller: Caller, *, after: list[Any] | None = None, limit: int = 50
) -> tuple[list[RuleView], list[Any] | None]:
    """A page of the tenant's rules, newest first, each with its flow's name and newest delivery.

    The newest delivery is one probe per rule of the `(org, sandbox, rule_id, created_at, id)` index,
    so a page costs its length in index reads whatever the size of the log.
    """
    with services.db.reader() as session:
        rows, following = repos.alert_rules(session, caller.tenant).page(limit=limit, after=after)
        flows = repos.flows(session, caller.tenant).get_many(r.flow_id for r in rows if r.flow_id)
        log_ = repos.alert_deliveries(session, caller.tenant)
        views = []
        for row in rows:
            newest, _ = log_.page(limit=1, filters=parse_property(f"ruleId=={row.id}"))
            flow = flows.get(row.flow_id or "")
            views.append(
                RuleView(
                    dict(row.doc),
                    str(flow.doc.get("name", "")) if flow is not None else None,
                    dict(newest[0].doc) if newest else None,
                )
            )
    return views, following


def deliveries_page(
    services: Services,
    caller: Caller,
    *,
    status: str = "",
    rule_id: str = "",
    run_id: str = "",
    after: list[Any] | None = None,
    limit: int = 50,
) -> resources.Page:
    """A page of the delivery log, newest first, filtered by status, rule and run (typed columns)."""
    params: list[tuple[str, str]] = [("limit", str(limit))]
    if status:
        if status not in DELIVERY_STATUSES:
            raise InvalidRequest("1000", f"Unknown delivery status '{status[:20]}'.", field="status")
        params.append(("property", f"status=={status}"))
    for name, value in (("ruleId", rule_id), ("runId", run_id)):
        if value:
            if not _ID.fullmatch(value):
                raise InvalidRequest("1000", f"'{value[:70]}' is not an id.", field=name)
            params.append(("property", f"{name}=={value}"))
    return resources.list_page(services, caller, AlertDelivery, parse_list_query(params), after)


def choices(
    services: Services, caller: Caller, collection: Literal["flows", "alertRules"], limit: int = 500
) -> tuple[list[tuple[str, str]], bool]:
    """(id, name) of the tenant's flows or alert rules by name, for a select; True when more exist."""
    with services.db.reader() as session:
        found = (repos.flows if collection == "flows" else repos.alert_rules)(session, caller.tenant)
        rows, following = found.page(limit=limit, order=parse_orderby("+name"))
        return [(row.id, row.name) for row in rows], following is not None
