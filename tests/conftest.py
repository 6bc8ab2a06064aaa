import os

# No test may send traffic off this machine: the engine refuses non-loopback scheduler URLs.
os.environ["DASK_AWS_LOOPBACK_ONLY"] = "1"

pytest_plugins = [
    "tests.fixtures.local_aws",
    "tests.fixtures.k8s",
    "tests.fixtures.operator",
]
