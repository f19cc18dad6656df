"""``--keep EXPR``: a safe filter over manifest rows, e.g. ``contact_f1 >= 0.8 and not diverged``.

The expression is parsed with :func:`ast.parse` and checked against a whitelist; it is evaluated by
walking that tree, never with ``eval``/``exec``. Allowed: ``and`` / ``or`` / ``not``, unary ``-``,
comparisons (``< <= > >= == !=``, chained), ``+ - * /``, parentheses, numbers, ``True`` /
``False``, strings, and names: the metrics of the manifest (``metrics`` of its rows, units as in
:mod:`handx_robot.app.dataset.manifest`) plus the row fields ``frames`` and ``status``.

A row whose value of a name the expression uses is ``null`` or missing is *not measured*: the filter
returns ``None`` for it (neither kept nor rejected). Only ``done`` rows can be kept.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from handx_robot.errors import ConfigError

__all__ = ["PHYSICS_METRICS", "HUMANOID_METRICS", "ROW_NAMES", "KeepFilter", "compile_keep"]

#: Metrics measured only with ``--validate physics``.
PHYSICS_METRICS = ("tracking_error_mm", "physics_contact_f1", "physics_penetration_mm", "diverged")
#: Metrics measured only for humanoid robots.
HUMANOID_METRICS = ("wrist_within_1cm", "unreachable_frames", "clearance_mm")
#: Row fields an expression may use besides the metrics.
ROW_NAMES = ("frames", "status")

_BOOL_OPS = {ast.And: all, ast.Or: any}
_BIN_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_CMP_OPS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ORDER_OPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_NODE_WORDS = {
    "Call": "function calls are",
    "Attribute": "attribute access is",
    "Subscript": "indexing is",
    "Lambda": "lambdas are",
    "ListComp": "comprehensions are",
    "SetComp": "comprehensions are",
    "DictComp": "comprehensions are",
    "GeneratorExp": "comprehensions are",
}
_HELP = "use metric names, numbers, strings, True/False, comparisons, and/or/not, + - * / and parentheses"


class _NotMeasured(Exception):
    """A value the expression needs is null in this row (or a division by zero)."""


@dataclass(frozen=True)
class KeepFilter:
    """A compiled ``--keep`` expression. ``names``: the names it uses, sorted."""

    expr: str
    names: tuple[str, ...]
    _tree: ast.Expression = field(repr=False, compare=False)

    def __call__(self, row: Mapping[str, Any]) -> bool | None:
        """True: keep the row; False: the expression rejects it (or its status is not ``done``);
        None: a name it uses is null or missing in the row (not measured)."""
        if row.get("status") != "done":
            return False
        values = _row_values(row)
        if any(values.get(n) is None for n in self.names):
            return None
        try:
            return bool(_eval(self._tree.body, values))
        except _NotMeasured:
            return None


def compile_keep(expr: str, known_names: Iterable[str]) -> KeepFilter:
    """Parse and check ``expr`` against ``known_names`` (the metric names of the manifest; ``frames``
    and ``status`` are always known). Raises :class:`ConfigError` naming the offending piece."""
    known = frozenset(known_names) | frozenset(ROW_NAMES)
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"--keep {expr!r} is not an expression ({exc.msg}); {_HELP}") from exc
    names: set[str] = set()
    _check(tree.body, expr.strip(), known, names)
    return KeepFilter(expr=expr, names=tuple(sorted(names)), _tree=tree)


def _row_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """name -> value: the row's metrics plus ``frames`` and ``status``."""
    metrics = row.get("metrics") or {}
    return {**metrics, "frames": row.get("frames"), "status": row.get("status")}


def _fail(expr: str, node: ast.AST, what: str, known: frozenset[str]) -> ConfigError:
    piece = ast.get_source_segment(expr, node) or ast.dump(node)
    allowed = ", ".join(sorted(known))
    return ConfigError(f"--keep {expr!r}: {what} not allowed: {piece!r}; {_HELP}; names: {allowed}")


def _unknown_name(expr: str, name: str, known: frozenset[str]) -> ConfigError:
    allowed = ", ".join(sorted(known))
    if name in PHYSICS_METRICS:
        return ConfigError(f"--keep {expr!r}: {name} is not in this manifest: it is measured with "
                           f"--validate physics; names in this manifest: {allowed}")
    if name in HUMANOID_METRICS:
        return ConfigError(f"--keep {expr!r}: {name} is not in this manifest: it is measured for "
                           f"humanoids only; names in this manifest: {allowed}")
    return ConfigError(f"--keep {expr!r}: unknown name {name!r}; names in this manifest: {allowed}")


def _check(node: ast.AST, expr: str, known: frozenset[str], names: set[str]) -> str:
    """Check ``node`` against the whitelist, collect the names it uses; return its type
    (``"num"`` or ``"str"``) so that ``status > 1`` or ``"a" + 1`` fail here, not per row."""
    if isinstance(node, ast.Name):
        if node.id not in known:
            raise _unknown_name(expr, node.id, known)
        names.add(node.id)
        return "str" if node.id == "status" else "num"
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return "str"
        if isinstance(node.value, (bool, int, float)):
            return "num"
        raise _fail(expr, node, f"the constant {node.value!r} is", known)
    if isinstance(node, ast.BoolOp) and type(node.op) in _BOOL_OPS:
        for value in node.values:
            _check(value, expr, known, names)
        return "num"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
        kind = _check(node.operand, expr, known, names)
        if isinstance(node.op, ast.USub) and kind != "num":
            raise _fail(expr, node, "minus of a string is", known)
        return "num"
    if isinstance(node, ast.BinOp) and type(node.op) in _BIN_OPS:
        if {_check(node.left, expr, known, names), _check(node.right, expr, known, names)} != {"num"}:
            raise _fail(expr, node, "arithmetic on strings is", known)
        return "num"
    if isinstance(node, ast.Compare) and all(type(op) in _CMP_OPS for op in node.ops):
        kinds = [_check(n, expr, known, names) for n in (node.left, *node.comparators)]
        for op, a, b in zip(node.ops, kinds, kinds[1:]):
            if a != b and isinstance(op, _ORDER_OPS):
                raise _fail(expr, node, "ordering a string against a number is", known)
        return "num"
    kind = type(node).__name__
    raise _fail(expr, node, _NODE_WORDS.get(kind, f"the operation {kind} is"), known)


def _eval(node: ast.AST, values: Mapping[str, Any]) -> Any:
    """Value of a checked ``node`` with ``values`` (no name among them is None)."""
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BoolOp):
        return _BOOL_OPS[type(node.op)](bool(_eval(v, values)) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, values)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        try:
            return _BIN_OPS[type(node.op)](_eval(node.left, values), _eval(node.right, values))
        except ZeroDivisionError as exc:
            raise _NotMeasured from exc
    if isinstance(node, ast.Compare):
        operands = [_eval(n, values) for n in (node.left, *node.comparators)]
        return all(_CMP_OPS[type(op)](a, b) for op, a, b in zip(node.ops, operands, operands[1:]))
    raise AssertionError(f"unchecked node {type(node).__name__}")  # pragma: no cover - _check rejects it
