"""`dockyard abort ENV`: stop the environment's in-flight deployment where its orchestrator can (ECS today),
so that what served before serves again, and record that the newest release was aborted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockyard import targets
from dockyard.release.context import Context


@dataclass
class AbortResult:
    env: str
    aborted: int  # the release whose deployment was stopped
    restored: int  # the release whose images serve again
    version: int  # the release recording the abort
    images: dict[str, str]
    services: list[str] = field(default_factory=list)  # the services whose deployment was stopped
    deployed: bool = False
    verified: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"env": self.env, "aborted": self.aborted, "restored": self.restored, "version": self.version,
                "images": self.images, "services": self.services, "deployed": self.deployed,
                "verified": self.verified, "held": True}

    def lines(self) -> list[str]:
        return [f"Aborted release {self.aborted} of {self.env}: {', '.join(self.services)} serve release "
                f"{self.restored}'s images again, recorded as release {self.version} (verified).",
                f"{self.env} is held: promotions into it refuse until one passes --release-hold."]


def abort(ctx: Context, env_name: str, *, reason: str | None, yes: bool) -> AbortResult:
    env = ctx.project.app_environment(env_name)
    return targets.of(env.settings).abort(ctx, env, reason=reason, yes=yes)
