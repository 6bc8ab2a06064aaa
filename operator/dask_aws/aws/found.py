"""What observe() returns for one resource."""

from __future__ import annotations

from dataclasses import dataclass

from dask_aws.names import Owner, ResourceNames
from dask_aws.spec import DaskAwsClusterSpec


@dataclass(frozen=True)
class Found:
    id: str  # the ARN, id or name AWS APIs take
    ours: bool  # created by this owner, so removed on delete; False: the user's, never touched
    in_sync: bool = True  # matches what the spec asks for
    # What dependents pin and status reports, for resources that have it: a secret's
    # current version (task definitions name it) and when its certificates expire.
    version: str | None = None
    expires: str | None = None


@dataclass(frozen=True)
class Target:
    """Who the resources belong to and what they should look like."""

    owner: Owner
    spec: DaskAwsClusterSpec

    @property
    def names(self) -> ResourceNames:
        return ResourceNames.for_owner(self.owner)
