"""Errors the engine raises, sorted by what fixes them.

PermanentError: only a change of the spec (or of what it references) fixes it; the
resource is Stalled and not retried until it changes. TransientError: worth retrying
with backoff; the resource stays Reconciling. botocore's own retry mode has already
retried throttling and 5xx before an error reaches here.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_IDENTITY = "the IAM identity dask-aws runs as"


@dataclass(frozen=True)
class AwsFailure:
    """What AWS said, kept as data so each front end words it for its own reader."""

    operation: str
    code: str
    text: str


class DaskAwsError(Exception):
    def __init__(self, reason: str, message: str, aws: AwsFailure | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.aws = aws


class PermanentError(DaskAwsError):
    pass


class TransientError(DaskAwsError):
    pass


ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}
# AWS refusing the request itself: sending it again cannot help, a change of the spec (or
# of what it names) can. Throttling, 5xx and conflicts stay transient.
REFUSED = {
    "NoSuchEntity",  # e.g. iam.taskRolePolicies names a policy that does not exist
    "MalformedPolicyDocument",
    "InvalidParameterException",  # ECS: a spec value it will not take
    "ClientException",  # ECS: an invalid identifier or value
    "InvalidParameterValue",  # EC2
    "InvalidParameterCombination",
    "InvalidPermission.Malformed",
    "ValidationError",  # IAM
    "InvalidParameterValueException",
}


# Gone already: for a delete or a mark, done.
NOT_FOUND = {
    "NoSuchEntity",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def unknown_region(region: str) -> PermanentError:
    return PermanentError(
        "UnknownRegion", f"region {region} is not an AWS region where ECS runs; check spec.region"
    )


def unreachable(region: str, exc: BotoCoreError) -> TransientError:
    """AWS did not answer (endpoint down, DNS, timeouts): nothing is known to be gone."""
    return TransientError("AwsUnreachable", f"AWS in {region} could not be reached: {exc}")


def from_botocore(exc: ClientError | BotoCoreError, identity: str, region: str) -> DaskAwsError:
    """Any botocore failure as the engine reports it: AWS's answer translated, or AWS not
    answering at all."""
    if isinstance(exc, ClientError):
        return translate(exc, identity)
    return unreachable(region, exc)


def translate(exc: ClientError, identity: str = DEFAULT_IDENTITY) -> DaskAwsError:
    """Turn an AWS error into one a person can act on, keeping AWS's own text.

    `identity`: who makes the calls, as the front end's reader knows it ("the operator's
    IAM identity", "your AWS identity"); it is whom an AccessDenied asks to be granted."""
    failure = AwsFailure(
        operation=exc.operation_name,
        code=error_code(exc),
        text=str(exc.response.get("Error", {}).get("Message", exc)),
    )
    if failure.code in ACCESS_DENIED:
        return TransientError(
            "AccessDenied",
            f"AWS denied {failure.operation}: grant {identity} this action "
            f"(see `dask-aws iam-policy`). AWS said: {failure.text}",
            failure,
        )
    kind = PermanentError if failure.code in REFUSED else TransientError
    return kind(
        f"AwsError{failure.operation}",
        f"{failure.operation} failed ({failure.code}): {failure.text}",
        failure,
    )
