"""Checks of whole API requests that AWS makes and moto does not, run before moto's handler.

moto validates little of a request, and some of what AWS refuses never reaches a backend
method at all (RunTask's placement constraints, the tags of most calls): a check here sees
the request's own parameters. One patch (`BaseResponse.call_action`, see local/patches.py)
looks the request's (service, Action) up in `CHECKS`; a check raises the service's own
exception class, which moto then renders exactly as it renders its own errors (the check
runs inside the action's handler, so moto's error handling applies unchanged). An `AFTER`
hook sees the handler's result before moto renders it, to add what AWS reports and moto
leaves out.

The checks themselves live per service: local/validation_ecs.py, local/validation_other.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.utils import camelcase_to_underscores

from dask_aws.local import validation_ecs, validation_other

# A check gets moto's response object for the request (its `_get_param` reads a parameter);
# an after-hook gets that and the handler's result (an ActionResult, for the services here).
Check = Callable[[Any], None]
After = Callable[[Any, Any], None]

CHECKS: dict[tuple[str, str], Check] = {
    **{("ecs", action): check for action, check in validation_ecs.CHECKS.items()},
    **validation_other.CHECKS,
}
AFTER: dict[tuple[str, str], After] = {
    ("ecs", action): hook for action, hook in validation_ecs.AFTER.items()
}
SERVICES = {service for service, _ in [*CHECKS, *AFTER]}


def call_action(self: Any) -> Any:
    """moto's BaseResponse.call_action, with the request's check (if any) run first."""
    from dask_aws.local.patches import original  # patches imports this module

    if self.service_name not in SERVICES:  # e.g. S3, whose requests name no Action
        return original(call_action)(self)
    action = self._get_action()
    check = CHECKS.get((self.service_name, action))
    after = AFTER.get((self.service_name, action))
    name = camelcase_to_underscores(action) if action else ""
    handler = getattr(self, name, None) if (check or after) and name else None
    if handler is not None:

        def checked() -> Any:
            if check is not None:
                check(self)
            result = handler()
            if after is not None:
                after(self, result)
            return result

        # An attribute of this request's response object only: moto builds one per request.
        setattr(self, name, checked)
    return original(call_action)(self)
