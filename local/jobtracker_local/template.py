"""Read template.yaml: functions, their event sources and the resources they use, with the
intrinsic functions resolved against local values. The local stack wires itself from this, so
what runs locally is what deploys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML loader that turns short-form intrinsics (!Ref, !GetAtt, !Sub…) into long form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CfnLoader.add_multi_constructor("!", _intrinsic)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return dict(yaml.load(path.read_text(), Loader=CfnLoader))


@dataclass
class Resolver:
    """Resolves Ref / GetAtt / Sub / Join / If / Equals / Not with local physical values."""

    template: dict[str, Any]
    refs: dict[str, Any] = field(default_factory=dict)  # logical id or parameter -> Ref value
    attrs: dict[tuple[str, str], Any] = field(default_factory=dict)  # (id, attr) -> value
    pseudo: dict[str, str] = field(default_factory=dict)

    def parameter_defaults(self) -> dict[str, Any]:
        return {k: v.get("Default") for k, v in self.template.get("Parameters", {}).items()}

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self.resolve(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return self._ref(arg)
        if key == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.attrs[(logical, attr)]
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            local = {k: self.resolve(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_var(m.group(1), local)), text)
        if key == "Fn::Join":
            sep, items = arg
            return sep.join(str(i) for i in self.resolve(items))
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Equals":
            a, b = self.resolve(arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.resolve(arg[0])
        return {key: self.resolve(arg)}

    def _ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        return self.refs[name]

    def _sub_var(self, name: str, local: dict[str, Any]) -> Any:
        if name in local:
            return local[name]
        if "." in name and not name.startswith("AWS::"):
            logical, attr = name.split(".", 1)
            return self.attrs[(logical, attr)]
        return self._ref(name)


@dataclass
class Function:
    logical_id: str
    code_uri: str
    handler: str
    environment: dict[str, str]
    events: dict[str, Any]
    timeout: int
    on_failure: str | None = None  # EventInvokeConfig's OnFailure destination (a queue ARN)
    reserved_concurrency: int | None = None  # ReservedConcurrentExecutions


def functions(template: dict[str, Any], resolver: Resolver) -> dict[str, Function]:
    glob = template.get("Globals", {}).get("Function", {})
    base_env = glob.get("Environment", {}).get("Variables", {})
    out = {}
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res["Properties"]
        env = dict(base_env)
        env.update(props.get("Environment", {}).get("Variables", {}))
        out[logical] = Function(
            logical_id=logical,
            code_uri=props["CodeUri"],
            handler=props["Handler"],
            environment={k: str(resolver.resolve(v)) for k, v in env.items()},
            events=props.get("Events") or {},
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            on_failure=_on_failure(props, resolver),
            reserved_concurrency=_int_or_none(props.get("ReservedConcurrentExecutions")),
        )
    return out


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _on_failure(props: dict[str, Any], resolver: Resolver) -> str | None:
    destination = (
        props.get("EventInvokeConfig", {}).get("DestinationConfig", {}).get("OnFailure", {})
    )
    return str(resolver.resolve(destination["Destination"])) if destination else None


def resources_of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}
