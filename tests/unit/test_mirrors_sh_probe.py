"""`source env/mirrors.sh test|auto`: probe both regions with curl, choose, switch (issue 13).

The probes run the real curl. Nothing leaves this machine: a curlrc sends every built-in
mirror's host to a closed loopback port, and the spec's own mirrors are loopback servers.
The region choice is also checked against a stand-in curl that answers from a table, since
the real global and China mirrors cannot be reached from a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import render_text, require_tool
from httpfakes import serve, text
from stackgen import mirrordata

CACHE_INFO = "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n"


def builtin_hosts() -> set[str]:
    urls = [mirrordata.CACHE_NIXOS_ORG, mirrordata.GLOBAL_PYPI, mirrordata.GLOBAL_HF, mirrordata.CHINA_HF]
    urls += [*mirrordata.CHINA_NIX, *mirrordata.CHINA_PYPI]
    return {urlsplit(u).hostname for u in urls}


def render_mirrors(tmp_path: Path, base: str) -> Path:
    render_text(
        "version: 1\nname: m\nmirrors:\n"
        f"  nix: [{{url: '{base}/nix'}}]\n  pypi: {base}/simple\n  huggingface: {base}/hf\ntargets: [mirrors]\n",
        tmp_path / "tree",
    )
    return tmp_path / "tree" / "env" / "mirrors.sh"


def run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def offline_curl_env(tmp_path) -> dict[str, str]:
    """A real curl whose every built-in mirror host goes to a closed loopback port."""
    require_tool("curl", "env/mirrors.sh test/auto probe with curl")
    home = tmp_path / "curlhome"
    home.mkdir()
    rc = "".join(f"connect-to = {host}:443:127.0.0.1:9\n" for host in sorted(builtin_hosts()))
    (home / ".curlrc").write_text(rc + "noproxy = *\n")
    return {"PATH": os.environ["PATH"], "HOME": str(home), "CURL_HOME": str(home), "STACKGEN_MIRRORS_TIMEOUT": "2"}


def test_test_probes_every_endpoint_and_changes_nothing(tmp_path, offline_curl_env):
    routes = {
        "GET /nix/nix-cache-info": text(200, CACHE_INFO),
        "GET /simple/pip/": text(200, '<a href="pip-24.0.tar.gz">pip-24.0.tar.gz</a>'),
        "GET /hf/openai-community/gpt2/resolve/main/config.json": text(200, '{"model_type": "gpt2"}'),
    }
    with serve(routes) as server:
        script = render_mirrors(tmp_path, server.url)
        started = time.monotonic()
        proc = run(f'source "{script}" test; echo "status=$? [${{UV_DEFAULT_INDEX-unset}}] [$(declare -F | grep -c _stackgen)]"', offline_curl_env)
        elapsed = time.monotonic() - started
        probed = {path for _, path, _ in server.requests}
    assert proc.stdout.splitlines()[-1] == "status=0 [unset] [0]", proc.stdout + proc.stderr
    assert elapsed < 10  # all probes at once, each bounded by STACKGEN_MIRRORS_TIMEOUT
    assert probed == set(routes_paths(routes))
    lines = proc.stdout.splitlines()
    assert lines[0] == "mirrors: probed in 2 s at most (region kind latency endpoint)"
    table = lines[1:-2]
    assert len(table) == len(mirrordata.probe_endpoints(_spec(server.url)))
    ours = [ln for ln in table if server.url in ln]
    assert len(ours) == 3 and all(" ms  " in ln for ln in ours), ours
    others = [ln for ln in table if server.url not in ln]
    assert others and all("FAIL" in ln for ln in others), others
    assert table[0].split()[0] == "global"  # global first, then china
    assert lines[-2] == "auto would choose: china"


def test_auto_switches_to_the_region_that_answers(tmp_path, offline_curl_env):
    routes = {
        "GET /nix/nix-cache-info": text(200, CACHE_INFO),
        "GET /simple/pip/": text(200, "pip-24.0.tar.gz"),
        "GET /hf/openai-community/gpt2/resolve/main/config.json": text(200, "{}"),
    }
    with serve(routes) as server:
        script = render_mirrors(tmp_path, server.url)
        proc = run(f'source "{script}" auto; echo "status=$? [$STACKGEN_MIRRORS] [$UV_DEFAULT_INDEX]"', offline_curl_env)
    assert "auto: china serves better from here" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"status=0 [china] [{server.url}/simple]"


def test_auto_keeps_global_when_nothing_answers(tmp_path, offline_curl_env):
    script = render_mirrors(tmp_path, "http://127.0.0.1:9")
    proc = run(f'source "{script}" auto; echo "status=$? [${{STACKGEN_MIRRORS-unset}}] [${{HF_ENDPOINT-unset}}]"', offline_curl_env)
    assert "auto: global serves better from here" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "status=0 [unset] [unset]"


def test_an_ipv6_literal_mirror_is_probed(tmp_path, offline_curl_env):
    routes = {
        "GET /nix/nix-cache-info": text(200, CACHE_INFO),
        "GET /simple/pip/": text(200, "pip-24.0.tar.gz"),
        "GET /hf/openai-community/gpt2/resolve/main/config.json": text(200, "{}"),
    }
    with serve(routes, host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        script = render_mirrors(tmp_path, server.url)
        proc = run(f'source "{script}" test', offline_curl_env)
        probed = sorted(path for _, path, _ in server.requests)
    assert probed == sorted(routes_paths(routes)), proc.stdout + proc.stderr
    ours = [ln for ln in proc.stdout.splitlines() if server.url in ln]
    assert len(ours) == 3 and all(" ms  " in ln for ln in ours), proc.stdout


def test_the_probe_never_reads_a_url_as_a_curl_pattern(tmp_path, offline_curl_env):
    """Validation keeps '[' ']' out of every URL but an IP-literal host and '{' '}' out of all;
    the probe's curl still gets --globoff, so a URL with them is fetched once, as written."""
    import shlex

    wanted = "/x[1-3]{a,b}/simple/pip/"
    with serve({f"GET {wanted}": text(200, "pip-24.0.tar.gz")}) as server:
        script = render_mirrors(tmp_path, server.url)
        rendered = script.read_text()
        probe = f" {server.url}/simple/pip/ "
        assert rendered.count(probe) == 1
        script.write_text(rendered.replace(probe, f" {shlex.quote(server.url + wanted)} "))
        proc = run(f'source "{script}" test', offline_curl_env)
        probed = [path for _, path, _ in server.requests if path.startswith("/x")]  # not the nix and hf probes
    assert probed == [wanted], "curl expanded the URL as a pattern"
    row = next(ln for ln in proc.stdout.splitlines() if f"{server.url}/simple" in ln)
    assert " ms  " in row, proc.stdout + proc.stderr


def fake_curl(tmp_path: Path, answers: dict[str, str]) -> dict[str, str]:
    """A curl stand-in: prints the -w answer ("200 0.080") for the URL, from a table."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    cases = "".join(f"  {url}) echo -n '{answer}' ;;\n" for url, answer in answers.items())
    (bindir / "curl").write_text(f'#!/bin/bash\nfor url; do :; done\ncase "$url" in\n{cases}  *) echo -n "000 0" ;;\nesac\n')
    (bindir / "curl").chmod(0o755)
    return {"PATH": f"{bindir}:{os.environ['PATH']}", "HOME": str(tmp_path)}


@pytest.mark.parametrize(
    "answers, chosen",
    [
        # every kind answers in both regions: the faster sum wins
        ({"global": ("200 0.050", "200 0.060", "200 0.070"), "china": ("200 0.900", "200 0.900", "200 0.900")}, "global"),
        ({"global": ("200 2.500", "200 3.000", "200 4.000"), "china": ("200 0.040", "200 0.050", "200 0.060")}, "china"),
        # China reaches everything, global only PyPI: more kinds answering wins, however fast
        ({"global": ("000 0", "200 0.010", "000 0"), "china": ("200 0.300", "200 0.300", "200 0.300")}, "china"),
        # a tie keeps global
        ({"global": ("200 0.100", "200 0.100", "200 0.100"), "china": ("200 0.100", "200 0.100", "200 0.100")}, "global"),
    ],
)
def test_auto_chooses_by_reachability_then_latency(tmp_path, answers, chosen):
    spec = _spec(None)
    table = {}
    for region, kind, url in mirrordata.probe_endpoints(spec):
        table[mirrordata.probe_url(kind, url)] = answers[region][("nix", "pypi", "hf").index(kind)]
    env = fake_curl(tmp_path, table)
    render_text("version: 1\nname: m\ntargets: [mirrors]\n", tmp_path / "tree")
    proc = run(f'source "{tmp_path}/tree/env/mirrors.sh" auto; echo "[${{STACKGEN_MIRRORS-global}}]"', env)
    assert proc.stdout.splitlines()[-1] == f"[{chosen}]", proc.stdout + proc.stderr
    assert f"auto: {chosen} serves better from here" in proc.stdout


def test_without_curl_test_says_so_and_returns_1(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("awk", "sort", "bash"):
        os.symlink(shutil.which(tool), bindir / tool)
    render_text("version: 1\nname: m\ntargets: [mirrors]\n", tmp_path / "tree")
    proc = run(f'source "{tmp_path}/tree/env/mirrors.sh" test; echo "status=$?"', {"PATH": str(bindir)})
    assert proc.stdout.strip() == "status=1"
    assert "test and auto need curl, which is not installed" in proc.stderr


def routes_paths(routes: dict) -> list[str]:
    return [key.split(" ", 1)[1] for key in routes]


def _spec(base: str | None):
    from stackgen.spec import parse, validate

    mirrors = "" if base is None else f"mirrors:\n  nix: [{{url: '{base}/nix'}}]\n  pypi: {base}/simple\n  huggingface: {base}/hf\n"
    return validate(parse(f"version: 1\nname: m\n{mirrors}targets: [mirrors]\n", "stack.yaml"))
