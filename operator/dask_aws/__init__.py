"""dask-aws: Dask clusters on AWS ECS/Fargate, as a library and as a Kubernetes operator."""

__version__ = "0.1.0"
