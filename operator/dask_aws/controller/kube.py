"""The few Kubernetes API calls kopf does not make for us: the connection Secret, idle
deletion, a DaskAwsJob's own cluster and its TTL deletion, and the watch-health probe's
list. Blocking calls; handlers run in threads."""

from __future__ import annotations

import functools
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from dask_aws.controller import kube_names
from dask_aws.crd import GROUP, KIND, PLURAL, VERSION
from dask_aws.jobs.crd import KIND as JOB_KIND
from dask_aws.jobs.crd import PLURAL as JOB_PLURAL
from dask_aws.tenancy.crd import PLURAL as POLICY_PLURAL

JOB_LABEL = f"{GROUP}/job"  # on a DaskAwsJob's own cluster: the job's name
# kopf's executor threads (handlers.configure); each handler may call the API from one.
HANDLER_THREADS = 16


@functools.cache
def api_client() -> client.ApiClient:
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    settings = client.Configuration.get_default_copy()
    # The client's default pool is 5 connections per CPU (10 on 2 cores): with more handler
    # threads than that, urllib3 closed the extra connections after each call ("Connection
    # pool is full, discarding connection") and the next call opened a new TLS connection.
    settings.connection_pool_maxsize = max(settings.connection_pool_maxsize, HANDLER_THREADS)
    return client.ApiClient(settings)


def secret_name(cluster_name: str) -> str:
    return kube_names.connection_secret_name(cluster_name)


def upsert_connection_secret(namespace: str, name: str, uid: str, data: dict[str, str]) -> str:
    """Create or replace the object's connection Secret; returns its name."""
    core = client.CoreV1Api(api_client())
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=secret_name(name),
            namespace=namespace,
            labels=kube_names.connection_secret_labels(name, uid),
            # The label value may be shortened; the annotation holds the name in full.
            annotations={kube_names.CLUSTER_LABEL: name},
            owner_references=[
                client.V1OwnerReference(
                    api_version=f"{GROUP}/{VERSION}",
                    kind=KIND,
                    name=name,
                    uid=uid,
                    controller=True,
                    block_owner_deletion=True,
                )
            ],
        ),
        type="daskaws.io/connection",
        string_data=data,
    )
    try:
        core.replace_namespaced_secret(secret_name(name), namespace, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_secret(namespace, body)
    return secret_name(name)


def delete_connection_secret(namespace: str, name: str) -> None:
    try:
        client.CoreV1Api(api_client()).delete_namespaced_secret(secret_name(name), namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def _delete(namespace: str, plural: str, name: str) -> None:
    try:
        client.CustomObjectsApi(api_client()).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


def delete_cluster_object(namespace: str, name: str) -> None:
    _delete(namespace, PLURAL, name)


def create_job_cluster(namespace: str, name: str, spec: dict[str, Any], job: Any) -> None:
    """The DaskAwsCluster a DaskAwsJob made for itself, owned by it (its controller), so
    `kubectl get dac` shows whose it is and a garbage collector removes it should the job go
    without its finalizer. Already there (a step that did not see it yet): fine."""
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {JOB_LABEL: kube_names.cluster_label_value(job["name"])},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": JOB_KIND,
                    "name": job["name"],
                    "uid": job["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
    }
    try:
        client.CustomObjectsApi(api_client()).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def delete_job_object(namespace: str, name: str) -> None:
    """ttlSecondsAfterFinished: the job deletes itself (its finalizer then cleans up)."""
    _delete(namespace, JOB_PLURAL, name)


def policies_readable(namespaces: list[str]) -> str | None:
    """None when the operator may list DaskAwsPolicies where it watches; else why not. The
    policies are enforced, so an operator that cannot read them must not run without them."""
    api = client.CustomObjectsApi(api_client())
    scopes: list[str | None] = list(namespaces) or [None]
    try:
        for ns in scopes:
            if ns is None:
                api.list_cluster_custom_object(GROUP, VERSION, POLICY_PLURAL, limit=1)
            else:
                api.list_namespaced_custom_object(GROUP, VERSION, ns, POLICY_PLURAL, limit=1)
    except ApiException as exc:
        where = f"in namespace {ns}" if ns else "cluster-wide"
        if exc.status == 404:
            return (
                f"the DaskAwsPolicy CRD (daskawspolicies.{GROUP}) is not installed: "
                "kubectl apply -f crds/ (the chart installs it)"
            )
        return (
            f"the operator may not list daskawspolicies.{GROUP} {where} (HTTP {exc.status}): "
            "give it the chart's RBAC (list and watch daskawspolicies)"
        )
    return None


def list_cluster_versions(namespaces: list[str]) -> dict[str, str]:
    """uid -> resourceVersion of every DaskAwsCluster the operator should be watching."""
    api = client.CustomObjectsApi(api_client())
    items: list[Any] = []
    if namespaces:
        for ns in namespaces:
            items += api.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    else:
        items = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    return {i["metadata"]["uid"]: i["metadata"]["resourceVersion"] for i in items}
