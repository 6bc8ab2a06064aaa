"""Subnet addresses for awsvpc tasks: each task's ENI takes one address of its subnet.

Which subnet RunTask puts a task in: the first of `awsvpcConfiguration.subnets`, in the
order given, that has a free address (moto always takes the first one; AWS spreads tasks
over the subnets' zones, which the local AWS does not model). When none has one, AWS still
accepts the task (RunTask answers 200, the task is PROVISIONING) and then stops it with
stopCode TaskFailedToStart, because its ENI cannot be created; the stopped reason carries
EC2's error code InsufficientFreeAddressesInSubnet. This is from public reports of Fargate
tasks in full subnets (RunTask succeeded, the tasks stopped in PROVISIONING with that code)
and ECS's form for EC2 errors while creating a task ENI; the exact wording is our best
reading, not a documented string.

Free addresses are counted as moto counts them for DescribeSubnets' AvailableIpAddressCount
(the subnet's size less AWS's five reserved addresses and reservations, less the addresses of
its ENIs), in one pass over the ENIs per RunTask. A task's ENI is deleted when it stops, which
frees its address.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NO_ADDRESS_CODE = "InsufficientFreeAddressesInSubnet"


def no_address_reason(subnet_id: str, public_ip: bool) -> str:
    public = " with public IP assignment enabled" if public_ip else ""
    return (
        f"Unexpected EC2 error while attempting to Create Network Interface{public} in subnet "
        f"'{subnet_id}': {NO_ADDRESS_CODE}"
    )


def free_addresses(ec2_backend: Any, subnet_ids: Sequence[str]) -> dict[str, int]:
    """Free IPv4 addresses of each subnet (moto's AvailableIpAddressCount, in one pass)."""
    wanted = set(subnet_ids)
    taken = dict.fromkeys(wanted, 0)
    for eni in ec2_backend.enis.values():
        subnet = getattr(eni, "subnet", None)
        subnet_id = getattr(subnet, "id", None)
        if subnet_id in wanted:
            taken[subnet_id] += len(eni.private_ip_addresses or [])
    free = {}
    for subnet_id in wanted:
        subnet = ec2_backend.get_subnet(subnet_id)
        # moto's own capacity figure (size - 5 - reservations); its public property recounts
        # every ENI of the region for each subnet.
        capacity = int(getattr(subnet, "_available_ip_addresses", 0))
        free[subnet_id] = capacity - taken[subnet_id]
    return free


def place(ec2_backend: Any, subnet_ids: Sequence[str], count: int) -> list[str | None]:
    """The subnet of each of `count` new tasks, None for a task no subnet has room for."""
    free = free_addresses(ec2_backend, subnet_ids)
    placed: list[str | None] = []
    for _ in range(count):
        subnet = next((s for s in subnet_ids if free[s] > 0), None)
        if subnet is not None:
            free[subnet] -= 1
        placed.append(subnet)
    return placed
