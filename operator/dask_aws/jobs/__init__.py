"""DaskAwsJob: one Dask program run to completion on a cluster made for it (or an existing
one), reported in batch/v1 Job terms and cleaned up afterwards."""
