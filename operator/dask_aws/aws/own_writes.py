"""What this process itself made, remembered so that deleting it needs no listing.

A role this process created (or last brought to its desired policies) and a task
definition family whose first revision it registered are known exactly: the role's
policies, the family's revisions. Deletion trusts that knowledge instead of reading it back
(ListAttachedRolePolicies, ListRolePolicies, ListTaskDefinitions twice), and reads as
before when the process did not make them (a restarted operator, `dask-aws gc`) or when AWS
says the knowledge is wrong (DeleteConflict: somebody attached a policy meanwhile).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

_lock = threading.Lock()


@dataclass(frozen=True)
class RolePolicies:
    managed: frozenset[str]  # attached policy ARNs
    inline: frozenset[str]  # inline policy names


_roles: dict[str, RolePolicies] = {}  # role ARN -> its policies, as this process left them
_families: dict[str, list[str]] = {}  # family (ARN without revision) -> revisions, oldest first


def role_written(arn: str, managed: Iterable[str], inline: Iterable[str]) -> None:
    with _lock:
        _roles[arn] = RolePolicies(frozenset(managed), frozenset(inline))


def role_known(arn: str) -> RolePolicies | None:
    with _lock:
        return _roles.get(arn)


def role_gone(arn: str) -> None:
    with _lock:
        _roles.pop(arn, None)


def family_of(arn: str) -> str:
    return arn.rsplit(":", 1)[0]


def revision_registered(arn: str, first: bool) -> None:
    """A revision this process registered; `first`: revision 1, so it made the family."""
    with _lock:
        if first:
            _families[family_of(arn)] = [arn]
        elif family_of(arn) in _families:
            _families[family_of(arn)].append(arn)


def family_known(arn: str) -> list[str] | None:
    """Every revision of `arn`'s family, when this process registered all of them."""
    with _lock:
        known = _families.get(family_of(arn))
        return list(known) if known is not None else None


def family_gone(arn: str) -> None:
    with _lock:
        _families.pop(family_of(arn), None)
