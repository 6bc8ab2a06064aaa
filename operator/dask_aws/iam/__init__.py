"""The IAM permissions dask-aws needs: the table of actions each module calls
(`permissions`) and `dask-aws iam-policy`, which prints policies from it (`policy`)."""
