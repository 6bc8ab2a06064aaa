"""What one owner's previous step saw and made, so that a quiet step reads only its tasks.

Infrastructure (the network check, roles and their policies, the security group and its
rules, the log group, task definitions) changes when the spec changes or when somebody
changes it behind our back; tasks change all the time. So a step reads the infrastructure
again only when the spec changed, when the previous step failed (an AWS error may mean that
something is gone), or when the drift period has passed, after which drift is repaired, as
ACK's drift remediation does. Otherwise it trusts what the previous step found or made and
reads only the tasks: one ListTasks and one DescribeTasks per 100 tasks.

The front end keeps one Memory per owner (the operator per object, FargateCluster per
cluster); a new process starts with an empty one, so its first step observes everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dask_aws.aws.found import Found, Target
from dask_aws.aws.network import Network
from dask_aws.aws.tasks import Task

DRIFT_SECONDS = 600.0
# While tasks start, the next look comes soon and then less and less often: a local task
# runs within a second, a Fargate one in 30-90 s; polling a minute-long start every
# 250 ms would be 240 DescribeTasks, doubling up to 2 s makes it about 35.
FIRST_PAUSE = 0.25
LONGEST_PAUSE = 2.0
# ECS keeps describing a stopped task for at least an hour; crash-loop detection and the
# reasons of replaced tasks look at that history, which a quiet step no longer lists.
STOPPED_KEPT = timedelta(hours=1)


def fingerprint(target: Target) -> str:
    """The spec minus what scaling changes: a new worker count needs no new look at roles."""
    return target.spec.model_dump_json(exclude={"workers": {"replicas"}})


@dataclass
class Seen:
    fingerprint: str
    at: float  # the clock when the infrastructure was last read from AWS
    network: Network | None  # None: not read yet (a new owner's first step reads it)
    found: dict[str, Found | None]
    live: list[str] = field(default_factory=list)  # task ARNs live (or just started) last step
    stopped: list[Task] = field(default_factory=list)  # stopped tasks seen, newest history
    # A new owner's first step: nothing of its own can exist yet (its uid was just made up),
    # so only what the spec names of the user's is read, and the network.
    new: bool = False
    # Only this process starts the owner's tasks (Memory's `new_owner`), so `live` holds
    # every one of them: a quiet step describes those and lists nothing.
    sole: bool = False


class Memory:
    """One owner's Seen between steps. Steps of one owner never run concurrently."""

    def __init__(
        self,
        drift_seconds: float = DRIFT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        *,
        new_owner: bool = False,
    ) -> None:
        """`new_owner`: the owner's uid was made up by this process just now (the library's
        FargateCluster), so its first step need not look for what it would have created.
        Never for the operator: an object's first step may follow a crash mid-creation."""
        self.drift_seconds = drift_seconds
        self.clock = clock
        self.seen: Seen | None = None
        self.new_owner = new_owner
        # An owner made up here is one no other process knows: its tasks are ours alone.
        self.sole = new_owner
        self.pause = FIRST_PAUSE

    def next_pause(self, progressed: bool) -> float:
        """How long to wait before the next look while not Ready: short again after any
        progress (a task started or changed state), else twice as long as last time."""
        self.pause = FIRST_PAUSE if progressed else min(LONGEST_PAUSE, self.pause * 2)
        return self.pause

    def period(self, target: Target) -> float:
        own = target.spec.drift_period_seconds
        return float(own) if own is not None else self.drift_seconds

    def recall(self, target: Target) -> Seen | None:
        """The previous step's view when it still holds for this spec; None: read it all."""
        if self.new_owner:
            self.new_owner = False  # once: a failed first step may have created something
            return Seen(fingerprint(target), self.clock(), None, {}, new=True, sole=self.sole)
        seen = self.seen
        if seen is None or seen.fingerprint != fingerprint(target):
            return None
        if self.clock() - seen.at >= self.period(target):
            return None
        return seen

    def remember(
        self,
        target: Target,
        *,
        at: float,
        network: Network | None,
        found: dict[str, Found | None],
        tasks: list[Task],
        started: list[str],
        now: datetime,
    ) -> None:
        live = [t.arn for t in tasks if t.desired_status != "STOPPED"] + started
        stopped = [
            t
            for t in tasks
            if t.desired_status == "STOPPED"
            and (t.stopped_at is None or now - t.stopped_at < STOPPED_KEPT)
        ]
        self.seen = Seen(
            fingerprint(target), at, network, dict(found), live, stopped, sole=self.sole
        )

    def forget(self) -> None:
        self.seen = None
