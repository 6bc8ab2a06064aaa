"""Kubernetes names and label values derived from a DaskAwsCluster's name.

An object name may be 253 characters (a DNS-1123 subdomain); what is derived from it has
tighter limits: a Secret name 253 characters, a label value 63 and the label-value syntax.
Whatever fits is kept as it is (`<name>-dask-connection`), so nothing changes for ordinary
names; a name too long is cut and given a hash of the full name, so two objects never
share a derived name.

Finding an object's connection Secret: `connection_secret_name(name)`, or by label
(`kubectl get secret -l daskaws.io/cluster-uid=<the object's metadata.uid>`); its
`daskaws.io/cluster` annotation holds the full object name.
"""

from __future__ import annotations

import hashlib
import re

SECRET_SUFFIX = "-dask-connection"
MAX_SUBDOMAIN = 253
MAX_LABEL_VALUE = 63
HASH_CHARS = 10
CLUSTER_LABEL = "daskaws.io/cluster"
UID_LABEL = "daskaws.io/cluster-uid"
MANAGED_BY = {"app.kubernetes.io/managed-by": "dask-aws"}

SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:HASH_CHARS]


def _cut(name: str, room: int) -> str:
    """The first `room` characters, ending in a letter or digit as both syntaxes need."""
    return name[:room].rstrip("-.")


def connection_secret_name(cluster_name: str) -> str:
    plain = cluster_name + SECRET_SUFFIX
    if len(plain) <= MAX_SUBDOMAIN:
        return plain
    # The hash goes last: a plain name ends in "-dask-connection", which is not hex, so no
    # other object's plain Secret name can ever equal a shortened one.
    tail = f"{SECRET_SUFFIX}-{_digest(cluster_name)}"
    return _cut(cluster_name, MAX_SUBDOMAIN - len(tail)) + tail


def cluster_label_value(cluster_name: str) -> str:
    """The daskaws.io/cluster label: readable, not exact (the uid label is exact)."""
    if len(cluster_name) <= MAX_LABEL_VALUE:
        return cluster_name
    tail = f"-{_digest(cluster_name)}"
    return _cut(cluster_name, MAX_LABEL_VALUE - len(tail)) + tail


def connection_secret_labels(cluster_name: str, uid: str) -> dict[str, str]:
    return {**MANAGED_BY, CLUSTER_LABEL: cluster_label_value(cluster_name), UID_LABEL: uid}
