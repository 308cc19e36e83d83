"""The TechEmpower rules (see the project's TECHEMPOWER.md) as checks, run before load.

``Verifier(port, ...).run()`` returns ``{test: [problems]}``; an empty list is a pass.
The harness benchmarks only the tests that pass. Database-side checks (rows really
updated, one SELECT per row) run when the caller passes ``read_worlds`` and ``stats``.
"""

from __future__ import annotations

import html.parser
import http.client
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from blazeasgi.benchprocess import Reply, http_request

from .postgres import FORTUNES

TESTS = ("plaintext", "json", "db", "queries", "fortunes", "updates", "cached-queries")
JSON_TESTS = frozenset({"json", "db", "queries", "updates", "cached-queries"})

#: (query value, expected row count): the cases the toolset checks; None = parameter absent.
QUERY_CASES: list[tuple[str | None, int]] = [("2", 2), ("0", 1), ("foo", 1), ("501", 500), ("", 1), (None, 1)]

PATHS = {
    "plaintext": "/plaintext",
    "json": "/json",
    "db": "/db",
    "queries": "/queries?queries=20",
    "fortunes": "/fortunes",
    "updates": "/updates?queries=20",
    "cached-queries": "/cached-queries?count=20",
}
PARAM = {"queries": "queries", "updates": "queries", "cached-queries": "count"}

ADDITIONAL = (0, "Additional fortune added at request time.")
JAPANESE = FORTUNES[11][1]


def expected_fortunes() -> list[tuple[int, str]]:
    return sorted([*FORTUNES, ADDITIONAL], key=lambda row: row[1])


def query_path(test: str, value: str | None) -> str:
    base = PATHS[test].split("?", 1)[0]
    return base if value is None else f"{base}?{PARAM[test]}={value}"


# -- per-response checks --------------------------------------------------------------------------


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    media, *params = value.split(";")
    parsed = {}
    for param in params:
        key, _, val = param.strip().partition("=")
        parsed[key.strip().lower()] = val.strip().strip('"').lower()
    return media.strip().lower(), parsed


def check_headers(reply: Reply, test: str) -> list[str]:
    """What every response must carry, and the content type of each test."""
    problems = []
    if reply.status != 200:
        problems.append(f"status {reply.status}, expected 200")
    if not reply.body:
        problems.append("empty body")
    for name in ("Server", "Date", "Content-Type"):
        if reply.header(name) is None:
            problems.append(f"no {name} header")
    length = reply.header("content-length")
    if length is None and reply.header("transfer-encoding") is None:
        problems.append("neither Content-Length nor Transfer-Encoding")
    elif length is not None and length.strip() != str(len(reply.body)):
        problems.append(f"Content-Length {length} but the body has {len(reply.body)} bytes")
    ctype = reply.header("content-type")
    if ctype is not None:
        media, params = parse_content_type(ctype)
        extra = set(params) - {"charset"}
        if test in JSON_TESTS:
            expected = "application/json"
        elif test == "plaintext":
            expected = "text/plain"
        else:
            expected = "text/html"
        if media != expected or extra or params.get("charset", "utf-8") != "utf-8":
            problems.append(f"Content-Type {ctype!r}, expected {expected} (optional charset=utf-8)")
        elif test == "fortunes" and params.get("charset") != "utf-8":
            problems.append(f"Content-Type {ctype!r}: fortunes needs '; charset=utf-8'")
    return problems


def _json(reply: Reply) -> tuple[Any, str | None]:
    try:
        return json.loads(reply.body), None
    except ValueError:
        return None, f"body is not JSON: {reply.body[:80]!r}"


def world_problem(obj: Any) -> str | None:
    """A World object: {"id": 1..10000, "randomNumber": 1..10000}, both integers."""
    if not isinstance(obj, dict):
        return f"expected an object, got {json.dumps(obj)[:80]}"
    keys = {k.lower(): v for k, v in obj.items()}
    if set(keys) != {"id", "randomnumber"}:
        return f"expected keys id and randomNumber, got {sorted(obj)}"
    for key in ("id", "randomnumber"):
        value = keys[key]
        if type(value) is not int:
            return f"{key} is {value!r}, not an integer"
        if not 1 <= value <= 10000:
            return f"{key} {value} is not in 1..10000"
    return None


def check_plaintext(reply: Reply) -> list[str]:
    return [] if reply.body == b"Hello, World!" else [f"body {reply.body[:60]!r}, expected b'Hello, World!'"]


def check_json(reply: Reply) -> list[str]:
    data, problem = _json(reply)
    if problem:
        return [problem]
    if data != {"message": "Hello, World!"}:
        return [f'JSON {json.dumps(data)[:80]}, expected {{"message": "Hello, World!"}}']
    return []


def check_db(reply: Reply) -> list[str]:
    data, problem = _json(reply)
    if problem:
        return [problem]
    problem = world_problem(data)
    return [f"/db: {problem}"] if problem else []


def check_world_list(reply: Reply, expected: int) -> list[str]:
    data, problem = _json(reply)
    if problem:
        return [problem]
    if not isinstance(data, list):
        return [f"expected a JSON array, got {json.dumps(data)[:80]}"]
    if len(data) != expected:
        return [f"{len(data)} rows, expected {expected}"]
    for obj in data:
        problem = world_problem(obj)
        if problem:
            return [problem]
    return []


class _FortuneParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        self.tags.append("/" + tag)
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_decl(self, decl: str) -> None:
        self.tags.append("!" + decl.lower())


def check_fortunes(reply: Reply) -> list[str]:
    try:
        text = reply.body.decode("utf-8")
    except UnicodeDecodeError:
        return ["body is not UTF-8"]
    problems = []
    if "<script>" in text:
        problems.append("the <script> fortune arrived unescaped")
    if "&lt;script&gt;" not in text:
        problems.append("the <script> fortune is not escaped as &lt;script&gt;")
    if JAPANESE not in text:
        problems.append("the Japanese fortune is not in the body as raw UTF-8")
    parser = _FortuneParser()
    parser.feed(text)
    parser.close()
    structure = ["!doctype html", "html", "head", "title", "/title", "/head", "body", "table"]
    if parser.tags[: len(structure)] != structure:
        problems.append(f"the page does not start like the template: {text[:100]!r}")
    if parser.tags[-3:] != ["/table", "/body", "/html"]:
        problems.append(f"the page does not end with </table></body></html>: {text[-60:]!r}")
    rows = parser.rows
    if not rows or rows[0] != ["id", "message"]:
        problems.append("no <tr><th>id</th><th>message</th></tr> header row")
    got = [tuple(r) for r in rows[1:]]
    want = [(str(i), m) for i, m in expected_fortunes()]
    if got != want:
        first = next(
            (
                f"row {n}: {g!r} != {w!r}"
                for n, (g, w) in enumerate(zip(got, want, strict=False), 1)
                if g != w
            ),
            "",
        )
        problems.append(f"{len(got)} fortune rows, expected the 13 sorted rows; {first}".rstrip("; "))
    return problems


# -- the verifier -------------------------------------------------------------------------------


class Verifier:
    """Checks one running server. ``read_worlds()`` -> {id: randomNumber} (all rows) and
    ``stats()`` -> {"select": (calls, rows), "update": (calls, rows)} with ``reset_stats()``
    enable the database-side checks."""

    def __init__(
        self,
        port: int,
        read_worlds: Callable[[], dict[int, int]] | None = None,
        stats: Callable[[], dict[str, tuple[int, int]] | None] | None = None,
        reset_stats: Callable[[], None] | None = None,
        date_wait: float = 3.0,
        timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.read_worlds = read_worlds
        self.stats = stats
        self.reset_stats = reset_stats
        self.date_wait = date_wait
        self.timeout = timeout

    def get(self, path: str) -> Reply:
        return http_request(self.port, path, timeout=self.timeout)

    def run(self, tests: Sequence[str] = TESTS) -> dict[str, list[str]]:
        results: dict[str, list[str]] = {}
        first_dates: dict[str, tuple[float, str | None]] = {}
        for test in tests:
            try:
                reply = self.get(PATHS[test])
                first_dates[test] = (time.monotonic(), reply.header("date"))
                results[test] = self.check(test, reply)
            except (OSError, http.client.HTTPException) as exc:
                results[test] = [f"request failed: {type(exc).__name__}: {exc}"]
        # Date must change: the same test requested again date_wait seconds later.
        for test, (when, date) in first_dates.items():
            if self.date_wait <= 0:
                break
            time.sleep(max(0.0, when + self.date_wait - time.monotonic()))
            try:
                again = self.get(PATHS[test]).header("date")
            except (OSError, http.client.HTTPException) as exc:
                results[test].append(f"second request failed: {exc}")
                continue
            if date is not None and again == date:
                results[test].append(f"cached Date: {date!r} again {self.date_wait:.0f} s later")
        return results

    def check(self, test: str, reply: Reply) -> list[str]:
        problems = check_headers(reply, test)
        if reply.status != 200:
            return problems
        if test == "plaintext":
            problems += check_plaintext(reply)
        elif test == "json":
            problems += check_json(reply)
        elif test == "db":
            problems += check_db(reply)
            problems += self._count_statements(test, "/db", selects=1)
        elif test == "fortunes":
            problems += check_fortunes(reply)
        else:
            problems += check_world_list(reply, 20)
            problems += self._query_cases(test)
            if test == "queries":
                problems += self._count_statements(test, PATHS[test], selects=20)
            elif test == "updates":
                problems += self._check_updates()
        return problems

    def _query_cases(self, test: str) -> list[str]:
        problems = []
        for value, expected in QUERY_CASES:
            path = query_path(test, value)
            reply = self.get(path)
            found = check_headers(reply, test) or check_world_list(reply, expected)
            problems += [f"{path}: {p}" for p in found]
        return problems

    def _count_statements(self, test: str, path: str, selects: int) -> list[str]:
        if self.stats is None or self.reset_stats is None:
            return []
        self.reset_stats()
        self.get(path)
        stats = self.stats()
        if stats is None:
            return []
        calls = stats["select"][0]
        if calls < selects:
            return [
                f"{path}: {calls} SELECT statement(s) for {selects} row(s): one SELECT per row is required"
            ]
        return []

    def _check_updates(self) -> list[str]:
        if self.read_worlds is None:
            return []
        n = 20
        before = self.read_worlds()
        if self.reset_stats is not None:
            self.reset_stats()
        reply = self.get(PATHS["updates"])
        data, problem = _json(reply)
        if problem or not isinstance(data, list):
            return [problem or "not a list"]
        after = self.read_worlds()
        problems = []
        returned = {int(obj["id"]): int(obj["randomNumber"]) for obj in data if isinstance(obj, dict)}
        stale = [i for i, r in returned.items() if after.get(i) != r]
        if stale:
            problems.append(f"{len(stale)} returned row(s) not written to the database (ids {stale[:5]})")
        changed = sum(1 for i in returned if after.get(i) != before.get(i))
        if changed < 0.95 * n:
            problems.append(f"only {changed} of {n} rows changed in the database (at least 95% required)")
        if self.stats is not None:
            stats = self.stats()
            if stats is not None and stats["select"][0] < n:
                problems.append(
                    f"{stats['select'][0]} SELECTs for {n} updated rows: each row is read by its own"
                )
            if stats is not None and stats["update"][1] < 0.95 * n:
                problems.append(f"the UPDATE statements touched {stats['update'][1]} rows for {n}")
        return problems


def describe(results: dict[str, list[str]]) -> list[str]:
    """One line per test: PASS, or FAIL with the problems."""
    return [
        f"{'PASS' if not p else 'FAIL'} {t}" + (": " + "; ".join(p) if p else "") for t, p in results.items()
    ]
