"""Read Bicep without the Bicep CLI: tree-sitter parses a template and this module turns its
declarations into plain Python values (dicts, lists, str, int, bool) that tests can assert on.

Literals become Python values; anything computed (identifiers, member access, operators) stays an
`Expr` holding its source text, a function call becomes a `Call` and `c ? a : b` a `Conditional`,
so a test can tell the string 'TLS1_2' from a variable that happens to be called TLS1_2.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tree_sitter_bicep
from tree_sitter import Language, Node, Parser, Tree

INFRA = Path(__file__).resolve().parents[2] / "infra"


@dataclass(frozen=True)
class Expr:
    """A non-literal expression, kept as its source text with whitespace collapsed."""

    text: str


@dataclass(frozen=True)
class Call:
    """A function call: `name(args...)`; `name` keeps a receiver, as in `storage.listKeys`."""

    name: str
    args: tuple[Any, ...]
    text: str


@dataclass(frozen=True)
class Conditional:
    """`condition ? then : otherwise`; the condition keeps its source text."""

    condition: str
    then: Any
    otherwise: Any


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    column: int
    kind: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.kind}"


@dataclass(frozen=True)
class Resource:
    symbol: str
    type: str
    api_version: str
    existing: bool
    body: dict[str, Any]
    loop_over: Expr | None
    condition: Any

    @property
    def properties(self) -> dict[str, Any]:
        value = self.body.get("properties", {})
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    decorators: dict[str, tuple[Any, ...]]
    has_default: bool


@dataclass
class Template:
    path: Path
    source: bytes
    tree: Tree
    target_scope: str | None = None
    params: dict[str, Param] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    resources: list[Resource] = field(default_factory=list)
    modules: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.relative_to(INFRA).as_posix() if self.path.is_relative_to(INFRA) else ""

    def resources_of(self, type_: str, *, include_existing: bool = False) -> list[Resource]:
        return [
            r
            for r in self.resources
            if r.type.lower() == type_.lower() and (include_existing or not r.existing)
        ]

    def resource(self, symbol: str) -> Resource:
        matches = [r for r in self.resources if r.symbol == symbol]
        assert len(matches) == 1, f"{self.name}: expected one resource '{symbol}'"
        return matches[0]


@functools.cache
def parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def syntax_problems(source: bytes) -> list[SyntaxProblem]:
    """Every ERROR and MISSING node the parser produced, with 1-based positions."""
    problems: list[SyntaxProblem] = []
    for node in _walk(parser().parse(source).root_node):
        if node.is_error or node.is_missing:
            kind = f"missing {node.type}" if node.is_missing else "syntax error"
            row, column = node.start_point
            problems.append(SyntaxProblem(row + 1, column + 1, kind))
    return problems


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def load(path: Path) -> Template:
    return parse(path.read_bytes(), path)


def parse(source: bytes, path: Path = Path("<snippet>")) -> Template:
    tree = parser().parse(source)
    problems = syntax_problems(source)
    if problems:
        raise ValueError(f"{path}: {', '.join(map(str, problems))}")
    template = Template(path=path, source=source, tree=tree)
    decorators: dict[str, tuple[Any, ...]] = {}
    for node in tree.root_node.named_children:
        if node.type == "decorators":
            decorators = _decorators(node)
            continue
        _declare(template, node, decorators)
        decorators = {}
    return template


def calls(template: Template, name: str) -> Iterator[tuple[Node, str | None]]:
    """Each call whose function (or method) is `name`, with the symbol of the resource, module,
    variable or output it sits in."""
    for node in _walk(template.tree.root_node):
        if node.type != "call_expression":
            continue
        function = node.child_by_field_name("function")
        if function is None:
            continue
        called = (
            function.child_by_field_name("property")
            if function.type == "member_expression"
            else function
        )
        if called is not None and _text(called) == name:
            yield node, _enclosing_symbol(node)


def nodes(template: Template) -> Iterator[Node]:
    """Every node of the template's syntax tree, in source order."""
    return _walk(template.tree.root_node)


def text(node: Node) -> str:
    """The node's source text, whitespace collapsed."""
    return _text(node)


def condition_text(node: Node) -> str:
    """A condition's source text without the parentheses around it: `(a)` and `a` are equal."""
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return _text(node)


def resource_condition(node: Node) -> str | None:
    """The `if (...)` condition of a resource declaration (a loop's included), or None."""
    value: Node | None = node.named_children[-1]
    if value is not None and value.type == "for_statement":
        value = value.child_by_field_name("body")
    if value is None or value.type != "if_statement":
        return None
    return condition_text(value.named_children[0])


def guarded_by(node: Node, condition: str, *, within: Node) -> bool:
    """Whether `node` sits in the true branch of a `condition ? ... : ...` inside `within`."""
    child, parent = node, node.parent
    while parent is not None and parent != within:
        if (
            parent.type == "ternary_expression"
            and parent.child_by_field_name("consequence") == child
        ):
            guard = parent.child_by_field_name("condition")
            if guard is not None and condition_text(guard) == condition:
                return True
        child, parent = parent, parent.parent
    return False


def _declare(template: Template, node: Node, decorators: dict[str, tuple[Any, ...]]) -> None:
    kind = node.type
    if kind == "target_scope_assignment":
        template.target_scope = _value(node.named_children[-1])
    elif kind == "parameter_declaration":
        name, *_, last = node.named_children
        has_default = last.type != "type"
        template.params[_text(name)] = Param(
            _text(name), _value(last) if has_default else None, decorators, has_default
        )
    elif kind == "variable_declaration":
        name, *_, value = node.named_children
        template.variables[_text(name)] = _value(value)
    elif kind == "output_declaration":
        name, *_, value = node.named_children
        template.outputs[_text(name)] = _value(value)
    elif kind == "module_declaration":
        name, path, value = node.named_children[:3]
        body, _, _ = _unwrap(value)
        template.modules[_text(name)] = (_value(path), body)
    elif kind == "resource_declaration":
        template.resources.extend(_resources(node, parent_type=None))


def _resources(node: Node, parent_type: tuple[str, str] | None) -> list[Resource]:
    symbol, type_node = node.named_children[:2]
    value = node.named_children[-1]
    type_, _, api_version = str(_value(type_node)).partition("@")
    if parent_type is not None and "/" not in type_:
        type_, api_version = f"{parent_type[0]}/{type_}", api_version or parent_type[1]
    body, loop_over, condition = _unwrap(value)
    existing = any(child.type == "existing" for child in node.children)
    found = [Resource(_text(symbol), type_, api_version, existing, body, loop_over, condition)]
    obj = _object_node(value)
    for prop in obj.named_children if obj is not None else []:
        for child in prop.named_children:
            if child.type == "resource_declaration":
                found.extend(_resources(child, parent_type=(type_, api_version)))
    return found


def _unwrap(value: Node) -> tuple[dict[str, Any], Expr | None, Any]:
    """The object of a declaration, whether plain, conditional (`if`) or a loop (`for`)."""
    loop_over: Expr | None = None
    condition: Any = None
    node: Node | None = value
    if node is not None and node.type == "for_statement":
        loop_over = Expr(_text(node.named_children[1]))
        node = node.child_by_field_name("body")
    if node is not None and node.type == "if_statement":
        condition = _value(node.named_children[0])
        node = node.named_children[-1]
    body = _value(node) if node is not None else {}
    return (body if isinstance(body, dict) else {}), loop_over, condition


def _object_node(value: Node) -> Node | None:
    node: Node | None = value
    if node is not None and node.type == "for_statement":
        node = node.child_by_field_name("body")
    if node is not None and node.type == "if_statement":
        node = node.named_children[-1]
    return node if node is not None and node.type == "object" else None


def _value(node: Node) -> Any:
    kind = node.type
    if kind == "string":
        return _string(node)
    if kind == "number":
        return int(_text(node))
    if kind == "boolean":
        return _text(node) == "true"
    if kind == "null":
        return None
    if kind == "array":
        return [_value(item) for item in node.named_children if item.type != "comment"]
    if kind == "object":
        result: dict[str, Any] = {}
        for prop in node.named_children:
            if prop.type != "object_property":
                continue
            key, *rest = [c for c in prop.named_children if c.type != "comment"]
            if key.type == "resource_declaration" or not rest:
                continue
            result[_key(key)] = _value(rest[-1])
        return result
    if kind == "call_expression":
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        args = tuple(
            _value(a)
            for a in (arguments.named_children if arguments else [])
            if a.type != "comment"
        )
        return Call(_text(function) if function else "", args, _text(node))
    if kind == "parenthesized_expression" and node.named_child_count == 1:
        return _value(node.named_children[0])
    if kind == "ternary_expression":
        condition, then, otherwise = (
            node.child_by_field_name(name) for name in ("condition", "consequence", "alternative")
        )
        if condition is not None and then is not None and otherwise is not None:
            return Conditional(condition_text(condition), _value(then), _value(otherwise))
    return Expr(_text(node))


def _string(node: Node) -> str:
    parts = []
    for child in node.named_children:
        if child.type == "escape_sequence":
            parts.append(
                {"\\'": "'", "\\\\": "\\", "\\n": "\n", "\\$": "$"}.get(_text(child), _text(child))
            )
        elif child.type == "interpolation":
            parts.append(_text(child))
        else:
            parts.append(child.text.decode() if child.text else "")
    return "".join(parts)


def _key(node: Node) -> str:
    return _string(node) if node.type == "string" else _text(node)


def _decorators(node: Node) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for decorator in node.named_children:
        call = next((c for c in decorator.named_children if c.type == "call_expression"), None)
        if call is not None:
            value = _value(call)
            found[value.name] = value.args
    return found


def _enclosing_symbol(node: Node) -> str | None:
    current: Node | None = node
    declarations = {
        "resource_declaration",
        "module_declaration",
        "variable_declaration",
        "output_declaration",
        "parameter_declaration",
    }
    while current is not None:
        if current.type in declarations:
            return _text(current.named_children[0])
        current = current.parent
    return None


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: Node) -> str:
    return " ".join((node.text or b"").decode().split())
