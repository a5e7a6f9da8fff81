"""The model-fetch unit's curl downloads exactly the URL it is given: its script, evaluated
with nixpkgs' lib, runs the real curl against a loopback server.

curl reads `[1-3]` and `{a,b}` in a URL as patterns and fetches every expansion (the review saw
`x[1-3].gguf` fetch /x1, /x2 and /x3 as root), so the unit passes --globoff. The module takes
any URL (it is usable without stackgen); stackgen's validation also refuses '[' and ']' except
around an IP-literal host, which must keep working (http://[::1]:PORT/).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, render_text, require_tool, yaml_str
from httpfakes import no_proxy, serve  # noqa: F401 (fixture)

HERE = Path(__file__).parent
MODEL = b"GGUF not really a model\n"
SHA = hashlib.sha256(MODEL).hexdigest()


@pytest.fixture(autouse=True)
def _direct(no_proxy):
    """The loopback servers are reached directly, whatever proxy this machine sets."""


def fetch_scripts(nix, lib: Path, module: Path, extra: Path | None = None) -> dict[str, str]:
    """unit name -> the script NixOS would run for it (tests/nix/options/units.nix)."""
    extra_modules = f"[ (builtins.fromJSON (builtins.readFile {extra})) ]" if extra else "[ ]"
    expr = (
        f"import {HERE}/options/units.nix {{ lib = import {lib}; mirror = {HERE}/options/nixos-26.05.nix; "
        f'module = {module}; scriptDir = "@SCRIPTS@"; extra = {extra_modules}; }}'
    )
    units = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    return {name: unit["script"] for name, unit in units.items() if name.startswith("stackgen-fetch-")}


def run_script(script: str, home: Path) -> subprocess.CompletedProcess:
    """Run a unit's script (`set -e` + the script, as NixOS does) with the real curl and coreutils."""
    curl = require_tool("curl", "the model-fetch unit downloads with curl")
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{Path(curl).parent}:/usr/bin:/bin", "HOME": str(home), "CURL_HOME": str(home)}
    return subprocess.run([require_tool("bash"), "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env=env, timeout=60)


def test_a_url_with_pattern_characters_is_fetched_once_as_written(tmp_path, nix, nixpkgs_lib):
    wanted = "/x[1-3]{a,b}.gguf"
    routes = {f"GET {wanted}": lambda h: h.reply(200, MODEL, "application/octet-stream")}
    target = tmp_path / "models" / "x.gguf"
    with serve(routes) as server:
        config = {"stackgen": {"modelFetch": {"files": {"m": {"url": server.url + wanted, "path": str(target), "sha256": SHA}}}}}
        (tmp_path / "files.json").write_text(json.dumps(config))
        scripts = fetch_scripts(nix, nixpkgs_lib, ROOT / "modules" / "nixos" / "model-fetch.nix", tmp_path / "files.json")
        proc = run_script(scripts["stackgen-fetch-m"], tmp_path / "home")
        requested = [(method, path) for method, path, _ in server.requests]
    assert requested == [("GET", wanted)], "curl expanded the URL as a pattern"
    assert proc.returncode == 0, proc.stderr
    assert target.read_bytes() == MODEL
    assert not Path(f"{target}.part").exists()


def test_an_ipv6_literal_host_from_the_spec_is_fetched(tmp_path, nix, nixpkgs_lib):
    target = tmp_path / "models" / "m.gguf"
    with serve({"GET /m.gguf": lambda h: h.reply(200, MODEL, "application/octet-stream")}, host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        spec = "\n".join(
            [
                "version: 1",
                "name: fetch",
                "nixpkgs: nixos-26.05",  # options/units.nix derives 26.05's units
                "systems: [x86_64-linux]",
                "services:",
                f"  llama-cpp: {{model: {yaml_str(str(target))}, model_url: {yaml_str(server.url + '/m.gguf')}, model_sha256: {SHA}}}",
                "targets: [nixos]",
                "",
            ]
        )
        tree = tmp_path / "tree"
        render_text(spec, tree)  # validation admits the IP-literal host
        scripts = fetch_scripts(nix, nixpkgs_lib, tree / "nix" / "nixos.nix")
        proc = run_script(scripts["stackgen-fetch-llama-cpp"], tmp_path / "home")
        requested = [(method, path) for method, path, _ in server.requests]
    assert proc.returncode == 0, proc.stderr
    assert requested == [("GET", "/m.gguf")]
    assert target.read_bytes() == MODEL


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/x[1-3].gguf", "http://127.0.0.1:8000/x].gguf", "http://a[::1]/m.gguf", "http://[::1]]:80/m.gguf", "http://[::1]:80/[0]/m.gguf"],
)
def test_brackets_outside_an_ip_literal_host_are_refused(tmp_path, url):
    from click.testing import CliRunner

    from stackgen.cli import cli

    spec = tmp_path / "stack.yaml"
    spec.write_text(f"version: 1\nname: b\nservices:\n  llama-cpp: {{model: /models/m.gguf, model_url: {yaml_str(url)}}}\n")
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 1
    assert f"services.llama-cpp.model_url {url!r} is not a valid URL: '[' and ']' may only enclose an IP address host" in result.stderr
    assert "Traceback" not in result.output
