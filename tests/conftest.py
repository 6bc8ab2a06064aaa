pytest_plugins = [
    "tests.fixtures.local_aws",
    "tests.fixtures.k8s",
]
