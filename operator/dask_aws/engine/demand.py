"""Demand: a pure function that splits the workers a cluster wants between its groups.

The scheduler's adaptive target says how many workers the whole cluster needs; it does not
know that a task asking for resources={"GPU": 1} can only run on GPU workers. The split
adds that, from the work the scheduler holds grouped by resource restriction:

1. The scheduler's adaptive target is the size of the whole cluster: the groups' targets
   add up to it. Only minimums make the sum larger: a group keeps its minimum even when
   the target is spent elsewhere. When the target falls below the workers there are, the
   groups shrink to it; that is how scale-down happens.
2. Every group starts at its minimum; those workers count toward the target.
3. A task restricted to resources (e.g. GPU=1) runs only on groups whose workers each offer
   at least every amount asked. Such tasks, waiting and running, are counted first, against
   those groups in cost order (each up to its maximum): ceil(tasks / slots) workers, where
   slots is how many of the tasks one worker runs at once (its threads, or fewer when its
   resource amounts fit fewer). A group's minimum workers serve this work first. All
   restricted work together claims at most the adaptive target, the scheduler's own
   judgement of how many workers the work deserves (it counts unrunnable tasks too).
4. A restriction no group offers is left out and reported: growing a group would not run
   it. Restrictions claim the target in sorted order, so one demand gives one split.
5. What the target leaves goes to unrestricted work: first to groups that offer no
   resources, then to those that do (a GPU group is grown for CPU work only when no other
   group has room); within each, in cost order. While restricted work waits, only as many
   as the unrestricted tasks keep busy (ceil(tasks / threads)): the rest of the target is
   restricted work the groups that offer it have no room for, and plain workers would
   not run it. Without restricted work the whole rest goes (the target may be for memory).
6. Cost order: Spot, then SpotWithFallback (it may run on demand), then OnDemand; within
   one capacity the cheaper price first, unknown prices last; then spec order.
7. Every group stays within [minimum, maximum]; a group that neither restricted work nor
   the rest of the target reaches stays at its minimum.

The split has no memory: the current worker counts do not enter it, so one demand always
gives one split and it cannot flap. Pacing (at most 25 % down a step, cooldown) is the
controller's, per group.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A resource restriction as the scheduler holds it: (resource, amount per task) pairs;
# the empty one is unrestricted work.
Restriction = frozenset[tuple[str, float]]
UNRESTRICTED: Restriction = frozenset()

# Spot first: it is the cheapest; SpotWithFallback next because it may run on demand.
CAPACITY_RANK = {"Spot": 0, "SpotWithFallback": 1, "OnDemand": 2}


@dataclass(frozen=True)
class Group:
    name: str
    minimum: int
    maximum: int
    resources: Mapping[str, float] = field(default_factory=dict)  # dask worker --resources
    threads: int = 1  # dask worker --nthreads
    capacity: str = "OnDemand"  # a spec.Capacity value
    price: float | None = None  # per worker and hour, only to order groups; None: unknown


@dataclass(frozen=True)
class Demand:
    """What the scheduler said, in one snapshot (scheduler_api.demand)."""

    target: int  # Scheduler.adaptive_target(): workers for the whole cluster
    waiting: Mapping[Restriction, int] = field(default_factory=dict)  # tasks not on a worker
    running: Mapping[Restriction, int] = field(default_factory=dict)  # tasks on a worker

    @classmethod
    def total_only(cls, target: int) -> Demand:
        """When the scheduler tells only its target: all of it is unrestricted work."""
        return cls(target=target)

    @classmethod
    def from_wire(cls, payload: Mapping[str, Any]) -> Demand:
        """From what demand_probe.probe returns (plain lists: it crosses as msgpack)."""

        def counts(rows: Iterable[Any]) -> dict[Restriction, int]:
            result: dict[Restriction, int] = {}
            for pairs, n in rows:
                key = frozenset((str(r), float(a)) for r, a in pairs)
                result[key] = result.get(key, 0) + int(n)
            return result

        return cls(
            target=int(payload["target"]),
            waiting=counts(payload.get("waiting", ())),
            running=counts(payload.get("running", ())),
        )

    def tasks(self) -> dict[Restriction, int]:
        counts: dict[Restriction, int] = {}
        for part in (self.waiting, self.running):
            for restriction, n in part.items():
                counts[restriction] = counts.get(restriction, 0) + n
        return counts


@dataclass(frozen=True)
class Split:
    targets: dict[str, int]  # group name -> workers
    unplaceable: dict[Restriction, int]  # tasks whose restriction no group offers


def label(restriction: Restriction) -> str:
    """'GPU=1,MEM=2.5' for events; 'none' for unrestricted work."""
    return ",".join(f"{r}={a:g}" for r, a in sorted(restriction)) or "none"


def slots(group: Group, restriction: Restriction) -> int:
    """Tasks of `restriction` one worker of `group` runs at once; 0: it cannot run them.

    Dask compares each amount with what the worker offers and keeps a task waiting while
    the worker's free amount is short, so a worker runs floor(offered / asked) at once."""
    fit = max(1, group.threads)
    for resource, amount in restriction:
        offered = group.resources.get(resource)
        if offered is None or offered < amount:
            return 0
        if amount > 0:
            fit = min(fit, math.floor(offered / amount))
    return fit


def cost_order(groups: Iterable[Group]) -> list[Group]:
    indexed = list(enumerate(groups))
    indexed.sort(
        key=lambda ig: (
            CAPACITY_RANK.get(str(ig[1].capacity), len(CAPACITY_RANK)),
            ig[1].price is None,
            ig[1].price or 0.0,
            ig[0],
        )
    )
    return [g for _, g in indexed]


def split(groups: Iterable[Group], demand: Demand) -> Split:
    """The worker count for each group (rules in the module docstring)."""
    groups = list(groups)
    ordered = cost_order(groups)
    target = max(0, demand.target)
    wanted = {g.name: min(g.minimum, g.maximum) for g in ordered}  # rule 2
    claimed = dict.fromkeys(wanted, 0)  # workers restricted work keeps busy, per group
    budget = target
    unplaceable: dict[Restriction, int] = {}

    restricted = {r: n for r, n in demand.tasks().items() if r and n > 0}
    for restriction in sorted(restricted, key=sorted):  # rule 4: a fixed order
        tasks = restricted[restriction]
        able = [(g, s) for g in ordered if (s := slots(g, restriction)) > 0]
        if not able:
            unplaceable[restriction] = tasks
            continue
        for group, per_worker in able:  # rule 3
            if tasks <= 0 or budget <= 0:
                break
            room = group.maximum - claimed[group.name]
            take = max(0, min(math.ceil(tasks / per_worker), room, budget))
            claimed[group.name] += take
            budget -= take
            tasks -= take * per_worker
    for group in ordered:
        wanted[group.name] = min(max(wanted[group.name], claimed[group.name]), group.maximum)

    spare = target - sum(wanted.values())  # rule 1: what the target leaves for the rest
    plain_tasks = demand.tasks().get(UNRESTRICTED, 0)
    if restricted and spare > 0:
        # Rule 5: only as many as the unrestricted work keeps busy; the rest of the target
        # is restricted work no group has room for, which more plain workers would not run.
        threads = max((g.threads for g in ordered if not g.resources), default=1)
        spare = min(spare, math.ceil(plain_tasks / max(1, threads)))
    plain = [g for g in ordered if not g.resources]
    special = [g for g in ordered if g.resources]
    for group in plain + special:  # rule 5
        if spare <= 0:
            break
        add = min(spare, group.maximum - wanted[group.name])
        if add > 0:
            wanted[group.name] += add
            spare -= add
    return Split(targets={g.name: wanted[g.name] for g in groups}, unplaceable=unplaceable)
