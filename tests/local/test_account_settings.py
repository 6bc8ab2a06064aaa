"""ListAccountSettings(effectiveSettings=true) answers with AWS's defaults, as AWS does."""

from __future__ import annotations

from typing import Any

from tests.fixtures.local_aws import boto_session


def test_effective_settings_include_aws_defaults(local_aws_simulated: Any) -> None:
    ecs = boto_session(local_aws_simulated).client("ecs")
    reply = ecs.list_account_settings(name="taskLongArnFormat", effectiveSettings=True)
    assert [(s["name"], s["value"]) for s in reply["settings"]] == [
        ("taskLongArnFormat", "enabled")
    ]
    assert ecs.list_account_settings(name="taskLongArnFormat")["settings"] == []
    ecs.put_account_setting(name="containerInsights", value="enabled")
    effective = {
        s["name"]: s["value"] for s in ecs.list_account_settings(effectiveSettings=True)["settings"]
    }
    assert effective["containerInsights"] == "enabled"  # what was put wins over the default
    assert effective["serviceLongArnFormat"] == "enabled"
    ecs.delete_account_setting(name="containerInsights")
