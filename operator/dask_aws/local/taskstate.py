"""Edits of moto's ECS task objects: status, timestamps, containers and the task's ENI.

moto renders any attribute whose name matches a field of the AWS model, so setting
`task.stopped_at` makes DescribeTasks report `stoppedAt`. Call these with the shared lock.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from moto.core.utils import utcnow
from moto.ecs.models import Container

STOP_REASONS = {
    "UserInitiated": "Task stopped by user",
    "EssentialContainerExited": "Essential container in task exited",
    "SpotInterruption": "Your Spot Task was interrupted.",
    "TaskFailedToStart": "Task failed to start",
}


def set_status(task: Any, status: str) -> None:
    task.last_status = status
    task.version = getattr(task, "version", 1) + 1


def stamp(task: Any, field: str) -> None:
    """Set a timestamp field (e.g. `started_at`) once."""
    if getattr(task, field, None) is None:
        setattr(task, field, utcnow())


def build_containers(task: Any, task_def: Any, task_ip: str, attachment_id: str | None) -> None:
    """One moto Container per container definition (moto itself only models the first)."""
    containers = []
    task_id = task.task_arn.rsplit("/", 1)[-1]
    for definition in task_def.container_definitions:
        container: Any = Container(task_def)  # type: ignore[abstract]
        container.container_arn = (
            f"arn:aws:ecs:{task.region_name}:{task._account_id}:container/"
            f"{task.cluster_name}/{task_id}/{uuid.uuid4()}"
        )
        container.task_arn = task.task_arn
        container.name = definition.get("name")
        container.image = definition.get("image")
        container.cpu = str(definition.get("cpu", 0))
        container.memory = definition.get("memory")
        container.memory_reservation = definition.get("memoryReservation")
        container.environment = definition.get("environment")
        container.command = definition.get("command")
        container.essential = definition.get("essential", True)
        container.last_status = "PENDING"
        container.exitCode = None
        container.exit_code = None
        container.health_status = "UNKNOWN"
        container.network_interfaces = (
            [{"attachmentId": attachment_id, "privateIpv4Address": task_ip}]
            if attachment_id
            else []
        )
        containers.append(container)
    task.containers = containers


def set_container(
    container: Any, status: str, exit_code: int | None = None, reason: str | None = None
) -> None:
    container.last_status = status
    if exit_code is not None:
        container.exitCode = exit_code
        container.exit_code = exit_code
    if reason:
        container.reason = reason


def eni_attachment(task: Any) -> dict[str, Any] | None:
    for attachment in task.attachments:
        if attachment.get("type") == "ElasticNetworkInterface":
            return attachment  # type: ignore[no-any-return]
    return None


def attachment_detail(attachment: dict[str, Any], name: str) -> str | None:
    for detail in attachment.get("details", []):
        if detail.get("name") == name:
            return str(detail.get("value"))
    return None


def set_attachment_detail(attachment: dict[str, Any], name: str, value: str) -> None:
    for detail in attachment.setdefault("details", []):
        if detail.get("name") == name:
            detail["value"] = value
            return
    attachment["details"].append({"name": name, "value": value})


def dns_name(task_ip: str) -> str:
    return "ip-" + task_ip.replace(".", "-") + ".ec2.internal"


def assign_address(task: Any, ec2_backend: Any, task_ip: str) -> tuple[str | None, str | None]:
    """Give the task's ENI the loopback address; (attachment id, ENI id) or (None, None)."""
    attachment = eni_attachment(task)
    if attachment is None:
        return None, None
    eni_id = attachment_detail(attachment, "networkInterfaceId")
    set_attachment_detail(attachment, "privateIPv4Address", task_ip)
    set_attachment_detail(attachment, "privateDnsName", dns_name(task_ip))
    # AWS names only the subnet of a PRECREATED attachment (RunTask's reply, PROVISIONING);
    # the interface, its MAC and its address appear once it is ATTACHED (attach_eni).
    task._eni_details = attachment["details"]
    attachment["details"] = [d for d in attachment["details"] if d.get("name") == "subnetId"]
    attachment["status"] = "PRECREATED"
    if eni_id:
        try:
            eni = ec2_backend.get_network_interface(eni_id)
        except Exception:
            eni = None
        if eni is not None:
            eni.private_ip_address = task_ip
            eni.private_dns_name = dns_name(task_ip)
            eni.private_ip_addresses = [
                {"Primary": True, "PrivateIpAddress": task_ip, "PrivateDnsName": dns_name(task_ip)}
            ]
            eni.description = (
                f"arn:aws:ecs:{task.region_name}:{task._account_id}:attachment/"
                f"{attachment.get('id')}"
            )
            eni.requester_managed = True
            eni.interface_type = "interface"
            subnet = getattr(eni, "subnet", None)
            zone = getattr(subnet, "availability_zone", None)
            if zone:
                task.availability_zone = zone
    return str(attachment.get("id")), eni_id


def assign_public_address(ec2_backend: Any, eni_id: str | None, address: str) -> None:
    """assignPublicIp ENABLED: the ENI's Association.PublicIp (DescribeNetworkInterfaces)."""
    if not eni_id:
        return
    with contextlib.suppress(Exception):
        ec2_backend.get_network_interface(eni_id).public_ip = address


def attach_eni(task: Any) -> None:
    """The ENI is attached: its status and every detail, the task's address included."""
    attachment = eni_attachment(task)
    if attachment is None:
        return
    attachment["status"] = "ATTACHED"
    attachment["details"] = getattr(task, "_eni_details", None) or attachment["details"]


def release_eni(task: Any, ec2_backend: Any, eni_id: str | None) -> None:
    attachment = eni_attachment(task)
    if attachment is not None:
        attachment["status"] = "DELETED"
    if eni_id:
        with contextlib.suppress(Exception):
            ec2_backend.delete_network_interface(eni_id)
