"""Hostile peers: loopback servers (tests/httpfakes.py) that send endless lines, 2 GiB bodies,
gzip bombs, trickles, terminal escapes and malformed JSON to `models pull`, `status` and
`mirrors test`.

The size and time bounds are measured on a real child process (`run_measured`: peak RSS from
wait4, wall time): the command must end within its timeout plus start-up slack and stay far
below what an unbounded read reaches in that time (gigabytes on loopback)."""

from __future__ import annotations

import json
import re
import socket

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from httpfakes import flood, free_port, gzip_bomb, js, no_proxy, run_measured, serve, tcp_serve, text  # noqa: F401 (fixture)
from stackgen.cli import cli

MAX_RSS_MIB = 200  # python + httpx is ~40 MiB; an unbounded reader passes 1 GiB in a second
SLACK_S = 4  # interpreter start-up and imports on a busy 2-core CI machine
TWO_GIB = 2 << 30
# What must never reach the terminal from a peer: C0 (tab and newline too, inside a value),
# DEL, C1, bidi overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PYTHON_INTERNALS = ("Traceback", "object has no attribute", "recursion", "cannot convert", "Expecting value", "KeyError", "TypeError")
ESCAPES = "\x1b]52;c;c3VkbyBybSAtcmYgfg==\x07\x1b[2J\x1b[H\x9b31m\u202e"  # OSC 52 clipboard, clear screen, C1 CSI, RLO


@pytest.fixture(autouse=True)
def _direct(no_proxy):
    """The loopback servers are reached directly, whatever proxy this machine sets."""


def write_spec(tmp_path, services: dict[str, str]) -> str:
    """services: kind -> the inside of its flow mapping."""
    lines = ["version: 1", "name: hostile", "services:"] + [f"  {kind}: {{{body}}}" for kind, body in services.items()]
    path = tmp_path / "stack.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def assert_clean(*outputs: str) -> None:
    for out in outputs:
        assert not CONTROL.search(out), f"a control character reached the terminal: {out!r}"
        for internal in PYTHON_INTERNALS:
            assert internal not in out, out


def assert_bounded(measured, timeout: float) -> None:
    assert measured.max_rss_mib < MAX_RSS_MIB, f"peak RSS {measured.max_rss_mib:.0f} MiB: a read is not bounded in size"
    assert measured.seconds < timeout + SLACK_S, f"took {measured.seconds:.1f}s with --timeout {timeout}: a read is not bounded in time"


# -- size and time bounds, measured on a child process ---------------------------------------


def test_pull_endless_line_is_refused_at_64_kib(tmp_path):
    routes = {"GET /api/tags": js(200, {"models": []}), "POST /api/pull": flood('{"status": "pulling ', "a" * 65536)}
    with serve(routes) as server:
        spec = write_spec(tmp_path, {"ollama": f'port: {server.port}, models: ["llama3.2:3b"]'})
        got = run_measured(["models", "pull", spec, "--timeout", "30"])
    assert got.returncode == 1, got
    assert f"llama3.2:3b: FAILED: ollama at 127.0.0.1:{server.port} sent a line longer than 64 KiB\n" in got.stderr
    assert_bounded(got, 2)  # refused at once, long before the 30s deadline
    assert_clean(got.stdout, got.stderr)


PROGRESS = '{"status": "pulling 2bada8a74506", "digest": "sha256:2bada8a74506", "total": 2019377376, "completed": 1}\n'


@pytest.mark.parametrize("what", ["ollama", "gguf"])
def test_pull_timeout_is_a_total_deadline_while_bytes_keep_arriving(tmp_path, what):
    routes = {
        "GET /api/tags": js(200, {"models": []}),
        "POST /api/pull": flood('{"status": "pulling manifest"}\n', PROGRESS, interval=0.05),  # never says success
        "GET /m.gguf": flood(b"GGUF", b"\0" * 4096, length=TWO_GIB, interval=0.05),  # 80 KiB/s of 2 GiB
    }
    with serve(routes) as server:
        if what == "ollama":
            spec = write_spec(tmp_path, {"ollama": f'port: {server.port}, models: ["llama3.2:3b"]'})
        else:
            spec = write_spec(tmp_path, {"llama-cpp": f"model: {tmp_path}/models/m.gguf, model_url: '{server.url}/m.gguf'"})
        got = run_measured(["models", "pull", spec, "--timeout", "2", "--idle-timeout", "1"])
    assert got.returncode == 1, got
    label = "llama3.2:3b" if what == "ollama" else "m.gguf"
    assert f"{label}: FAILED: gave up: the whole pull may take at most 2s (--timeout)\n" in got.stderr
    assert got.seconds >= 2
    assert_bounded(got, 2)
    assert not list(tmp_path.glob("models/.*.part")), "the partial download is removed"


def test_status_reads_are_bounded(tmp_path):
    def raw_flood(payload: bytes):
        def answer(conn: socket.socket) -> None:
            conn.recv(64)
            while True:
                conn.sendall(payload)

        return answer

    ollama = {"GET /api/version": flood('{"version": "', "9" * 65536)}  # endless, chunked
    qdrant = {"GET /readyz": flood("", "x" * 65536, length=TWO_GIB, ctype="text/plain")}
    webui = {"GET /health": gzip_bomb(ctype="application/json")}
    llama = {"GET /health": flood("", "x", length=TWO_GIB, interval=0.05)}  # answering forever, slowly
    with serve(ollama) as o, serve(qdrant) as q, serve(webui) as w, serve(llama) as slow, tcp_serve(raw_flood(b"+" * 65536)) as redis, tcp_serve(
        raw_flood(b"E" * 65536)
    ) as pg:
        spec = write_spec(
            tmp_path,
            {
                "ollama": f"port: {o.port}",
                "qdrant": f"port: {q.port}, grpc_port: {free_port()}",
                "open-webui": f"port: {w.port}",
                "llama-cpp": f"port: {slow.port}, model: /m.gguf",
                "redis": f"port: {redis}",
                "postgres": f"port: {pg}",
            },
        )
        got = run_measured(["status", spec, "--json", "--timeout", "2"])
    assert got.returncode == 1, got
    details = {s["kind"]: s["detail"] for s in json.loads(got.stdout)["services"]}
    assert details["ollama"] == details["qdrant"] == details["open-webui"] == "sent an answer larger than 1 MiB"
    assert details["llama-cpp"] == "timed out after 2s"
    assert details["redis"].startswith("not Redis (answered ++++")
    assert details["postgres"] == "not PostgreSQL (answered b'E' to an SSLRequest)"
    assert_bounded(got, 2)


def test_mirrors_reads_are_bounded(tmp_path):
    routes = {
        "GET /nix/nix-cache-info": flood("StoreDir: /nix/store\n", "x" * 65536, length=TWO_GIB),
        "GET /simple/pip/": flood("", "pip-" * 16384),
        "GET /hf/openai-community/gpt2/resolve/main/config.json": gzip_bomb(),
        "GET /slow/nix-cache-info": flood("StoreDir: /nix/store\n", "x", length=TWO_GIB, interval=0.05),
        # a redirect with a 2 GiB body: followed without reading it
        "GET /moved/nix-cache-info": flood("", "x" * 65536, length=TWO_GIB, status=302, headers={"Location": "/good/nix-cache-info"}),
        "GET /good/nix-cache-info": text(200, "StoreDir: /nix/store\nPriority: 40\n"),
    }
    with serve(routes) as server:
        u = server.url
        args = ["--nix", f"{u}/nix", "--nix", f"{u}/slow", "--nix", f"{u}/moved", "--pypi", f"{u}/simple", "--hf", f"{u}/hf"]
        got = run_measured(["mirrors", "test", *args, "--timeout", "2", "--json"])
    assert got.returncode == 1, got
    results = {r["url"].removeprefix(u): r for r in json.loads(got.stdout)["results"]}
    assert results["/nix"]["error"] == results["/simple"]["error"] == results["/hf"]["error"] == "sent an answer larger than 1 MiB"
    assert results["/slow"]["error"] == "timed out after 2s"
    assert results["/moved"]["ok"] and results["/moved"]["detail"] == "StoreDir /nix/store, priority 40"
    assert_bounded(got, 2)


# A JSON string that never ends, of escaped quotes: a nesting check that retried its string
# pattern from every '"' spent quadratic CPU on it (80 KiB: 39 s), synchronously, where no
# --timeout could cancel it.
ESCAPED_QUOTES = '"' + '\\"' * 500_000  # 1,000,001 bytes: under the 1 MiB body bound
ESCAPED_QUOTES_LINE = '"' + '\\"' * 32_000  # under the 64 KiB line bound


def test_json_of_escaped_quotes_is_refused_within_the_timeout(tmp_path):
    hostile = text(200, ESCAPED_QUOTES, "application/json")
    tags_ok = js(200, {"models": []})
    pull = lambda h: h.flood(ESCAPED_QUOTES_LINE.encode() + b"\n", b"\n")  # noqa: E731
    with serve({"GET /api/version": hostile, "GET /api/tags": hostile, "POST /api/pull": hostile}) as bad, serve(
        {"GET /api/tags": tags_ok, "POST /api/pull": pull}
    ) as streaming:
        status_spec = write_spec(tmp_path, {"ollama": f"port: {bad.port}"})
        status = run_measured(["status", status_spec, "--json", "--timeout", "1"], limit_s=20)
        (tmp_path / "tags").mkdir()
        tags_spec = write_spec(tmp_path / "tags", {"ollama": f'port: {bad.port}, models: ["m:1b"]'})
        tags = run_measured(["models", "pull", tags_spec, "--timeout", "1"], limit_s=20)
        (tmp_path / "line").mkdir()
        line_spec = write_spec(tmp_path / "line", {"ollama": f'port: {streaming.port}, models: ["m:1b"]'})
        line = run_measured(["models", "pull", line_spec, "--timeout", "1"], limit_s=20)
    assert status.returncode == tags.returncode == line.returncode == 1, (status, tags, line)
    detail = json.loads(status.stdout)["services"][0]["detail"]
    assert detail == f"ollama at 127.0.0.1:{bad.port} sent a GET /api/version answer that is not JSON"
    assert f"ollama at 127.0.0.1:{bad.port} sent a GET /api/tags answer that is not JSON; start it" in tags.stderr
    assert f"m:1b: FAILED: ollama at 127.0.0.1:{streaming.port} sent a progress line that is not JSON\n" in line.stderr
    for got in (status, tags, line):
        assert_bounded(got, 1)
        assert_clean(got.stdout, got.stderr)


@pytest.mark.parametrize(
    "hostile",
    [
        '"' + '\\"' * (1 << 19),  # the reported one
        '"' * (1 << 20),
        '"' + "\\" * (1 << 20),
        '"a' * (1 << 19),
        '"\\' * (1 << 19),
        '\\"[' * (1 << 18),
        "[" + '"' + "\\\\\\" * (1 << 18),
    ],
    ids=["escaped-quotes", "quotes", "backslashes", "quote-letter", "quote-backslash", "backslash-quote-bracket", "open-string-of-escapes"],
)
def test_nesting_is_measured_in_linear_time(hostile):
    import signal
    import time

    from stackgen.net import _depth

    def too_slow(*_):  # the regex engine checks for signals: a quadratic scan is cut off here
        raise AssertionError("the nesting check ran for 5s: it is not linear in the size of the answer")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, 5)
    try:
        started = time.process_time()
        _depth(hostile)
        spent = time.process_time() - started
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert spent < 0.5, f"the nesting check took {spent:.2f}s of CPU for 1 MiB: it is not linear"


def _reference_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_reference_depth, value), default=0)
    return 0


_json_text = st.text(alphabet=st.sampled_from('[]{}"\\ab\n\x00\u2028'), max_size=12)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_json_text, inner, max_size=4),
    max_leaves=30,
)


@given(_json_values, st.booleans())
def test_nesting_is_measured_outside_strings(value, ascii_only):
    """Brackets, quotes and backslashes inside strings (escaped either way) never count."""
    from stackgen.net import _depth

    assert _depth(json.dumps(value, ensure_ascii=ascii_only)) == _reference_depth(value)


# -- terminal escapes from peers ----------------------------------------------------------------


def test_status_escapes_what_services_say(tmp_path):
    forged = "ready\nredis     127.0.0.1:1      up     Redis (PONG)\tforged"

    def redis(conn: socket.socket) -> None:
        conn.recv(64)
        conn.sendall(f"-ERR {ESCAPES}bad\r\n".encode())

    ollama = {"GET /api/version": js(200, {"version": ESCAPES + "0.6.2"}), "GET /api/tags": js(200, {"models": []})}
    qdrant = {"GET /readyz": text(200, ESCAPES + forged + "y" * 100_000)}
    with serve(ollama) as o, serve(qdrant) as q, tcp_serve(redis) as redis_port:
        spec = write_spec(tmp_path, {"ollama": f"port: {o.port}", "qdrant": f"port: {q.port}, grpc_port: {free_port()}", "redis": f"port: {redis_port}"})
        result = CliRunner().invoke(cli, ["status", spec])
        as_json = CliRunner().invoke(cli, ["status", spec, "--json"])
    assert result.exit_code == 1
    assert_clean(result.output)
    lines = result.output.splitlines()
    assert len(lines) == 4, "a header and one row per service: no forged rows"
    assert all(len(line) < 400 for line in lines), "peer text is cut"
    rows = {line.split()[0]: line for line in lines[1:]}
    assert "ollama \\x1b]52;c;" in rows["ollama"] and "\\x07\\x1b[2J" in rows["ollama"]
    assert "\\x1b[2J\\x1b[H\\x9b31m\\u202eready\\nredis" in rows["qdrant"]
    assert "Redis refused PING: ERR \\x1b]52;c;" in rows["redis"]
    details = [s["detail"] for s in json.loads(as_json.output)["services"]]
    assert_clean(*details)
    assert all(len(d) < 400 for d in details)


def test_pull_escapes_ollama_messages(tmp_path):
    def pull(h):
        model = h.json_body()["model"]
        if model == "http:1b":
            return h.reply_json(500, {"error": ESCAPES + "manifest unknown"})
        h.stream_lines([{"status": ESCAPES + "pulling manifest"}, {"error": "digest mismatch" + ESCAPES + "\nforged: pulled"}])

    with serve({"GET /api/tags": js(200, {"models": []}), "POST /api/pull": pull}) as server:
        spec = write_spec(tmp_path, {"ollama": f'port: {server.port}, models: ["stream:1b", "http:1b"]'})
        result = CliRunner().invoke(cli, ["models", "pull", spec])
    assert result.exit_code == 1
    assert_clean(result.stdout, result.stderr)
    assert "stream:1b: \\x1b]52;c;c3VkbyBybSAtcmYgfg==\\x07\\x1b[2J\\x1b[H\\x9b31m\\u202epulling manifest\n" in result.stdout
    assert "stream:1b: FAILED: digest mismatch\\x1b]52;" in result.stderr and "\\nforged: pulled\n" in result.stderr
    assert "http:1b: FAILED: HTTP 500: \\x1b]52;c;" in result.stderr


def test_mirrors_escape_what_caches_say(tmp_path):
    routes = {
        "GET /a/nix-cache-info": text(200, f"StoreDir: /gnu{ESCAPES}/store\n"),
        "GET /b/nix-cache-info": text(200, f"StoreDir: /nix/store\nPriority: 40{ESCAPES}\n"),
    }
    with serve(routes) as server:
        result = CliRunner().invoke(cli, ["mirrors", "test", "--nix", server.url + "/a", "--nix", server.url + "/b", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert_clean(result.output)
    assert "StoreDir is /gnu\\x1b]52;c;" in result.output
    assert "priority 40\\x1b]52;c;" in result.output


# -- malformed JSON from peers: what was wrong with it, never a Python error ----------------------

DEEP = "[" * 30_000 + "]" * 30_000  # under the 64 KiB line bound: refused for its depth


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"status": "pulling a", "digest": "sha256:a", "total": 1e999}', "sent a progress line whose 'total' is not a finite number"),
        ('{"status": "pulling a", "digest": "sha256:a", "total": Infinity}', "sent a progress line holding Infinity, which is not JSON"),
        ('{"status": "pulling a", "digest": "sha256:a", "total": NaN}', "sent a progress line holding NaN, which is not JSON"),
        ('{"status": "pulling a", "digest": "sha256:a", "total": -5}', "sent a progress line whose 'total' is not a whole number from 0 to 1152921504606846976"),
        ('{"status": "pulling a", "digest": "sha256:a", "total": 10, "completed": "all"}', "sent a progress line whose 'completed' is not a finite number"),
        ('{"status": "pulling a", "digest": "sha256:a", "total": 1' + "0" * 5000 + "}", "sent a progress line holding an integer of 5001 digits"),
        ('{"status": ["pulling"]}', "sent a progress line whose 'status' is not a string"),
        ('{"error": {"code": 500}}', "sent a progress line whose 'error' is not a string"),
        ("[1, 2]", "sent a progress line that is not a JSON object"),
        ("pulling manifest", "sent a progress line that is not JSON"),
        (DEEP, "sent a progress line nested more than 32 levels deep"),
        (b'{"status": "\xff\xfe"}', "sent a progress line that is not UTF-8 text"),
    ],
)
def test_pull_says_what_is_wrong_with_a_progress_line(tmp_path, line, problem):
    data = line if isinstance(line, bytes) else line.encode()
    with serve({"GET /api/tags": js(200, {"models": []}), "POST /api/pull": lambda h: h.flood(data + b"\n", b"\n")}) as server:
        spec = write_spec(tmp_path, {"ollama": f'port: {server.port}, models: ["m:1b"]'})
        result = CliRunner().invoke(cli, ["models", "pull", spec])
    assert result.exit_code == 1
    assert_clean(result.stdout, result.stderr)
    assert f"m:1b: FAILED: ollama at 127.0.0.1:{server.port} {problem}\n" in result.stderr


@pytest.mark.parametrize(
    "tags, problem",
    [
        ([], "sent a GET /api/tags answer that is not a JSON object"),
        ({"models": {"a": 1}}, "sent a GET /api/tags answer whose 'models' is not a list"),
        ({"models": [1]}, "sent a GET /api/tags answer with an entry in 'models' that is not a JSON object"),
        ({"models": [{"name": 7}]}, "sent a GET /api/tags answer with an entry in 'models' whose 'name' is not a string"),
    ],
)
def test_pull_and_status_say_what_is_wrong_with_api_tags(tmp_path, tags, problem):
    with serve({"GET /api/tags": js(200, tags), "GET /api/version": js(200, {"version": "0.6.2"})}) as server:
        spec = write_spec(tmp_path, {"ollama": f'port: {server.port}, models: ["m:1b"]'})
        pulled = CliRunner().invoke(cli, ["models", "pull", spec])
        status = CliRunner().invoke(cli, ["status", spec, "--json"])
    peer = f"ollama at 127.0.0.1:{server.port}"
    assert pulled.exit_code == 1
    assert f"ollama at http://127.0.0.1:{server.port} is not usable: {peer} {problem}; start it" in pulled.stderr
    assert json.loads(status.output)["services"][0]["detail"] == f"{peer} {problem}"
    assert_clean(pulled.output, status.output)


@pytest.mark.parametrize(
    "kind, path, body, problem",
    [
        ("ollama", "/api/version", {"version": 5}, "sent a GET /api/version answer whose 'version' is not a string"),
        ("ollama", "/api/version", "[" * 40 + "]" * 40, "sent a GET /api/version answer nested more than 32 levels deep"),
        ("open-webui", "/health", [True], "sent a GET /health answer that is not a JSON object"),
        ("open-webui", "/health", '{"status": NaN}', "sent a GET /health answer holding NaN, which is not JSON"),
    ],
)
def test_status_says_what_is_wrong_with_json(tmp_path, kind, path, body, problem):
    route = text(200, body, "application/json") if isinstance(body, str) else js(200, body)
    with serve({f"GET {path}": route, "GET /api/tags": js(200, {"models": []})}) as server:
        spec = write_spec(tmp_path, {kind: f"port: {server.port}"})
        result = CliRunner().invoke(cli, ["status", spec, "--json"])
    assert json.loads(result.output)["services"][0]["detail"] == f"{kind} at 127.0.0.1:{server.port} {problem}"
