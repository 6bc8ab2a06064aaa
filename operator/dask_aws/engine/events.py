"""What a person should hear about: Kubernetes Events in the operator, log lines in Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Reasons a status condition and an Event share.
CAPACITY_LIMITED = "CapacityLimited"  # AWS refused RunTask for a quota or for capacity


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str
