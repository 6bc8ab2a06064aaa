"""The Python front end: FargateCluster and ECSCluster, `distributed` cluster managers on the
same engine the operator uses."""

from dask_aws.cluster import config as config  # registers the dask_aws config defaults
