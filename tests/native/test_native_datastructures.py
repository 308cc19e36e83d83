"""Headers and QueryParams as a handler sees them: mapping behaviour with repeats."""

from blazeasgi.native.datastructures import Headers, QueryParams


def test_headers_mapping_with_repeated_fields() -> None:
    headers = Headers([(b"accept", b"a/b"), (b"cookie", b"x=1"), (b"cookie", b"y=2")])
    assert headers["Accept"] == "a/b"
    assert headers.get("COOKIE") == "x=1"
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert headers.getlist("cookie") == ["x=1", "y=2"]
    assert "Cookie" in headers and "nope" not in headers
    assert 42 not in headers
    assert list(headers) == ["accept", "cookie"]
    assert len(headers) == 2
    assert headers.items() == [("accept", "a/b"), ("cookie", "x=1"), ("cookie", "y=2")]
    assert "cookie" in repr(headers)


def test_headers_missing_key_raises() -> None:
    headers = Headers([])
    try:
        headers["x"]
    except KeyError as exc:
        assert exc.args == ("x",)
    else:  # pragma: no cover
        raise AssertionError("KeyError expected")


def test_query_params_last_value_and_lists() -> None:
    params = QueryParams(b"a=1&b=2&a=3&empty=&sp=x+y&pct=%C3%A9")
    assert params["a"] == "3"
    assert params.getlist("a") == ["1", "3"]
    assert params["empty"] == ""
    assert params["sp"] == "x y"
    assert params["pct"] == "é"
    assert list(params) == ["a", "b", "empty", "sp", "pct"]
    assert len(params) == 5
    assert params.multi_items()[:3] == [("a", "1"), ("b", "2"), ("a", "3")]
    assert QueryParams("x=1")["x"] == "1"
    assert "QueryParams" in repr(params)
