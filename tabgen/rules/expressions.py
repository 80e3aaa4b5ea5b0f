"""Expressions over columns, as declared rules and formulas write them: read with :mod:`ast`, computed with numpy.

The grammar is :mod:`tabgen.rules.declared`'s: numbers, column names (bare where a name is a Python
identifier, in backticks otherwise), ``+ - * / ** %``, unary ``-`` and ``+``, parentheses and the
functions abs, round, min, max, sqrt, log and exp. Nothing else is read; ``eval`` never sees the text.
This module imports no rule kind, so that :class:`tabgen.rules.kinds.Formula` can use it.
"""

from __future__ import annotations

import ast
import functools
import keyword
import re
import unicodedata
from typing import Any, Callable

import numpy as np

from ..errors import TabgenError

_ALLOWED = ("an expression uses numbers, columns, + - * / ** %, parentheses and the functions "
            "abs, round, min, max, sqrt, log, exp")
_BINARY: dict[type, Callable] = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
                                 ast.Div: np.true_divide, ast.Pow: np.power, ast.Mod: np.mod}
_UNARY: dict[type, Callable] = {ast.USub: np.negative, ast.UAdd: np.positive}
#: name: (fewest arguments, most arguments, function); round's second argument is read by itself.
_FUNCTIONS: dict[str, tuple[int, int, Callable]] = {
    "abs": (1, 1, np.abs),
    "round": (1, 2, np.round),
    "min": (2, 1_000, lambda *xs: functools.reduce(np.minimum, xs)),
    "max": (2, 1_000, lambda *xs: functools.reduce(np.maximum, xs)),
    "sqrt": (1, 1, np.sqrt),
    "log": (1, 1, np.log),
    "exp": (1, 1, np.exp),
}
_OPERATORS = {ast.FloorDiv: "'//'", ast.MatMult: "'@'", ast.LShift: "'<<'", ast.RShift: "'>>'", ast.BitOr: "'|'",
              ast.BitXor: "'^' (a power is **)", ast.BitAnd: "'&'", ast.Invert: "'~'", ast.Not: "'not'"}
_REFUSED = {ast.Attribute: "attribute access ('.')", ast.Subscript: "indexing ('[...]')", ast.Lambda: "a lambda",
            ast.Compare: "a comparison", ast.BoolOp: "'and' / 'or'", ast.IfExp: "'if ... else'", ast.List: "a list",
            ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set", ast.ListComp: "a comprehension",
            ast.SetComp: "a comprehension", ast.DictComp: "a comprehension", ast.GeneratorExp: "a generator",
            ast.NamedExpr: "':='", ast.Starred: "'*' unpacking", ast.JoinedStr: "an f-string", ast.Await: "'await'",
            ast.Yield: "'yield'", ast.YieldFrom: "'yield'", ast.Slice: "a slice"}


# ------------------------------------------------------------------ names


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short if long (a message is one line)."""
    return repr(text) if len(text) <= 200 else repr(text[:150]) + f" ... ({len(text):,} characters)"


def _needs_backticks(name: str) -> bool:
    # ast folds identifiers to NFKC, so a name that changes under it would not come back as itself.
    return not (name.isidentifier() and not keyword.iskeyword(name) and unicodedata.normalize("NFKC", name) == name)


def _reference(name: str) -> str:
    """How an expression names a column: bare if it can be, in backticks if not."""
    return f"`{name}`" if _needs_backticks(name) else name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=32)
def _bare_pattern(columns: tuple[str, ...]) -> re.Pattern | None:
    """Matches the column names that need backticks but may be written bare, longest first."""
    names = sorted((c for c in columns if c and _needs_backticks(c) and not _is_number(c) and "`" not in c
                    and c.strip() == c), key=len, reverse=True)
    if not names:
        return None
    # A name that starts or ends with a word character must not be cut out of a longer word.
    bounded = [(r"(?<!\w)" if re.match(r"\w", n) else "") + re.escape(n) + (r"(?!\w)" if re.match(r"\w", n[-1]) else "")
               for n in names]
    return re.compile("|".join(bounded))


def _protect(text: str, columns: list[str] | None, where: str) -> tuple[str, dict[str, str]]:
    """``text`` with each backticked name (and, given ``columns``, each bare name that needs backticks)
    replaced by an identifier of its own, and the column each such identifier stands for."""
    prefix = "_c"
    while prefix in text:  # the stand-ins must not be names the user wrote
        prefix = "_" + prefix
    parts = text.split("`")
    if len(parts) % 2 == 0:
        raise TabgenError(f"{where}: a backtick is not closed; write a column name as `total amount`")
    stand_in: dict[str, str] = {}

    def hold(name: str) -> str:
        stand_in.setdefault(name, f"{prefix}{len(stand_in)}")
        return f" {stand_in[name]} "  # spaced, so that it never joins a number or a name beside it

    pattern = _bare_pattern(tuple(columns)) if columns else None
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            if not part:
                raise TabgenError(f"{where}: empty backticks ``; write a column name between them")
            out.append(hold(part))
        else:
            out.append(pattern.sub(lambda m: hold(_unambiguous(m.group(), columns, where)), part) if pattern else part)
    return "".join(out), {v: k for k, v in stand_in.items()}


def _unambiguous(name: str, columns: list[str], where: str) -> str:
    """``name``, unless written bare it would also read as an expression of the columns."""
    try:
        names: dict[str, str] = {}
        _check(ast.parse(name, mode="eval").body, where, {}, names)
    except (SyntaxError, ValueError, RecursionError):  # TabgenError is a ValueError
        return name
    if all(n in columns for n in names):
        raise TabgenError(f"{where}: {name!r} is a column and also reads as an expression of the columns {list(names)}; "
                          f"write `{name}` in backticks for the column, or each column of the expression in backticks")
    return name


def _unprotect(text: str, quoted: dict[str, str]) -> str:
    """``text`` with each stand-in written as its column's reference, the spaces that padded it dropped."""
    if not quoted:
        return text
    stand_ins = "|".join(sorted(quoted, key=len, reverse=True))
    return re.sub(rf" ?(?<!\w)({stand_ins})(?!\w) ?", lambda m: _reference(quoted[m.group(1)]), text)


# ------------------------------------------------------------------ expressions


def _check(node: ast.AST, where: str, quoted: dict[str, str], names: dict[str, str]) -> None:
    """Refuse anything outside the grammar; collect in ``names`` each name's column, in order."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, where, quoted, names)
        _check(node.right, where, quoted, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, where, quoted, names)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if isinstance(node.value, int) and abs(node.value) >= 2**1024:  # beyond float64: numpy could not take it
            raise TabgenError(f"{where}: the number {node.value} is too large for a float")
    elif isinstance(node, ast.Name):
        names.setdefault(node.id, quoted.get(node.id, node.id))
    elif isinstance(node, ast.Call) and _is_function_call(node, where):
        for arg in node.args[:1] if node.func.id == "round" else node.args:
            _check(arg, where, quoted, names)
    else:
        raise TabgenError(f"{where}: {_describe(node, quoted)} is not allowed; {_ALLOWED}")


def _is_function_call(node: ast.Call, where: str) -> bool:
    """Whether ``node`` calls one of the functions, with as many arguments as it takes (else refused)."""
    if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or node.keywords:
        return False
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise TabgenError(f"{where}: {_REFUSED[ast.Starred]} is not allowed; {_ALLOWED}")
    fewest, most, _ = _FUNCTIONS[node.func.id]
    if not fewest <= len(node.args) <= most:
        takes = f"{fewest}" if fewest == most else f"{fewest} or more" if most > 2 else f"{fewest} or {most}"
        raise TabgenError(f"{where}: {node.func.id}() takes {takes} argument(s), got {len(node.args)}")
    if node.func.id == "round" and len(node.args) == 2 and _whole_number(node.args[1]) is None:
        raise TabgenError(f"{where}: round(x, digits) takes a whole number of digits, such as round(x, 2)")
    return True


def _whole_number(node: ast.AST) -> int | None:
    """The value of an integer literal, signed or not (``2``, ``-2``); ``None`` for anything else."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        sign, node = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
    return sign * node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def _describe(node: ast.AST, quoted: dict[str, str]) -> str:
    if isinstance(node, ast.Constant):
        return f"text ({_shown(node.value)})" if isinstance(node.value, (str, bytes)) else f"the constant {node.value!r}"
    if isinstance(node, ast.Call):
        return f"calling {_unprotect(ast.unparse(node.func), quoted)!r}" + (" with keywords" if node.keywords else "")
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return f"the operator {_OPERATORS.get(type(node.op), type(node.op).__name__)}"
    return _REFUSED.get(type(node), type(node).__name__)


def _tree(text: str, quoted: dict[str, str], where: str) -> tuple[ast.expr, dict[str, str]]:
    """The checked syntax tree of a protected expression, and the column of each of its names."""
    if not text.strip():
        raise TabgenError(f"{where}: the expression is empty; {_ALLOWED}")
    names: dict[str, str] = {}
    try:
        tree = ast.parse(text.strip(), mode="eval").body
        _check(tree, where, quoted, names)
    except SyntaxError as e:
        raise TabgenError(f"{where}: not an expression ({e.msg}); {_ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise TabgenError(f"{where}: the expression is nested too deeply to read") from None
    return tree, names


@functools.lru_cache(maxsize=256)  # a formula is evaluated at every batch generated
def _parsed(expression: str) -> tuple[ast.expr, dict[str, str]]:
    where = f"expression {_shown(expression)}"
    text, quoted = _protect(expression, None, where)
    return _tree(text, quoted, where)


def expression_columns(expression: str) -> list[str]:
    """The columns ``expression`` uses, in the order they first appear (backticked names unquoted)."""
    return list(dict.fromkeys(_parsed(expression)[1].values()))


def evaluate_expression(expression: str, columns: dict[str, np.ndarray]) -> np.ndarray:
    """``expression`` computed row by row in float64 from ``columns`` (name: values); NaN where an input is
    missing or the arithmetic has no value. Only the grammar of this module's docstring is read."""
    tree, names = _parsed(expression)
    absent = [c for c in names.values() if c not in columns]
    if absent:
        raise TabgenError(f"expression {_shown(expression)}: no column {absent[0]!r} (columns are {list(columns)})")
    arrays = {name: np.asarray(columns[column], dtype=np.float64) for name, column in names.items()}
    with np.errstate(all="ignore"):  # 0/0, log(0), sqrt(-1): NaN and inf are the answers, not warnings
        values = _evaluate(tree, arrays)
    shape = np.broadcast_shapes(*(np.shape(v) for v in columns.values())) if columns else ()
    return np.array(np.broadcast_to(values, np.broadcast_shapes(shape, np.shape(values))), dtype=np.float64)


def _evaluate(node: ast.AST, arrays: dict[str, np.ndarray]) -> Any:
    """The value of a tree :func:`_check` accepted."""
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        return arrays[node.id]
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, arrays))
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, arrays), _evaluate(node.right, arrays))
    if node.func.id == "round":
        digits = _whole_number(node.args[1]) if len(node.args) == 2 else 0
        return np.round(_evaluate(node.args[0], arrays), digits)
    return _FUNCTIONS[node.func.id][2](*(_evaluate(arg, arrays) for arg in node.args))
