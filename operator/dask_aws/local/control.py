"""HTTP control routes under `/_local/` on the endpoint's port.

GET  /_local/health                 {"ok": true, "simulated": ..., "pid": ...}
GET  /_local/processes              {"processes": [{taskArn, container, pid, pgid, ip}]}
GET  /_local/tasks                  {"tasks": [{taskArn, ip, lastStatus, ...}]}
GET  /_local/faults                 the armed faults
GET  /_local/quotas                 {"fargateOnDemandVcpu", "fargateSpotVcpu", "usageVcpu"}
GET  /_local/server-errors          {"count": N, "errors": [{operation, status, detail, ...}]}
                                    the 5xx moto gave (bugs; injected faults not included)
GET  /_local/checkip                the caller's address as text, as checkip.amazonaws.com
                                    answers (the library's dask_aws.checkip-url in tests)
POST /_local/tasks/kill             {"taskArn": ARN, "spot": false}
POST /_local/faults/fail-next       {"operation": "ecs:RunTask", "count": 1,
                                     "kind": "throttle"|"5xx"}
POST /_local/faults/capacity        {"count": 1, "capacityProvider": "FARGATE_SPOT"|null}
POST /_local/faults/spot-capacity   {"available": false}  (FARGATE_SPOT has no capacity)
POST /_local/faults/clear
POST /_local/container-instances    {"cluster": NAME, "count": 1, "cpu": 4096,
                                     "memory": 16384, "gpus": 0, "architecture": "x86_64"}
                                    -> {"containerInstanceArns": [...]}
POST /_local/quotas                 {"fargateOnDemandVcpu": 6, "fargateSpotVcpu": 6} (or the
                                     quota codes L-3032A538 / L-36FBB829 as keys)
POST /_local/server-errors/take     the 5xx recorded so far, forgetting them
POST /_local/accounts/credentials   {"accountId": "222222222222"} -> {"accountId", "userArn",
                                     "accessKeyId", "secretAccessKey"}: an administrator's
                                     access key in that account (the same one each time);
                                     requests signed with it land in that account
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from moto.core.exceptions import JsonRESTError

from dask_aws.local import fleet
from dask_aws.local.context import LocalContext


def add_container_instances(context: LocalContext, body: dict[str, Any]) -> list[str]:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends
    from moto.ecs.models import ecs_backends

    with context.lock:  # moto's backends are shared with the request threads
        return fleet.add_container_instances(
            ecs_backends[DEFAULT_ACCOUNT_ID][context.region],
            ec2_backends[DEFAULT_ACCOUNT_ID][context.region],
            str(body["cluster"]),
            int(body.get("count", 1)),
            int(body.get("cpu", 4096)),
            int(body.get("memory", 16384)),
            int(body.get("gpus", 0)),
            str(body.get("architecture", "x86_64")),
        )


ACCOUNT_ADMIN = "local-account-admin"
_ALLOW_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", '
_ALLOW_ALL += '"Resource": "*"}]}'


def account_credentials(context: LocalContext, body: dict[str, Any]) -> dict[str, str]:
    """An IAM user with every permission in account `accountId`, and its access key.

    moto puts a request in the account that owns its access key (moto.iam.models:
    get_account_id_from), so a key made in the account is all a client needs; no
    moto-specific header or environment variable is involved."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    account = str(body["accountId"])
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError(f"accountId must be 12 digits, not {account!r}")
    with context.lock:
        iam = iam_backends[account][get_partition(context.region)]
        if ACCOUNT_ADMIN in iam.users:
            user = iam.users[ACCOUNT_ADMIN]
        else:
            user = iam.create_user(context.region, ACCOUNT_ADMIN)
            iam.put_user_policy(ACCOUNT_ADMIN, "everything", _ALLOW_ALL)
        keys = iam.list_access_keys(ACCOUNT_ADMIN)
        key = keys[0] if keys else iam.create_access_key(ACCOUNT_ADMIN)
        return {
            "accountId": account,
            "userArn": user.arn,
            "accessKeyId": key.access_key_id,
            "secretAccessKey": key.secret_access_key,
        }


def _reply(start_response: Any, status: int, payload: object) -> Iterable[bytes]:
    body = json.dumps(payload, default=str).encode()
    reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
    start_response(
        f"{status} {reasons.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _text(start_response: Any, text: str) -> Iterable[bytes]:
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]


def _body(environ: dict[str, Any]) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    return data


class ControlApp:
    def __init__(self, context: LocalContext) -> None:
        self.context = context

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        try:
            return self._route(method, path, environ, start_response)
        except (ValueError, TypeError) as exc:
            return _reply(start_response, 400, {"error": str(exc)})
        except KeyError as exc:
            return _reply(start_response, 404, {"error": str(exc)})
        except JsonRESTError as exc:  # e.g. ClusterNotFoundException: the caller's mistake
            return _reply(start_response, 400, {"error": exc.code, "message": exc.message})

    def _route(
        self, method: str, path: str, environ: dict[str, Any], start_response: Any
    ) -> Iterable[bytes]:
        context = self.context
        if method == "GET":
            if path == "/_local/health":
                return _reply(
                    start_response,
                    200,
                    {
                        "ok": True,
                        "simulated": context.simulated,
                        "region": context.region,
                        "pid": os.getpid(),
                        "endpoint": context.endpoint_url,
                    },
                )
            if path == "/_local/processes":
                processes = context.dataplane.running_processes()
                return _reply(start_response, 200, {"processes": processes})
            if path == "/_local/tasks":
                return _reply(start_response, 200, {"tasks": context.dataplane.describe()})
            if path == "/_local/faults":
                return _reply(start_response, 200, context.faults.describe())
            if path == "/_local/quotas":
                return _reply(start_response, 200, context.quotas.describe())
            if path == "/_local/server-errors":
                return _reply(start_response, 200, context.server_errors.describe())
            if path == "/_local/checkip":
                return _text(start_response, f"{environ.get('REMOTE_ADDR', '')}\n")
        elif method == "POST":
            body = _body(environ)
            if path == "/_local/tasks/kill":
                context.dataplane.kill(str(body["taskArn"]), spot=bool(body.get("spot", False)))
                return _reply(start_response, 200, {"ok": True})
            if path == "/_local/faults/fail-next":
                context.faults.fail_next(
                    str(body["operation"]), int(body.get("count", 1)), body.get("kind", "throttle")
                )
                return _reply(start_response, 200, {"ok": True})
            if path == "/_local/faults/capacity":
                provider = body.get("capacityProvider", "FARGATE_SPOT")
                context.faults.capacity_failures(
                    int(body.get("count", 1)), None if provider is None else str(provider)
                )
                return _reply(start_response, 200, {"ok": True})
            if path == "/_local/quotas":
                context.quotas.configure(body)
                return _reply(start_response, 200, context.quotas.describe())
            if path == "/_local/server-errors/take":
                return _reply(start_response, 200, context.server_errors.describe(clear=True))
            if path == "/_local/faults/spot-capacity":
                context.faults.set_spot_capacity(bool(body["available"]))
                return _reply(start_response, 200, {"ok": True})
            if path == "/_local/container-instances":
                arns = add_container_instances(context, body)
                return _reply(start_response, 200, {"containerInstanceArns": arns})
            if path == "/_local/accounts/credentials":
                return _reply(start_response, 200, account_credentials(context, body))
            if path == "/_local/faults/clear":
                context.faults.clear()
                return _reply(start_response, 200, {"ok": True})
        else:
            return _reply(start_response, 405, {"error": f"method {method} not allowed"})
        return _reply(start_response, 404, {"error": f"no route {method} {path}"})
