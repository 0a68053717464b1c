"""Request bodies of alert rules (flowservice's own API, beside Adobe's observability paths)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flowservice.schemas import WireModel

Kind = Literal[
    "runStart", "runSuccess", "runFailure", "ingestionDelay", "failedRecordRatio", "zeroRecords", "volumeDrop"
]


class WebhookInput(WireModel):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL without credentials")


class AlertRuleCreate(WireModel):
    name: str = Field(min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=4096)
    kind: Kind
    flowId: str | None = Field(default=None, max_length=64, description="one flow; absent: every flow")
    threshold: float | None = Field(
        default=None,
        ge=0,
        description="ingestionDelay: minutes (150); failedRecordRatio: ratio (0.005); volumeDrop: fraction (0.5)",
    )
    waitForFinalAttempt: bool = Field(
        default=True, description="runFailure: say nothing while an automatic retry is still to come"
    )
    webhook: WebhookInput
