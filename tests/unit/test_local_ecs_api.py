"""Unit: what a real boto3 ECS client, signed with the stack's credentials, sees of the local
ECS: the answers, errors, filters, paging and timestamps it would see on ECS (issue 12, item 3).

Every test drives the local ECS through its HTTP server, never through LocalEcs's methods."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from jobtracker_local.ecs import LocalEcs, serve
from jobtracker_local.sigv4 import Credentials

KEYS = Credentials.generate()
REGION = "us-east-1"
ACCOUNT = "000000000000"


@dataclass
class Api:
    ecs: LocalEcs
    client: Any  # a boto3 ECS client
    events: list[dict[str, Any]] = field(default_factory=list)
    wire: list[dict[str, Any]] = field(default_factory=list)  # each answer's JSON, as sent

    def __post_init__(self) -> None:
        def keep(response_dict: dict[str, Any], **_: Any) -> None:
            self.wire.append(json.loads(response_dict["body"] or b"{}"))

        self.client.meta.events.register("before-parse.ecs.*", keep)

    def details(self, task_arn: str) -> list[dict[str, Any]]:
        """The `detail` of every event emitted for one task, in emission order."""
        return [e["detail"] for e in list(self.events) if e["detail"]["taskArn"] == task_arn]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def start(tmp_path: Path, **limits: float) -> tuple[LocalEcs, Any, list[dict[str, Any]]]:
    events: list[dict[str, Any]] = []
    ecs = LocalEcs(events.append, REGION, tmp_path, 0.01, **limits)
    ecs.create_cluster("c")
    ecs.create_cluster("other")
    ecs.register_task_definition("worker", "worker", ["python", "-c", "pass"], {}, 2)
    # Runs until stopped: for what ECS shows of a task that has not ended.
    ecs.register_task_definition(
        "sleeper", "worker", ["python", "-c", "import time; time.sleep(60)"], {}, 1
    )
    return ecs, serve(ecs, KEYS.secret_for, "helper-token"), events


def client_for(url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "ecs",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=KEYS.access_key_id,
        aws_secret_access_key=KEYS.secret_access_key,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@contextmanager
def served(tmp_path: Path, **limits: float) -> Iterator[Api]:
    """A local ECS (clusters `c` and `other`; task definitions `worker`, which exits at once, and
    `sleeper`, which runs until stopped) behind its HTTP server, and a signed boto3 client."""
    ecs, server, events = start(tmp_path, **limits)
    try:
        yield Api(ecs, client_for(f"http://127.0.0.1:{server.server_address[1]}"), events)
    finally:
        server.shutdown()
        server.server_close()
        ecs.shutdown()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with served(tmp_path) as api:
        yield api


def error_of(call: Callable[[], Any]) -> dict[str, Any]:
    """The error response of a call that must fail."""
    with pytest.raises(ClientError) as refused:
        call()
    return dict(refused.value.response)


# ---- timestamps --------------------------------------------------------------------------------


def test_run_task_answers_epoch_timestamps_that_boto3_parses_into_datetimes(api: Api) -> None:
    # GIVEN a signed boto3 client
    # WHEN it runs a task
    task = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]
    # THEN createdAt came as an epoch number, as ECS's JSON sends it, and boto3 made a datetime
    sent = api.wire[-1]["tasks"][0]["createdAt"]
    assert isinstance(sent, float), f"createdAt was sent as {sent!r}"
    assert isinstance(task["createdAt"], datetime), f"createdAt is {task['createdAt']!r}"


def test_stop_task_answers_epoch_timestamps_that_boto3_parses_into_datetimes(api: Api) -> None:
    # GIVEN a running task
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    # WHEN it is stopped
    task = api.client.stop_task(cluster="c", task=arn, reason="enough")["task"]
    # THEN its timestamps came as epoch numbers, and boto3 made datetimes of them
    for key in ("createdAt", "stoppingAt"):
        sent = api.wire[-1]["task"].get(key)
        assert isinstance(sent, float), f"{key} was sent as {sent!r}"
        assert isinstance(task.get(key), datetime), f"{key} is {task.get(key)!r}"


def test_events_keep_iso_timestamps_as_ecs_events_do(api: Api) -> None:
    # GIVEN a task that runs to its end
    arn = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]["taskArn"]
    wait_for("STOPPED event", lambda: any(d["lastStatus"] == "STOPPED" for d in api.details(arn)))
    # WHEN its STOPPED event is read
    stopped = next(d for d in api.details(arn) if d["lastStatus"] == "STOPPED")
    # THEN its timestamps are ISO strings, as in the "ECS Task State Change" events ECS emits
    for key in ("createdAt", "stoppedAt", "updatedAt"):
        assert isinstance(stopped[key], str) and stopped[key].endswith("Z"), (key, stopped[key])


# ---- versions ----------------------------------------------------------------------------------


def test_run_task_answers_version_1_and_the_first_event_carries_it(api: Api) -> None:
    # GIVEN a signed boto3 client; WHEN it runs a task
    task = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]
    wait_for("the first event", lambda: bool(api.details(task["taskArn"])))
    # THEN the task is at version 1, PROVISIONING, and ECS's first event says the same
    assert (task["version"], task["lastStatus"]) == (1, "PROVISIONING"), task
    first = api.details(task["taskArn"])[0]
    assert (first["version"], first["lastStatus"]) == (1, "PROVISIONING"), first


def test_every_change_raises_the_version_and_describe_tasks_agrees_with_the_last_event(
    api: Api,
) -> None:
    # GIVEN a task that runs to its end
    arn = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]["taskArn"]
    wait_for("STOPPED event", lambda: any(d["lastStatus"] == "STOPPED" for d in api.details(arn)))
    # WHEN its events are read and it is described
    versions = [d["version"] for d in api.details(arn)]
    described = api.client.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    # THEN each event has the next version, and DescribeTasks shows the last one
    assert versions == list(range(1, len(versions) + 1)), f"event versions {versions}"
    assert described["version"] == versions[-1], (described["version"], versions)


def test_stop_task_answers_the_version_of_the_change_it_made(api: Api) -> None:
    # GIVEN a running task
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    wait_for("RUNNING", lambda: any(d["lastStatus"] == "RUNNING" for d in api.details(arn)))
    # WHEN it is stopped
    answer = api.client.stop_task(cluster="c", task=arn)["task"]
    # THEN the answer's version is the one of the event telling desiredStatus=STOPPED
    told = [d for d in api.details(arn) if d["desiredStatus"] == "STOPPED"]
    assert told and told[0]["version"] == answer["version"], (answer["version"], told[:1])


def test_describe_tasks_shows_tags_only_when_asked_for_them(api: Api) -> None:
    # GIVEN a task run with a tag
    tag = {"key": "team", "value": "data"}
    arn = api.client.run_task(cluster="c", taskDefinition="worker", tags=[tag])["tasks"][0][
        "taskArn"
    ]
    # WHEN it is described without, then with, include=TAGS
    plain = api.client.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    tagged = api.client.describe_tasks(cluster="c", tasks=[arn], include=["TAGS"])["tasks"][0]
    # THEN, as on ECS, only the second answer carries the tags
    assert "tags" not in plain, f"tags shown unasked: {plain.get('tags')}"
    assert tagged.get("tags") == [tag], f"tags asked for: {tagged.get('tags')}"


# ---- clusters ----------------------------------------------------------------------------------

CALLS_TAKING_A_CLUSTER: dict[str, Callable[[Any, str], Any]] = {
    "RunTask": lambda client, cluster: client.run_task(cluster=cluster, taskDefinition="worker"),
    "StopTask": lambda client, cluster: client.stop_task(cluster=cluster, task="0" * 32),
    "DescribeTasks": lambda client, cluster: client.describe_tasks(cluster=cluster, tasks=["0"]),
    "ListTasks": lambda client, cluster: client.list_tasks(cluster=cluster),
}


@pytest.mark.parametrize("call", CALLS_TAKING_A_CLUSTER)
def test_a_call_naming_an_unknown_cluster_gets_cluster_not_found(api: Api, call: str) -> None:
    # GIVEN a cluster name the local ECS does not know
    # WHEN a call taking a cluster names it
    error = error_of(lambda: CALLS_TAKING_A_CLUSTER[call](api.client, "nowhere"))
    # THEN ECS's error for it, and no task was started
    assert error["Error"]["Code"] == "ClusterNotFoundException", f"{call}: {error['Error']}"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400, f"{call}: {error}"
    assert api.ecs.tasks == {}, f"{call} started a task on an unknown cluster"


def test_a_call_without_a_cluster_addresses_the_default_cluster(api: Api) -> None:
    # GIVEN a local ECS with no cluster named "default"
    # WHEN a task is listed without naming a cluster; THEN the default one is not found
    missing = error_of(lambda: api.client.list_tasks())
    assert missing["Error"]["Code"] == "ClusterNotFoundException", missing["Error"]
    # AND once "default" exists, a task run without naming a cluster lands there
    api.ecs.create_cluster("default")
    task = api.client.run_task(taskDefinition="worker")["tasks"][0]
    assert task["clusterArn"].endswith(":cluster/default"), task["clusterArn"]


def test_a_cluster_may_be_named_by_its_arn(api: Api) -> None:
    # GIVEN the ARN of cluster c
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/c"
    # WHEN a task is run there and the cluster's tasks are listed, both by ARN
    task_arn = api.client.run_task(cluster=arn, taskDefinition="sleeper")["tasks"][0]["taskArn"]
    listed = api.client.list_tasks(cluster=arn)["taskArns"]
    # THEN it is the same cluster as by name
    assert listed == [task_arn], listed
    assert api.client.list_tasks(cluster="c")["taskArns"] == [task_arn], "by name"


def test_an_arn_of_an_unknown_cluster_gets_cluster_not_found(api: Api) -> None:
    # GIVEN an ARN ending in a known cluster's name but of another account
    arn = "arn:aws:ecs:us-east-1:111111111111:cluster/c"
    # WHEN tasks are listed there; THEN the cluster is not found (the name alone is not enough)
    error = error_of(lambda: api.client.list_tasks(cluster=arn))
    assert error["Error"]["Code"] == "ClusterNotFoundException", error["Error"]


def test_describe_tasks_reports_a_task_of_another_cluster_as_missing(api: Api) -> None:
    # GIVEN a task of cluster c
    arn = api.client.run_task(cluster="c", taskDefinition="worker")["tasks"][0]["taskArn"]
    # WHEN it is described as a task of cluster other
    answer = api.client.describe_tasks(cluster="other", tasks=[arn])
    # THEN ECS does not find it there
    assert answer["tasks"] == [], f"another cluster's task was described: {answer['tasks']}"
    assert answer["failures"] == [{"arn": arn, "reason": "MISSING"}], answer["failures"]


def test_stop_task_refuses_a_task_of_another_cluster_and_leaves_it_running(api: Api) -> None:
    # GIVEN a running task of cluster c
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    # WHEN it is stopped as a task of cluster other
    error = error_of(lambda: api.client.stop_task(cluster="other", task=arn))
    # THEN ECS's answer for a task it does not find, and the task is not stopping
    assert error["Error"]["Code"] == "InvalidParameterException", error["Error"]
    assert error["Error"]["Message"] == "The referenced task was not found.", error["Error"]
    described = api.client.describe_tasks(cluster="c", tasks=[arn])["tasks"][0]
    assert described["desiredStatus"] == "RUNNING", described["desiredStatus"]


def test_a_task_may_be_named_by_its_id_within_its_cluster(api: Api) -> None:
    # GIVEN a running task and its ID (the ARN's last part)
    arn = api.client.run_task(cluster="c", taskDefinition="sleeper")["tasks"][0]["taskArn"]
    task_id = arn.rsplit("/", 1)[-1]
    # WHEN it is described and stopped by ID
    described = api.client.describe_tasks(cluster="c", tasks=[task_id])["tasks"]
    stopped = api.client.stop_task(cluster="c", task=task_id)["task"]
    # THEN both calls found it
    assert [t["taskArn"] for t in described] == [arn], described
    assert (stopped["taskArn"], stopped["desiredStatus"]) == (arn, "STOPPED"), stopped


def test_describe_tasks_refuses_an_empty_list(api: Api) -> None:
    # GIVEN no task to describe; WHEN DescribeTasks is called with an empty list
    error = error_of(lambda: api.client.describe_tasks(cluster="c", tasks=[]))
    # THEN ECS refuses the call rather than answering nothing
    assert error["Error"]["Code"] == "InvalidParameterException", error["Error"]


# ---- ListTasks: filters ------------------------------------------------------------------------


def run_and_stop(api: Api, cluster: str = "c") -> str:
    """A task that ran to its end (desiredStatus STOPPED): its ARN."""
    arn = str(api.client.run_task(cluster=cluster, taskDefinition="worker")["tasks"][0]["taskArn"])
    wait_for("STOPPED", lambda: api.ecs.tasks[arn].last_status == "STOPPED")
    return arn


def run_sleeper(api: Api, **params: Any) -> str:
    """A task that runs until stopped (desiredStatus RUNNING): its ARN."""
    params.setdefault("cluster", "c")
    return str(api.client.run_task(taskDefinition="sleeper", **params)["tasks"][0]["taskArn"])


def test_list_tasks_without_desired_status_lists_only_tasks_meant_to_run(api: Api) -> None:
    # GIVEN a task that has stopped and one that runs
    stopped, running = run_and_stop(api), run_sleeper(api)
    # WHEN the cluster's tasks are listed with no desiredStatus
    listed = api.client.list_tasks(cluster="c")["taskArns"]
    # THEN only the running one, as ECS's default filter is desiredStatus=RUNNING
    assert listed == [running], f"listed {listed}; stopped task was {stopped}"


def test_list_tasks_with_desired_status_stopped_lists_the_stopped_ones(api: Api) -> None:
    # GIVEN a task that has stopped and one that runs
    stopped, _ = run_and_stop(api), run_sleeper(api)
    # WHEN the tasks whose desiredStatus is STOPPED are listed
    listed = api.client.list_tasks(cluster="c", desiredStatus="STOPPED")["taskArns"]
    # THEN only the stopped one
    assert listed == [stopped], listed


def test_list_tasks_with_desired_status_pending_lists_nothing(api: Api) -> None:
    # GIVEN a task that has not reached RUNNING yet, and one that runs
    run_sleeper(api)
    # WHEN tasks with desiredStatus PENDING are listed
    listed = api.client.list_tasks(cluster="c", desiredStatus="PENDING")["taskArns"]
    # THEN none: ECS accepts the value but never sets a task's desiredStatus to it
    assert listed == [], listed


def test_list_tasks_refuses_an_unknown_desired_status(api: Api) -> None:
    # GIVEN a desiredStatus ECS does not have (boto3 does not check it)
    # WHEN tasks are listed with it; THEN ECS refuses the call
    error = error_of(lambda: api.client.list_tasks(cluster="c", desiredStatus="DONE"))
    assert error["Error"]["Code"] == "InvalidParameterException", error["Error"]


def test_list_tasks_filters_by_task_definition_family(api: Api) -> None:
    # GIVEN running tasks of two families (worker's is made to run by a command override)
    sleeper = run_sleeper(api)
    run_sleeper(api, overrides={})  # a second sleeper, to show the filter keeps all of a family
    worker = api.client.run_task(
        cluster="c",
        taskDefinition="worker",
        overrides={
            "containerOverrides": [
                {"name": "worker", "command": ["python", "-c", "import time; time.sleep(60)"]}
            ]
        },
    )["tasks"][0]["taskArn"]
    # WHEN tasks are listed by family
    sleepers = api.client.list_tasks(cluster="c", family="sleeper")["taskArns"]
    workers = api.client.list_tasks(cluster="c", family="worker")["taskArns"]
    # THEN each family's tasks only
    assert len(sleepers) == 2 and sleeper in sleepers and worker not in sleepers, sleepers
    assert workers == [worker], workers


def test_list_tasks_filters_by_started_by(api: Api) -> None:
    # GIVEN running tasks started by two jobs
    mine = run_sleeper(api, startedBy="job-1")
    run_sleeper(api, startedBy="job-2")
    # WHEN tasks are listed by startedBy
    listed = api.client.list_tasks(cluster="c", startedBy="job-1")["taskArns"]
    # THEN only that job's
    assert listed == [mine], listed


def test_list_tasks_refuses_started_by_with_family(api: Api) -> None:
    # GIVEN both filters; WHEN tasks are listed with them
    error = error_of(
        lambda: api.client.list_tasks(cluster="c", startedBy="job-1", family="sleeper")
    )
    # THEN ECS refuses: startedBy must be the only filter
    assert error["Error"]["Code"] == "InvalidParameterException", error["Error"]


# ---- ListTasks: paging -------------------------------------------------------------------------


def test_list_tasks_pages_by_max_results_in_creation_order(api: Api) -> None:
    # GIVEN five running tasks
    arns = [run_sleeper(api) for _ in range(5)]
    # WHEN they are listed two at a time, following nextToken
    pages, token = [], None
    while True:
        answer = api.client.list_tasks(
            cluster="c", maxResults=2, **({"nextToken": token} if token else {})
        )
        pages.append(answer["taskArns"])
        token = answer.get("nextToken")
        if not token:
            break
    # THEN pages of 2, 2 and 1, every task once, in the order they were run
    assert [len(p) for p in pages] == [2, 2, 1], pages
    assert [a for p in pages for a in p] == arns, "every task once, in creation order"


def test_the_list_tasks_paginator_walks_every_page(api: Api) -> None:
    # GIVEN five running tasks
    arns = [run_sleeper(api) for _ in range(5)]
    # WHEN boto3's paginator lists them, two a page
    paginator = api.client.get_paginator("list_tasks")
    pages = list(paginator.paginate(cluster="c", PaginationConfig={"PageSize": 2}))
    # THEN it walked three pages and saw every task
    assert len(pages) == 3, [p["taskArns"] for p in pages]
    assert [a for p in pages for a in p["taskArns"]] == arns


def test_list_tasks_answers_at_most_100_without_max_results(api: Api) -> None:
    from jobtracker_local.ecs import TokenBucket

    # GIVEN 101 stopped tasks (their command cannot start: no process each), no rate limit
    api.ecs.call_bucket = api.ecs.launch_bucket = TokenBucket(1000, 1000)
    bad = {"containerOverrides": [{"name": "worker", "command": ["/nonexistent/worker"]}]}
    for _ in range(101):
        api.client.run_task(cluster="c", taskDefinition="worker", overrides=bad)
    wait_for("all stopped", lambda: all(t.last_status == "STOPPED" for t in api.ecs.tasks.values()))
    # WHEN they are listed without maxResults
    answer = api.client.list_tasks(cluster="c", desiredStatus="STOPPED")
    # THEN ECS's default page: 100 and a token for the last one
    assert len(answer["taskArns"]) == 100, len(answer["taskArns"])
    rest = api.client.list_tasks(
        cluster="c", desiredStatus="STOPPED", nextToken=answer["nextToken"]
    )
    assert len(rest["taskArns"]) == 1 and "nextToken" not in rest, rest


@pytest.mark.parametrize("max_results", [0, 101])
def test_list_tasks_refuses_max_results_outside_1_to_100(api: Api, max_results: int) -> None:
    # GIVEN a page size ECS does not allow; WHEN tasks are listed with it
    error = error_of(lambda: api.client.list_tasks(cluster="c", maxResults=max_results))
    # THEN ECS refuses the call
    assert error["Error"]["Code"] == "InvalidParameterException", (max_results, error["Error"])


def test_list_tasks_refuses_a_next_token_it_did_not_give(api: Api) -> None:
    # GIVEN a made-up token; WHEN tasks are listed from it; THEN ECS refuses it
    error = error_of(lambda: api.client.list_tasks(cluster="c", nextToken="not-a-token"))
    assert error["Error"]["Code"] == "InvalidParameterException", error["Error"]


# ---- RunTask count -----------------------------------------------------------------------------


def test_run_task_with_count_3_starts_three_tasks_each_with_its_own_events(api: Api) -> None:
    # GIVEN a signed boto3 client
    # WHEN it runs a task definition with count=3
    tasks = api.client.run_task(cluster="c", taskDefinition="worker", count=3)["tasks"]
    arns = [t["taskArn"] for t in tasks]
    # THEN three tasks, three ARNs, and each task tells its own life up to STOPPED
    assert len(set(arns)) == 3, f"RunTask answered {arns}"
    for arn in arns:
        wait_for(
            f"{arn}'s STOPPED event",
            lambda a=arn: any(d["lastStatus"] == "STOPPED" for d in api.details(a)),
        )
        statuses = [d["lastStatus"] for d in api.details(arn)]
        assert statuses[0] == "PROVISIONING" and "STOPPED" in statuses, (arn, statuses)


@pytest.mark.parametrize("count", [0, 11])
def test_run_task_refuses_a_count_outside_1_to_10_and_starts_nothing(api: Api, count: int) -> None:
    # GIVEN a count ECS does not allow; WHEN a task is run with it
    error = error_of(lambda: api.client.run_task(cluster="c", taskDefinition="worker", count=count))
    # THEN ECS refuses the call, and no task was started
    assert error["Error"]["Code"] == "InvalidParameterException", (count, error["Error"])
    assert api.ecs.tasks == {}, f"count={count} started tasks"


def test_a_repeated_run_task_with_a_client_token_returns_the_same_tasks(api: Api) -> None:
    # GIVEN a RunTask of 3 tasks with a clientToken
    params = {"cluster": "c", "taskDefinition": "sleeper", "count": 3, "clientToken": "tok-1"}
    first = [t["taskArn"] for t in api.client.run_task(**params)["tasks"]]
    # WHEN the identical request is sent again
    again = [t["taskArn"] for t in api.client.run_task(**params)["tasks"]]
    # THEN the same three tasks come back, and no more were started
    assert again == first, f"first {first}, again {again}"
    assert len(api.ecs.tasks) == 3, f"{len(api.ecs.tasks)} tasks started"


def test_a_client_token_reused_with_other_parameters_conflicts_naming_its_tasks(api: Api) -> None:
    # GIVEN a RunTask of 2 tasks with a clientToken
    first = api.client.run_task(cluster="c", taskDefinition="sleeper", count=2, clientToken="t")
    arns = sorted(t["taskArn"] for t in first["tasks"])
    # WHEN the token is used again with another count
    error = error_of(
        lambda: api.client.run_task(cluster="c", taskDefinition="sleeper", count=3, clientToken="t")
    )
    # THEN ECS's ConflictException, naming the tasks the token already started
    assert error["Error"]["Code"] == "ConflictException", error["Error"]
    assert sorted(error.get("resourceIds") or []) == arns, error


def test_run_task_takes_a_launch_token_per_task_and_throttles_rather_than_start_a_part(
    tmp_path: Path,
) -> None:
    # GIVEN a local ECS allowing bursts of 5 launches (and almost no refill)
    with served(tmp_path, launch_rate=0.001, launch_burst=5) as api:
        # WHEN 3 tasks are run, then 3 more (only 2 launch tokens are left), then 2
        api.client.run_task(cluster="c", taskDefinition="worker", count=3)
        error = error_of(lambda: api.client.run_task(cluster="c", taskDefinition="worker", count=3))
        after_throttle = len(api.ecs.tasks)
        last = api.client.run_task(cluster="c", taskDefinition="worker", count=2)["tasks"]
        # THEN the second call is throttled whole (no partial set), and the 2 left still launch
        assert error["Error"]["Code"] == "ThrottlingException", error["Error"]
        assert after_throttle == 3, f"{after_throttle} tasks after the throttled call"
        assert len(last) == 2, last


# ---- ListClusters, DescribeClusters ------------------------------------------------------------


def cluster_arn(name: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"


def test_list_clusters_lists_every_cluster_the_stack_made(api: Api) -> None:
    # GIVEN a local ECS with clusters c and other; WHEN its clusters are listed
    answer = api.client.list_clusters()
    # THEN both, by ARN, in the order they were made
    assert answer["clusterArns"] == [cluster_arn("c"), cluster_arn("other")], answer


def test_the_list_clusters_paginator_walks_every_page(api: Api) -> None:
    # GIVEN two clusters; WHEN boto3's paginator lists them one a page
    pages = list(
        api.client.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 1})
    )
    # THEN two pages, one cluster each
    assert [p["clusterArns"] for p in pages] == [[cluster_arn("c")], [cluster_arn("other")]], pages


def test_describe_clusters_shows_a_known_cluster_active_with_its_running_tasks(api: Api) -> None:
    # GIVEN a running task on cluster c
    arn = run_sleeper(api)
    wait_for("RUNNING", lambda: api.ecs.tasks[arn].last_status == "RUNNING")
    # WHEN c is described, by name and by ARN
    answer = api.client.describe_clusters(clusters=["c", cluster_arn("c")])
    # THEN it is ACTIVE, counts its running task, and nothing failed
    assert answer["failures"] == [], answer["failures"]
    for cluster in answer["clusters"]:
        assert (cluster["clusterName"], cluster["status"]) == ("c", "ACTIVE"), cluster
        assert cluster["runningTasksCount"] == 1, cluster


def test_describe_clusters_reports_an_unknown_cluster_as_missing(api: Api) -> None:
    # GIVEN a cluster name the local ECS does not know; WHEN it is described with a known one
    answer = api.client.describe_clusters(clusters=["nowhere", "other"])
    # THEN the known one is described and the unknown one is a MISSING failure, by ARN
    assert [c["clusterName"] for c in answer["clusters"]] == ["other"], answer["clusters"]
    assert answer["failures"] == [{"arn": cluster_arn("nowhere"), "reason": "MISSING"}], answer


# ---- what else boto3 reads ---------------------------------------------------------------------


def test_every_answer_carries_a_request_id_that_boto3_reports(api: Api) -> None:
    # GIVEN a call that succeeds and one that fails
    listed = api.client.list_tasks(cluster="c")
    error = error_of(lambda: api.client.list_tasks(cluster="nowhere"))
    # WHEN boto3 reads their metadata; THEN each has its own request id, as AWS answers have
    ids = [listed["ResponseMetadata"].get("RequestId"), error["ResponseMetadata"].get("RequestId")]
    assert all(ids) and ids[0] != ids[1], f"request ids {ids}"


def test_a_server_exception_comes_with_status_500_as_on_ecs(api: Api) -> None:
    # GIVEN a local ECS shutting down (it starts nothing more)
    api.ecs.closed.set()
    # WHEN a task is run
    error = error_of(lambda: api.client.run_task(cluster="c", taskDefinition="worker"))
    # THEN ECS's server-side error, with the status boto3's retry rules expect of it
    assert error["Error"]["Code"] == "ServerException", error["Error"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500, error["ResponseMetadata"]
