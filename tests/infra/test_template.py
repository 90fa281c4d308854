"""Infrastructure: the template lints, wires real handlers, uses the layer, and is least-privilege."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from jobtracker.adapters.models import KINDS, JobRecord
from jobtracker_local.handlers import load_handler
from jobtracker_local.template import load

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools" / "bin"


def load_template() -> dict[str, Any]:
    return load()


TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
FUNCTIONS = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::Function"}


def tool(name: str) -> str:
    path = TOOLS / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: run `make tools` (the test command does)")
    return found


def test_sam_validate_lint_is_clean() -> None:
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1")
    result = subprocess.run(
        [tool("sam"), "validate", "--lint", "-t", "template.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [tool("cfn-lint"), "template.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_handler_resolves_to_a_real_function(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    code_uri, handler = props["CodeUri"], props["Handler"]
    assert (ROOT / code_uri).is_dir()
    fn = load_handler(code_uri, handler)
    assert inspect.isfunction(fn) or callable(fn)
    assert len(inspect.signature(fn).parameters) == 2  # (event, context)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_uses_the_common_layer_and_no_boto_in_handlers(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    layers = props.get("Layers") or TEMPLATE["Globals"]["Function"]["Layers"]
    assert {"Ref": "CommonLayer"} in layers
    source = (ROOT / props["CodeUri"] / "app.py").read_text()
    assert "import boto3" not in source and "pynamodb" not in source
    # nothing copied into a function folder: one app.py, the shared code comes from the layer
    files = [p.name for p in (ROOT / props["CodeUri"]).iterdir() if p.suffix == ".py"]
    assert files == ["app.py"]


def test_layer_is_built_by_sam_from_the_shared_package() -> None:
    layer = RESOURCES["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == TEMPLATE["Globals"]["Function"]["Runtime"]
    content = ROOT / layer["Properties"]["ContentUri"]
    assert (content / "jobtracker" / "__init__.py").exists()
    assert (content / "requirements.txt").exists()


def test_the_layer_installs_every_runtime_dependency_but_the_sdk() -> None:
    # GIVEN the package's runtime dependencies and what the layer installs
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    content = ROOT / RESOURCES["CommonLayer"]["Properties"]["ContentUri"]
    lines = (content / "requirements.txt").read_text().splitlines()
    installed = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    # THEN the layer has each one, with the same bounds (the Lambda runtime brings boto3)
    wanted = {d for d in project["dependencies"] if not d.startswith("boto3")}
    assert installed == wanted, "layers/common/requirements.txt and pyproject.toml disagree"


def test_runtime_is_current_and_arm64() -> None:
    glob = TEMPLATE["Globals"]["Function"]
    assert glob["Runtime"] in ("python3.12", "python3.13")
    assert glob["Architectures"] == ["arm64"]


def _managed(name: str) -> list[dict[str, Any]]:
    res = RESOURCES[name]
    assert res["Type"] == "AWS::IAM::ManagedPolicy", name  # ours, never a broad AWS-managed one
    return list(res["Properties"]["PolicyDocument"]["Statement"])


def _statements() -> list[tuple[str, dict[str, Any]]]:
    """Every IAM statement with its owner; a function owns the managed policies it attaches."""
    out = []
    for name, res in RESOURCES.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            out += [(name, s) for s in _managed(name)]
        for policy in props.get("Policies", []) or []:
            if isinstance(policy, dict) and "Statement" in policy:
                out += [(name, s) for s in policy["Statement"]]
            elif res["Type"] == "AWS::Serverless::Function":
                assert isinstance(policy, dict) and set(policy) == {"Ref"}, (name, policy)
                out += [(name, s) for s in _managed(policy["Ref"])]
        for policy in props.get("Policies", []) if res["Type"] == "AWS::IAM::Role" else []:
            out += [(name, s) for s in policy["PolicyDocument"]["Statement"]]
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


# Actions IAM gives no resource type: "*" is the only resource AWS accepts for them.
NO_RESOURCE_TYPE = frozenset({"scheduler:ListSchedules"})


def test_no_wildcard_actions_or_resources() -> None:
    statements = _statements()
    assert statements
    for owner, st in statements:
        for action in _actions(st):
            assert "*" not in action, (owner, action)
        resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        for r in resources:
            # "*" only in a statement of nothing but such actions, held to the stack's region
            assert r != "*" or (
                set(_actions(st)) <= NO_RESOURCE_TYPE
                and st["Condition"]["StringEquals"]["aws:RequestedRegion"] == {"Ref": "AWS::Region"}
            ), (owner, st)


JOB_SCHEDULE_ARNS = {
    "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}"
    ":schedule/${JobSchedules}/*"
}


def test_only_the_api_and_create_job_touch_schedules_and_only_in_the_job_schedules_group() -> None:
    # GIVEN every IAM statement of the stack
    held: dict[str, set[str]] = {}
    for owner, st in _statements():
        for action in (a for a in _actions(st) if a.startswith("scheduler:")):
            held.setdefault(owner, set()).add(action)
            # THEN each schedule action but ListSchedules (no resource type) is on the group only
            if action != "scheduler:ListSchedules":
                assert st["Resource"] == JOB_SCHEDULE_ARNS, (owner, action)
    # AND the API reads, pauses and resumes; create_job reads (run now); nothing else touches one
    assert held == {
        "ApiFunction": {
            "scheduler:ListSchedules",
            "scheduler:GetSchedule",
            "scheduler:UpdateSchedule",
        },
        "CreateJobFunction": {"scheduler:ListSchedules", "scheduler:GetSchedule"},
    }, held
    for function in held:
        env = FUNCTIONS[function]["Properties"]["Environment"]["Variables"]
        assert env["SCHEDULE_GROUP"] == {"Ref": "JobSchedules"}, function


def test_every_job_schedule_is_in_the_group_and_runs_as_the_schedule_role() -> None:
    # the reconciler's schedule is not a job schedule: it is in no group of ours
    for event in _schedule_events():
        assert event["Properties"]["GroupName"] == {"Ref": "JobSchedules"}
        assert event["Properties"]["RoleArn"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}, (
            "a job schedule with another role could not be paused or resumed by the API"
        )
    env = FUNCTIONS["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SCHEDULE_ROLE_ARN"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}


def test_the_schedule_role_is_scheduler_s_for_this_account_and_invokes_create_job_only() -> None:
    role = RESOURCES["ScheduleRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = {
        a: st["Resource"]
        for owner, st in _statements()
        if owner == "ScheduleRole"
        for a in _actions(st)
    }
    assert granted == {
        "lambda:InvokeFunction": {"Fn::GetAtt": ["CreateJobFunction", "Arn"]},
        "sqs:SendMessage": {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]},
    }, granted


def _schedule_events() -> list[dict[str, Any]]:
    """The job schedules: ScheduleV2 events of create_job, which takes their ticks."""
    events = FUNCTIONS["CreateJobFunction"]["Properties"]["Events"].values()
    return [e for e in events if e["Type"] == "ScheduleV2"]


def test_run_task_only_on_our_task_definition_family_in_our_cluster() -> None:
    for owner, st in _statements():
        if "ecs:RunTask" in _actions(st):
            assert "task-definition/${AWS::StackName}-worker:*" in json.dumps(st["Resource"]), owner
            assert st["Condition"]["ArnEquals"]["ecs:cluster"] == {
                "Fn::GetAtt": ["JobCluster", "Arn"]
            }
        if set(_actions(st)) & {"ecs:StopTask", "ecs:DescribeTasks"}:
            assert "task/${JobCluster}/*" in json.dumps(st["Resource"]), owner
            assert "ecs:cluster" in st["Condition"]["ArnEquals"], owner
    family = RESOURCES["WorkerTaskDefinition"]["Properties"]["Family"]
    assert family == {"Fn::Sub": "${AWS::StackName}-worker"}


def test_pass_role_only_for_task_roles_to_ecs_tasks_and_the_schedule_role_to_scheduler() -> None:
    task_roles = [
        {"Fn::GetAtt": ["TaskRole", "Arn"]},
        {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]},
    ]
    passers: dict[str, list[str]] = {}
    for owner, st in _statements():
        if "iam:PassRole" not in _actions(st):
            continue
        service = st["Condition"]["StringEquals"]["iam:PassedToService"]
        passers.setdefault(service, []).append(owner)
        if service == "ecs-tasks.amazonaws.com":
            assert st["Resource"] == task_roles, owner
        else:
            # pause and resume resend the schedule's role: that one role, to Scheduler only
            assert service == "scheduler.amazonaws.com", (owner, service)
            assert st["Resource"] == {"Fn::GetAtt": ["ScheduleRole", "Arn"]}, owner
    assert len(passers["ecs-tasks.amazonaws.com"]) >= 2  # create_job, retry_decider launch tasks
    assert passers["scheduler.amazonaws.com"] == ["ApiFunction"], passers


def test_dynamodb_only_on_the_table_and_its_indexes() -> None:
    for owner, st in _statements():
        if any(a.startswith("dynamodb:") for a in _actions(st)):
            text = json.dumps(st["Resource"])
            assert "JobsTable" in text, owner


def test_functions_have_only_their_own_permissions() -> None:
    def actions_of(fn: str) -> set[str]:
        return {a for owner, st in _statements() if owner == fn for a in _actions(st)}

    assert "ecs:RunTask" not in actions_of("ApiFunction")
    assert "ecs:RunTask" not in actions_of("OnTaskStateFunction")
    # create_job reads a schedule's runs (a tick's overlap policy), nothing else
    assert [
        st["Resource"]
        for owner, st in _statements()
        if owner == "CreateJobFunction" and "dynamodb:Query" in _actions(st)
    ] == [{"Fn::Sub": "${JobsTable.Arn}/index/by_schedule"}]
    assert not any(a.startswith("ecs:") for a in actions_of("NotifierFunction"))
    for fn in (
        "CreateJobFunction",
        "RetryDeciderFunction",
        "ReconcilerFunction",
    ):
        assert {"ecs:RunTask", "ecs:TagResource", "iam:PassRole"} <= actions_of(fn), fn
    assert "ecs:DescribeTasks" in actions_of("ReconcilerFunction")


def test_every_route_requires_iam_auth() -> None:
    api = RESOURCES["JobsApi"]["Properties"]["Auth"]
    assert api["DefaultAuthorizer"] == "AWS_IAM" and api["EnableIamAuthorizer"] is True
    routes: dict[str, set[tuple[str, str]]] = {}
    for name, fn in FUNCTIONS.items():
        for event in (fn["Properties"].get("Events") or {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["ApiId"] == {"Ref": "JobsApi"}
                assert "Auth" not in event["Properties"]  # nobody opts a route out
                props = event["Properties"]
                routes.setdefault(name, set()).add((props["Method"], props["Path"]))
    # The routes are the resolvers' (edge/routes.py): each function's as its router serves them
    from jobtracker.edge.api import routes_of
    from jobtracker.edge.routes import queries, submissions

    expected = {"CreateJobFunction": routes_of(submissions), "ApiFunction": routes_of(queries)}
    assert routes == expected, routes


def test_every_queue_and_event_target_has_a_dead_letter_queue() -> None:
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::SQS::Queue" and "DeadLetter" not in name:
            assert "RedrivePolicy" in res["Properties"], name
    rule = FUNCTIONS["OnTaskStateFunction"]["Properties"]["Events"]["TaskStateChange"]["Properties"]
    assert rule["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]}
    stream = RESOURCES["NotifierStreamMapping"]["Properties"]
    assert stream["DestinationConfig"]["OnFailure"]["Destination"]


def test_event_rule_selects_only_our_tasks_and_useful_states() -> None:
    pattern = FUNCTIONS["OnTaskStateFunction"]["Properties"]["Events"]["TaskStateChange"][
        "Properties"
    ]["Pattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail"]["clusterArn"] == [{"Fn::GetAtt": ["JobCluster", "Arn"]}]
    assert pattern["detail"]["startedBy"] == [{"prefix": "job-"}]
    assert set(pattern["detail"]["lastStatus"]) <= {"PENDING", "RUNNING", "STOPPED"}


def _models_table() -> dict[str, Any]:
    """The table the pynamodb models describe, in the template's (CloudFormation's) words."""
    schema = JobRecord._get_schema()

    def keys(key_schema: list[dict[str, str]]) -> list[dict[str, str]]:
        return sorted(key_schema, key=lambda k: k["KeyType"])  # HASH first, as declared

    indexes = [
        {"IndexName": i["index_name"], "KeySchema": keys(i["key_schema"])}
        | {"Projection": i["projection"]}
        for i in schema["global_secondary_indexes"]
    ]
    ttls = {m._ttl_attribute().attr_name for m in KINDS if m._ttl_attribute() is not None}
    return {
        "KeySchema": keys(schema["key_schema"]),
        "AttributeDefinitions": schema["attribute_definitions"],
        "GlobalSecondaryIndexes": indexes,
        "TTL": ttls,
        "StreamViewType": JobRecord.Meta.stream_view_type,
        "BillingMode": JobRecord.Meta.billing_mode,
    }


def test_table_matches_the_data_access_models() -> None:
    # GIVEN the table the template declares and the one the pynamodb models describe
    table = RESOURCES["JobsTable"]["Properties"]
    model = _models_table()
    # THEN keys, attribute types, indexes, projections, TTL, stream and billing agree
    assert table["KeySchema"] == model["KeySchema"], "the table's key"
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(
        model["AttributeDefinitions"], key=str
    ), "the key attributes and their types"
    declared = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    created = {i["IndexName"]: i for i in model["GlobalSecondaryIndexes"]}
    assert declared == created, "template.yaml's indexes and the models' disagree"
    assert model["TTL"] == {table["TimeToLiveSpecification"]["AttributeName"]}, "the TTL attribute"
    assert table["StreamSpecification"]["StreamViewType"] == model["StreamViewType"]
    assert table["BillingMode"] == model["BillingMode"]
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert table["SSESpecification"]["SSEEnabled"] is True


def test_indexes_project_only_keys() -> None:
    # Every index is read for keys only (the items are fetched by BatchGetItem): an index that
    # projected more would pay for the item again on every write.
    for index in RESOURCES["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]:
        assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}, index["IndexName"]


def test_no_secrets_in_container_environment() -> None:
    env = RESOURCES["WorkerTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]
    for var in env:
        assert not any(
            word in var["Name"].upper() for word in ("SECRET", "PASSWORD", "TOKEN", "KEY")
        )


ENV_DEFINITIONS = ("JOB_DEFAULTS", "JOB_DEFINITIONS")


def _sub_text(variable: str) -> str:
    """A global environment variable's !Sub text, as the template writes it."""
    sub = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"][variable]["Fn::Sub"]
    text = sub[0] if isinstance(sub, list) else sub
    return str(text).replace("${AssignPublicIp}", "false").replace("${StopTimeoutSeconds}", "60")


def template_job_definitions() -> dict[str, Any]:
    """The job definitions as the functions read them (placeholders filled in)."""
    import re

    from jobtracker.config import load_settings

    env = {v: re.sub(r"\$\{[A-Za-z0-9.]+\}", "x", _sub_text(v)) for v in ENV_DEFINITIONS}
    return dict(load_settings({"TABLE_NAME": "t", **env}).job_definitions)


def test_job_definitions_config_is_valid_json_shape() -> None:
    assert {"demo", "demo-limited"} <= set(template_job_definitions())


def raw_job_definitions() -> dict[str, dict[str, Any]]:
    """Each job definition over the shared defaults as the template writes them, each
    `${Resource}` placeholder kept as "ref:Resource" (so a definition says which task
    definition it launches)."""
    import re

    defaults, definitions = (
        json.loads(re.sub(r"\$\{([A-Za-z0-9.]+)\}", r"ref:\1", _sub_text(v)))
        for v in ENV_DEFINITIONS
    )
    return {name: {**defaults, **entry} for name, entry in definitions.items()}


def _launch_policy(action: str) -> str:
    statements = RESOURCES["LaunchJobTasksPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    return json.dumps([st["Resource"] for st in statements if st["Action"] == action])


@pytest.mark.parametrize("name", sorted(raw_job_definitions()))
def test_every_job_definition_has_its_task_definition_grants_and_size(name: str) -> None:
    # GIVEN a job definition of JOB_DEFINITIONS (README, Deploy: adding a definition)
    definition = raw_job_definitions()[name]
    # THEN it names a task definition of this template, with its container
    ref = str(definition["task_definition"]).removeprefix("ref:")
    task = RESOURCES.get(ref, {})
    assert task.get("Type") == "AWS::ECS::TaskDefinition", f"{name}: no task definition {ref!r}"
    props = task["Properties"]
    containers = [c["Name"] for c in props["ContainerDefinitions"]]
    assert definition["container"] in containers, f"{name}: no container {definition['container']}"
    # AND the launchers may RunTask its family and pass its roles
    family = props["Family"]["Fn::Sub"]
    assert f"task-definition/{family}:*" in _launch_policy("ecs:RunTask"), f"{name}: no RunTask"
    passable = _launch_policy("iam:PassRole")
    for role in ("TaskRoleArn", "ExecutionRoleArn"):
        assert json.dumps(props[role]) in passable, f"{name}: its {role} may not be passed"
    # AND it is priced at the task definition's size (cpu, memory, architecture)
    size = (
        str(definition.get("cpu")),
        str(definition.get("memory")),
        definition.get("architecture"),
    )
    expected = (props["Cpu"], props["Memory"], props["RuntimePlatform"]["CpuArchitecture"])
    assert size == expected, f"{name} is priced at {size}, its task definition is {expected}"


def test_samconfig_has_working_defaults() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    default = config["default"]
    assert default["build"]["parameters"]
    assert default["deploy"]["parameters"]["capabilities"]
    assert default["validate"]["parameters"]["lint"] is True


def test_every_log_group_has_a_retention() -> None:
    # functions log to one group with retention (their default groups would keep logs forever)
    logging = TEMPLATE["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogGroup"] == {"Ref": "FunctionLogGroup"}
    for name, res in RESOURCES.items():
        if res["Type"] == "AWS::Logs::LogGroup":
            assert res["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        if res["Type"] == "AWS::Serverless::Function":
            assert "LoggingConfig" not in res["Properties"], f"{name} logs elsewhere"


def test_alarm_topic_key_lets_cloudwatch_publish() -> None:
    topic = RESOURCES["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}, "alias/aws/sns cannot be used"
    statements = RESOURCES["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert cloudwatch and set(cloudwatch[0]["Action"]) >= {"kms:Decrypt", "kms:GenerateDataKey"}
    assert cloudwatch[0]["Condition"]["StringEquals"]["aws:SourceAccount"]


def test_the_reconciler_never_runs_twice_at_once() -> None:
    assert FUNCTIONS["ReconcilerFunction"]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_the_worker_image_is_chosen_and_the_worker_is_its_init_group() -> None:
    # No stock default image: one would run every job as a no-op success.
    assert "Default" not in TEMPLATE["Parameters"]["WorkerImage"]
    dockerfile = (ROOT / "worker" / "Dockerfile").read_text()
    assert '["/usr/bin/tini", "-g", "--"' in dockerfile, "tini must signal the process group"


@pytest.mark.parametrize("name", ["OnTaskStateFunction", "CreateJobFunction"])
def test_asynchronously_invoked_functions_never_drop_what_they_fail_on(name: str) -> None:
    # Lambda retries an asynchronous invocation twice, then drops it unless it has somewhere
    # to go: the alarmed event dead-letter queue, which RedriveFunction reads.
    config = FUNCTIONS[name]["Properties"]["EventInvokeConfig"]
    destination = config["DestinationConfig"]["OnFailure"]
    assert destination == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]},
    }
    alarm = RESOURCES["EventDeadLetterAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["EventDeadLetterQueue", "QueueName"]}
    redrive = FUNCTIONS["RedriveFunction"]["Properties"]["Environment"]["Variables"]
    assert redrive["EVENT_DLQ_URL"] == {"Ref": "EventDeadLetterQueue"}


def test_schedule_ticks_that_cannot_be_delivered_land_in_the_same_queue() -> None:
    events = _schedule_events()
    assert events, "the template has job schedules"
    for event in events:
        assert event["Properties"]["DeadLetterConfig"] == {
            "Arn": {"Fn::GetAtt": ["EventDeadLetterQueue", "Arn"]}
        }


def test_every_launcher_may_arm_timers_and_their_consumer_may_take_them() -> None:
    # GIVEN the functions that launch tasks (each launch sends its attempt's timer), by the
    # launch policy they share
    def grants(fn: str, action: str) -> str:
        return json.dumps(
            [st["Resource"] for o, st in _statements() if o == fn and action in _actions(st)]
        )

    launchers = {
        name
        for name, fn in FUNCTIONS.items()
        if {"Ref": "LaunchJobTasksPolicy"} in fn["Properties"].get("Policies", [])
    }
    assert launchers >= {"CreateJobFunction", "RetryDeciderFunction", "ReconcilerFunction"}
    assert "DeadlineQueue" in grants("LaunchJobTasksPolicy", "sqs:SendMessage")
    # THEN the launch policy they share may send to the deadline queue, every function is told
    # its URL, and the queue's consumer may receive and delete from it
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["DEADLINE_QUEUE_URL"] == {"Ref": "DeadlineQueue"}
    mapping = RESOURCES["DeadlineQueueMapping"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["DeadlineQueue", "Arn"]}
    consumer = mapping["FunctionName"]["Ref"]
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage"):
        assert "DeadlineQueue" in grants(consumer, action), action


@pytest.mark.parametrize(
    ("policy", "methods"), [("ApiCallerPolicy", "*"), ("ApiReaderPolicy", "GET")]
)
def test_the_stack_outputs_a_policy_for_callers_of_its_api_only(policy: str, methods: str) -> None:
    # GIVEN the managed policy the stack offers callers
    (statement,) = RESOURCES[policy]["Properties"]["PolicyDocument"]["Statement"]
    # THEN it allows only invoking this stack's API (every method, or GET only), and the stack
    # outputs its ARN for a caller to attach
    assert statement["Action"] == "execute-api:Invoke", statement
    assert statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}"
        f":${{JobsApi}}/*/{methods}/*"
    }, statement["Resource"]
    assert TEMPLATE["Outputs"][f"{policy}Arn"]["Value"] == {"Ref": policy}


def test_the_readme_explains_every_deploy_parameter_and_output() -> None:
    # GIVEN the Deploy section of the README
    readme = (ROOT / "README.md").read_text()
    deploy = readme[readme.index("## Deploy") :].split("\n## ", 1)[0]
    # THEN every parameter sam deploy --guided asks for, and every output, is named there
    missing = [
        name
        for name in [*TEMPLATE["Parameters"], *TEMPLATE["Outputs"]]
        if f"`{name}`" not in deploy
    ]
    assert not missing, f"the README's Deploy section does not explain {missing}"


# ---- issue 24's infrastructure findings (checkov on the SAM-translated template) -------------

ASYNC_SOURCES = {"ScheduleV2", "Schedule", "EventBridgeRule", "CloudWatchEvent", "SNS", "S3"}


def _checkov_skips(resource: dict[str, Any]) -> dict[str, str]:
    skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {s["id"]: s.get("comment", "") for s in skips}


def test_every_queue_is_encrypted_at_rest_explicitly() -> None:
    queues = {k: v for k, v in RESOURCES.items() if v["Type"] == "AWS::SQS::Queue"}
    assert queues
    for name, queue in queues.items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), name


def test_the_api_logs_every_request_as_json_for_the_log_retention() -> None:
    settings = RESOURCES["JobsApi"]["Properties"]["AccessLogSettings"]
    (group,) = settings["DestinationArn"]["Fn::GetAtt"][:1]
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    line = json.loads(settings["Format"])  # one JSON object a request
    assert {"requestId", "caller", "route", "status", "integrationError"} <= set(line), line


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_reserves_concurrency_or_says_what_bounds_it(name: str) -> None:
    fn = FUNCTIONS[name]
    reserved = fn["Properties"].get("ReservedConcurrentExecutions")
    why = _checkov_skips(fn).get("CKV_AWS_115", "")
    assert reserved or len(why) > 20, f"{name}: no reserved concurrency and no reason given"


def test_every_queue_a_function_consumes_bounds_its_concurrency() -> None:
    # (what the functions without a reservation say bounds them)
    mappings = [
        (n, r["Properties"])
        for n, r in RESOURCES.items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and "Queue" in r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
    ]
    assert mappings
    for name, props in mappings:
        assert props.get("ScalingConfig", {}).get("MaximumConcurrency"), name


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_asynchronously_invoked_function_has_an_on_failure_destination(name: str) -> None:
    fn = FUNCTIONS[name]["Properties"]
    sources = {e["Type"] for e in fn.get("Events", {}).values()}
    if not sources & ASYNC_SOURCES:
        return  # invoked synchronously only (HTTP, queues, the stream, by hand)
    destination = fn["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"]
    queue = destination["Fn::GetAtt"][0]
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", name
    alarmed = [
        a
        for a in RESOURCES.values()
        if a["Type"] == "AWS::CloudWatch::Alarm"
        and a["Properties"].get("Dimensions", [{}])[0].get("Value")
        == {"Fn::GetAtt": [queue, "QueueName"]}
    ]
    assert alarmed, f"{name}'s failures land on {queue}, which nothing alarms on"
