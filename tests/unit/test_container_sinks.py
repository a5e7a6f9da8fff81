"""Hostile values through every path from the spec into compose and Quadlet, checked by the
real consumers, and the container secrets checked on the command lines podman is given.

- compose: docker-compose 2.x `config --format json` (with the variables a lone `$` would
  interpolate set in its environment) must read back exactly the values the containers get.
- Quadlet: podman 5's generator (`quadlet -dryrun`) turns the units into the service's
  ExecStart=; that line is split as systemd does (quotes, C escapes, `%` specifiers, `$`
  variables) into the `podman run` argv, whose mounts, ports, environment and command must be
  exactly the planned values. Values the unit syntax cannot carry are refused, not mangled.
- Secrets: the real podman-compose runs `up -d` against a stand-in `podman` that records its
  argv; no secret value may appear in any of them. The environment-file loader that reads the
  Qdrant/Open WebUI keys in the container is run by dash, bash and busybox sh on hostile files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import require_tool, yaml_str
from stackgen import containers
from stackgen.services import llama_cpp, open_webui
from stackgen.containers import Container, Health
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec.checks import CONTROL
from stackgen.spec.loader import parse
from stackgen.spec.validate import validate
from stackgen.targets import quadlet

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])

META = ["$(touch /tmp/pwned)", "`id`", "'", '"', "\\", "%", "%n", "%%", "#", "${HOME}", "$HOME", "$$", "''", ";", "&", "|", "*", "?", "~", "!", "(", ")", "{", "}", "[", "]", " ", "\t", "=", ":", ",", "é", "🦙", "\u00a0"]
TEXT = st.lists(st.one_of(st.sampled_from(META), st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"))), min_size=1, max_size=12).map("".join)
# Strings validation admits in an absolute path (no whitespace, '"', '\\', '$'; ':' and ',' are refused for mounts)
PATH_PART = st.lists(st.sampled_from([m for m in META if not re.search(r'[\s"\\$:,]', m)] + list("abz09._-")), min_size=1, max_size=6).map("".join)
URL_TAIL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~!$&()*+;=@%/", max_size=20)
ENV_NOT_SET = "STACKGEN_MUST_NOT_APPEAR"  # what any compose interpolation would insert


# --- systemd's reading of an ExecStart= line ------------------------------------------------

C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "s": " ", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def systemd_words(line: str) -> list[str]:
    """extract_first_word(EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE), word by word."""
    out, cur, quote, started, i = [], "", None, False, 0
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            nxt = line[i + 1]
            assert nxt in C_ESCAPES, f"unexpected escape \\{nxt} in {line!r}"
            cur, started, i = cur + C_ESCAPES[nxt], True, i + 2
            continue
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote, started = ch, True
        elif ch in " \t":
            if started:
                out.append(cur)
            cur, started = "", False
        else:
            cur, started = cur + ch, True
        i += 1
    assert quote is None, f"unbalanced quoting in {line!r}"
    if started:
        out.append(cur)
    return out


def resolve(word: str) -> str:
    """Specifiers (load time), then variables (exec time): only their literal forms may remain."""
    assert not re.search(r"(?<!%)(%%)*%(?!%)", word), f"{word!r} holds a systemd specifier"
    word = word.replace("%%", "%")
    assert not re.search(r"(?<!\$)(\$\$)*\$(?!\$)", word), f"{word!r} would be expanded by systemd"
    return word.replace("$$", "$")


QUADLET_OWN = {"--cidfile=%t/%N.cid", "systemd-%N"}  # the specifiers quadlet writes itself


def podman_run(files: dict[str, str], tmp: Path, name: str) -> list[str]:
    """The argv systemd gives podman for `name`.container, through the real quadlet generator."""
    tool = require_tool("quadlet", "podman 5's Quadlet generator reads the units (tests/install-deps.sh)")
    units = tmp / "units"
    shutil.rmtree(units, ignore_errors=True)
    units.mkdir()
    for path, text in files.items():
        (units / Path(path).name).write_text(text)
    proc = subprocess.run([tool, "-dryrun", "-user"], capture_output=True, text=True, env={**os.environ, "QUADLET_UNIT_DIRS": str(units)})
    assert proc.returncode == 0 and "Error" not in proc.stderr, proc.stderr
    service = proc.stdout.split(f"---{name}.service---", 1)[1].split("\n---", 1)[0]
    [line] = [ln for ln in service.splitlines() if ln.startswith("ExecStart=")]
    argv = [w if w in QUADLET_OWN else resolve(w) for w in systemd_words(line.removeprefix("ExecStart="))]
    assert argv[:2] == ["/usr/bin/podman", "run"], argv
    return argv


VALUE_FLAGS = {"--name", "-v", "--volume", "--publish", "--env", "--env-file", "--network", "--device", "--label", "--health-cmd",
               "--health-interval", "--health-timeout", "--health-retries", "--health-start-period"}  # fmt: skip


def split_run(argv: list[str], image: str) -> tuple[dict[str, list[str]], list[str]]:
    """(flag -> values, command after the image) of a `podman run` argv."""
    flags: dict[str, list[str]] = {}
    i = 2
    while argv[i] != image:
        arg = argv[i]
        if arg in VALUE_FLAGS:
            flags.setdefault(arg, []).append(argv[i + 1])
            i += 2
        else:
            assert arg.startswith("-"), f"unexpected {arg!r} before the image in {argv}"
            i += 1
    return flags, argv[i + 1 :]


# --- Quadlet: every key of a unit, with hostile values -----------------------------------------


def hostile_container(draw_values: dict) -> Container:
    v = draw_values
    return Container(
        kind="qdrant",
        image=f"registry.example.org/x{v['image']}:1",
        health=Health(v["health"]),
        ports=((f"fe80::1%{v['zone']}", 7000, 6333),),
        binds=((f"/m/{v['path']}", f"/c/{v['path']}"),),
        secrets=(("qdrant-api-key", f"/run/{v['path']}/key"),),
        env={"A": v["env"], "B_" + "X": v["path"]},
        command=("run", v["word"], v["env"]),
    )


hostile_values = st.fixed_dictionaries(
    {"image": PATH_PART, "health": TEXT, "zone": PATH_PART, "path": PATH_PART, "env": TEXT, "word": TEXT}
)


@SETTINGS
@given(values=hostile_values)
def test_quadlet_argv_is_exactly_the_planned_values(values, tmp_path):
    ctr = hostile_container(values)
    try:
        files = {"quadlet/s-qdrant.container": quadlet.container_unit("s", ctr), "quadlet/s.network": "[Network]\n"}
    except ValueError as exc:
        # only what the unit syntax cannot carry is refused: whitespace or '"' at an end,
        # a trailing backslash (line continuation)
        raw = [values["health"], ctr.image]
        assert any(v != v.strip() or v[:1] == '"' or v[-1:] in ('"', "\\") for v in raw), exc
        return
    argv = podman_run(files, tmp_path, "s-qdrant")
    flags, command = split_run(argv, ctr.image)
    assert flags["--publish"] == [f"[fe80::1%{values['zone']}]:7000:6333"]
    assert flags["-v"] == [f"/m/{values['path']}:/c/{values['path']}:ro", f"/run/{values['path']}/key:/run/secrets/qdrant-api-key:ro"]
    assert flags["--env"] == [f"A={values['env']}", f"B_X={values['path']}"]
    assert flags["--health-cmd"] == [values["health"]]
    assert command == ["run", values["word"], values["env"]]


def test_the_quadlet_reader_catches_what_it_must(tmp_path):
    """The checks above can fail: an undoubled % or $ in a unit is caught, and a value the
    escaper did not quote comes back split."""
    with pytest.raises(AssertionError, match="specifier"):
        resolve("[fe80::1%lo]:80:80")
    with pytest.raises(AssertionError, match="expanded"):
        resolve("a$HOME")
    unit = "[Container]\nImage=x.org/a:1\nPublishPort=[fe80::1%lo]:80:80\n"
    with pytest.raises(AssertionError, match="specifier"):
        podman_run({"t.container": unit}, tmp_path, "t")
    unit = "[Container]\nImage=x.org/a:1\nExec=echo a b\n"
    assert split_run(podman_run({"t.container": unit}, tmp_path, "t"), "x.org/a:1")[1] == ["echo", "a", "b"]


# --- compose and Quadlet from a hostile spec -------------------------------------------------


def hostile_spec(v: dict) -> str:
    return "\n".join(
        [
            "version: 1",
            "name: sinks",
            "mirrors:",
            f"  huggingface: {yaml_str(v['hf'])}",
            f"  pypi: {yaml_str(v['pypi'])}",
            "services:",
            "  llama-cpp:",
            f"    model: {yaml_str(v['model'])}",
            "  postgres:",
            f"    password_file: {yaml_str(v['secret'] + '/pg')}",
            "  qdrant:",
            f"    api_key_file: {yaml_str(v['secret'] + '/q.env')}",
            "  open-webui:",
            f"    secret_key_file: {yaml_str(v['secret'] + '/w.env')}",
            "targets: [compose, quadlet]",
            "",
        ]
    )


spec_values = st.fixed_dictionaries(
    {
        "hf": URL_TAIL.map(lambda s: f"https://hf.example.org/{s}"),
        "pypi": URL_TAIL.map(lambda s: f"https://pypi.example.org/{s}"),
        "model": st.lists(PATH_PART, min_size=1, max_size=3).map(lambda p: "/" + "/".join(p) + ".gguf"),
        "secret": PATH_PART.map(lambda s: f"/run/{s}"),
    }
)


def render_or_refuse(text: str) -> dict[str, str] | None:
    try:
        loaded = validate(parse(text, "stack.yaml"))
    except StackError as exc:
        # what validation refuses in these paths: '.' / '..' parts, and URLs it cannot read
        assert re.search(r"not a clean absolute path|is not a valid URL|must not have a query", str(exc)), str(exc)
        return None
    return {f.path: f.text for f in render_tree(loaded)}


def compose_config(tree: Path) -> dict:
    tool = require_tool("docker-compose", "docker-compose 2.x reads compose files as compose does")
    # every variable a stray `$NAME` or `${NAME}` could name resolves to a marker
    env = {"PATH": os.environ["PATH"], "HOME": ENV_NOT_SET, "X": ENV_NOT_SET, "project": ENV_NOT_SET}
    proc = subprocess.run([tool, "-f", "compose.yaml", "config", "--format", "json"], capture_output=True, text=True, cwd=tree, env=env)
    assert proc.returncode == 0, proc.stderr
    return unescape(json.loads(proc.stdout))


def unescape(node):
    """`config` writes its result as a compose file again: a literal `$` comes out as `$$`, and
    a lone `$` would have been interpolated."""
    if isinstance(node, dict):
        return {unescape(k): unescape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [unescape(v) for v in node]
    if isinstance(node, str):
        assert not re.search(r"(?<!\$)(\$\$)*\$(?!\$)", node), f"{node!r}: a lone $ in docker-compose's output"
        return node.replace("$$", "$")
    return node


@SETTINGS
@given(values=spec_values)
def test_spec_values_reach_compose_and_quadlet_exactly(values, tmp_path):
    assume(all(CONTROL.search(v) is None for v in values.values()))
    files = render_or_refuse(hostile_spec(values))
    if files is None:
        return
    tree = tmp_path / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    (tree / "compose").mkdir(parents=True)
    for path in ("compose.yaml", "compose/postgres-init.sql"):
        if path in files:
            (tree / path).write_text(files[path])
    model_dir = values["model"].rsplit("/", 1)[0] or "/"

    config = compose_config(tree)
    assert ENV_NOT_SET not in json.dumps(config)
    services = config["services"]
    assert services["llama-cpp"]["command"][:2] == ["--model", values["model"]]
    binds = [(m["source"], m["target"]) for m in services["llama-cpp"]["volumes"] if m["type"] == "bind"]
    assert binds == [(model_dir, model_dir)]
    assert services["llama-cpp"]["environment"]["HF_ENDPOINT"] == values["hf"]
    assert services["open-webui"]["environment"]["PIP_INDEX_URL"] == values["pypi"]
    assert {k: v["file"] for k, v in config["secrets"].items()} == {
        "postgres-password": values["secret"] + "/pg",
        "qdrant-api-key": values["secret"] + "/q.env",
        "open-webui-secret-key": values["secret"] + "/w.env",
    }

    units = {p: t for p, t in files.items() if p.startswith("quadlet/") and not p.endswith(".sql")}
    flags, command = split_run(podman_run(units, tmp_path, "sinks-llama-cpp"), llama_cpp.IMAGE)
    assert command[:2] == ["--model", values["model"]]
    assert f"{model_dir}:{model_dir}:ro" in flags["-v"]
    assert f"HF_ENDPOINT={values['hf']}" in flags["--env"]
    flags, command = split_run(podman_run(units, tmp_path, "sinks-open-webui"), open_webui.IMAGE)
    assert f"PIP_INDEX_URL={values['pypi']}" in flags["--env"]
    assert f"{values['secret']}/w.env:/run/secrets/open-webui-secret-key:ro" in flags["-v"]
    assert command[:2] == ["sh", "-c"] and command[3:] == ["stackgen-env", "/run/secrets/open-webui-secret-key", "bash", "start.sh"]
    flags, _ = split_run(podman_run(units, tmp_path, "sinks-postgres"), "docker.io/pgvector/pgvector:0.8.1-pg17")
    assert f"{values['secret']}/pg:/run/secrets/postgres-password:ro" in flags["-v"]


# --- secrets never on a command line ---------------------------------------------------------

FAKE_PODMAN = """#!{python}
# stands in for podman: records its argv, answers what podman-compose asks
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
if sys.argv[1:2] in (["version"], ["--version"]):
    print("podman version 5.4.2")
elif "json" in sys.argv or "inspect" in sys.argv:  # ps --format json, volume/network inspect: none yet
    print("[]")
"""

SECRETS = {"pg": "pg-SECRET-1'$(id)", "redis": "redis-SECRET-2", "qdrant": "qdrant-SECRET-3", "webui": "webui-SECRET-4"}


def podman_compose_argv(tmp_path: Path, compose_text: str | None = None) -> list[list[str]]:
    """Every argv podman-compose gives podman for `up -d` of a stack with all four secrets."""
    tool = require_tool("podman-compose")
    files = {
        "pg": tmp_path / "pg", "redis": tmp_path / "redis", "qdrant": tmp_path / "qdrant.env", "webui": tmp_path / "webui.env",
    }  # fmt: skip
    files["pg"].write_text(SECRETS["pg"] + "\n")
    files["redis"].write_text(SECRETS["redis"] + "\n")
    files["qdrant"].write_text(f"QDRANT__SERVICE__API_KEY={SECRETS['qdrant']}\n")
    files["webui"].write_text(f"WEBUI_SECRET_KEY={SECRETS['webui']}\n")
    spec = (
        "version: 1\nname: argv\ntargets: [compose]\nservices:\n"
        f"  postgres: {{databases: [app], password_file: {files['pg']}}}\n"
        f"  redis: {{password_file: {files['redis']}}}\n"
        f"  qdrant: {{api_key_file: {files['qdrant']}}}\n"
        f"  open-webui: {{secret_key_file: {files['webui']}}}\n"
    )
    tree = tmp_path / "tree"
    (tree / "compose").mkdir(parents=True)
    for f in render_tree(validate(parse(spec, "stack.yaml"))):
        (tree / f.path).write_text(f.text)
    if compose_text is not None:
        (tree / "compose.yaml").write_text(compose_text.format(**{k: str(v) for k, v in files.items()}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "podman"
    fake.write_text(FAKE_PODMAN.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "argv.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ARGV_LOG": str(log)}
    proc = subprocess.run([tool, "-f", "compose.yaml", "up", "-d"], cwd=tree, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_podman_compose_puts_no_secret_on_a_command_line(tmp_path):
    calls = podman_compose_argv(tmp_path)
    created = [argv for argv in calls if argv[:1] in (["create"], ["run"])]
    assert len(created) == 4, calls
    for argv in calls:
        for value in SECRETS.values():
            assert not any(value in arg for arg in argv), f"a secret is on podman's command line: {argv}"
    # ... and the files are there, mounted where the services read them
    joined = "\n".join(" ".join(argv) for argv in created)
    for name, path in (("qdrant-api-key", "qdrant.env"), ("open-webui-secret-key", "webui.env"), ("postgres-password", "pg"), ("redis-password", "redis")):
        assert re.search(rf"{re.escape(str(tmp_path / path))}:/run/secrets/{name}\b", joined), name


def test_the_argv_recorder_sees_an_env_file(tmp_path):
    """The check above can fail: with the former `env_file:`, podman-compose passes the key as `-e`."""
    text = "services:\n  qdrant:\n    image: docker.io/qdrant/qdrant:v1.15.3\n    env_file: [{qdrant}]\n"
    calls = podman_compose_argv(tmp_path, text)
    assert any(f"QDRANT__SERVICE__API_KEY={SECRETS['qdrant']}" in argv for argv in calls)


# --- the environment-file loader, in the shells images have ----------------------------------

SHELLS = [["dash"], ["bash"], ["busybox", "sh"]]


def load_env(shell: list[str], env_file: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the loader as the container does (`sh -c LOADER stackgen-env FILE cmd...`), with
    `env -0` as the image's command."""
    require_tool(shell[0])
    return subprocess.run(
        [*shell, "-c", containers.ENV_FILE_LOADER, "stackgen-env", str(env_file), "env", "-0"],
        capture_output=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]},
    )  # fmt: skip


def exported(proc: subprocess.CompletedProcess) -> dict[str, str]:
    assert proc.returncode == 0, proc.stderr
    pairs = [item.decode().partition("=") for item in proc.stdout.split(b"\0") if item]
    return {k: v for k, _, v in pairs}


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=TEXT.filter(lambda v: v == v.strip(" \t\r") and not re.fullmatch(r"(['\"]).*\1", v, re.S)), name=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True))
def test_loader_exports_values_literally_and_runs_nothing(shell, value, name, tmp_path):
    assume(name not in ("PATH", "PWD", "SHLVL", "_", "OLDPWD", "IFS", "PS4", "ENV"))
    assume("\n" not in value and CONTROL.search(value) is None)
    env_file = tmp_path / "key.env"
    env_file.write_text(f"# a comment\n\n  {name} =  {value}  \n; another\nnot an assignment\n", encoding="utf-8")
    got = exported(load_env(shell, env_file, tmp_path))
    assert got[name] == value
    assert not (tmp_path / "pwned").exists() and not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_loader_quotes_comments_and_refusals(shell, tmp_path):
    env_file = tmp_path / "key.env"
    env_file.write_text("A=\"quoted $(x) value\"\nB='single'\r\nC=a=b\n#D=no\n9E=no\nbad-name=no\nF=\n")
    got = exported(load_env(shell, env_file, tmp_path))
    assert (got["A"], got["B"], got["C"], got["F"]) == ("quoted $(x) value", "single", "a=b", "")
    assert not {"D", "9E", "bad-name"} & set(got)
    for text in ("bare-key-without-a-name\n", ""):
        env_file.write_text(text)
        proc = load_env(shell, env_file, tmp_path)
        assert proc.returncode == 1 and b"sets no NAME=value variable" in proc.stderr
    proc = load_env(shell, tmp_path / "missing.env", tmp_path)
    assert proc.returncode == 1 and b"sets no NAME=value variable" in proc.stderr
