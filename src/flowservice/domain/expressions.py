"""The Data Prep expression language: a hand-written tokenizer and recursive-descent parser into a typed AST.

Mapping sets carry expressions written by users (`concat(first, " ", last)`, `to_integer(age) + 1`).
They are data, never code: nothing here calls eval/exec/compile, the tokenizer reads one character
at a time (no regular expressions, so no backtracking to exploit), and text length, nesting depth
and node count are bounded, so a hostile expression costs at most a few thousand steps. Parsing is
pure so the API can reject a bad mapping set at create time with a message pointing at the column;
`engine/mapping.py` compiles the same AST to Arrow compute.

Grammar, lowest precedence first:

    expr       := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | comparison
    comparison := sum (("==" | "!=" | "<" | ">" | "<=" | ">=") sum)?     no chaining: a < b < c is an error
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | primary
    primary    := number | string | "true" | "false" | "null" | "(" expr ")"
                | name "(" (expr ("," expr)*)? ")"                    a function call
                | path
    path       := segment ("." segment)*                              segment := name | `quoted name`

Keywords and function names are case-insensitive (`AND`, `Null`, `Upper(x)`); a field whose name is a
keyword, has spaces or starts with a digit is written in backquotes: `` `first name` ``, `` `null` ``.

Semantic choices fixed here because the parser enforces part of them:
- `+ - * /` are arithmetic only. `+` never concatenates (`"1" + "2"` would otherwise be "12" or 3
  depending on how a CSV column happened to be typed); text is joined with concat(). A string literal
  that is not a number next to an arithmetic operator is a parse error saying so.
- to_timestamp's format and substr's start/length must be literals: Arrow's kernels take them as one
  value for the whole batch. Formats are strftime (`%Y-%m-%d`) when they contain `%`, else Adobe/Java
  style (`yyyy-MM-dd HH:mm:ss`), translated by `strftime_format()`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, cast

from flowservice.errors import InvalidRequest

MAX_LENGTH = 4000
MAX_DEPTH = 50
MAX_NODES = 200

BinaryOp = Literal["==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "and", "or"]
UnaryOp = Literal["not", "-"]

COMPARISONS: frozenset[str] = frozenset({"==", "!=", "<", ">", "<=", ">="})
KEYWORDS: frozenset[str] = frozenset({"true", "false", "null", "and", "or", "not"})


@dataclass(frozen=True, slots=True)
class Arity:
    least: int
    most: int | None  # None: any number from `least`

    def allows(self, count: int) -> bool:
        return count >= self.least and (self.most is None or count <= self.most)

    def describe(self) -> str:
        if self.most is None:
            return f"at least {self.least} argument{'s' if self.least != 1 else ''}"
        if self.least == self.most:
            return f"{self.least} argument{'s' if self.least != 1 else ''}"
        return f"{self.least} to {self.most} arguments"


FUNCTIONS: dict[str, Arity] = {
    "concat": Arity(1, None),
    "coalesce": Arity(1, None),
    "lower": Arity(1, 1),
    "upper": Arity(1, 1),
    "trim": Arity(1, 1),
    "len": Arity(1, 1),
    "is_empty": Arity(1, 1),
    "to_integer": Arity(1, 1),
    "to_decimal": Arity(1, 1),
    "to_timestamp": Arity(2, 2),
    "iif": Arity(3, 3),
    "substr": Arity(2, 3),
}


# --- the AST ---


@dataclass(frozen=True, slots=True)
class Constant:
    """A literal. Integers stay `int` (int64 range), decimals are `float`."""

    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A source field; several segments walk into nested records (`person.name`)."""

    segments: tuple[str, ...]

    @property
    def path(self) -> str:
        return ".".join(self.segments)


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # lower case, one of FUNCTIONS
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: UnaryOp
    operand: Expr


@dataclass(frozen=True, slots=True)
class Binary:
    op: BinaryOp
    left: Expr
    right: Expr


Expr = Constant | FieldRef | Call | Unary | Binary


def fields(expr: Expr) -> set[str]:
    """The source fields an expression reads, as dotted paths."""
    return {node.path for node in walk(expr) if isinstance(node, FieldRef)}


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node, parents before children."""
    yield expr
    if isinstance(expr, Call):
        for arg in expr.args:
            yield from walk(arg)
    elif isinstance(expr, Unary):
        yield from walk(expr.operand)
    elif isinstance(expr, Binary):
        yield from walk(expr.left)
        yield from walk(expr.right)


# --- tokens ---

TokenKind = Literal["number", "string", "name", "quoted", "op", "(", ")", ",", ".", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str  # as written, for messages
    offset: int  # 0-based index into the expression text
    value: str | int | float | None = None  # a number's value, a string's or quoted name's contents

    @property
    def word(self) -> str | None:
        """A bare name in lower case (keywords and function names ignore case)."""
        return self.text.lower() if self.kind == "name" else None


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'", "`": "`"}
_TWO_CHAR_OPS = ("==", "!=", "<=", ">=")
_PUNCTUATION: dict[str, TokenKind] = {"(": "(", ")": ")", ",": ",", ".": "."}
_MISTAKES = {
    "=": "use == to compare",
    "!": "use not",
    "&": "use and",
    "|": "use or",
    "[": "write nested fields as a.b",
}


def _where(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"column {column}" if line == 1 else f"line {line}, column {column}"


def _error(text: str, offset: int, message: str, detail: str | None = None) -> InvalidRequest:
    """`<message> at column N[: <detail>]`, N (1-based) being where the offending text starts."""
    where = _where(text, offset)
    return InvalidRequest(
        "1000", f"{message} at {where}" + (f": {detail}" if detail else ""), field="expression"
    )


def _is_digit(char: str) -> bool:
    # ASCII only: str.isdigit() is also true for "²" and "٣", which int() and Arrow do not all read
    return "0" <= char <= "9"


def _is_name_start(char: str) -> bool:
    return char == "_" or char.isalpha()


def _is_name_char(char: str) -> bool:
    return char == "_" or char.isalnum()


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r\n":
            i += 1
        elif _is_digit(char):
            token = _number(text, i)
            tokens.append(token)
            i += len(token.text)
        elif _is_name_start(char):
            start = i
            while i < n and _is_name_char(text[i]):
                i += 1
            tokens.append(Token("name", text[start:i], start))
        elif char in "\"'`":
            token = _quoted(text, i)
            tokens.append(token)
            i += len(token.text)
        elif text.startswith(_TWO_CHAR_OPS, i):
            tokens.append(Token("op", text[i : i + 2], i))
            i += 2
        elif char in "<>+-*/":
            tokens.append(Token("op", char, i))
            i += 1
        elif char in _PUNCTUATION:
            tokens.append(Token(_PUNCTUATION[char], char, i))
            i += 1
        else:
            hint = _MISTAKES.get(char)
            raise _error(text, i, f"unexpected {char!r}", hint)
    tokens.append(Token("end", "", n))
    return tokens


def _number(text: str, start: int) -> Token:
    i, n = start, len(text)
    while i < n and _is_digit(text[i]):
        i += 1
    is_decimal = False
    if i < n and text[i] == ".":
        if not (i + 1 < n and _is_digit(text[i + 1])):
            raise _error(text, i, "expected a digit after the decimal point")
        is_decimal = True
        i += 1
        while i < n and _is_digit(text[i]):
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if not (j < n and _is_digit(text[j])):
            raise _error(text, i, "expected digits in the exponent")
        is_decimal = True
        i = j
        while i < n and _is_digit(text[i]):
            i += 1
    if i < n and _is_name_char(text[i]):
        end = i
        while end < n and _is_name_char(text[end]):
            end += 1
        raise _error(text, start, f"invalid number {text[start:end][:40]!r}")
    written = text[start:i]
    if is_decimal:
        number: int | float = float(written)
        if not math.isfinite(number):
            raise _error(text, start, f"number {written[:40]} is too large")
        return Token("number", written, start, number)
    integer = int(written)  # at most MAX_LENGTH digits: within Python's int-parsing limit
    if integer > 2**63 - 1:
        raise _error(text, start, f"integer {written[:40]} is out of range (at most {2**63 - 1})")
    return Token("number", written, start, integer)


def _quoted(text: str, start: int) -> Token:
    quote = text[start]
    what = "name" if quote == "`" else "string"
    i, n = start + 1, len(text)
    chars: list[str] = []
    while True:
        if i >= n:
            raise _error(text, start, f"unterminated {what}: missing closing {quote}")
        char = text[i]
        if char == quote:
            break
        if char == "\\":
            if i + 1 >= n:
                raise _error(text, start, f"unterminated {what}: missing closing {quote}")
            escaped = text[i + 1]
            if escaped == "u":
                digits = text[i + 2 : i + 6]
                if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
                    raise _error(text, i, "expected 4 hex digits after \\u")
                chars.append(chr(int(digits, 16)))
                i += 6
                continue
            if escaped not in _ESCAPES:
                raise _error(text, i, f"unknown escape '\\{escaped}'")
            chars.append(_ESCAPES[escaped])
            i += 2
            continue
        chars.append(char)
        i += 1
    contents = "".join(chars)
    if quote == "`" and not contents:
        raise _error(text, start, "empty field name ``")
    return Token("quoted" if quote == "`" else "string", text[start : i + 1], start, contents)


# --- the parser ---


def parse(text: str) -> Expr:
    """An expression's AST; InvalidRequest 1000 (field `expression`) naming the position otherwise."""
    if not isinstance(text, str):
        raise InvalidRequest("1000", "The expression must be a string.", field="expression")
    if len(text) > MAX_LENGTH:
        raise InvalidRequest(
            "1000",
            f"The expression is {len(text)} characters long: at most {MAX_LENGTH} are allowed.",
            field="expression",
        )
    if not text.strip():
        raise InvalidRequest("1000", "The expression is empty.", field="expression")
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0
        self.nodes = 0

    # helpers

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def error(self, token: Token, message: str, detail: str | None = None) -> InvalidRequest:
        return _error(self.text, token.offset, message, detail)

    def unexpected(self, token: Token, expected: str | None = None) -> InvalidRequest:
        if token.kind == "end":
            what = "end of expression"
        else:
            shown = token.text if len(token.text) <= 30 else token.text[:27] + "..."
            what = f"{shown!r}"
        return self.error(token, f"unexpected {what}", f"expected {expected}" if expected else None)

    def node(self, expr: Expr, at: Token) -> Expr:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.error(at, f"the expression has more than {MAX_NODES} parts")
        return expr

    def enter(self, at: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(at, f"the expression nests deeper than {MAX_DEPTH} levels")

    def leave(self) -> None:
        self.depth -= 1

    # grammar

    def parse(self) -> Expr:
        expr = self.expression()
        if self.peek().kind != "end":
            raise self.unexpected(self.peek(), "an operator or the end of the expression")
        return expr

    def expression(self) -> Expr:
        return self.disjunction()

    def disjunction(self) -> Expr:
        left = self.conjunction()
        while self.peek().word == "or":
            at = self.advance()
            left = self.node(Binary("or", left, self.conjunction()), at)
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.peek().word == "and":
            at = self.advance()
            left = self.node(Binary("and", left, self.negation()), at)
        return left

    def negation(self) -> Expr:
        if self.peek().word == "not":
            at = self.advance()
            self.enter(at)
            operand = self.negation()
            self.leave()
            return self.node(Unary("not", operand), at)
        return self.comparison()

    def comparison(self) -> Expr:
        left = self.sum()
        if self.peek().kind == "op" and self.peek().text in COMPARISONS:
            at = self.advance()
            right = self.sum()
            if self.peek().kind == "op" and self.peek().text in COMPARISONS:
                raise self.error(self.peek(), "comparisons cannot be chained", "use and")
            return self.node(Binary(cast(BinaryOp, at.text), left, right), at)
        return left

    def sum(self) -> Expr:
        left_at = self.peek()
        left = self.product()
        while self.peek().kind == "op" and self.peek().text in ("+", "-"):
            at = self.advance()
            right_at = self.peek()
            right = self.product()
            left = self.node(self.arithmetic(at, (left, left_at), (right, right_at)), at)
        return left

    def product(self) -> Expr:
        left_at = self.peek()
        left = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            at = self.advance()
            right_at = self.peek()
            right = self.unary()
            left = self.node(self.arithmetic(at, (left, left_at), (right, right_at)), at)
        return left

    def arithmetic(self, at: Token, left: tuple[Expr, Token], right: tuple[Expr, Token]) -> Binary:
        for operand, where in (left, right):
            if (
                isinstance(operand, Constant)
                and isinstance(operand.value, str)
                and not _numeric(operand.value)
            ):
                hint = "use concat() to join text" if at.text == "+" else None
                raise self.error(where, f"'{at.text}' works on numbers, not on the text {where.text}", hint)
        return Binary(cast(BinaryOp, at.text), left[0], right[0])

    def unary(self) -> Expr:
        if self.peek().kind == "op" and self.peek().text == "-":
            at = self.advance()
            self.enter(at)
            operand = self.unary()
            self.leave()
            return self.node(Unary("-", operand), at)
        return self.primary()

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "number" or token.kind == "string":
            self.advance()
            return self.node(Constant(token.value), token)
        if token.kind == "(":
            self.advance()
            self.enter(token)
            inner = self.expression()
            self.leave()
            if self.peek().kind != ")":
                raise self.unexpected(
                    self.peek(), f"')' to close the '(' from {_where(self.text, token.offset)}"
                )
            self.advance()
            return inner
        if token.kind == "name":
            word = token.word
            if word in ("true", "false"):
                self.advance()
                return self.node(Constant(word == "true"), token)
            if word == "null":
                self.advance()
                return self.node(Constant(None), token)
            if word in KEYWORDS:
                raise self.unexpected(token, "a value")
            if self.tokens[self.index + 1].kind == "(":
                return self.call()
            return self.path()
        if token.kind == "quoted":
            return self.path()
        raise self.unexpected(token, "a value")

    def path(self) -> Expr:
        first = self.advance()
        segments = [str(first.value) if first.kind == "quoted" else first.text]
        while self.peek().kind == ".":
            self.advance()
            segment = self.peek()
            if segment.kind == "name":
                segments.append(segment.text)
            elif segment.kind == "quoted":
                segments.append(str(segment.value))
            else:
                raise self.unexpected(segment, "a field name after '.'")
            self.advance()
        if self.peek().kind == "(":
            raise self.unexpected(self.peek(), "an operator (only plain names call functions)")
        return self.node(FieldRef(tuple(segments)), first)

    def call(self) -> Expr:
        name_token = self.advance()
        name = name_token.text.lower()
        arity = FUNCTIONS.get(name)
        if arity is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.error(
                name_token, f"unknown function {name_token.text!r}", f"known functions are {known}"
            )
        opening = self.advance()
        self.enter(name_token)
        args: list[Expr] = []
        starts: list[Token] = []
        if self.peek().kind != ")":
            while True:
                starts.append(self.peek())
                args.append(self.expression())
                if self.peek().kind == ",":
                    self.advance()
                    continue
                if self.peek().kind != ")":
                    where = _where(self.text, opening.offset)
                    raise self.unexpected(self.peek(), f"',' or ')' to close {name}( from {where}")
                break
        self.advance()
        self.leave()
        if not arity.allows(len(args)):
            raise self.error(
                name_token,
                f"{name}() takes {arity.describe()}, but {len(args)} {'was' if len(args) == 1 else 'were'} given",
            )
        self.check_literals(name, args, starts)
        return self.node(Call(name, tuple(args)), name_token)

    def check_literals(self, name: str, args: list[Expr], starts: list[Token]) -> None:
        """Arguments Arrow's kernels take as one value for the whole batch must be literals."""
        if name == "to_timestamp":
            fmt = args[1]
            if not (isinstance(fmt, Constant) and isinstance(fmt.value, str)):
                raise self.error(starts[1], "to_timestamp(): the format must be a string literal")
            try:
                strftime_format(fmt.value)
            except ValueError as exc:
                raise self.error(starts[1], f"to_timestamp(): {exc}") from None
        if name == "substr":
            for arg, token, role in zip(args[1:], starts[1:], ("start", "length"), strict=False):
                value = arg.value if isinstance(arg, Constant) else None
                if not isinstance(value, int) or isinstance(value, bool):
                    raise self.error(token, f"substr(): {role} must be a whole-number literal (0 or more)")


def _numeric(text: str) -> bool:
    """Whether a text reads as a number the way the engine reads numeric strings (`-1.5`, `2e3`)."""
    body = text.strip(" \t\n\f\r")
    if body[:1] in ("+", "-"):
        body = body[1:]
    mantissa, marker, exponent = body.lower().partition("e")
    if marker:
        digits = exponent[1:] if exponent[:1] in ("+", "-") else exponent
        if not (_digits(digits) and len(digits) <= 3):
            return False
    whole, _, fraction = mantissa.partition(".")
    return bool(whole or fraction) and all(not part or _digits(part) for part in (whole, fraction))


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


# --- date formats ---

# strftime directives Arrow's strptime handles reliably (%Z is left out: it accepts any word).
_STRFTIME = frozenset("YymdejHIMSpbBhaAzsfTDFR%")
# Adobe/Java (DateTimeFormatter) pattern letters: (letter, run length) -> strftime; `None` = any length.
_JAVA: dict[tuple[str, int | None], str] = {
    ("y", 2): "%y",
    ("y", None): "%Y",
    ("u", 2): "%y",
    ("u", None): "%Y",
    ("M", 1): "%m",
    ("M", 2): "%m",
    ("M", 3): "%b",
    ("M", None): "%B",
    ("d", None): "%d",
    ("D", None): "%j",
    ("H", None): "%H",
    ("h", None): "%I",
    ("m", None): "%M",
    ("s", None): "%S",
    ("S", None): "%f",
    ("a", None): "%p",
    ("E", 4): "%A",
    ("E", None): "%a",
    ("Z", None): "%z",
    ("X", None): "%z",
    ("x", None): "%z",
}


def strftime_format(fmt: str) -> str:
    """A to_timestamp format as strftime: `%`-formats are checked, Java-style ones translated.

    Fractional seconds (`%f`, Java `SSS`) are supported right after seconds written with a colon
    (`HH:mm:ss.SSS`): Arrow's strptime has no directive for them, so the engine cuts them off the
    input, parses the rest and adds them back. Raises ValueError with a message for the user.
    """
    if not fmt:
        raise ValueError("the format is empty")
    result = fmt if "%" in fmt else _from_java(fmt)
    i = 0
    while i < len(result):
        if result[i] == "%":
            directive = result[i + 1 : i + 2]
            if directive not in _STRFTIME:
                raise ValueError(f"unsupported directive %{directive} in the format {fmt!r}")
            i += 2
        else:
            i += 1
    fractions = result.count("%f")
    if fractions and (fractions > 1 or (":%S.%f" not in result and ":%S,%f" not in result)):
        raise ValueError(
            f"fractional seconds in {fmt!r} are supported only right after seconds, as HH:mm:ss.SSS (%H:%M:%S.%f)"
        )
    return result


def _from_java(fmt: str) -> str:
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        char = fmt[i]
        if char == "'":
            if fmt[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            end = fmt.find("'", i + 1)
            while end != -1 and fmt[end + 1 : end + 2] == "'":  # '' inside quotes is a quote
                end = fmt.find("'", end + 2)
            if end == -1:
                raise ValueError(f"unterminated quote in the format {fmt!r}")
            out.append(fmt[i + 1 : end].replace("''", "'"))
            i = end + 1
        elif char.isascii() and char.isalpha():
            run = i
            while run < n and fmt[run] == char:
                run += 1
            length = run - i
            if char == "T":  # Java wants 'T' quoted; unquoted it can only mean the ISO separator
                out.append("T" * length)
                i = run
                continue
            directive = _JAVA.get((char, length)) or _JAVA.get((char, None))
            if directive is None:
                raise ValueError(f"unsupported pattern letter {char!r} in the format {fmt!r}")
            out.append(directive)
            i = run
        else:  # never "%": a format with one is strftime already
            out.append(char)
            i += 1
    return "".join(out)


# --- rendering ---

_PRECEDENCE = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, ">": 4, "<=": 4, ">=": 4}
_PRECEDENCE.update({"+": 5, "-": 5, "*": 6, "/": 6})
_UNARY_MINUS = 7


def render(expr: Expr) -> str:
    """Canonical text of an expression (parses back to an equal AST); used in messages."""
    return _render(expr, 0)


def _render(expr: Expr, needed: int) -> str:
    if isinstance(expr, Constant):
        return _render_constant(expr.value)
    if isinstance(expr, FieldRef):
        return ".".join(_render_segment(s) for s in expr.segments)
    if isinstance(expr, Call):
        return f"{expr.name}({', '.join(_render(a, 0) for a in expr.args)})"
    if isinstance(expr, Unary):
        own = _PRECEDENCE["not"] if expr.op == "not" else _UNARY_MINUS
        text = f"not {_render(expr.operand, own)}" if expr.op == "not" else f"-{_render(expr.operand, own)}"
    else:
        own = _PRECEDENCE[expr.op]
        # left-associative: the right operand binds tighter; comparisons do not chain at all
        left_needed = own + 1 if expr.op in COMPARISONS else own
        text = f"{_render(expr.left, left_needed)} {expr.op} {_render(expr.right, own + 1)}"
    return f"({text})" if own < needed else text


def _render_constant(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + _escape(value, '"') + '"'
    return repr(value)


def _render_segment(segment: str) -> str:
    plain = (
        segment
        and _is_name_start(segment[0])
        and all(_is_name_char(c) for c in segment)
        and segment.lower() not in KEYWORDS
    )
    return segment if plain else "`" + _escape(segment, "`") + "`"


def _escape(text: str, quote: str) -> str:
    replaced = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return replaced.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace("\0", "\\0")
