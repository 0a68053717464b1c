"""Adobe's connection strings: keys without case, braces, aliases, kept options, TLS words, no leaked secrets."""

from __future__ import annotations

import pytest

from flowservice.connectors.base import SourceRefused
from flowservice.connectors.connection_string import ConnectionString, from_params, parse

SECRET = "s3cr3t-Pa55"


def test_the_documented_forms() -> None:
    pg = parse(f"Server=db.example.com;Database=sales;Port=5433;UID=reader;Password={SECRET}")
    assert (pg.host, pg.port, pg.database, pg.user, pg.password) == (
        "db.example.com",
        5433,
        "sales",
        "reader",
        SECRET,
    )
    assert pg.options == {}
    maria = parse(f"Server=10.0.0.5;Port=3306;Database=shop;UID=root;PWD={SECRET}")
    assert (maria.host, maria.port, maria.user, maria.password) == ("10.0.0.5", 3306, "root", SECRET)


def test_keys_are_case_insensitive_and_values_trimmed() -> None:
    cs = parse(f" server = h ; DATABASE=d;uid=u ; pwd = {SECRET} ;")
    assert (cs.host, cs.database, cs.user, cs.password, cs.port) == ("h", "d", "u", SECRET, None)


def test_aliases() -> None:
    cs = parse("Host=h;DB=d;User ID=u;Password=p")
    assert (cs.host, cs.database, cs.user, cs.password) == ("h", "d", "u", "p")
    assert parse("Server=h;Database=d;Username=u").user == "u"


def test_braces_hold_semicolons_equals_spaces_and_doubled_closing_braces() -> None:
    cs = parse("Server=h;Database={my;db};UID=u;PWD={ a;b=c}}d };EncryptionMethod=1")
    assert cs.database == "my;db"
    assert cs.password == " a;b=c}d "
    assert cs.option("encryptionmethod") == "1"
    assert parse("Server=h;Database=d;UID=u;PWD={}").password == ""


def test_unknown_keys_are_kept_as_spelled() -> None:
    cs = parse("Server=h;Database=d;UID=u;EncryptionMethod=1;ValidateServerCertificate=0;Custom Thing=x")
    assert cs.options == {"EncryptionMethod": "1", "ValidateServerCertificate": "0", "Custom Thing": "x"}
    assert cs.option("VALIDATESERVERCERTIFICATE") == "0"
    assert cs.option("missing") is None


def test_a_missing_password_is_empty() -> None:
    assert parse("Server=h;Database=d;UID=u").password == ""


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (f"Database=d;UID=u;PWD={SECRET}", "Server"),
        (f"Server=;Database=d;UID=u;PWD={SECRET}", "Server"),
        (f"Server=h;UID=u;PWD={SECRET}", "Database"),
        (f"Server=h;Database=d;PWD={SECRET}", "UID"),
    ],
)
def test_missing_keys_are_named_without_the_password(text: str, named: str) -> None:
    with pytest.raises(SourceRefused, match=f"{named} is missing") as caught:
        parse(text)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"Server=h;Database=d;UID=u;PWD={SECRET};{SECRET}", "part 5 is not of the form key=value"),
        (f"Server=h;Database=d;UID=u;PWD={{{SECRET}", "never closed"),
        (f"Server=h;Database=d;UID=u;PWD={{{SECRET}}}x", "text after its closing brace"),
        (f"Server=h;Database=d;UID=u;PWD={SECRET};Password={SECRET}", "'Password' is given more than once"),
        (f"Server=h;Database=d;UID=u;={SECRET}", "no key"),
        (f"Server=h;Port=http;Database=d;UID=u;PWD={SECRET}", "Port must be a number"),
        (f"Server=h;Port=70000;Database=d;UID=u;PWD={SECRET}", "Port must be a number"),
    ],
)
def test_malformed_strings_are_refused_without_echoing_secrets(text: str, message: str) -> None:
    with pytest.raises(SourceRefused, match=message) as caught:
        parse(text)
    assert SECRET not in str(caught.value)


def test_from_params() -> None:
    assert from_params({"connectionString": "Server=h;Database=d;UID=u"}).host == "h"
    for params in ({}, {"connectionString": ""}, {"connectionString": 42}):
        with pytest.raises(SourceRefused, match="connectionString"):
            from_params(params)


def test_repr_and_str_hide_the_password_and_secret_looking_options() -> None:
    cs = parse(f"Server=h;Database=d;UID=u;PWD={SECRET};SSLKeyPassword={SECRET};EncryptionMethod=1")
    for text in (repr(cs), str(cs), f"{cs}"):
        assert SECRET not in text
        assert "password='***'" in text and "'EncryptionMethod': '1'" in text


def test_value_object() -> None:
    one = parse("Server=h;Database=d;UID=u;PWD=p;EncryptionMethod=1")
    two = parse("server=h;database=d;uid=u;pwd=p;EncryptionMethod=1")
    assert one == two and hash(one) == hash(two)
    assert isinstance(one, ConnectionString)
    with pytest.raises(AttributeError):
        one.host = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("extra", "mode"),
    [
        ("", "prefer"),
        (";EncryptionMethod=0", "disable"),
        (";EncryptionMethod=0;ValidateServerCertificate=1", "disable"),
        (";EncryptionMethod=1", "require"),
        (";EncryptionMethod=1;ValidateServerCertificate=0", "require"),
        (";EncryptionMethod=1;ValidateServerCertificate=1", "verify-full"),
        (";EncryptionMethod=6", "prefer"),
        (";EncryptionMethod=6;ValidateServerCertificate=1", "verify-full"),
    ],
)
def test_tls_modes(extra: str, mode: str) -> None:
    assert parse("Server=h;Database=d;UID=u" + extra).tls() == mode


def test_unknown_tls_values_are_refused() -> None:
    with pytest.raises(SourceRefused, match="EncryptionMethod must be 0, 1 or 6"):
        parse("Server=h;Database=d;UID=u;EncryptionMethod=2").tls()
    with pytest.raises(SourceRefused, match="ValidateServerCertificate must be 0 or 1"):
        parse("Server=h;Database=d;UID=u;ValidateServerCertificate=yes").tls()
