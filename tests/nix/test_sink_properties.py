"""Property tests per sink: hostile spec values reach each Nix-generated sink as data, checked
by the sink's real consumer.

- systemd: the NixOS module is evaluated with nixpkgs' real lib (STACKGEN_NIXPKGS_LIB) against
  the option mirror, its units are written as NixOS writes them (tests/nix/options/units.nix),
  `systemd-analyze verify` must accept them without a warning, and systemd's own parser
  (`systemd --test`, which dumps every loaded setting) must read back exactly the spec's values.
- bash: the model-fetch unit's script, run by bash with a curl that downloads a wrong file:
  the URL is printed as text and nothing it holds runs; the home-manager session variables,
  written by home-manager's real `lib.shell.exportAll` (STACKGEN_HOME_MANAGER) and sourced.
- Nix: the substituters of env/mirrors.sh's NIX_CONFIG and of the NixOS nix.settings (as
  nix.conf lines), read back by `nix show-config`.
- Values a sink cannot carry (a newline, '#' or a space in a URL, a zone that is no interface
  name) are refused by validation: exit 1, a message, nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import NIX_CONFIG, render_text, require_tool, yaml_str

HERE = Path(__file__).parent
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # not the wrong file curl downloads

# URL text the validator admits that means something to bash, systemd, Nix or nix.conf.
URL_META = ["$(touch$IFS/tmp/stackgen-pwned)", "$(id)", "$HOME", "$((6*7))", "%7E", "%25", "%68", ";", "&", "(", ")", "!", "*", "+", ",", "=", "@", "~", "$$"]
URL_PART = st.lists(st.one_of(st.sampled_from(URL_META), st.text(alphabet="abcXYZ019-._", min_size=1, max_size=4)), max_size=6).map("".join)
# Path segments: the validator admits anything but whitespace, '"', '\\', '$' and controls.
PATH_META = ["'", "''", "%", "%%", "%n", "%7E", ";", "#", "`", "(", ")", "&", "|", "*", "?", "!", "中文", "é", "🚀", "{", "}", "~", "="]
SEGMENT = st.lists(st.one_of(st.sampled_from(PATH_META), st.text(alphabet="abc019-_.", min_size=1, max_size=3)), min_size=1, max_size=5).map("".join).filter(
    lambda s: s not in (".", "..")
)
PATH = st.lists(SEGMENT, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))


def nixos_spec(hf: str, url: str, model: str, secrets: dict[str, str], host: str) -> str:
    return "\n".join(
        [
            "version: 1",
            "name: sinks",
            "systems: [x86_64-linux]",
            "nixpkgs: nixos-26.05",  # options/units.nix derives 26.05's units (llama-cpp extraFlags)
            "mirrors:",
            f"  huggingface: {yaml_str(hf)}",
            "services:",
            f"  ollama: {{host: {yaml_str(host)}}}",
            f"  llama-cpp: {{model: {yaml_str(model)}, model_url: {yaml_str(url)}, model_sha256: {SHA}}}",
            f"  postgres: {{databases: [app], password_file: {yaml_str(secrets['postgres'])}}}",
            f"  qdrant: {{api_key_file: {yaml_str(secrets['qdrant'])}}}",
            f"  open-webui: {{host: {yaml_str(host)}, secret_key_file: {yaml_str(secrets['open-webui'])}}}",
            "targets: [nixos]",
            "",
        ]
    )


# --- systemd's own parser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def systemd_tools() -> tuple[str, str]:
    analyze = require_tool("systemd-analyze", "unit files are checked by systemd's own parser")
    manager = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.access(p, os.X_OK)), None)
    if manager is None:
        require_tool("systemd", "systemd --test dumps the parsed units")
    return analyze, manager


def as_unprivileged() -> list[str]:
    """`systemd --test` refuses to run as root: drop to nobody (setpriv) when root."""
    if os.geteuid() != 0:
        return []
    return [require_tool("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]


def parsed_units(units: dict[str, str], scripts: dict[str, str], tools: tuple[str, str]) -> dict[str, dict[str, list[str]]]:
    """Verify each unit with systemd-analyze and return what systemd's parser read from it:
    unit -> setting -> values, from `systemd --test`'s dump of the loaded units."""
    analyze, manager = tools
    root = Path(tempfile.mkdtemp(prefix="stackgen-units-"))  # readable by nobody, unlike tmp_path
    try:
        unit_dir, script_dir, runtime = root / "units", root / "bin", root / "run"
        for d in (unit_dir, script_dir, runtime):
            d.mkdir()
        for name, text in scripts.items():
            (script_dir / name).write_text(text)
            (script_dir / name).chmod(0o755)
        for name, text in units.items():
            (unit_dir / f"{name}.service").write_text(text.replace("@SCRIPTS@", str(script_dir)))
        # one target that pulls every unit into systemd's transaction, so that all are loaded
        wants = " ".join(f"{n}.service" for n in units)
        (unit_dir / "stackgen-all.target").write_text(f"[Unit]\nWants={wants}\n")
        for path in (root, *root.rglob("*")):
            path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else path.stat().st_mode | 0o444)
        os.chown(runtime, 65534, 65534) if os.geteuid() == 0 else None
        files = [str(unit_dir / f"{n}.service") for n in units]
        proc = subprocess.run([analyze, "verify", *files], capture_output=True, text=True, env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit_dir}:"})
        assert proc.returncode == 0 and "ignoring" not in proc.stderr and "Failed" not in proc.stderr, proc.stderr
        env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_UNIT_PATH": f"{unit_dir}:"}
        args = [*as_unprivileged(), manager, "--test", "--user", "--no-pager", "--unit=stackgen-all.target"]
        dump = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)
        assert dump.returncode == 0, dump.stderr
        return parse_dump(dump.stdout, units)
    finally:
        shutil.rmtree(root)


def parse_dump(text: str, units: dict[str, str]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("\t-> Unit "):
            name = line.removeprefix("\t-> Unit ").removesuffix(":").removesuffix(".service")
            current = out.setdefault(name, {}) if name in units else None
        elif current is not None and ": " in line:
            key, _, value = line.lstrip().partition(": ")  # a value may end in spaces
            current.setdefault(key, []).append(value)
    assert set(out) == set(units), f"systemd loaded {sorted(out)}, not {sorted(units)}"
    return out


def command_line(parsed: dict[str, list[str]], index: int = 0) -> list[str]:
    """ExecStart= (the unit's `index`th command, in the order systemd runs them: ExecStartPre=
    first) as systemd parsed it: its dump quotes each argument as a shell word
    (shell_maybe_quote), so bash splits it back."""
    script = 'eval "set -- $1"; printf "%s\\0" "$@"'
    out = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "-", parsed["Command Line"][index]], capture_output=True, check=True)
    return out.stdout.decode().split("\0")[:-1]


def evaluate_units(nix, lib: Path, tree: Path) -> dict:
    expr = (
        f"import {HERE}/options/units.nix {{ lib = import {lib}; mirror = {HERE}/options/nixos-26.05.nix; "
        f'module = {tree}/nix/nixos.nix; scriptDir = "@SCRIPTS@"; }}'
    )
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


@SETTINGS
@given(
    hf_path=URL_PART,
    url_path=URL_PART,
    model=PATH,
    secrets=st.fixed_dictionaries({k: PATH for k in ("postgres", "qdrant", "open-webui")}),
    host=st.sampled_from(["127.0.0.1", "::1", "fe80::1%eth0", "fe80::2%lo"]),
)
def test_nixos_units_carry_hostile_values_exactly(hf_path, url_path, model, secrets, host, tmp_path_factory, nix, nixpkgs_lib, systemd_tools, bash):
    from stackgen.spec import load_spec

    hf = f"https://hf.example.org/{hf_path}"
    url = f"http://127.0.0.1:9/{url_path}"
    tree = tmp_path_factory.mktemp("nixos")
    render_text(nixos_spec(hf, url, model, secrets, host), tree)
    spec = load_spec(tree / "stack.yaml", "stack.yaml")
    units = evaluate_units(nix, nixpkgs_lib, tree)
    parsed = parsed_units({n: u["text"] for n, u in units.items()}, {n: u["script"] for n, u in units.items()}, systemd_tools)

    def env(unit: str) -> dict[str, str]:
        return dict(line.split("=", 1) for line in parsed[unit].get("Environment", []))

    fetch = parsed["stackgen-fetch-llama-cpp"]
    assert fetch["Description"] == [f"Fetch {model}"]
    assert env("ollama")["HF_ENDPOINT"] == hf
    # Ollama splits OLLAMA_HOST with Go's net.SplitHostPort: an IPv6 address in brackets
    assert env("ollama")["OLLAMA_HOST"] == (f"[{host}]:11434" if ":" in host else f"{host}:11434")
    assert env("open-webui")["HF_ENDPOINT"] == hf
    assert env("open-webui")["OLLAMA_BASE_URL"] == spec.services["ollama"].local_url
    assert command_line(parsed["open-webui"])[1:] == ["serve", "--host", host, "--port", "3000"]
    assert command_line(parsed["llama-cpp"])[5:7] == ["-m", model]
    assert parsed["qdrant"]["EnvironmentFile"] == [secrets["qdrant"]]
    assert parsed["open-webui"]["EnvironmentFile"] == [secrets["open-webui"]]
    # LoadCredential= is not in systemd 252's dump: its text, which verify accepted above,
    # holds the path with every `%` doubled (so it resolves to the path).
    setup = units["stackgen-postgres-setup"]["text"]
    assert f"LoadCredential=password:{secrets['postgres'].replace('%', '%%')}\n" in setup

    run_fetch_script(units["stackgen-fetch-llama-cpp"]["script"], url, model, tmp_path_factory.mktemp("fetch"), bash)


# --- bash: the model-fetch script ----------------------------------------------------------


@pytest.fixture(scope="module")
def bash() -> str:
    return require_tool("bash")


FAKE_CURL = """#!/bin/sh
# curl --globoff --fail --location --retry 5 --continue-at - --output FILE URL: FILE gets the
# wrong bytes. Without --globoff a real curl would read '[' ']' '{' '}' in URL as a pattern.
while [ $# -gt 1 ]; do [ "$1" = --output ] && out=$2; [ "$1" = --globoff ] && globoff=1; shift; done
[ -n "$globoff" ] || { echo "curl without --globoff" >&2; exit 2; }
printf '%s' "$1" > "$FETCH_LOG"
printf 'not the model' > "$out"
"""


def run_fetch_script(script: str, url: str, model: str, where: Path, bash: str) -> None:
    """Run the unit's script (as NixOS would: `set -e` + the script) under a fake root: the
    model path is moved under `where`, curl downloads a wrong file, sha256sum is the real one."""
    fake_bin = where / "bin"
    fake_bin.mkdir()
    (fake_bin / "curl").write_text(FAKE_CURL)
    (fake_bin / "curl").chmod(0o755)
    for tool in ("sha256sum", "mkdir", "dirname", "rm", "mv"):
        (fake_bin / tool).symlink_to(shutil.which(tool))
    root = where / "root"
    local = str(root) + model
    assert script.count(shlex_quote(model)) >= 1
    script = script.replace(shlex_quote(model), shlex_quote(local))
    marker = Path("/tmp/stackgen-pwned")
    marker.unlink(missing_ok=True)
    env = {"PATH": str(fake_bin), "FETCH_LOG": str(where / "url"), "HOME": str(where), "IFS": " "}
    proc = subprocess.run([bash, "--norc", "--noprofile", "-c", script], capture_output=True, text=True, env=env, cwd=where)
    assert not marker.exists(), "a command in the URL ran"
    assert proc.returncode == 1, proc.stderr
    assert (where / "url").read_text() == url  # curl got the URL as one argument, unchanged
    assert proc.stderr == f"sha256 mismatch for {url}; removing the download\n"
    assert not Path(local).exists() and not Path(local + ".part").exists()


def shlex_quote(value: str) -> str:
    """nixpkgs' lib.escapeShellArg (the module's quoting), to find the path in the script."""
    import re

    return value if re.fullmatch(r"[A-Za-z0-9,._+:@%/-]+", value) else "'" + value.replace("'", "'\\''") + "'"


# --- bash: home-manager's hm-session-vars.sh ------------------------------------------------


@pytest.fixture(scope="module")
def home_manager() -> Path:
    """A checkout of nix-community/home-manager, from STACKGEN_HOME_MANAGER."""
    path = os.environ.get("STACKGEN_HOME_MANAGER")
    if not path:
        pytest.skip("STACKGEN_HOME_MANAGER is not set: point it at a checkout of nix-community/home-manager")
    if not (Path(path) / "modules" / "lib" / "shell.nix").exists():
        pytest.fail(f"STACKGEN_HOME_MANAGER={path} holds no modules/lib/shell.nix")
    return Path(path)


@SETTINGS
@given(pypi_path=URL_PART, hf_path=URL_PART)
def test_home_session_variables_source_to_the_spec_values(pypi_path, hf_path, tmp_path_factory, nix, nixpkgs_lib, home_manager, bash):
    pypi, hf = f"https://pypi.example.org/{pypi_path}", f"https://hf.example.org/{hf_path}"
    tree = tmp_path_factory.mktemp("home")
    render_text(
        f"version: 1\nname: hm\nnixpkgs: nixos-26.05\nmirrors:\n  pypi: {yaml_str(pypi)}\n  huggingface: {yaml_str(hf)}\n"
        "services:\n  ollama: {}\ntargets: [home-manager]\n",
        tree,
    )
    # home.sessionVariables from the module (real lib, home-manager's option mirror), written
    # into hm-session-vars.sh by home-manager's own lib.shell.exportAll
    expr = f"""
      let
        lib = import {nixpkgs_lib};
        eval = lib.evalModules {{ modules = [ {HERE}/options/home-26.05.nix {tree}/nix/home.nix
          {{ _module.args.pkgs = import {HERE}/options/stub-pkgs.nix {{ inherit lib; }}; }} ]; }};
        shell = import {home_manager}/modules/lib/shell.nix {{ inherit lib; }};
      in shell.exportAll eval.config.home.sessionVariables
    """
    exports = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    script = tree / "hm-session-vars.sh"
    script.write_text(exports + "\n")
    marker = Path("/tmp/stackgen-pwned")
    marker.unlink(missing_ok=True)
    out = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", f'source {script}; printf "%s\\0" "$UV_DEFAULT_INDEX" "$PIP_INDEX_URL" "$HF_ENDPOINT"'],
        capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "IFS": " "}, check=True,
    )
    assert not marker.exists(), "a command in a mirror URL ran"
    assert out.stdout.decode().split("\0")[:3] == [pypi, pypi, hf]


# --- nix.conf / NIX_CONFIG ------------------------------------------------------------------

CACHE_URL = st.builds(lambda host, path: f"https://{host}.example.org/{path}", st.sampled_from(["a", "b-c", "d0"]), URL_PART)


@SETTINGS
@given(caches=st.lists(CACHE_URL, min_size=2, max_size=4, unique=True))
def test_substituters_reach_nix_config_whole(caches, tmp_path_factory, nix, nixpkgs_lib, bash):
    tree = tmp_path_factory.mktemp("caches")
    key = "k-1:" + "A" * 43 + "="
    items = "".join(f"\n    - {{url: {yaml_str(url)}, key: {yaml_str(key)}}}" for url in caches)
    render_text(f"version: 1\nname: caches\nnixpkgs: nixos-26.05\nmirrors:\n  nix:{items}\ntargets: [mirrors, nixos]\n", tree)
    nix_bin = require_tool("nix", "nix show-config reads NIX_CONFIG as Nix does")

    def shown(config: str) -> dict:
        proc = subprocess.run([nix_bin, "show-config", "--json"], capture_output=True, text=True, env={**os.environ, "NIX_CONFIG": config})
        assert proc.returncode == 0, proc.stderr
        return {k: v["value"] for k, v in json.loads(proc.stdout).items()}

    # env/mirrors.sh china: NIX_CONFIG as the shell exports it
    out = subprocess.run([bash, "--norc", "--noprofile", "-c", f'source {tree}/env/mirrors.sh china >/dev/null; printf %s "$NIX_CONFIG"'], capture_output=True, text=True, check=True)
    got = shown(NIX_CONFIG + "\n" + out.stdout)  # Nix appends extra-* to the setting
    assert got["substituters"][-len(caches) :] == caches
    assert key in got["trusted-public-keys"]
    # NixOS nix.settings, written as nix.conf lines (lists joined by spaces, as NixOS does)
    expr = (
        f"let lib = import {nixpkgs_lib}; eval = lib.evalModules {{ modules = [ {HERE}/options/nixos-26.05.nix {tree}/nix/nixos.nix"
        f" {{ _module.args.pkgs = import {HERE}/options/stub-pkgs.nix {{ inherit lib; }}; }} ]; }};"
        " s = eval.config.nix.settings; in ''substituters = ${toString s.substituters}\ntrusted-public-keys = ${toString s.trusted-public-keys}''"
    )
    conf = json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)
    got = shown(NIX_CONFIG.replace("substituters =", "") + "\n" + conf)
    assert got["substituters"][: len(caches)] == caches
    assert key in got["trusted-public-keys"]


# --- what no sink can carry is refused ------------------------------------------------------

REFUSED = {
    "a '#' (nix.conf comment)": ("mirrors:\n  nix: [{url}]\n", "https://a.example/cache/#"),
    "a query": ("mirrors:\n  pypi: {url}\n", "https://a.example/simple?x=1"),
    "a space": ("mirrors:\n  huggingface: {url}\n", "https://a.example/a b"),
    "a newline": ("mirrors:\n  huggingface: {url}\n", "https://a.example/a\nb"),
    "a backquote": ("services:\n  llama-cpp: {{model: /m.gguf, model_url: {url}}}\n", "https://a.example/`id`"),
    "a quote": ("services:\n  llama-cpp: {{model: /m.gguf, model_url: {url}}}\n", "https://a.example/it's"),
    "braces": ("mirrors:\n  pypi: {url}\n", "https://a.example/${HOME}"),
    "a bare '%'": ("mirrors:\n  huggingface: {url}\n", "https://a.example/%h"),
    "non-ASCII": ("mirrors:\n  huggingface: {url}\n", "https://a.example/中文"),
    "a zone that is no interface name": ("services:\n  ollama: {{host: {url}}}\n", "fe80::1%${x}"),
}


@pytest.mark.parametrize("what", sorted(REFUSED))
def test_values_no_sink_can_carry_are_refused(what, tmp_path):
    from click.testing import CliRunner

    from stackgen.cli import cli

    body, value = REFUSED[what]
    (tmp_path / "stack.yaml").write_text("version: 1\nname: refused\n" + body.format(url=yaml_str(value)))
    result = CliRunner().invoke(cli, ["render", str(tmp_path / "stack.yaml"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# --- no in-band sentinel -------------------------------------------------------------------


def test_spec_text_like_the_old_placeholder_renders(tmp_path, nix):
    """`/stackgen-placeholder` was the planning stand-in for a password file: a spec that holds
    that text is valid and renders like any other (and home.nix still wires the option)."""
    files = render_text(
        "version: 1\nname: ph\nservices:\n"
        "  llama-cpp: {model: /stackgen-placeholder/m.gguf, model_url: 'https://h.example/stackgen-placeholder'}\n"
        "  postgres: {databases: [app], password_file: /stackgen-placeholder}\n"
        "  redis: {password_file: /run/stackgen-placeholder}\n",
        tmp_path,
    )
    home = files["nix/home.nix"]
    assert "cfg.postgres.passwordFile" in home and "cfg.redis.passwordFile" in home
    assert 'default = "/stackgen-placeholder";' in home
    nix("--parse", str(tmp_path / "nix/home.nix"))


def test_the_planned_option_file_is_never_text():
    from stackgen.targets.home import OptionFile

    with pytest.raises(TypeError, match="only known in Nix"):
        f"{OptionFile('postgres.passwordFile')}:/run/secrets/x"
