"""The AWS resources of one cluster: one row per kind, in dependency order.

Plan asks each row's `observe` whether its resource is missing or out of sync, act calls
`ensure` for those, deletion walks the table backwards (`delete`, or `tag` when the
resources are retained), and the Python front end's progress lines name rows by `label`.
A new resource kind is one module in `aws/` with these verbs and one row here, as in
Crossplane's ExternalClient. The ECS tasks are not rows: they are the cluster's
components, planned one by one in plan.py. Each named worker group adds one row of its
own, a task definition (`rows(target)`); its key names the group, so a record of it is
understood (and removed) after the group has left the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from dask_aws.aws import ecs_cluster, iam_roles, log_group, security_group, tls_secret
from dask_aws.aws import task_definitions as tds
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.aws.network import Network
from dask_aws.aws.task_definitions import Component, Refs
from dask_aws.errors import PermanentError


@dataclass(frozen=True)
class Place:
    """Where the resources live and what they point at, known before any of them exists.

    `network` is None only while deleting, when the VPC can no longer be read."""

    network: Network | None
    refs: Refs

    def require_network(self) -> Network:
        if self.network is None:
            raise PermanentError("NetworkNotFound", "the cluster's VPC could not be read")
        return self.network


@dataclass(frozen=True)
class Resource:
    key: str
    label: str  # for people: "the {label}" reads as a sentence
    observe: Callable[[Aws, Target, Place], Found | None]
    ensure: Callable[[Aws, Target, Place], Found]
    delete: Callable[[Aws, Found], None]
    tag: Callable[[Aws, Found, Mapping[str, str]], None]
    regional: bool = True  # False: IAM, one resource for every region
    # What stays the same while the resource is updated in place (a task definition's
    # family, not its revision): how a recorded resource is recognised as still in use.
    stable_id: Callable[[str], str] = str
    # Whether the spec asks for this resource at all; when not, it is neither observed nor
    # ensured, and a recorded one is removed as unused.
    wanted: Callable[[Target], bool] = lambda _: True
    # What later rows learn from this one once it is found or made (an ARN with a random
    # suffix that a policy and the task definitions must name).
    refine: Callable[[Refs, Found | None], Refs] | None = None
    # Whether the spec names the user's resource of this kind (never created nor deleted):
    # a new owner's first step still checks that it exists.
    given: Callable[[Target], bool] = lambda _: False

    def place_after(self, place: Place, found: Found | None) -> Place:
        if self.refine is None:
            return place
        return Place(place.network, self.refine(place.refs, found))


class _Placeless(Protocol):
    """An aws/ module whose resource needs nothing but the target to be found or made."""

    def observe(self, aws: Aws, target: Target) -> Found | None: ...
    def ensure(self, aws: Aws, target: Target) -> Found: ...
    def delete(self, aws: Aws, found: Found) -> None: ...
    def tag(self, aws: Aws, found: Found, values: Mapping[str, str]) -> None: ...


def _placeless(
    key: str, label: str, module: _Placeless, given: Callable[[Target], bool]
) -> Resource:
    return Resource(
        key=key,
        label=label,
        observe=lambda aws, target, _: module.observe(aws, target),
        ensure=lambda aws, target, _: module.ensure(aws, target),
        delete=module.delete,
        tag=module.tag,
        given=given,
    )


def _role(kind: iam_roles.Kind) -> Resource:
    return Resource(
        key=f"{kind}-role",
        label=f"{kind} role",
        observe=lambda aws, target, place: iam_roles.observe(aws, target, kind, place.refs),
        ensure=lambda aws, target, place: iam_roles.ensure(aws, target, kind, place.refs),
        delete=iam_roles.delete,
        tag=iam_roles.tag,
        regional=False,
        given=lambda target: iam_roles.user_arn(target, kind) is not None,
    )


GROUP_KEY = "worker-task-definition/"  # + the group's name


def task_definition_key(component: Component, group: str = "") -> str:
    return f"{GROUP_KEY}{group}" if group else f"{component}-task-definition"


def _task_definition(component: Component, group: str = "") -> Resource:
    return Resource(
        key=task_definition_key(component, group),
        label=f"task definition of worker group {group}"
        if group
        else f"{component} task definition",
        observe=lambda aws, target, place: tds.observe(aws, target, component, place.refs, group),
        ensure=lambda aws, target, place: tds.ensure(aws, target, component, place.refs, group),
        delete=tds.delete,
        tag=tds.tag,
        stable_id=lambda arn: arn.rsplit(":", 1)[0],
    )


def _tls_refs(refs: Refs, found: Found | None) -> Refs:
    return replace(
        refs, tls_secret=found.id if found else None, tls_version=found.version if found else None
    )


RESOURCES: tuple[Resource, ...] = (
    _placeless("cluster", "ECS cluster", ecs_cluster, lambda t: t.spec.cluster_arn is not None),
    Resource(
        key="tls-secret",
        label="TLS secret",
        observe=lambda aws, target, _: tls_secret.observe(aws, target),
        ensure=lambda aws, target, _: tls_secret.ensure(aws, target),
        delete=tls_secret.delete,
        tag=tls_secret.tag,
        wanted=lambda target: target.spec.tls.enabled,
        refine=_tls_refs,
    ),
    *(_role(kind) for kind in iam_roles.KINDS),
    Resource(
        key="security-group",
        label="security group",
        observe=lambda aws, target, place: security_group.observe(
            aws, target, place.require_network()
        ),
        ensure=lambda aws, target, place: security_group.ensure(
            aws, target, place.require_network()
        ),
        delete=security_group.delete,
        tag=security_group.tag,
        given=lambda target: bool(target.spec.network.security_groups),
    ),
    _placeless("log-group", "log group", log_group, lambda t: bool(t.spec.logs.group)),
    *(_task_definition(component) for component in tds.COMPONENTS),
)
KEYS = tuple(r.key for r in RESOURCES)
BY_KEY = {r.key: r for r in RESOURCES}


def rows(target: Target) -> tuple[Resource, ...]:
    """The table for this spec: RESOURCES, then one task definition per named group."""
    groups = target.spec.group_names[1:]
    return RESOURCES + tuple(_task_definition("worker", group) for group in groups)


def lookup(key: str) -> Resource | None:
    """The row of a key, a named group's included (even one the spec no longer has)."""
    if key.startswith(GROUP_KEY):
        return _task_definition("worker", key[len(GROUP_KEY) :])
    return BY_KEY.get(key)


def order(key: str) -> int:
    """Where a key stands in dependency order; groups' task definitions come last."""
    return len(KEYS) if key.startswith(GROUP_KEY) else KEYS.index(key) if key in BY_KEY else -1


def describe(keys: Iterable[str]) -> str:
    """'the ECS cluster, task role and log group': the rows' labels as one phrase."""
    labels = [row.label if (row := lookup(k)) else k.replace("tasks", "ECS tasks") for k in keys]
    if len(labels) <= 1:
        return "the " + "".join(labels)
    return "the " + ", ".join(labels[:-1]) + " and " + labels[-1]
