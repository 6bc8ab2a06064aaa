"""The cluster's certificates in a Secrets Manager secret, which ECS hands to the tasks.

The secret is a JSON document (certs.Bundle); task definitions pick single keys of one
version through ECS `secrets` (`<arn>:<key>::<version>`), so key material never appears
in a task definition, an environment value, a log, an Event or the status. The tags say
when the certificates expire and for how long they were issued, so observing the secret
never reads its value. Clients (the operator, the library) read the value once per
version and keep it in memory (`bundle`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from dask_aws import certs
from dask_aws.aws import tags
from dask_aws.aws.clients import Aws
from dask_aws.aws.found import Found, Target
from dask_aws.errors import PermanentError

_LATEST = ""  # the version this process last wrote or read


def _current_version(secret: Mapping[str, object]) -> str | None:
    stages = secret.get("VersionIdsToStages") or {}
    assert isinstance(stages, Mapping)
    return next((v for v, names in stages.items() if "AWSCURRENT" in names), None)


def observe(aws: Aws, target: Target) -> Found | None:
    if not target.spec.tls.enabled:
        return None
    name = target.names.tls_secret
    try:
        secret = aws.secretsmanager.describe_secret(SecretId=name)
    except aws.secretsmanager.exceptions.ResourceNotFoundException:
        return None
    have = tags.from_list(secret.get("Tags"))
    if not tags.is_owned_by(have, target.owner):
        raise PermanentError("NameConflict", f"a secret named {name} exists and is not ours")
    if secret.get("DeletedDate"):
        return None  # being deleted: ensure says so, a new name is not ours to pick
    version = _current_version(secret)
    in_sync = version is not None and have.get(tags.TLS_VALIDITY_DAYS) == str(
        target.spec.tls.validity_days
    )
    return Found(
        id=secret["ARN"],
        ours=True,
        in_sync=in_sync,
        version=version,
        expires=have.get(tags.TLS_NOT_AFTER),
    )


def ensure(aws: Aws, target: Target) -> Found:
    """Issue new certificates: a new secret, or a new version of the one found."""
    days = target.spec.tls.validity_days
    bundle = certs.issue(target.owner.display, days)
    expires = bundle.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = {tags.TLS_NOT_AFTER: expires, tags.TLS_VALIDITY_DAYS: str(days)}
    name = target.names.tls_secret
    try:
        reply = aws.secretsmanager.create_secret(
            Name=name,
            Description=f"dask-aws TLS certificates of {target.owner.display}",
            SecretString=bundle.to_json(),
            Tags=tags.as_aws({**tags.ownership(target.owner, target.spec.tags), **issued}),  # type: ignore[arg-type]
        )
        arn, version = reply["ARN"], reply["VersionId"]
    except aws.secretsmanager.exceptions.ResourceExistsException:
        found = observe(aws, target)  # raises NameConflict when it is not ours
        if found is None:
            raise PermanentError(
                "SecretBeingDeleted",
                f"the secret {name} is scheduled for deletion; delete it for good "
                "(aws secretsmanager delete-secret --force-delete-without-recovery) or "
                "use another cluster name",
            ) from None
        arn = found.id
        version = aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=bundle.to_json())[
            "VersionId"
        ]
        aws.secretsmanager.tag_resource(SecretId=arn, Tags=tags.as_aws(issued))  # type: ignore[arg-type]
    # Trust our own write: no read back.
    aws.secret_values[(arn, version)] = aws.secret_values[(arn, _LATEST)] = bundle
    return Found(id=arn, ours=True, version=version, expires=expires)


def bundle(aws: Aws, arn: str, version: str | None = None) -> certs.Bundle:
    """The certificates of one version (default: the latest this process knows, else the
    current one), read from AWS once per process."""
    known = aws.secret_values.get((arn, version or _LATEST))
    if isinstance(known, certs.Bundle):
        return known
    kwargs = {"VersionId": version} if version else {}
    reply = aws.secretsmanager.get_secret_value(SecretId=arn, **kwargs)
    result = certs.Bundle.from_json(reply["SecretString"])
    aws.secret_values[(arn, reply["VersionId"])] = aws.secret_values[(arn, _LATEST)] = result
    return result


def tag(aws: Aws, found: Found, values: Mapping[str, str]) -> None:
    aws.secretsmanager.tag_resource(SecretId=found.id, Tags=tags.as_aws(values))  # type: ignore[arg-type]


def delete(aws: Aws, found: Found) -> None:
    if not found.ours:
        return
    # Without the recovery window the name is free at once, and nothing lingers that could
    # be restored by someone allowed to restore secrets.
    with contextlib.suppress(aws.secretsmanager.exceptions.ResourceNotFoundException):
        aws.secretsmanager.delete_secret(SecretId=found.id, ForceDeleteWithoutRecovery=True)
