"""The alerts pages: the rules of the org and sandbox in view with a form to make one, the page that
shows a new rule's signing secret (the only time it is shown), the delivery log and one delivery.

Enable, disable and delete are confirmed first and posted with the session's form token, like a
dataflow's actions. The pages call the same services as the alerts API, so a rule made here is
checked by the same rules (webhook URL, thresholds, flow in this sandbox) and its errors are the
API's messages, shown beside the field they name.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response

from flowservice.domain import alerts as model
from flowservice.domain.flows import ACTIONS
from flowservice.errors import InvalidRequest, NotFound
from flowservice.schemas import validate
from flowservice.schemas.alerts import AlertRuleCreate
from flowservice.services import alerts, resources
from flowservice.services.flows import KIND as FLOWS
from flowservice.ui.web import (
    Ui,
    UiRoute,
    check_csrf,
    current_ui,
    next_page_token,
    page_after,
    quoted,
    redirect,
    render,
)

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
UiDep = Annotated[Ui, Depends(current_ui)]
PAGE = 50
CHOICES = 500  # flows (or rules) offered in a select; beyond that the id is typed in
Text = Annotated[str, Form(max_length=8192)]  # the service checks the real limits, with its messages

KIND_LABELS = {
    "runStart": "Run started",
    "runSuccess": "Run succeeded",
    "runFailure": "Run failed",
    "ingestionDelay": "Ingestion delayed",
    "failedRecordRatio": "Failed records above a ratio",
    "zeroRecords": "Run ingested nothing",
    "volumeDrop": "Volume dropped",
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """A kind's threshold as the form asks for it: people think in percent, the API in fractions."""

    input: str  # the form field
    label: str
    unit: str
    scale: float  # the API's value = the form's value / scale
    most: float | None  # the largest value the form takes


THRESHOLDS = {
    "ingestionDelay": Threshold(
        "delay_minutes", "Alert when a run is in progress longer than", "minutes", 1, None
    ),
    "failedRecordRatio": Threshold(
        "ratio_percent", "Alert when failed records exceed", "% of records read", 100, 100
    ),
    "volumeDrop": Threshold(
        "drop_percent", "Alert when a run ingests less than", "% of the recent median", 100, 100
    ),
}
CONFIRM = {
    "enable": "Enable this alert rule? It notifies its webhook again from the next run on.",
    "disable": "Disable this alert rule? Runs set off nothing until it is enabled again; "
    "deliveries already queued are still made.",
    "delete": "Delete this alert rule? Its secret is gone for good; deliveries still pending are given up. "
    "The delivery log keeps what was sent.",
}
# the service's field names → the form's inputs, so an error is shown beside what caused it
FIELDS = {"name": "name", "kind": "kind", "flowId": "flow", "webhook.url": "url", "webhook": "url"}


def threshold_text(kind: str, value: object) -> str:
    """A rule's threshold in the form's units ("150 minutes", "0.5% of records read"), or ""."""
    found = THRESHOLDS.get(kind)
    if found is None or not isinstance(value, int | float):
        return ""
    return f"{value * found.scale:g}{'' if found.unit.startswith('%') else ' '}{found.unit}"


def host_of(url: str) -> str:
    """Only the webhook's host and port are shown: a webhook's path often carries a token of its own."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname or '?'}{f':{port}' if port else ''}"


@dataclass
class RuleForm:
    """What the create form holds: the defaults, or what was posted when it is shown again with errors."""

    name: str = ""
    kind: str = "runFailure"
    flow: str = ""
    url: str = ""
    description: str = ""
    wait: bool = True
    thresholds: dict[str, str] = field(default_factory=dict)  # Threshold.input → text as typed

    def body(self) -> AlertRuleCreate:
        """The API's request body; a value the form cannot read is an error naming its input."""
        body: dict[str, Any] = {
            "name": self.name.strip(),
            "kind": self.kind,
            "webhook": {"url": self.url.strip()},
            "waitForFinalAttempt": self.wait or self.kind != "runFailure",
        }
        if self.flow.strip():
            body["flowId"] = self.flow.strip()
        if self.description.strip():
            body["description"] = self.description.strip()
        threshold = THRESHOLDS.get(self.kind)
        text = self.thresholds.get(threshold.input, "").strip() if threshold else ""
        if threshold is not None and text:
            try:
                value = float(text)
            except ValueError:
                raise InvalidRequest(
                    "1000", f"'{text[:20]}' is not a number.", field=threshold.input
                ) from None
            if threshold.most is not None and value > threshold.most:
                raise InvalidRequest(
                    "1000",
                    f"The threshold is a percentage, at most {threshold.most:g}.",
                    field=threshold.input,
                )
            body["threshold"] = value / threshold.scale
        return validate(AlertRuleCreate, body)


def _input_of(exc: InvalidRequest, kind: str) -> str:
    if exc.field == "threshold" and kind in THRESHOLDS:
        return THRESHOLDS[kind].input
    return FIELDS.get(exc.field or "", exc.field or "")


def _rules_page(
    request: Request,
    ui: Ui,
    *,
    page: str = "",
    form: RuleForm | None = None,
    invalid: dict[str, str] | None = None,
    done: str = "",
    error: str = "",
    http_status: int = 200,
) -> Response:
    after = page_after(request, ui, "ui/alertRules", [], page)
    rules, following = alerts.rules_page(ui.services, ui.caller, after=after, limit=PAGE)
    flows, more_flows = alerts.choices(ui.services, ui.caller, "flows", CHOICES)
    context: dict[str, Any] = {
        "rules": rules,
        "flows": flows,
        "more_flows": more_flows,
        "form": form or RuleForm(),
        "invalid": invalid or {},
        "kinds": KIND_LABELS,
        "thresholds": THRESHOLDS,
        "defaults": {k: f"{(model.default_threshold(k) or 0) * t.scale:g}" for k, t in THRESHOLDS.items()},
        "threshold_text": threshold_text,
        "host_of": host_of,
        "next_page": next_page_token(request, ui, "ui/alertRules", [], following, PAGE),
        "page": page,
        "done": done,
        "error": error,
    }
    return render(request, ui, "alerts.html", http_status=http_status, **context)


@router.get("/alerts")
def rules_page(request: Request, ui: UiDep, page: str = "", done: str = "", error: str = "") -> Response:
    return _rules_page(request, ui, page=page, done=done, error=error)


@router.post("/alerts")
def create_rule(
    request: Request,
    ui: UiDep,
    csrf: Annotated[str, Form(max_length=64)],
    name: Text = "",
    kind: Text = "",
    flow: Text = "",
    url: Text = "",
    description: Text = "",
    wait: Text = "",
    delay_minutes: Text = "",
    ratio_percent: Text = "",
    drop_percent: Text = "",
) -> Response:
    """Make the rule and show its signing secret in this answer: it is never shown again, so it is
    not put in a redirect's URL or the session (the page is `no-store`)."""
    check_csrf(ui, csrf)
    form = RuleForm(
        name,
        kind,
        flow,
        url,
        description,
        bool(wait),
        {"delay_minutes": delay_minutes, "ratio_percent": ratio_percent, "drop_percent": drop_percent},
    )
    try:
        made = alerts.create_rule(ui.services, ui.caller, form.body())
    except InvalidRequest as exc:
        where = _input_of(exc, kind)
        return _rules_page(
            request,
            ui,
            form=form,
            invalid={where or "form": exc.message},
            error=f"The rule was not created: {exc.message}",
            http_status=400,
        )
    rule = resources.get(ui.services, ui.caller, alerts.KIND, made.written.id)
    watched: dict[str, Any] = {}
    if rule.get("flowId"):
        with suppress(NotFound):  # the secret must be shown whatever happened to the flow meanwhile
            watched = resources.get(ui.services, ui.caller, FLOWS, rule["flowId"])
    return render(
        request,
        ui,
        "alert_created.html",
        http_status=201,
        rule=rule,
        secret=made.secret,
        kind_label=KIND_LABELS.get(rule["kind"], rule["kind"]),
        event_code=model.KINDS[rule["kind"]][0],
        threshold=threshold_text(rule["kind"], rule.get("threshold")),
        flow_name=str(watched.get("name", "")),
        header=model.SIGNATURE_HEADER,
    )


@router.get("/alerts/deliveries")
def deliveries_page(
    request: Request,
    ui: UiDep,
    status: str = "",
    rule: str = "",
    run: str = "",
    page: str = "",
    partial: str = "",
) -> Response:
    bound = [f"status={status}", f"rule={rule}", f"run={run}"]
    after = page_after(request, ui, "ui/alertDeliveries", bound, page)
    found = alerts.deliveries_page(
        ui.services, ui.caller, status=status, rule_id=rule, run_id=run, after=after, limit=PAGE
    )
    context: dict[str, Any] = {
        "deliveries": found.items,
        "filters": {"status": status, "rule": rule, "run": run},
        "statuses": alerts.DELIVERY_STATUSES,
        "next_page": next_page_token(request, ui, "ui/alertDeliveries", bound, found.after, PAGE),
        "page": page,
    }
    if partial:
        return render(request, ui, "_deliveries_table.html", **context)
    context["rules"] = alerts.choices(ui.services, ui.caller, "alertRules", CHOICES)[0]
    return render(request, ui, "deliveries.html", **context)


@router.get("/alerts/deliveries/{delivery_id}")
def delivery_page(request: Request, ui: UiDep, delivery_id: str) -> Response:
    delivery = alerts.get_delivery(ui.services, ui.caller, delivery_id)
    return render(request, ui, "delivery.html", delivery=delivery, header=model.SIGNATURE_HEADER)


@router.get("/alerts/{rule_id}/confirm")
def confirm_rule_action(request: Request, ui: UiDep, rule_id: str, action: str) -> Response:
    if action not in CONFIRM:
        raise InvalidRequest("1000", f"Unknown action '{action[:20]}'.", field="action")
    rule = resources.get(ui.services, ui.caller, alerts.KIND, rule_id)
    return render(
        request,
        ui,
        "confirm.html",
        question=CONFIRM[action],
        subject=f"Alert rule {rule.get('name', rule_id)}",
        action_url=f"/ui/alerts/{quoted(rule_id)}/{action}",
        back_url="/ui/alerts",
        button=action.capitalize(),
    )


@router.post("/alerts/{rule_id}/{action}")
def rule_action(ui: UiDep, rule_id: str, action: str, csrf: Annotated[str, Form(max_length=64)]) -> Response:
    """Enable, disable or delete; another tenant's id is a 404 page, a refused move a notice."""
    check_csrf(ui, csrf)
    if action not in CONFIRM:
        raise InvalidRequest("1000", f"Unknown action '{action[:20]}'.", field="action")
    name = str(resources.get(ui.services, ui.caller, alerts.KIND, rule_id).get("name", rule_id))
    try:
        if action == "delete":
            resources.delete(ui.services, ui.caller, alerts.KIND, rule_id)
        else:
            resources.set_state(ui.services, ui.caller, alerts.KIND, rule_id, action, ACTIONS[action])
    except InvalidRequest as exc:
        return redirect("/ui/alerts", error=f"{exc.error_type}: {exc.message}")
    return redirect("/ui/alerts", done=f"Alert rule “{name}” {action}d.")
