"""The two small engine options the Python front end needs."""

from __future__ import annotations

from dask_aws.aws import tags
from dask_aws.engine.plan import plan
from dask_aws.names import Owner, ResourceNames
from tests.fixtures.observations import NOW, SCHED, observed, task


def test_retire_first_stops_exactly_the_named_workers() -> None:
    workers = [task(n, age=10 - n) for n in range(1, 5)]  # 127.1.0.1 .. .4, newest last
    default = plan(observed([SCHED, *workers]), 2, now=NOW)
    assert {t.ip for t in default.retire} == {"127.1.0.4", "127.1.0.3"}  # newest first
    chosen = plan(observed([SCHED, *workers]), 2, now=NOW, retire_first={"127.1.0.1", "127.1.0.2"})
    assert {t.ip for t in chosen.retire} == {"127.1.0.1", "127.1.0.2"}
    assert {t.ip for t in chosen.kept_workers} == {"127.1.0.3", "127.1.0.4"}


def test_retire_first_never_stops_more_than_the_surplus() -> None:
    workers = [task(n) for n in range(1, 4)]
    result = plan(observed([SCHED, *workers]), 2, now=NOW, retire_first={"127.1.0.1", "127.1.0.2"})
    assert len(result.retire) == 1


def test_owner_labels_are_tags_but_not_names() -> None:
    plain = Owner("u-1", "demo", kind="FargateCluster")
    labelled = Owner("u-1", "demo", kind="FargateCluster", labels=((tags.HOST, "h"),))
    assert ResourceNames.for_owner(plain) == ResourceNames.for_owner(labelled)
    assert plain == labelled
    owned = tags.ownership(labelled, {"team": "a"})
    assert owned[tags.HOST] == "h" and owned["team"] == "a" and owned[tags.OWNER_UID] == "u-1"
