"""dask-aws: Dask clusters on AWS ECS/Fargate, as a library and as a Kubernetes operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DaskAwsCluster", "ECSCluster", "FargateCluster", "__version__"]

if TYPE_CHECKING:
    from dask_aws.cluster.core import ECSCluster, FargateCluster
    from dask_aws.kube_cluster import DaskAwsCluster


def __getattr__(name: str) -> Any:
    # Imported on first use, so `dask-aws crd` and the operator do not pay for distributed.
    if name in ("ECSCluster", "FargateCluster"):
        from dask_aws.cluster import core

        return getattr(core, name)
    if name == "DaskAwsCluster":
        from dask_aws.kube_cluster import DaskAwsCluster

        return DaskAwsCluster
    raise AttributeError(f"module 'dask_aws' has no attribute {name!r}")
