"""The Data Prep expression parser: every construct, precedence, errors that point at a column, limits.

Pure: these tests build ASTs and compare them; evaluation over Arrow is tested in
tests/engine/test_mapping.py.
"""

from __future__ import annotations

import pytest

from flowservice.domain import expressions
from flowservice.domain.expressions import (
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Binary,
    Call,
    Constant,
    Expr,
    FieldRef,
    Unary,
    fields,
    parse,
    render,
    strftime_format,
)
from flowservice.errors import InvalidRequest


def ref(path: str) -> FieldRef:
    return FieldRef(tuple(path.split(".")))


def error(text: str) -> str:
    with pytest.raises(InvalidRequest) as exc:
        parse(text)
    assert exc.value.code == "1000"
    assert exc.value.field == "expression"
    assert exc.value.status == 400
    return exc.value.message


class TestLiterals:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ('"hello"', "hello"),
            ("'hello'", "hello"),
            ('""', ""),
            (r'"say \"hi\""', 'say "hi"'),
            (r"'it\'s'", "it's"),
            (r'"a\\b"', "a\\b"),
            (r'"tab\there\nnew line\r\0"', "tab\there\nnew line\r\0"),
            (r'"caf\u00e9"', "café"),
            ('"quotes \' inside"', "quotes ' inside"),
            ("'quotes \" inside'", 'quotes " inside'),
            ('"unicode ünïcödé 🎉"', "unicode ünïcödé 🎉"),
            ("0", 0),
            ("42", 42),
            ("007", 7),
            ("9223372036854775807", 2**63 - 1),
            ("00000000000000000000001", 1),
            ("1.5", 1.5),
            ("0.25", 0.25),
            ("2e3", 2000.0),
            ("1.5E-2", 0.015),
            ("true", True),
            ("false", False),
            ("TRUE", True),
            ("False", False),
            ("null", None),
            ("NULL", None),
        ],
    )
    def test_literal(self, text: str, value: object) -> None:
        parsed = parse(text)
        assert isinstance(parsed, Constant)
        assert parsed.value == value
        assert type(parsed.value) is type(value)

    def test_integers_stay_int_and_decimals_are_float(self) -> None:
        assert parse("3") == Constant(3) and isinstance(parse("3").value, int)  # type: ignore[union-attr]
        assert isinstance(parse("3.0").value, float)  # type: ignore[union-attr]

    def test_booleans_are_not_integers(self) -> None:
        # Constant(True) == Constant(1) in Python; the AST keeps the type so the engine builds bool
        parsed = parse("true")
        assert isinstance(parsed, Constant) and parsed.value is True

    def test_doubled_quotes_are_not_an_escape(self) -> None:
        assert (
            error("'it''s'")
            == "unexpected \"'s'\" at column 5: expected an operator or the end of the expression"
        )

    def test_whitespace_is_ignored(self) -> None:
        assert parse("  \t 1 +\n 2 \r\n") == Binary("+", Constant(1), Constant(2))


class TestFieldReferences:
    def test_identifier(self) -> None:
        assert parse("firstName") == FieldRef(("firstName",))
        assert parse("_id") == FieldRef(("_id",))
        assert parse("col_2") == FieldRef(("col_2",))
        assert parse("prénom") == FieldRef(("prénom",))

    def test_dotted_path(self) -> None:
        assert parse("person.name.first") == FieldRef(("person", "name", "first"))
        assert parse("person.name.first").path == "person.name.first"  # type: ignore[union-attr]

    def test_backquoted_names(self) -> None:
        assert parse("`first name`") == FieldRef(("first name",))
        assert parse("`order-id`") == FieldRef(("order-id",))
        assert parse("`1st`") == FieldRef(("1st",))
        assert parse(r"`back\`quote`") == FieldRef(("back`quote",))
        assert parse("`a.b`") == FieldRef(("a.b",))  # one name with a dot, not a path

    def test_backquotes_inside_a_path(self) -> None:
        assert parse("person.`home address`.city") == FieldRef(("person", "home address", "city"))
        assert parse("`the person`.name") == FieldRef(("the person", "name"))

    def test_keywords_as_names(self) -> None:
        assert parse("`null`") == FieldRef(("null",))
        assert parse("`and`") == FieldRef(("and",))
        # after a dot a name cannot be a keyword, so none is needed
        assert parse("flags.not") == FieldRef(("flags", "not"))
        assert parse("a.true") == FieldRef(("a", "true"))

    def test_spaces_around_dots(self) -> None:
        assert parse("person . name") == FieldRef(("person", "name"))

    def test_fields(self) -> None:
        expr = parse(
            'iif(is_empty(person.name), concat(`first name`, " ", last), upper(person.name)) '
            'and age > 3 or coalesce(x, "x") == "y"'
        )
        assert fields(expr) == {"person.name", "first name", "last", "age", "x"}
        assert fields(parse('concat("a", 1, null, true)')) == set()
        assert fields(parse("a + a")) == {"a"}


class TestFunctions:
    @pytest.mark.parametrize(
        "text",
        [
            "concat(a)",
            'concat(a, " ", b, c)',
            "coalesce(a)",
            "coalesce(a, b, 0)",
            "lower(a)",
            "upper(a)",
            "trim(a)",
            "len(a)",
            "is_empty(a)",
            "to_integer(a)",
            "to_decimal(a)",
            'to_timestamp(a, "%Y-%m-%d %H:%M:%S")',
            'to_timestamp(a, "yyyy-MM-dd HH:mm:ss")',
            "iif(a > 1, b, c)",
            "substr(a, 0, 3)",
            "substr(a, 2)",
        ],
    )
    def test_call(self, text: str) -> None:
        parsed = parse(text)
        assert isinstance(parsed, Call)
        assert parsed.name == text.split("(")[0]

    def test_every_function_is_listed(self) -> None:
        assert set(FUNCTIONS) == {
            "concat",
            "coalesce",
            "lower",
            "upper",
            "trim",
            "len",
            "is_empty",
            "to_integer",
            "to_decimal",
            "to_timestamp",
            "iif",
            "substr",
        }

    def test_arguments_are_expressions(self) -> None:
        assert parse("concat(lower(a), b + 1, (c))") == Call(
            "concat",
            (Call("lower", (ref("a"),)), Binary("+", ref("b"), Constant(1)), ref("c")),
        )

    def test_names_ignore_case(self) -> None:
        assert parse("UPPER(a)") == Call("upper", (ref("a"),))
        assert parse("To_Integer(a)") == Call("to_integer", (ref("a"),))

    def test_space_before_parenthesis(self) -> None:
        assert parse("lower (a)") == Call("lower", (ref("a"),))

    def test_unknown_function(self) -> None:
        message = error("  frobnicate(a)")
        assert message.startswith("unknown function 'frobnicate' at column 3")
        assert "concat" in message and "to_timestamp" in message

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("lower()", "lower() takes 1 argument, but 0 were given at column 1"),
            ("lower(a, b)", "lower() takes 1 argument, but 2 were given at column 1"),
            ("concat()", "concat() takes at least 1 argument, but 0 were given at column 1"),
            ("coalesce()", "coalesce() takes at least 1 argument, but 0 were given at column 1"),
            ("x + iif(a, b)", "iif() takes 3 arguments, but 2 were given at column 5"),
            ("substr(a)", "substr() takes 2 to 3 arguments, but 1 was given at column 1"),
            ("to_timestamp(a)", "to_timestamp() takes 2 arguments, but 1 was given at column 1"),
        ],
    )
    def test_wrong_arity(self, text: str, message: str) -> None:
        assert error(text) == message

    def test_trailing_comma(self) -> None:
        assert error("concat(a, )") == "unexpected ')' at column 11: expected a value"

    def test_to_timestamp_format_must_be_a_valid_literal(self) -> None:
        assert error("to_timestamp(a, fmt)") == (
            "to_timestamp(): the format must be a string literal at column 17"
        )
        assert error('to_timestamp(a, "yyyy-QQ")').startswith(
            "to_timestamp(): unsupported pattern letter 'Q' in the format 'yyyy-QQ' at column 17"
        )
        assert "unsupported directive %Q" in error('to_timestamp(a, "%Y-%Q")')

    def test_substr_positions_must_be_literals(self) -> None:
        assert error("substr(a, b, 2)") == (
            "substr(): start must be a whole-number literal (0 or more) at column 11"
        )
        assert error("substr(a, 0, -1)") == (
            "substr(): length must be a whole-number literal (0 or more) at column 14"
        )
        assert "start must be" in error("substr(a, 1.5)")


class TestOperators:
    @pytest.mark.parametrize("op", ["==", "!=", "<", ">", "<=", ">="])
    def test_comparison(self, op: str) -> None:
        assert parse(f"a {op} 1") == Binary(op, ref("a"), Constant(1))  # type: ignore[arg-type]
        assert parse(f"a{op}1") == Binary(op, ref("a"), Constant(1))  # type: ignore[arg-type]

    @pytest.mark.parametrize("op", ["+", "-", "*", "/"])
    def test_arithmetic(self, op: str) -> None:
        assert parse(f"a {op} 2") == Binary(op, ref("a"), Constant(2))  # type: ignore[arg-type]

    def test_logic(self) -> None:
        assert parse("a and b") == Binary("and", ref("a"), ref("b"))
        assert parse("a or b") == Binary("or", ref("a"), ref("b"))
        assert parse("not a") == Unary("not", ref("a"))
        assert parse("a AND NOT b") == Binary("and", ref("a"), Unary("not", ref("b")))

    def test_unary_minus(self) -> None:
        assert parse("-a") == Unary("-", ref("a"))
        assert parse("-5") == Unary("-", Constant(5))
        assert parse("--a") == Unary("-", Unary("-", ref("a")))
        assert parse("a - -1") == Binary("-", ref("a"), Unary("-", Constant(1)))

    def test_numeric_string_literals_are_allowed_in_arithmetic(self) -> None:
        assert parse('a + "1.5"') == Binary("+", ref("a"), Constant("1.5"))

    def test_plus_does_not_join_text(self) -> None:
        assert error('first + " " + last') == (
            "'+' works on numbers, not on the text \" \" at column 9: use concat() to join text"
        )
        assert error("'a' * 2") == "'*' works on numbers, not on the text 'a' at column 1"


class TestPrecedence:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("a + b * c", Binary("+", ref("a"), Binary("*", ref("b"), ref("c")))),
            ("a * b + c", Binary("+", Binary("*", ref("a"), ref("b")), ref("c"))),
            ("(a + b) * c", Binary("*", Binary("+", ref("a"), ref("b")), ref("c"))),
            ("a - b - c", Binary("-", Binary("-", ref("a"), ref("b")), ref("c"))),
            ("a / b / c", Binary("/", Binary("/", ref("a"), ref("b")), ref("c"))),
            ("a - (b - c)", Binary("-", ref("a"), Binary("-", ref("b"), ref("c")))),
            ("-a * b", Binary("*", Unary("-", ref("a")), ref("b"))),
            ("-(a * b)", Unary("-", Binary("*", ref("a"), ref("b")))),
            (
                "a + 1 > b * 2",
                Binary(">", Binary("+", ref("a"), Constant(1)), Binary("*", ref("b"), Constant(2))),
            ),
            (
                "a == 1 and b == 2",
                Binary("and", Binary("==", ref("a"), Constant(1)), Binary("==", ref("b"), Constant(2))),
            ),
            ("a or b and c", Binary("or", ref("a"), Binary("and", ref("b"), ref("c")))),
            ("a and b or c", Binary("or", Binary("and", ref("a"), ref("b")), ref("c"))),
            ("(a or b) and c", Binary("and", Binary("or", ref("a"), ref("b")), ref("c"))),
            ("a or b or c", Binary("or", Binary("or", ref("a"), ref("b")), ref("c"))),
            ("not a == b", Unary("not", Binary("==", ref("a"), ref("b")))),
            ("not a and b", Binary("and", Unary("not", ref("a")), ref("b"))),
            ("not not a", Unary("not", Unary("not", ref("a")))),
            ("(a == b) == c", Binary("==", Binary("==", ref("a"), ref("b")), ref("c"))),
            ("((a))", ref("a")),
        ],
    )
    def test_precedence(self, text: str, expected: Expr) -> None:
        assert parse(text) == expected

    def test_comparisons_do_not_chain(self) -> None:
        assert error("a < b < c") == "comparisons cannot be chained at column 7: use and"
        assert error("a == b == c") == "comparisons cannot be chained at column 8: use and"


class TestErrors:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "concat(a, b))",
                "unexpected ')' at column 13: expected an operator or the end of the expression",
            ),
            (
                "(a + b",
                "unexpected end of expression at column 7: expected ')' to close the '(' from column 1",
            ),
            (
                "lower(a",
                "unexpected end of expression at column 8: expected ',' or ')' to close lower( from column 6",
            ),
            (
                "concat(a b)",
                "unexpected 'b' at column 10: expected ',' or ')' to close concat( from column 7",
            ),
            ("a +", "unexpected end of expression at column 4: expected a value"),
            ("a + * b", "unexpected '*' at column 5: expected a value"),
            ("a b", "unexpected 'b' at column 3: expected an operator or the end of the expression"),
            ("and", "unexpected 'and' at column 1: expected a value"),
            ("not", "unexpected end of expression at column 4: expected a value"),
            (")", "unexpected ')' at column 1: expected a value"),
            (",", "unexpected ',' at column 1: expected a value"),
            ("a.", "unexpected end of expression at column 3: expected a field name after '.'"),
            ("a..b", "unexpected '.' at column 3: expected a field name after '.'"),
            ("a.1", "unexpected '1' at column 3: expected a field name after '.'"),
            (
                "a.lower(b)",
                "unexpected '(' at column 8: expected an operator (only plain names call functions)",
            ),
            ("`a`(b)", "unexpected '(' at column 4: expected an operator (only plain names call functions)"),
            ("a = 1", "unexpected '=' at column 3: use == to compare"),
            ("!a", "unexpected '!' at column 1: use not"),
            ("a && b", "unexpected '&' at column 3: use and"),
            ("a || b", "unexpected '|' at column 3: use or"),
            ("a[0]", "unexpected '[' at column 2: write nested fields as a.b"),
            ("a @ b", "unexpected '@' at column 3"),
            ("a ; b", "unexpected ';' at column 3"),
            ('"abc', 'unterminated string: missing closing " at column 1'),
            ("x == 'abc", "unterminated string: missing closing ' at column 6"),
            ('"abc\\', 'unterminated string: missing closing " at column 1'),
            ("`abc", "unterminated name: missing closing ` at column 1"),
            ("``", "empty field name `` at column 1"),
            (r'"a\qb"', "unknown escape '\\q' at column 3"),
            (r'"\u12"', "expected 4 hex digits after \\u at column 2"),
            ("1.", "expected a digit after the decimal point at column 2"),
            ("1.x", "expected a digit after the decimal point at column 2"),
            (".5", "unexpected '.' at column 1: expected a value"),
            ("1e", "expected digits in the exponent at column 2"),
            ("12abc", "invalid number '12abc' at column 1"),
            (
                "9223372036854775808",
                "integer 9223372036854775808 is out of range (at most 9223372036854775807) at column 1",
            ),
            ("1e999", "number 1e999 is too large at column 1"),
            ("²", "unexpected '²' at column 1"),
            ("1 + ٣", "unexpected '٣' at column 5"),
        ],
    )
    def test_message_points_at_the_position(self, text: str, message: str) -> None:
        assert error(text) == message

    def test_multi_line_positions(self) -> None:
        assert error("concat(\n  a,\n  )") == "unexpected ')' at line 3, column 3: expected a value"

    def test_long_tokens_are_cut_in_messages(self) -> None:
        message = error("a " + "b" * 500)
        assert len(message) < 200 and "..." in message

    @pytest.mark.parametrize("text", ["", "   ", "\n\t"])
    def test_empty(self, text: str) -> None:
        assert error(text) == "The expression is empty."

    def test_not_a_string(self) -> None:
        with pytest.raises(InvalidRequest, match="must be a string"):
            parse(None)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "text",
        [
            '__import__("os").system("true")',
            "eval('1')",
            "exec('x = 1')",
            "a.__class__.__bases__",
            "lambda: 1",
            "[x for x in y]",
            "{}",
            "f'{a}'",
        ],
    )
    def test_python_is_not_an_expression(self, text: str) -> None:
        """Python syntax means nothing here: it is rejected, or reads as a harmless field name."""
        try:
            parsed = parse(text)
        except InvalidRequest:
            return
        assert isinstance(parsed, FieldRef)


class TestLimits:
    def test_length(self) -> None:
        at_limit = "a" + " + a" * ((MAX_LENGTH - 1) // 4)
        assert len(at_limit) <= MAX_LENGTH
        too_long = "'" + "x" * (MAX_LENGTH - 1) + "'"
        assert len(too_long) == MAX_LENGTH + 1
        message = error(too_long)
        assert (
            message
            == f"The expression is {MAX_LENGTH + 1} characters long: at most {MAX_LENGTH} are allowed."
        )
        assert isinstance(parse("'" + "x" * (MAX_LENGTH - 2) + "'"), Constant)

    @pytest.mark.parametrize(
        ("open_", "close"),
        [("(", ")"), ("lower(", ")"), ("not ", ""), ("-", "")],
    )
    def test_depth(self, open_: str, close: str) -> None:
        parse(open_ * MAX_DEPTH + "a" + close * MAX_DEPTH)
        message = error(open_ * (MAX_DEPTH + 1) + "a" + close * (MAX_DEPTH + 1))
        column = len(open_) * MAX_DEPTH + 1
        assert message == f"the expression nests deeper than {MAX_DEPTH} levels at column {column}"

    def test_deep_nesting_fails_fast_without_recursion_errors(self) -> None:
        assert "nests deeper" in error("(" * 1999 + "a" + ")" * 1999)

    def test_nodes(self) -> None:
        # n terms joined by + are 2n - 1 nodes
        terms = (MAX_NODES + 1) // 2
        parse(" + ".join(["a"] * terms))
        message = error(" + ".join(["a"] * (terms + 1)))
        assert message.startswith(f"the expression has more than {MAX_NODES} parts at column")

    def test_nodes_count_every_kind(self) -> None:
        args = ", ".join(["1"] * (MAX_NODES - 1))
        assert isinstance(parse(f"concat({args})"), Call)
        assert "more than" in error(f"concat({args}, 1)")


class TestRender:
    @pytest.mark.parametrize(
        "text",
        [
            "a + b * c",
            "(a + b) * c",
            "a - (b - c)",
            "a - b - c",
            "-(a + b)",
            "- - a",
            "-a * b",
            "not a == b",
            "(not a) == b",
            "not (a and b)",
            "a or b and c",
            "(a or b) and c",
            "(a < b) == c",
            'concat(`first name`, " ", person.`home address`.city)',
            r'"esc \" \\ \n \t"',
            "`null` == null",
            "iif(x >= 1.5, true, false)",
            "coalesce(a, 'x', 2e30)",
            "to_timestamp(d, \"yyyy-MM-dd'T'HH:mm:ss\")",
        ],
    )
    def test_round_trip(self, text: str) -> None:
        parsed = parse(text)
        assert parse(render(parsed)) == parsed

    def test_canonical_form(self) -> None:
        assert render(parse("( a+b )*c")) == "(a + b) * c"
        assert render(parse("UPPER( 'x' )")) == 'upper("x")'
        assert render(parse("`first name`.x")) == "`first name`.x"


class TestTimestampFormats:
    @pytest.mark.parametrize(
        ("java", "strftime"),
        [
            ("yyyy-MM-dd HH:mm:ss", "%Y-%m-%d %H:%M:%S"),
            ("yyyy-MM-dd'T'HH:mm:ss", "%Y-%m-%dT%H:%M:%S"),
            ("yyyy-MM-ddTHH:mm:ss", "%Y-%m-%dT%H:%M:%S"),
            ("dd/MM/yy", "%d/%m/%y"),
            ("d MMM yyyy", "%d %b %Y"),
            ("EEEE, d MMMM uuuu", "%A, %d %B %Y"),
            ("EEE hh:mm a", "%a %I:%M %p"),
            ("yyyy-MM-dd HH:mm:ss.SSS", "%Y-%m-%d %H:%M:%S.%f"),
            ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "%Y-%m-%dT%H:%M:%S.%f%z"),
            ("yyyy-MM-dd HH:mm:ssZ", "%Y-%m-%d %H:%M:%S%z"),
            ("yyyyDDD", "%Y%j"),
            ("yyyyMMdd", "%Y%m%d"),
            ("'at' HH 'o''clock'", "at %H o'clock"),
            ("''yy", "'%y"),
        ],
    )
    def test_java_patterns_translate(self, java: str, strftime: str) -> None:
        assert strftime_format(java) == strftime

    @pytest.mark.parametrize(
        "fmt", ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%Y-%m-%dT%H:%M:%S%z", "%s", "%H:%M:%S.%f"]
    )
    def test_strftime_passes_through(self, fmt: str) -> None:
        assert strftime_format(fmt) == fmt

    @pytest.mark.parametrize(
        ("fmt", "message"),
        [
            ("", "the format is empty"),
            ("yyyy-QQ", "unsupported pattern letter 'Q'"),
            ("yyyy 'T", "unterminated quote"),
            ("%Y-%Q", "unsupported directive %Q"),
            ("%Y %Z", "unsupported directive %Z"),
            ("%Y-%", "unsupported directive %"),
            ("ss.SSS mm", "fractional seconds"),
            ("%S%f", "fractional seconds"),
            ("%H:%M:%S.%f.%f", "fractional seconds"),
        ],
    )
    def test_bad_formats(self, fmt: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            strftime_format(fmt)


def test_the_module_stays_pure() -> None:
    source = expressions.__file__
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    for forbidden in ("import pyarrow", "import re\n", "eval(", "exec(", "compile("):
        assert forbidden not in text
