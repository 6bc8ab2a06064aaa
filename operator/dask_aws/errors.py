"""Errors the engine raises, sorted by what fixes them.

PermanentError: only a change of the spec (or of what it references) fixes it; the
resource is Stalled and not retried until it changes. TransientError: worth retrying
with backoff; the resource stays Reconciling. botocore's own retry mode has already
retried throttling and 5xx before an error reaches here.
"""

from __future__ import annotations

from botocore.exceptions import ClientError


class DaskAwsError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class PermanentError(DaskAwsError):
    pass


class TransientError(DaskAwsError):
    pass


ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"}
NOT_FOUND = {
    "NoSuchEntity",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
    "InvalidGroup.NotFound",
    "InvalidGroupId.NotFound",
}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_not_found(exc: ClientError) -> bool:
    return error_code(exc) in NOT_FOUND


def translate(exc: ClientError) -> DaskAwsError:
    """Turn an AWS error into one a person can act on, keeping AWS's own text."""
    code = error_code(exc)
    operation = exc.operation_name
    text = str(exc.response.get("Error", {}).get("Message", exc))
    if code in ACCESS_DENIED:
        return TransientError(
            "AccessDenied",
            f"AWS denied {operation}: grant the operator's IAM identity this action "
            f"(see `dask-aws iam-policy`). AWS said: {text}",
        )
    return TransientError(f"AwsError{operation}", f"{operation} failed ({code}): {text}")
