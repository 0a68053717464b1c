"""Adobe's database connection strings (`Server=…;Port=…;Database=…;UID=…;PWD=…`), parsed once, safely.

Adobe's PostgreSQL, MySQL and MariaDB sources take a single `connectionString` auth param in the
ODBC style of their DataDirect drivers (digest 8.1). The connectors need its parts as separate values
(psycopg and pymysql take keyword arguments), and parsing it in one place keeps the rules the same
for every database:

- `key=value` pairs separated by `;`; keys are case-insensitive and trimmed; empty pairs (a trailing
  `;`) are ignored. A key given twice (also through an alias, `PWD` and `Password`) is refused rather
  than guessed at.
- A value may be wrapped in braces to contain `;`, `=` or leading/trailing spaces: `PWD={a;b}`; inside
  braces `}}` is a literal `}` (the ODBC rule). Unbraced values are trimmed.
- Aliases: `Server`/`Host`, `UID`/`User`/`User ID`/`Username`, `PWD`/`Password` (the PostgreSQL
  page writes `Password=`, the MySQL and MariaDB pages `PWD=`), `Database`/`DB`.
- Other keys (`EncryptionMethod`, `ValidateServerCertificate`, …) are kept in `options`, spelled as
  given; `option()` looks them up without case.

The connection string is a secret (the catalog marks it `"format": "password"`), so errors name the
key at fault or the position of a malformed part, never a value; `repr()` shows no password, nor the
value of an option whose name suggests a secret. A value that holds `PWD=`/`Password=` is refused:
a missing `;` (`UID=u PWD=p`) would otherwise put the password into the user or host, which error
messages do name.

TLS: Adobe documents `EncryptionMethod=0` (disabled), `1` (SSL/TLS required) and `6` (RequestSSL: TLS
when the server offers it), and `ValidateServerCertificate=0|1` (check the server's certificate when
TLS is used). `tls()` turns them into one of libpq's sslmode words, which both connectors map to their
driver: absent → "prefer", 0 → "disable", 1 → "require", 6 → "prefer", and with
ValidateServerCertificate=1 (and encryption not disabled) → "verify-full" — asking for validation
never silently yields an unvalidated connection.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowservice.connectors.base import SourceRefused

TlsMode = Literal["disable", "prefer", "require", "verify-full"]

_ALIASES = {
    "server": "server",
    "host": "server",
    "port": "port",
    "database": "database",
    "db": "database",
    "uid": "user",
    "user": "user",
    "user id": "user",
    "userid": "user",
    "username": "user",
    "pwd": "password",
    "password": "password",
}
_REQUIRED = (("server", "Server"), ("database", "Database"), ("user", "UID"))
_SECRET_OPTION = re.compile(r"pass|pwd|secret|token|key", re.IGNORECASE)
_ABSORBED_PASSWORD = re.compile(r"(?:^|[\s;])(?:pwd|password)\s*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ConnectionString:
    """The parts of a connection string; `port` is None when the string names none."""

    host: str
    port: int | None
    database: str
    user: str
    password: str = field(repr=False)
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    def option(self, name: str) -> str | None:
        """The value of an extra key such as EncryptionMethod, whatever its case in the string."""
        wanted = name.casefold()
        for key, value in self.options.items():
            if key.casefold() == wanted:
                return value
        return None

    def tls(self) -> TlsMode:
        """The TLS mode asked for by EncryptionMethod and ValidateServerCertificate (module docstring)."""
        method = (self.option("EncryptionMethod") or "").strip()
        validate = (self.option("ValidateServerCertificate") or "").strip()
        # the values are not echoed: a missing ';' can carry the rest of the string, password included
        if method not in ("", "0", "1", "6"):
            raise SourceRefused("connection string: EncryptionMethod must be 0, 1 or 6")
        if validate not in ("", "0", "1"):
            raise SourceRefused("connection string: ValidateServerCertificate must be 0 or 1")
        if method == "0":
            return "disable"
        if validate == "1":
            return "verify-full"
        return "require" if method == "1" else "prefer"

    def __repr__(self) -> str:
        shown = {k: ("***" if _SECRET_OPTION.search(k) else v) for k, v in self.options.items()}
        return (
            f"ConnectionString(host={self.host!r}, port={self.port!r}, database={self.database!r}, "
            f"user={self.user!r}, password='***', options={shown!r})"
        )

    __str__ = __repr__


def from_params(params: Mapping[str, Any]) -> ConnectionString:
    """The parsed `connectionString` of a connection's auth params."""
    text = params.get("connectionString")
    if not isinstance(text, str) or not text.strip():
        raise SourceRefused("the connection needs a connectionString auth param")
    return parse(text)


def parse(text: str) -> ConnectionString:
    """Parse `Server=…;Port=…;Database=…;UID=…;PWD=…`; SourceRefused names a missing or bad key."""
    known: dict[str, str] = {}
    options: dict[str, str] = {}
    seen: set[str] = set()
    for number, (key, value) in enumerate(_pairs(text), start=1):
        if not key:
            raise SourceRefused(f"connection string: part {number} has no key before '='")
        folded = " ".join(key.casefold().split())
        canonical = _ALIASES.get(folded, folded)
        if canonical in seen:
            raise SourceRefused(f"connection string: {key!r} is given more than once")
        seen.add(canonical)
        if canonical != "password" and _ABSORBED_PASSWORD.search(value):
            raise SourceRefused(
                f"connection string: the value of {key!r} holds a password key; put ';' between the pairs"
            )
        if canonical in _ALIASES.values():
            known[canonical] = value
        else:
            options[key] = value
    for name, spelled in _REQUIRED:
        if not known.get(name):
            raise SourceRefused(f"connection string: {spelled} is missing or empty")
    port_text = known.get("port", "")
    port: int | None = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            # not echoed: "Port=5432 PWD=…" (a ';' missing) would show the password
            raise SourceRefused("connection string: Port must be a number from 1 to 65535")
        port = int(port_text)
    return ConnectionString(
        host=known["server"],
        port=port,
        database=known["database"],
        user=known["user"],
        password=known.get("password", ""),
        options=options,
    )


def _pairs(text: str) -> list[tuple[str, str]]:
    """The (key, value) pairs of the string, braces resolved; errors give positions, never values."""
    pairs: list[tuple[str, str]] = []
    i, n, number = 0, len(text), 0
    while i < n:
        number += 1
        end = text.find("=", i)
        semi = text.find(";", i)
        if end < 0 or (0 <= semi < end):
            if text[i : semi if semi >= 0 else n].strip():
                raise SourceRefused(f"connection string: part {number} is not of the form key=value")
            i = (semi if semi >= 0 else n) + 1
            continue
        key = text[i:end].strip()
        i = end + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == "{":
            value, i = _braced(text, i + 1, number)
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] != ";":
                raise SourceRefused(f"connection string: part {number} has text after its closing brace")
            i += 1
        else:
            semi = text.find(";", i)
            stop = semi if semi >= 0 else n
            value = text[i:stop].strip()
            i = stop + 1
        pairs.append((key, value))
    return pairs


def _braced(text: str, i: int, number: int) -> tuple[str, int]:
    """The value inside braces starting at `i` (after "{") and the index after the closing "}"."""
    out: list[str] = []
    n = len(text)
    while i < n:
        char = text[i]
        if char == "}":
            if i + 1 < n and text[i + 1] == "}":
                out.append("}")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise SourceRefused(f"connection string: part {number} opens a brace that is never closed")
