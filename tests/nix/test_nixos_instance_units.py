"""The NixOS units that services v1.1 added, with hostile spec values, read back by their real
consumers: a second llama.cpp server's own unit and an `app`'s unit (written as NixOS writes
them, tests/nix/options/units.nix) through `systemd-analyze verify` and systemd's parser; a
`container`'s podman unit (nixpkgs' oci-containers mkService, mirrored there) through
systemd, and its `podman run` script through bash with a podman that records its argv.

Needs STACKGEN_NIXPKGS_LIB (nixpkgs' real lib), systemd and bash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from conftest import render_text, yaml_str
from test_sink_properties import PATH, SETTINGS, bash, command_line, evaluate_units, parsed_units, systemd_tools  # noqa: F401 (fixtures)

STUB_BIN = re.compile(r"/nix/store/0{32}-[^/\s]+/bin/")  # tests/nix/options/stub-pkgs.nix
WORD_META = ["%", "%%", "%n", "$HOME", "${X}", "$$", "'", '"', "\\", ";", "&", "|", "`id`", "$(id)", "中文", "a b", "*", "~", "="]
WORD = st.lists(st.one_of(st.sampled_from(WORD_META), st.text(alphabet="abcXYZ019-._/:", min_size=1, max_size=4)), min_size=1, max_size=4).map("".join)
# an environment value may also hold a tab (a command word may not)
VALUE = st.lists(st.one_of(st.sampled_from([*WORD_META, "\t", "#"]), st.text(alphabet="abc019", min_size=1, max_size=3)), min_size=1, max_size=4).map("".join)


def spec_text(model: str, host: str, password: str, args: list[str], env: dict[str, str], cmd: list[str], probe: list[str]) -> str:
    env_items = ", ".join(f"{k}: {yaml_str(v)}" for k, v in env.items())
    words = lambda ws: "[" + ", ".join(yaml_str(w) for w in ws) + "]"  # noqa: E731
    return "\n".join([
        "version: 1",
        "name: sinks",
        "systems: [x86_64-linux]",
        "nixpkgs: nixos-26.05",
        "targets: [nixos]",
        "services:",
        "  llama-cpp: {model: /srv/models/a.gguf}",
        f"  small: {{kind: llama-cpp, model: {yaml_str(model)}, host: {yaml_str(host)}, port: 8081}}",
        f"  postgres: {{databases: [app], password_file: {yaml_str(password)}}}",
        "  api:",
        "    kind: app",
        f"    command: {words(['/bin/true', *args])}",
        f"    env: {{{env_items}}}",
        "    uses: [postgres, small]",
        "  tool:",
        "    kind: container",
        "    image: docker.io/library/busybox:1.36",
        f"    command: {words(cmd)}",
        f"    env: {{{env_items}}}",
        f"    health: {{command: {words(probe)}}}",
        "    uses: [small]",
        "",
    ])  # fmt: skip


FAKE_PODMAN = """#!/bin/sh
printf '%s\\0' "$@" > "$PODMAN_LOG"
"""


@SETTINGS
@given(
    model=PATH,
    host=st.sampled_from(["127.0.0.1", "::1", "fe80::1%eth0"]),
    password=PATH,
    # systemd's dump leaves a leading `~` bare (literal to systemd), which bash, reading the dump
    # back in command_line, would expand to $HOME; `~` inside a word still gets through
    args=st.lists(WORD.filter(lambda w: not w.startswith("~")), min_size=1, max_size=3),
    values=st.lists(VALUE, min_size=1, max_size=3),
    cmd=st.lists(WORD, min_size=1, max_size=3),
    probe=st.lists(WORD, min_size=1, max_size=3),
)
def test_instance_units_carry_hostile_values_exactly(model, host, password, args, values, cmd, probe, tmp_path_factory, nix, nixpkgs_lib, systemd_tools, bash):
    from stackgen.spec import load_spec

    tree = tmp_path_factory.mktemp("units")
    env = {f"V{i}": v for i, v in enumerate(values)}
    render_text(spec_text(model, host, password, args, env, cmd, probe), tree)
    spec = load_spec(tree / "stack.yaml", "stack.yaml")
    units = evaluate_units(nix, nixpkgs_lib, tree)
    wanted = ["llama-cpp-small", "sinks-api", "podman-sinks-tool"]
    # the stub store's programs do not exist: true(1) stands in for them (verify checks ExecStart=)
    texts = {n: STUB_BIN.sub(lambda m: str(Path(shutil.which("true")).parent) + "/", units[n]["text"]) for n in wanted}
    assert "ExecStartPre=/nix/store/00000000000000000000000000000000-sinks-api-wait\n" in units["sinks-api"]["text"]  # waits for `small`
    texts = {n: re.sub(r"/nix/store/0{32}-sinks-api-wait\b", shutil.which("true"), t) for n, t in texts.items()}
    texts = {n: re.sub(r"/bin/(llama-server|env)\b", "/bin/true", t) for n, t in texts.items()}
    parsed = parsed_units(texts, {n: units[n]["script"] for n in wanted}, systemd_tools)

    # the extra llama.cpp server: its own words, exactly (`$$` is `$` at exec time)
    words = [w.replace("$$", "$") for w in command_line(parsed["llama-cpp-small"])]
    assert words[1:7] == ["--host", host, "--port", "8081", "--model", model]
    assert parsed["llama-cpp-small"]["ProtectSystem"] == ["strict"]

    # the app: its command, its env, the connection variables, the secret as a credential path
    api = parsed["sinks-api"]
    assert command_line(api, 0) == [shutil.which("true")]  # ExecStartPre=, the wait (its script: tests/unit/test_health.py)
    assert [w.replace("$$", "$") for w in command_line(api, 1)][1:] == args
    got = dict(line.split("=", 1) for line in api["Environment"])
    assert {k: got[k] for k in env} == env
    small = spec.services["small"]
    assert got["SMALL_URL"] == f"http://{'[' + host + ']' if ':' in host else host}:8081"
    assert got["POSTGRES_PASSWORD_FILE"].endswith("/credentials/sinks-api.service/postgres-password")
    # LoadCredential= is not in systemd 252's dump: its text, which verify accepted, holds the
    # path with every `%` doubled (so it resolves to the path)
    assert f"LoadCredential=postgres-password:{password.replace('%', '%%')}\n" in texts["sinks-api"]
    assert small.port == 8081

    # the container: systemd runs nixpkgs' script; bash hands podman every value as one word
    assert parsed["podman-sinks-tool"]["Type"] == ["notify"]
    assert parsed["podman-sinks-tool"]["Delegate"] == ["yes"]  # nixpkgs' setting for --sdnotify=healthy
    where = tmp_path_factory.mktemp("podman")
    (where / "podman").write_text(FAKE_PODMAN)
    (where / "podman").chmod(0o755)
    marker = Path("/tmp/stackgen-pwned")
    marker.unlink(missing_ok=True)
    run = subprocess.run(
        [bash, "--norc", "--noprofile", "-c", units["podman-sinks-tool"]["script"]],
        env={"PATH": f"{where}:/usr/bin:/bin", "PODMAN_LOG": str(where / "argv")}, capture_output=True, text=True, timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert not marker.exists()
    argv = (where / "argv").read_bytes().decode().split("\0")[:-1]
    image = argv.index("docker.io/library/busybox:1.36")
    assert argv[image + 1 :] == cmd
    pairs = [argv[i + 1] for i, a in enumerate(argv[:image]) if a == "-e"]
    assert {k: v for k, v in (p.split("=", 1) for p in pairs) if k in env} == env
    assert "SMALL_URL=" + got["SMALL_URL"] in pairs  # on the host's network, at the server's address
    assert "--network=host" in argv[:image]
    assert "--sdnotify=healthy" in argv[:image]  # started (for the units after it) once healthy
    # ... and killed (its unit failing) if it never gets there: nixpkgs' unit has no start timeout
    assert {"--health-start-period=30s", "--health-retries=5", "--health-on-failure=kill"} <= set(argv[:image])
    health = next(a for a in argv[:image] if a.startswith("--health-cmd="))
    run = subprocess.run(["sh", "-c", 'eval "set -- $1"; printf "%s\\0" "$@"', "-", health.removeprefix("--health-cmd=")], capture_output=True, check=True)
    assert run.stdout.decode().split("\0")[:-1] == probe  # podman runs it with /bin/sh -c
