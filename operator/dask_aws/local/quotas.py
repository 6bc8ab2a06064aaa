"""Account quotas RunTask enforces: Fargate vCPUs, on-demand and Spot counted apart.

AWS's service quotas "Fargate On-Demand vCPU resource count" (L-3032A538) and "Fargate Spot
vCPU resource count" (L-36FBB829) cap the vCPUs of the account's Fargate tasks in a region
that have not stopped (provisioning, pending, running, stopping): each task counts its
task-level cpu / 1024. EC2 tasks count against neither.

What AWS does when a RunTask would go over (our reading of the ECS developer guide's "API
failure reasons", which lists the concurrent-limit message as a RunTask failure, and of the
reports on re:Post of the vCPU-based message since the 2022 migration): the call answers
HTTP 200 and each task that does not fit is a `failures` entry with the reason
"You've reached the limit on the number of vCPUs you can run concurrently"; tasks that fit
still start. AWS's default differs by account (new accounts start low, accounts migrated in
2022 got about 4000); the local AWS defaults to 4000 each so that no test meets the quota
unless it sets one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

ON_DEMAND = "FARGATE"
SPOT = "FARGATE_SPOT"
DEFAULT_VCPU = 4000.0
VCPU_LIMIT_REASON = "You've reached the limit on the number of vCPUs you can run concurrently"

# The service quota codes, as the control API also accepts them.
QUOTA_CODES = {"L-3032A538": ON_DEMAND, "L-36FBB829": SPOT}
QUOTA_NAMES = {"fargateOnDemandVcpu": ON_DEMAND, "fargateSpotVcpu": SPOT}


def bucket_of(
    launch_type: str | None, capacity_provider_strategy: Sequence[dict[str, Any]] | None
) -> str | None:
    """Which quota a RunTask's tasks count against (None: no Fargate quota, e.g. EC2).

    moto puts every task of a strategy on its first provider, so the quota is that one's."""
    if launch_type:
        return ON_DEMAND if launch_type == "FARGATE" else None
    provider = (capacity_provider_strategy or [{}])[0].get("capacityProvider")
    return provider if provider in (ON_DEMAND, SPOT) else None


def _units(vcpu: float) -> int:
    """vCPUs as cpu units: exact arithmetic for quarter vCPUs."""
    if vcpu < 0:
        raise ValueError("a vCPU quota must be >= 0")
    return round(vcpu * 1024)


class FargateQuotas:
    """Quota values and the cpu of live tasks, per account, region and quota. Thread-safe.

    Usage is kept per task, with the task's `done` event (set when it is STOPPED), and
    pruned on each check: the cost of a RunTask grows with live tasks, not all tasks ever."""

    def __init__(self, on_demand_vcpu: float = DEFAULT_VCPU, spot_vcpu: float = DEFAULT_VCPU):
        self._lock = threading.Lock()
        self._limits = {ON_DEMAND: _units(on_demand_vcpu), SPOT: _units(spot_vcpu)}
        self._live: dict[tuple[str, str, str], dict[str, tuple[int, threading.Event]]] = {}

    def set(self, bucket: str, vcpu: float) -> None:
        if bucket not in self._limits:
            raise ValueError(f"unknown quota {bucket!r}; one of {sorted(self._limits)}")
        with self._lock:
            self._limits[bucket] = _units(vcpu)

    def _used(self, key: tuple[str, str, str]) -> int:
        live = self._live.get(key, {})
        for arn in [arn for arn, (_, done) in live.items() if done.is_set()]:
            del live[arn]
        return sum(units for units, _ in live.values())

    def admit(self, account: str, region: str, bucket: str | None, cpu: int, count: int) -> int:
        """How many of `count` tasks of `cpu` units fit under the quota now."""
        if bucket is None or cpu <= 0:
            return count
        with self._lock:
            room = self._limits[bucket] - self._used((account, region, bucket))
        return max(0, min(count, room // cpu))

    def track(
        self,
        account: str,
        region: str,
        bucket: str | None,
        arn: str,
        cpu: int,
        done: threading.Event,
    ) -> None:
        """Count a started task until `done` is set."""
        if bucket is None or cpu <= 0:
            return
        with self._lock:
            self._live.setdefault((account, region, bucket), {})[arn] = (cpu, done)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            usage: dict[str, dict[str, float]] = {}
            for key in list(self._live):
                account, region, bucket = key
                usage.setdefault(f"{account}/{region}", {})[bucket] = self._used(key) / 1024
            return {
                "fargateOnDemandVcpu": self._limits[ON_DEMAND] / 1024,
                "fargateSpotVcpu": self._limits[SPOT] / 1024,
                "usageVcpu": usage,
            }

    def configure(self, body: dict[str, Any]) -> None:
        """Set quotas from {"fargateOnDemandVcpu": 6, "L-36FBB829": 4, ...} (control API)."""
        names = {**QUOTA_NAMES, **QUOTA_CODES}
        unknown = set(body) - set(names)
        if unknown:
            raise ValueError(f"unknown quotas {sorted(unknown)}; known: {sorted(names)}")
        for key, value in body.items():
            self.set(names[key], float(value))
