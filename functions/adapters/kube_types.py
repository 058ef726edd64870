"""What the Kubernetes adapter returns: small, JSON-safe models (ISO strings, no ``datetime``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_state(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ContainerSummary(_Model):
    name: str
    image: str
    ready: bool
    restart_count: int
    state: Literal["running", "waiting", "terminated", "unknown"]
    waiting_reason: str | None = None
    last_termination_reason: str | None = None
    last_exit_code: int | None = None
    last_finished_at: str | None = None


class PodSummary(_Model):
    name: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ready: bool
    restart_count: int  # all containers
    waiting_reasons: list[str] = Field(default_factory=list)  # CrashLoopBackOff, ImagePullBackOff, ...
    containers: list[ContainerSummary] = Field(default_factory=list)
    pod_template_hash: str | None = None
    created_at: str | None = None
    ip: str | None = None
    terminating: bool = False
    node: str | None = None


class Revision(_Model):
    revision: int
    replicaset: str
    created_at: str | None
    images: list[str]
    replicas: int  # desired (spec) replicas of the ReplicaSet
    ready_replicas: int
    pod_template_hash: str | None
    change_cause: str | None = None


class Change(_Model):
    """A change made (or, with dry_run, one that would be made), with the state it changed from."""

    action: Literal["restart", "scale", "undo"]
    namespace: str
    name: str
    dry_run: bool
    changed: bool  # False: the goal was already reached (or, in a dry run, would be)
    before: dict[str, Any]
    after: dict[str, Any]
    summary: str


class RolloutStatus(_Model):
    """``kubectl rollout status --watch=false``, as data."""

    state: Literal["DONE", "WAITING", "FAILED"]
    message: str
    generation: int
    observed_generation: int
    desired: int
    updated: int
    ready: int
    available: int
    revision: int | None


class PodUsage(_Model):
    name: str
    cpu_millicores: float
    memory_bytes: int
    cpu_request_millicores: float | None
    memory_limit_bytes: int | None
