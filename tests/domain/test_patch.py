from typing import Any

import pytest

from flowservice.domain import patch
from flowservice.errors import InvalidRequest

ALLOWED = {"name", "description", "auth", "scheduleParams"}


def code_of(exc: pytest.ExceptionInfo[InvalidRequest]) -> str:
    return exc.value.code


class TestNormalize:
    def test_accepts_one_object_or_an_array_and_ops_in_any_case(self) -> None:
        one = patch.normalize_ops({"op": "Add", "path": "/name", "value": "x"})
        many = patch.normalize_ops(
            [{"op": "REPLACE", "path": "/name", "value": "x"}, {"op": "remove", "path": "/d"}]
        )
        assert one == [{"op": "add", "path": "/name", "value": "x"}]
        assert [op["op"] for op in many] == ["replace", "remove"]

    @pytest.mark.parametrize("body", [None, [], {}])
    def test_empty_body_is_1405(self, body: Any) -> None:
        with pytest.raises(InvalidRequest) as exc:
            patch.normalize_ops(body)
        assert code_of(exc) == "1405"

    @pytest.mark.parametrize("op", ["move", "copy", "test", "merge"])
    def test_unsupported_operations_are_1434_and_named(self, op: str) -> None:
        with pytest.raises(InvalidRequest) as exc:
            patch.normalize_ops([{"op": op, "path": "/name", "from": "/x"}])
        assert code_of(exc) == "1434"
        assert f"'{op}'" in exc.value.message

    @pytest.mark.parametrize(
        ("item", "code", "field"),
        [
            ({"op": "add", "value": 1}, "1365", "path"),
            ({"op": "add", "path": "name", "value": 1}, "1365", "path"),
            ({"op": "replace", "path": "/name"}, "1000", "value"),
            ({"path": "/name", "value": 1}, "1000", "op"),
            ({"op": "add", "path": "/name", "value": 1, "extra": 2}, "1000", "extra"),
            ("not an object", "1000", "[0]"),
        ],
    )
    def test_malformed_operations_name_the_field(self, item: Any, code: str, field: str) -> None:
        with pytest.raises(InvalidRequest) as exc:
            patch.normalize_ops([item])
        assert (exc.value.code, exc.value.field) == (code, field)


class TestApply:
    doc = {"name": "a", "auth": {"specName": "Access Key", "params": {"s3SecretKey": "hunter2"}}, "id": "x"}

    def test_applies_in_order_without_touching_the_input(self) -> None:
        ops = patch.normalize_ops(
            [
                {"op": "replace", "path": "/name", "value": "b"},
                {"op": "add", "path": "/auth/params/s3SessionToken", "value": "t"},
                {"op": "add", "path": "/description", "value": "d"},
            ]
        )
        result = patch.apply(self.doc, ops, ALLOWED)
        assert result["name"] == "b"
        assert result["description"] == "d"
        assert result["auth"]["params"] == {"s3SecretKey": "hunter2", "s3SessionToken": "t"}
        assert self.doc["name"] == "a"
        assert "s3SessionToken" not in self.doc["auth"]["params"]  # type: ignore[index]

    @pytest.mark.parametrize("path", ["/id", "/createdAt", "/connectionSpec/id", "/", "/etag"])
    def test_fields_outside_the_allowed_set_are_1365(self, path: str) -> None:
        with pytest.raises(InvalidRequest) as exc:
            patch.apply(self.doc, patch.normalize_ops([{"op": "replace", "path": path, "value": 1}]), ALLOWED)
        assert exc.value.code == "1365"
        assert "/name" in exc.value.message  # the message lists what may be changed

    def test_missing_target_is_1455_naming_the_field_and_never_the_document(self) -> None:
        ops = patch.normalize_ops([{"op": "replace", "path": "/auth/params/nope", "value": "v"}])
        with pytest.raises(InvalidRequest) as exc:
            patch.apply(self.doc, ops, ALLOWED)
        assert exc.value.code == "1455"
        assert 'Missing field "nope"' in exc.value.message
        assert "hunter2" not in exc.value.message

    def test_remove_of_absent_field_is_1455(self) -> None:
        with pytest.raises(InvalidRequest) as exc:
            patch.apply(self.doc, patch.normalize_ops([{"op": "remove", "path": "/description"}]), ALLOWED)
        assert exc.value.code == "1455"
