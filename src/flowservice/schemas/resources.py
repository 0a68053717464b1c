"""Request bodies of the Flow Service resources (connections, source/target connections, flows).

Field names are Adobe's (camelCase) so the models read like the documentation. Types follow what
real clients send: the docs send versions as numbers or strings, aepp adds `providerId`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from flowservice.schemas import WireModel

Version = str | int | float


class SpecRef(WireModel):
    id: str = Field(min_length=1, max_length=64)
    version: Version | None = None

    def wire(self, default_version: str) -> dict[str, str]:
        version = default_version if self.version is None else str(self.version)
        if version in ("1", "1.0"):
            version = "1.0"
        return {"id": self.id, "version": version}


class AuthInput(WireModel):
    specName: str = Field(min_length=1, max_length=255)
    params: dict[str, Any] = Field(default_factory=dict)


class ConnectionCreate(WireModel):
    name: str = Field(min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=4096)
    auth: AuthInput | None = None
    connectionSpec: SpecRef
    providerId: str | None = Field(
        default=None, description="accepted for aepp; the spec decides the provider"
    )


class DataInput(WireModel):
    format: str = Field(min_length=1, max_length=64)
    properties: dict[str, Any] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


class SourceConnectionCreate(WireModel):
    name: str = Field(min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=4096)
    baseConnectionId: str | None = Field(default=None, max_length=64)
    data: DataInput
    params: dict[str, Any] = Field(default_factory=dict)
    connectionSpec: SpecRef


class TargetConnectionCreate(WireModel):
    name: str = Field(default="", max_length=512)
    description: str | None = Field(default=None, max_length=4096)
    data: DataInput
    params: dict[str, Any] = Field(default_factory=dict)
    connectionSpec: SpecRef


class Transformation(WireModel):
    name: str = Field(min_length=1, max_length=64)
    params: dict[str, Any] = Field(default_factory=dict)


class FlowCreate(WireModel):
    name: str = Field(min_length=1, max_length=512)
    description: str | None = Field(default=None, max_length=4096)
    flowSpec: SpecRef
    sourceConnectionIds: list[str] = Field(min_length=1, max_length=100)
    targetConnectionIds: list[str] = Field(min_length=1, max_length=100)
    transformations: list[Transformation] = Field(default_factory=list, max_length=20)
    scheduleParams: dict[str, Any] | None = None
    options: dict[str, Any] | None = None
    labels: list[str] | None = Field(default=None, max_length=100)

    @field_validator("sourceConnectionIds", "targetConnectionIds")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("ids must not repeat")
        return ids
