"""`stackgen mirrors test` against real HTTP servers on 127.0.0.1: a Nix binary cache, a PyPI
simple index, a Hugging Face endpoint, a slow server and one that answers 500."""

from __future__ import annotations

import json
import re
import time

import pytest
from click.testing import CliRunner

from httpfakes import free_port, js, no_proxy, serve, slow, text  # noqa: F401 (fixture)
from stackgen.cli import cli
from stackgen.commands.mirrors import Endpoint, Result, suggest
from stackgen.spec.loader import parse
from stackgen.spec.validate import validate

NIX_CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"
PIP_INDEX = (
    "<!DOCTYPE html><html><body>\n"
    '<a href="../../packages/pip-24.0-py3-none-any.whl#sha256=ba0d">pip-24.0-py3-none-any.whl</a><br/>\n'
    '<a href="../../packages/pip-24.0.tar.gz#sha256=ea9b">pip-24.0.tar.gz</a><br/>\n'
    "</body></html>\n"
)
HF_CONFIG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}


@pytest.fixture(autouse=True)
def _direct(no_proxy):
    """The loopback servers are reached directly, whatever proxy this machine sets."""


@pytest.fixture
def mirror():
    """One server playing a Nix cache at /nix, a PyPI index at /simple and HF at /hf."""
    with serve(
        {
            "GET /nix/nix-cache-info": text(200, NIX_CACHE_INFO, "text/x-nix-cache-info"),
            "GET /simple/pip/": text(200, PIP_INDEX, "text/html"),
            "GET /hf/openai-community/gpt2/resolve/main/config.json": js(200, HF_CONFIG),
            "GET /guix/nix-cache-info": text(200, "StoreDir: /gnu/store\n"),
            "GET /portal/nix-cache-info": text(200, "<html>log in to the wifi</html>", "text/html"),
            "GET /empty/simple/pip/": text(200, "<html><body></body></html>", "text/html"),
        }
    ) as server:
        yield server


@pytest.fixture
def broken():
    """Answers 500 to everything it knows."""
    with serve(
        {
            "GET /nix-cache-info": text(500, "Internal Server Error"),
            "GET /simple/pip/": text(500, "Internal Server Error"),
            "GET /openai-community/gpt2/resolve/main/config.json": text(500, "oops"),
        }
    ) as server:
        yield server


@pytest.fixture
def sluggish():
    """Accepts the connection, then answers nothing for 30 s."""
    with serve({"GET /nix-cache-info": slow(30), "GET /simple/pip/": slow(30)}) as server:
        yield server


def run(*args):
    return CliRunner().invoke(cli, ["mirrors", "test", *args])


def test_table_fastest_first_with_reasons(mirror, broken, sluggish):
    refused = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    result = run(
        "--nix", sluggish.url, "--nix", broken.url, "--nix", mirror.url + "/nix", "--nix", refused,
        "--pypi", mirror.url + "/simple", "--pypi", broken.url + "/simple",
        "--hf", mirror.url + "/hf", "--timeout", "0.5",
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert result.exit_code == 0, result.output
    assert elapsed < 3, f"the probes run at once under one deadline, took {elapsed:.1f}s"
    lines = result.output.splitlines()
    assert lines[0].split() == ["kind", "endpoint", "latency", "result", "detail"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:8]]
    assert [(r[0], r[1]) for r in rows] == [
        ("nix", mirror.url + "/nix"),  # working first, then the failures (by URL)
        *sorted([("nix", broken.url), ("nix", refused), ("nix", sluggish.url)]),
        ("pypi", mirror.url + "/simple"),
        ("pypi", broken.url + "/simple"),
        ("hf", mirror.url + "/hf"),
    ]
    assert rows[0][3] == "ok" and rows[0][4] == "StoreDir /nix/store, priority 40"
    reasons = {r[1]: r[3:] for r in rows}
    assert reasons[broken.url] == ["FAIL", "HTTP 500"]
    assert reasons[refused] == ["FAIL", "connection refused"]
    assert reasons[sluggish.url] == ["FAIL", "timed out after 0.5s"]
    assert re.fullmatch(r"\d+ ms", rows[0][2]) and re.fullmatch(r"\d+ ms", rows[4][2]) and rows[1][2] == "-"
    assert f"mirrors:\n  nix: [{mirror.url}/nix]\n  pypi: {mirror.url}/simple\n  huggingface: {mirror.url}/hf\n" in result.output


def test_suggested_block_is_a_valid_spec_block(mirror):
    result = run("--nix", mirror.url + "/nix", "--pypi", mirror.url + "/simple", "--hf", mirror.url + "/hf", "--json")
    data = json.loads(result.output)
    block = data["suggested_mirrors"]
    assert block == {"nix": [mirror.url + "/nix"], "pypi": mirror.url + "/simple", "huggingface": mirror.url + "/hf"}
    human = run("--nix", mirror.url + "/nix", "--pypi", mirror.url + "/simple", "--hf", mirror.url + "/hf").output
    yaml_text = human.split("suggested mirrors: block for stack.yaml:\n\n", 1)[1]
    spec = validate(parse("version: 1\nname: t\n" + yaml_text, "t.yaml"))
    assert [c.url for c in spec.mirrors.nix] == [mirror.url + "/nix"]
    assert spec.mirrors.pypi == mirror.url + "/simple" and spec.mirrors.huggingface == mirror.url + "/hf"


def test_json_results(mirror, broken):
    result = run("--nix", mirror.url + "/nix", "--pypi", broken.url + "/simple", "--json", "--timeout", "2")
    assert result.exit_code == 1  # no working PyPI index
    data = json.loads(result.stdout)
    ok, bad = data["results"]
    assert ok["kind"] == "nix" and ok["ok"] is True and ok["latency_ms"] > 0 and ok["origin"] == "option"
    assert bad == {"kind": "pypi", "url": broken.url + "/simple", "origin": "option", "ok": False, "latency_ms": None, "error": "HTTP 500"}
    assert "no working pypi endpoint" in result.stderr


@pytest.mark.parametrize(
    "kind, path, error",
    [
        ("--nix", "/guix", "StoreDir is /gnu/store, not /nix/store"),
        ("--nix", "/portal", "no StoreDir in /nix-cache-info: not a Nix binary cache"),
        ("--pypi", "/empty/simple", "/pip/ lists no pip files: not a PyPI simple index"),
        ("--hf", "/nix", "HTTP 404"),
    ],
)
def test_answers_that_are_not_the_service(mirror, kind, path, error):
    result = run(kind, mirror.url + path, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["results"][0]["error"] == error


def test_spec_mirrors_are_probed(mirror, tmp_path):
    spec = tmp_path / "stack.yaml"
    spec.write_text(f"version: 1\nname: t\nmirrors:\n  nix: ['{mirror.url}/nix']\n  pypi: {mirror.url}/simple\n")
    result = run("--spec", str(spec), "--hf", mirror.url + "/hf", "--json")
    assert result.exit_code == 0, result.output
    origins = {(r["kind"], r["origin"]) for r in json.loads(result.output)["results"]}
    assert origins == {("nix", "spec"), ("pypi", "spec"), ("hf", "option")}


def _result(kind, url, origin, ms, ok=True):
    return Result(Endpoint(kind, url, origin), ok, ms / 1000, "" if ok else "timed out")


def test_suggest_picks_the_region_of_the_fastest_cache():
    from stackgen import mirrordata as md

    results = [
        _result("nix", md.CHINA_NIX[1], "china", 40),
        _result("nix", md.CACHE_NIXOS_ORG, "global", 300),
        _result("pypi", md.CHINA_PYPI[0], "china", 30),
        _result("pypi", md.GLOBAL_PYPI, "global", 200),
        _result("hf", md.GLOBAL_HF, "global", 100),
        _result("hf", md.CHINA_HF, "china", 0, ok=False),
    ]
    # the region's own PyPI default is fastest: not repeated; HF's china default failed: name the working one
    assert suggest(results, None) == {"region": "china", "huggingface": md.GLOBAL_HF}
    assert suggest(results, "global") == {"region": "global", "pypi": md.CHINA_PYPI[0]}


def test_timeout_is_bounded():
    assert run("--timeout", "0").exit_code == 2
