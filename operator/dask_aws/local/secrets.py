"""Resolve a container's `secrets[].valueFrom` from the local Secrets Manager and SSM.

Like ECS: a Secrets Manager ARN (optionally `:json-key:version-stage:version-id` appended),
an SSM parameter ARN, or a bare SSM parameter name. Runs inside the server process, reading
moto's backends directly (the caller holds the shared lock).
"""

from __future__ import annotations

import json
from typing import Any


class SecretResolutionError(RuntimeError):
    """The secret could not be fetched (ECS: ResourceInitializationError)."""


def _failure(source: str, detail: str) -> SecretResolutionError:
    return SecretResolutionError(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution "
        f"resource retrieval failed: unable to retrieve secret from {source}: {detail}"
    )


def resolve_secret(value_from: str, account: str, region: str) -> str:
    if value_from.startswith("arn:") and ":secretsmanager:" in value_from:
        return _from_secretsmanager(value_from, account)
    if value_from.startswith("arn:") and ":ssm:" in value_from:
        parts = value_from.split(":", 5)
        resource = parts[5] if len(parts) == 6 else ""
        if not resource.startswith("parameter"):
            raise _failure("ssm", f"invalid parameter ARN {value_from}")
        name = resource[len("parameter") :]
        if name.count("/") == 1:  # parameter/name -> name; parameter/a/b -> /a/b
            name = name[1:]
        return _from_ssm(name, parts[4] or account, parts[3] or region)
    return _from_ssm(value_from, account, region)


def _from_secretsmanager(value_from: str, account: str) -> str:
    from moto.secretsmanager.models import secretsmanager_backends

    parts = value_from.split(":")
    arn = ":".join(parts[:7])
    json_key = parts[7] if len(parts) > 7 and parts[7] else None
    stage = parts[8] if len(parts) > 8 and parts[8] else None
    version_id = parts[9] if len(parts) > 9 and parts[9] else None
    backend: Any = secretsmanager_backends[parts[4] or account][parts[3]]
    try:
        response: dict[str, Any] = backend.get_secret_value(
            arn, version_id, stage if stage or version_id else "AWSCURRENT"
        )
    except Exception as exc:
        raise _failure(
            "asm",
            f"service call has been retried 1 time(s): ResourceNotFoundException: "
            f"Secrets Manager can't find the specified secret. ({arn}: {exc})",
        ) from exc
    value = response.get("SecretString")
    if value is None:
        raise _failure("asm", f"secret {arn} has no SecretString")
    if json_key is None:
        return str(value)
    try:
        document = json.loads(value)
        return str(document[json_key])
    except (ValueError, KeyError, TypeError) as exc:
        raise _failure(
            "asm", f"retrieved secret from Secrets Manager did not contain json key {json_key}"
        ) from exc


def _from_ssm(name: str, account: str, region: str) -> str:
    from moto.ssm.models import ssm_backends

    backend = ssm_backends[account][region]
    parameter = backend.get_parameter(name)
    if parameter is None:
        raise _failure(
            "ssm",
            f"service call has been retried 1 time(s): InvalidParameters: "
            f"invalid parameters: {name}",
        )
    value = parameter.decrypt(parameter.value)
    if value is None:
        raise _failure("ssm", f"unable to decrypt parameter {name}")
    return str(value)
