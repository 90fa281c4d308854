"""moto's server as the local stack runs it, in a process of its own:

    python -m jobtracker_local.moto_server PORT

The same application as `python -m moto.server`, minus costs that were much of its time under
a burst (profiled with py-spy):
- werkzeug's development server closes every connection, so each call paid a TCP connect and
  a new thread on both sides; waitress keeps connections alive on a fixed pool of threads;
- the lookup of which service a request is for listed moto's package folder on every request
  while holding the dispatcher's lock; the answer for a given host never changes.

And one fix: moto checks a write's condition and then applies it without a lock, so two writes
to one item on two threads could both pass their conditions (seen: a late RUNNING event put a
SUCCEEDED job back to RUNNING, its guard checked against the item before STOPPED was applied).
DynamoDB applies each write atomically; here DynamoDB's requests are taken one at a time.

Then costs found by profiling the whole stack under a burst (py-spy, `--gil`), each answer the
same byte for byte:
- every item in a DynamoDB answer went through botocore's shapes attribute by attribute, ten
  alias lookups for each AttributeValue (a quarter of moto's time): plain ones are copied;
- every event a rule delivered built a JSONPath parser (a yacc table) for each input path;
- every request listed its handler class's methods with `inspect` to find its action;
- every UpdateItem parsed its update expression twice; the functions send a few dozen distinct
  ones (values are placeholders), and moto's validator works on a deep copy of the tree;
- then UpdateItem was still 45% of moto's time: its validation walked the tree ten times
  asking each node's processor through ABC isinstance checks, three walks checked what only the
  expression decides, the tree was copied through deepcopy's reduce protocol, and each condition
  was lexed and parsed twice (faster_update_validation, condition_parsed_once: one job's
  DynamoDB requests replayed in-process went from 19.7 to 10.1 ms).
"""

from __future__ import annotations

import atexit
import copy
import json
import os
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import jsonpath_ng.ext
import moto.core.responses
from moto import backends
from moto.core.common_models import BaseModel
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.parsing import ast_nodes as typeless_ast_nodes
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
    UpdateExpressionParser,
)
from moto.dynamodb.parsing.validators import UpdateExpressionValidator
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve

from jobtracker_local.runtime import tune_process

ast_nodes: Any = typeless_ast_nodes  # the module declares `type: ignore`: its names are untyped


class Dispatcher(DomainDispatcherApplication):
    @cache  # noqa: B019 (one dispatcher for the process's lifetime)
    def get_backend_for_host(self, host: str | None) -> Any:
        return super().get_backend_for_host(host)


def atomic_dynamodb() -> None:
    """Every DynamoDB request of this process, one at a time (see above)."""
    one_at_a_time = threading.Lock()
    call_action = DynamoHandler.call_action

    def serialized(self: DynamoHandler) -> Any:
        with one_at_a_time:
            return call_action(self)

    DynamoHandler.call_action = serialized  # type: ignore[method-assign]


STRINGS = ("S", "N")
STRING_SETS = ("SS", "NS")
FLAGS = ("BOOL", "NULL")


def plain_attribute(value: Any) -> Any:
    """A DynamoDB AttributeValue (as moto's models give it: a dict of one type) as botocore's
    shapes serialize it; None for what they would change (binary is base64-encoded)."""
    if type(value) is not dict or len(value) != 1:
        return None
    ((kind, inner),) = value.items()
    if kind in STRINGS:
        return value if type(inner) is str else None
    if kind in FLAGS:
        return value if type(inner) is bool else None
    if kind in STRING_SETS:
        ok = type(inner) is list and all(type(v) is str for v in inner)
        return {kind: list(inner)} if ok else None
    if kind == "M" and type(inner) is dict:
        members = {k: plain_attribute(v) for k, v in inner.items()}
        if all(type(k) is str for k in members) and None not in members.values():
            return {"M": members}
    if kind == "L" and type(inner) is list:
        items = [plain_attribute(v) for v in inner]
        if None not in items:
            return {"L": items}
    return None


def plain_dynamodb_items() -> None:
    """DynamoDB's AttributeValues serialized by plain_attribute when it can (see above)."""
    structure = BaseJSONSerializer._serialize_type_structure

    def serialize(
        self: BaseJSONSerializer, serialized: Any, value: Any, shape: Any, key: str
    ) -> None:
        if key and shape.name == "AttributeValue":
            plain = plain_attribute(value)
            if plain is not None:
                serialized[self.get_serialized_name(shape, key)] = plain
                return
        structure(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize  # type: ignore[method-assign]


def cached_lookups() -> None:
    """What moto recomputed per request from inputs that never change (see above)."""
    # A parsed path is only read (find), never changed: one per distinct path.
    jsonpath_ng.ext.parse = lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    # Handler classes do not change once imported.
    moto.core.responses.method_names_from_class = cache(moto.core.responses.method_names_from_class)


MISSING = object()


def cached_isinstance(base: type) -> Callable[[type], bool]:
    """issubclass(t, base), remembered by type: moto's expression nodes are ABCs, whose
    isinstance check is a Python call (a tenth of moto's time under a burst)."""
    known: dict[type, bool] = {}

    def check(t: type) -> bool:
        answer = known.get(t)
        if answer is None:
            answer = known[t] = issubclass(t, base)
        return answer

    return check


# What faster_update_validation and condition_parsed_once replace (a test undoes them).
VALIDATION_PATCHED = [
    (UpdateExpressionParser, "make"),
    (ast_nodes.Node, "find_clauses"),
    (ast_nodes.DepthFirstTraverser, "traverse"),
    (validators, "deepcopy"),
    (UpdateExpressionValidator, "__init__"),
    (UpdateExpressionValidator, "validate"),
    (ConditionExpressionParser, "parse"),
    (ConditionExpressionParser, "_lex_condition_expression"),
]
ATOMS = (str, int, float, bool, type(None))


def tree_copier(node_type: Callable[[type], bool]) -> Callable[..., Any]:
    """copy.deepcopy, for the validator's copy of an expression's tree: nodes and their lists
    copied directly (deepcopy's generic reduce protocol was most of an UpdateItem's copying),
    anything else by deepcopy itself, in one memo (so parents point at the copies)."""

    def copy_of(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if memo is None:
            memo = {}
        t = type(value)
        if t in ATOMS:
            return value
        done = memo.get(id(value), MISSING)
        if done is not MISSING:
            return done
        if t is list:
            items: list[Any] = []
            memo[id(value)] = items
            items.extend(copy_of(v, memo) for v in value)
            return items
        if node_type(t):
            node = object.__new__(t)
            memo[id(value)] = node
            node.__dict__.update({k: copy_of(v, memo) for k, v in value.__dict__.items()})
            return node
        return copy.deepcopy(value, memo)

    return copy_of


def faster_update_validation() -> None:
    """moto validates an UpdateItem by walking the expression's tree ten times, and each walk
    asked every node its processor anew; three of the walks check only the expression, its
    names and the table's keys, which repeat from call to call. The same walks, answers and
    errors, at a fraction of the cost."""
    # A parsed update expression is only read (its clauses listed) or copied to validate: one
    # tree per distinct text (the functions send a few dozen; values are placeholders).
    parse_update = UpdateExpressionParser.make.__func__
    UpdateExpressionParser.make = classmethod(lru_cache(maxsize=1024)(parse_update))  # type: ignore[arg-type]
    node_type = cached_isinstance(ast_nodes.Node)
    expression_type = cached_isinstance(ast_nodes.Expression)
    function_type = cached_isinstance(ast_nodes.UpdateExpressionFunction)
    base_pre = ast_nodes.DepthFirstTraverser.pre_processing_of_child

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        clauses: list[Any] = []
        for child in self.children or []:
            t = type(child)
            if t in clause_types:
                clauses.append(child)
            elif expression_type(t) or function_type(t):
                clauses.extend(child.find_clauses(clause_types))
        return clauses

    def traverse(self: Any, root: Any) -> Any:
        # As DepthFirstTraverser.traverse_node_recursively: children first, each node replaced
        # in its parent by what the first matching processor returns.
        processing = tuple(self._processing_map().items())
        chosen: dict[type, Any] = {}
        pre = (
            None if type(self).pre_processing_of_child is base_pre else self.pre_processing_of_child
        )

        def visit(node: Any, child_id: int) -> Any:
            t = type(node)
            if not node_type(t):
                return node
            parent = node.parent
            if node.children is not None:
                for i, child in enumerate(node.children):
                    if pre is not None:
                        pre(node, i)
                    visit(child, i)
            processor = chosen.get(t, MISSING)
            if processor is MISSING:
                processor = chosen[t] = next((p for k, p in processing if issubclass(t, k)), None)
            if processor is not None:
                node = processor(node)
                node.parent = parent
                if parent:
                    parent.children[child_id] = node
            return node

        return visit(root, -1)

    ast_nodes.Node.find_clauses = find_clauses
    ast_nodes.DepthFirstTraverser.traverse = traverse
    validators.deepcopy = tree_copier(node_type)

    # The expression-only checks that passed, by (tree, names, table keys); the tree is the
    # parser's cached one (kept here, so its id is never another's).
    static_checks = 3  # ActionCount-, OverlappingPaths- and UpdateHashRangeKeyValidator
    passed: dict[tuple[Any, ...], Any] = {}
    init = UpdateExpressionValidator.__init__

    def remember(
        self: Any, expression: Any, expression_attribute_names: Any, *args: Any, **kwargs: Any
    ) -> None:
        init(self, expression, expression_attribute_names, *args, **kwargs)
        names = tuple(sorted((expression_attribute_names or {}).items()))
        self.static_key = (id(expression), names, tuple(self.table.table_key_attrs))
        self.tree = expression

    def validate(self: Any) -> Any:
        node = self.node_to_validate
        known = passed.get(self.static_key) is self.tree
        for processor in self.processors[static_checks if known else 0 :]:
            node = processor.traverse(node)
        if not known:
            if len(passed) > 4096:
                passed.clear()
            passed[self.static_key] = self.tree
        return node

    UpdateExpressionValidator.__init__ = remember  # type: ignore[method-assign]
    UpdateExpressionValidator.validate = validate  # type: ignore[method-assign]


def condition_parsed_once() -> None:
    """An UpdateItem's or PutItem's condition is parsed twice, once to check its names and
    values are used and once to apply it; the second time takes the first's answer (the same
    expression, names and values, in this request)."""
    parse = ConditionExpressionParser.parse
    last: list[tuple[Any, Any]] = [(None, None)]  # (key, (op, names found, values found))

    def parse_once(self: ConditionExpressionParser) -> Any:
        try:
            key = (
                self.condition_expression,
                json.dumps(self.expression_attribute_names, sort_keys=True),
                json.dumps(self.expression_attribute_values, sort_keys=True),
            )
        except (TypeError, ValueError):  # binary values: not remembered
            return parse(self)
        seen, answer = last[0]
        if seen != key:
            op = parse(self)
            found = (list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            last[0] = (key, (op, *found))
            return op
        op, names, values = answer
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    ConditionExpressionParser.parse = parse_once  # type: ignore[method-assign]

    # Lexing depends on the expression's text alone; a few dozen texts repeat. Each call gets
    # its own nodes (their children lists are the one mutable part).
    lex = ConditionExpressionParser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def lex_once(self: ConditionExpressionParser) -> Any:
        text = self.condition_expression
        nodes = lexed.get(text) if isinstance(text, str) else None
        if nodes is None:
            nodes = tuple(lex(self))
            if isinstance(text, str) and len(lexed) < 4096:
                lexed[text] = nodes
        return deque(node._replace(children=[]) for node in nodes)

    ConditionExpressionParser._lex_condition_expression = lex_once  # type: ignore[method-assign]


def untracked_models() -> None:
    """moto keeps every model object it ever makes in its class's `instances_tracked` (for its
    dashboard, /moto-api/data.json, which the stack never reads): every item copy an UpdateItem
    makes for its stream record, every stream record, SQS message, log event, EventBridge
    event, forever. Over a 10,000-child array that was most of moto's memory (900 MB), and its
    garbage collector walked all of it on every full collection. Here a model is made as any
    object is; the models the backends keep are kept by the backends, as before."""

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]


def counted(app: Any, path: str) -> Any:
    """The app, counting its requests by action (X-Amz-Target, or the query's Action): written
    to `path` when the server stops. For profiling (JOBTRACKER_MOTO_COUNTS=PATH)."""
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def app_counting(environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        if not target:
            query = environ.get("QUERY_STRING", "")
            action = next((q[7:] for q in query.split("&") if q.startswith("Action=")), "")
            target = f"{environ.get('HTTP_HOST', '')}:{action or environ.get('PATH_INFO', '')}"
        with lock:
            counts[target] += 1
        return app(environ, start_response)

    def write() -> None:
        with open(path, "w") as out:
            for key, n in counts.most_common():
                out.write(f"{n}\t{key}\n")

    atexit.register(write)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit runs on a clean exit only
    return app_counting


def main(argv: list[str]) -> None:
    port = int(argv[0])
    tune_process()  # before any thread (runtime.py)
    untracked_models()
    atomic_dynamodb()
    plain_dynamodb_items()
    cached_lookups()
    faster_update_validation()
    condition_parsed_once()
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    # Threads: every queue poller long-polls one (about 25), the functions and the ECS need more.
    # Connections: every client keeps its own alive; past waitress's default limit (100) a new
    # one would wait for an idle one to time out, stalling a call for minutes.
    app: Any = Dispatcher(create_backend_app)
    if os.environ.get("JOBTRACKER_MOTO_COUNTS"):
        app = counted(app, os.environ["JOBTRACKER_MOTO_COUNTS"])
    serve(
        app,
        host="127.0.0.1",
        port=port,
        threads=64,
        connection_limit=2000,
        channel_timeout=60,
        _quiet=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
