"""The `processes` target: process-compose.yaml against process-compose's own JSON schema
(tests/processes/process-compose-schema.json, the copy of shared/schemas/ this project was
given), its helper scripts through bash -n and shellcheck, and spec values through the real
process-compose (its variable substitution and Go templates must not change them).

The end-to-end run of a stack (PostgreSQL, Redis and an app) is tests/e2e/test_processes_e2e.py.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import golden_cases, require_tool
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec.loader import parse
from stackgen.spec.validate import validate

SCHEMA = json.loads((Path(__file__).parents[1] / "processes" / "process-compose-schema.json").read_text())


def strict(schema: dict) -> dict:
    """The schema with `additionalProperties: false` on every object that lists its properties:
    the rendered file may use no key process-compose does not define (it runs with is_strict)."""
    out = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(out)
    return out


STRICT = strict(SCHEMA)


def spec_text(path: Path) -> str:
    return path.read_text()


def with_processes(text: str) -> str:
    """The spec with `processes` among its targets."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("targets:"):
            targets = yaml.safe_load(line)["targets"]
            lines[i] = "targets: " + json.dumps(sorted(set(targets) | {"processes"}))
            return "\n".join(lines) + "\n"
    return text  # the default targets include processes


def rendered(text: str, name: str = "stack.yaml") -> dict[str, str]:
    spec = validate(parse(text, name))
    return {f.path: f.text for f in render_tree(spec)}


def seed_files() -> dict[str, str]:
    """process-compose.yaml of every seed spec that can run as processes ({case: text})."""
    out = {}
    for case, path in golden_cases().items():
        try:
            files = rendered(with_processes(spec_text(path)), path.name)
        except StackError as err:
            # only a `container` service (it needs a container engine) or an app given only as
            # an image (k8s-ai-stack) keeps a seed off processes
            reasons = ("cannot run on processes: a container service", "cannot run on processes: an app needs 'command'")
            assert any(reason in str(err) for reason in reasons), err
            continue
        out[case] = files["process-compose.yaml"]
    return out


SEEDS = seed_files()


def test_the_seeds_cover_every_kind():
    kinds = set()
    for case, path in golden_cases().items():
        if case in SEEDS:
            kinds |= {svc.kind for svc in validate(parse(with_processes(spec_text(path)), path.name)).services.values()}
    assert kinds >= {"ollama", "llama-cpp", "postgres", "redis", "qdrant", "open-webui", "app"}


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_every_rendered_file_validates_against_the_schema(case):
    data = yaml.safe_load(SEEDS[case])
    jsonschema.validate(data, SCHEMA)
    jsonschema.validate(data, STRICT)


def test_the_schema_check_can_fail():
    data = yaml.safe_load(SEEDS["ai-stack"])
    wrong_type = copy.deepcopy(data)
    wrong_type["processes"]["postgres"]["availability"]["restart"] = "sometimes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong_type, SCHEMA)
    unknown = copy.deepcopy(data)
    unknown["processes"]["postgres"]["readiness_probe"]["exec"]["cmd"] = "true"
    jsonschema.validate(unknown, SCHEMA)  # the published schema lets unknown keys through ...
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(unknown, STRICT)  # ... the strict one does not


def test_the_golden_files_are_the_rendered_ones():
    """The goldens hold the seeds that list processes; the schema test covers them too."""
    for case in ("ai-stack", "minimal", "tutor", "cortex"):
        golden = Path(__file__).parents[1] / "golden" / case / "process-compose.yaml"
        assert golden.read_text() == SEEDS[case]


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_scripts_parse_and_pass_shellcheck(case, tmp_path):
    shellcheck = require_tool("shellcheck", "the rendered helper scripts are checked by shellcheck")
    files = rendered(with_processes(spec_text(golden_cases()[case])))
    scripts = sorted(p for p in files if p.startswith("nix/processes/") and p.endswith(".sh"))
    assert "nix/processes/services.sh" in scripts
    for rel in scripts:
        path = tmp_path / rel.replace("/", "_")
        path.write_text(files[rel])
        subprocess.run(["bash", "-n", str(path)], check=True)
        proc = subprocess.run([shellcheck, "-s", "bash", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{case}/{rel}:\n{proc.stdout}"


@pytest.fixture
def short_tmp():
    """A temporary folder with a short path (pytest's tmp_path plus ~/.local/share/stackgen/...
    would not fit a Unix socket's 107 bytes, which services.sh checks)."""
    path = Path(tempfile.mkdtemp(prefix="sg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_data_dir_default_and_spec_value(short_tmp):
    """services.sh resolves the state folder: STACKGEN_DATA_DIR, else the spec's data_dir (a
    hostile path stays one path), else $XDG_DATA_HOME/stackgen/<name>, else ~/.local/share."""
    tmp_path = short_tmp
    base = "version: 1\nname: dd\ntargets: [processes]\nservices: {redis: {}}\n"
    hostile = "/tmp/it's $(touch x) `y` \"z\" {{.a}} $$"
    cases = [
        (base, {"XDG_DATA_HOME": str(tmp_path / "xdg")}, str(tmp_path / "xdg" / "stackgen" / "dd")),
        (base, {}, str(tmp_path / "home" / ".local" / "share" / "stackgen" / "dd")),
        (base + f"data_dir: {json.dumps(hostile)}\n", {}, hostile),
        (base + "data_dir: ~/my state\n", {}, str(tmp_path / "home" / "my state")),
        (base + "data_dir: /srv/x\n", {"STACKGEN_DATA_DIR": str(tmp_path / "env")}, str(tmp_path / "env")),
    ]
    for text, env, want in cases:
        script = rendered(text)["nix/processes/services.sh"]
        # Stop before it creates anything: print the resolved folder instead of `mkdir`.
        probe = script.replace('mkdir -p "$STACKGEN_DATA_DIR/logs"', 'printf %s "$STACKGEN_DATA_DIR"; exit 0')
        assert probe != script
        got = subprocess.run(
            ["bash", "-c", probe, "services.sh"], capture_output=True, text=True, check=True,
            env={"PATH": os.defpath, "HOME": str(tmp_path / "home"), **env},
        ).stdout  # fmt: skip
        assert got == want


HOSTILE = ["$HOME", "${HOME}", "$$", "\\$x", "{{.X}}", "{{", "}}", "a\\\\b", "c\\/d", "'q'", '"d"', "`id`", "$(id)", "sp ace", "ünï", "\\", "$"]


def test_values_reach_the_process_unchanged(tmp_path):
    """A command's words and env values, as the real process-compose hands them to the program:
    its substitution (`$`, `\\\\`) and templates (`{{`) must leave them as the spec wrote them."""
    pc = require_tool("process-compose", "the rendered file is run by the real process-compose")
    out = tmp_path / "out.json"
    program = "import json, os, sys; json.dump({'argv': sys.argv[1:], 'env': os.environ['HOSTILE']}, open(os.environ['OUT'], 'w'))"
    env_value = "".join(HOSTILE) + "\nline two\t\\n"  # a newline: YAML double-quotes it
    spec = {
        "version": 1, "name": "esc", "targets": ["processes"],
        "services": {"probe": {"kind": "app", "command": ["python3", "-c", program, *HOSTILE], "env": {"HOSTILE": env_value, "OUT": str(out)}}},
    }  # fmt: skip
    files = rendered(json.dumps(spec))
    tree = tmp_path / "tree"
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    env = {"PATH": f"{Path(pc).parent}:{os.defpath}", "HOME": str(tmp_path), "STACKGEN_DATA_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        ["bash", str(tree / "nix/processes/services.sh"), "up", "-t=false"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.exists(), f"the process did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    got = json.loads(out.read_text())
    assert got == {"argv": HOSTILE, "env": env_value}


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "version: 1\nname: x\ntargets: [processes]\nservices:\n  insight: {kind: container, image: 'docker.io/redis/redisinsight:2.58', port: 5540}\n",
            "services.insight cannot run on processes: a container service needs a container engine",
        ),
        (
            "version: 1\nname: x\ntargets: [processes]\nservices:\n  api: {kind: app, image: 'ghcr.io/a/b:1'}\n",
            "services.api cannot run on processes: an app needs 'command' there",
        ),
        ("version: 1\nname: x\ndata_dir: state\n", "data_dir 'state' is not an absolute path or one starting with ~/"),
    ],
)
def test_what_processes_refuses(text, message):
    with pytest.raises(StackError) as err:
        validate(parse(text, "stack.yaml"))
    assert message in str(err.value)


def test_a_container_service_leaves_processes_out_of_the_default_targets():
    """Without `targets:`, a stack with a container service renders its other default targets
    (processes would refuse the container), and says so; listing processes is still an error
    (test_what_processes_refuses)."""
    text = "version: 1\nname: x\nservices:\n  redis: {}\n  insight: {kind: container, image: 'docker.io/redis/redisinsight:2.58', port: 5540}\n"
    spec = validate(parse(text, "stack.yaml"))
    assert "processes" not in spec.targets and "compose" in spec.targets
    assert [w.message for w in spec.warnings] == [
        "the processes target is left out: services.insight is a container service, which needs a container engine"
    ]
    files = rendered(text)
    assert "process-compose.yaml" not in files and "compose.yaml" in files
    plain = validate(parse("version: 1\nname: x\nservices:\n  redis: {}\n", "stack.yaml"))
    assert "processes" in plain.targets and plain.warnings == ()


def _dry_run(pc: str, text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """process-compose's own load of the file (--dry-run: strict validation, then exit)."""
    (tmp_path / "process-compose.yaml").write_text(text)
    return subprocess.run(
        [pc, "up", "-f", str(tmp_path / "process-compose.yaml"), "--dry-run", "--disable-dotenv", "-t=false",
         "-u", str(tmp_path / "pc.sock"), "-L", str(tmp_path / "pc.log")],
        cwd=tmp_path, env={"PATH": os.defpath, "HOME": str(tmp_path), "STACKGEN_DATA_DIR": str(tmp_path / "state")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("case", sorted(SEEDS))
def test_the_real_process_compose_loads_every_seed(case, tmp_path):
    """Beyond the schema: process-compose's loader checks dependencies (a process that starts
    by default may not depend on a disabled one, such as tutor's profiled Ollama)."""
    pc = require_tool("process-compose", "the rendered file is loaded by the real process-compose")
    proc = _dry_run(pc, SEEDS[case], tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Validated" in proc.stdout + proc.stderr


def test_the_dry_run_can_fail(tmp_path):
    pc = require_tool("process-compose", "the rendered file is loaded by the real process-compose")
    data = yaml.safe_load(SEEDS["tutor"])
    data["processes"]["ollama-models"].pop("disabled")  # the pull waits for a disabled Ollama
    proc = _dry_run(pc, yaml.safe_dump(data).replace("$", "$$").replace("$${STACKGEN_DATA_DIR}", "${STACKGEN_DATA_DIR}"), tmp_path)
    assert proc.returncode != 0
    assert "dependency process 'ollama' in process 'ollama-models' is disabled" in proc.stdout + proc.stderr


def test_a_profiled_service_is_disabled_and_not_waited_for():
    """compose profiles on processes: the profiled service and its jobs are `disabled` (`up`
    leaves them off); a default user of it starts without it (compose: `required: false`), a
    profiled user keeps the dependency. The run with the real binary is in
    tests/e2e/test_processes_e2e.py::test_a_profiled_service_is_off_until_started."""
    text = (
        "version: 1\nname: p\ntargets: [processes, compose]\nservices:\n"
        "  base: {kind: app, command: [a], image: 'x.io/a:1', uses: [redis, ollama]}\n"
        "  tool: {kind: app, command: [b], image: 'x.io/b:1', uses: [ollama], profiles: [llm]}\n"
        "  redis: {}\n"
        "  ollama: {models: [m], profiles: [llm]}\n"
    )
    files = rendered(text)
    procs = yaml.safe_load(files["process-compose.yaml"])["processes"]
    assert {name for name, p in procs.items() if p.get("disabled")} == {"tool", "ollama", "ollama-models"}
    assert all(p["disabled"] is True for p in procs.values() if "disabled" in p)
    assert procs["base"]["depends_on"] == {"redis": {"condition": "process_healthy"}}
    assert procs["tool"]["depends_on"] == {"ollama": {"condition": "process_healthy"}}
    assert procs["ollama-models"]["depends_on"] == {"ollama": {"condition": "process_healthy"}}
    compose = yaml.safe_load(files["compose.yaml"])["services"]
    assert compose["base"]["depends_on"]["ollama"]["required"] is False  # the same choice as compose



# The longest path a Unix socket can have on Linux (sun_path: 108 bytes with the NUL).
SOCKET_MAX = 107
PG_SOCKET = "/postgres/run/.s.PGSQL.5432"  # below the state folder, for services.postgres on 5432
PG_STACK = "version: 1\nname: s\ntargets: [processes]\nsystems: [x86_64-linux]\nservices:\n  postgres: {}\n"


def test_a_literal_data_dir_too_long_for_a_socket_is_refused():
    """At validation: the postgres socket (the longest here) decides; one byte less passes."""
    fits = "/" + "d" * (SOCKET_MAX - len(PG_SOCKET) - 1)
    assert len(fits + PG_SOCKET) == SOCKET_MAX
    validate(parse(PG_STACK + f"data_dir: {fits}\n", "stack.yaml"))
    with pytest.raises(StackError) as err:
        validate(parse(PG_STACK + f"data_dir: {fits}x\n", "stack.yaml"))
    assert str(err.value).startswith("stack.yaml:7:11: error: data_dir is too long for the processes target: the Unix socket ")
    assert f"{PG_SOCKET} would be 108 bytes, and a socket path holds at most 107" in str(err.value)
    assert f"choose a data_dir of at most {len(fits)} bytes" in str(err.value)
    # macOS' sun_path is 4 bytes shorter; without postgres, the control socket decides
    with pytest.raises(StackError, match="would be 107 bytes, and a socket path holds at most 103"):
        validate(parse(PG_STACK.replace("x86_64-linux", "x86_64-linux, aarch64-darwin") + f"data_dir: {fits}\n", "stack.yaml"))
    control = "/" + "c" * (SOCKET_MAX - len("/process-compose.sock"))
    validate(parse(PG_STACK.replace("postgres: {}", "redis: {}") + f"data_dir: {control[:-1]}\n", "stack.yaml"))
    with pytest.raises(StackError, match=r"/process-compose.sock would be 108 bytes"):
        validate(parse(PG_STACK.replace("postgres: {}", "redis: {}") + f"data_dir: {control}\n", "stack.yaml"))
    # ~/ is known only at run time; other targets have no socket to fit
    validate(parse(PG_STACK + f"data_dir: ~{fits}x\n", "stack.yaml"))
    validate(parse(PG_STACK.replace("[processes]", "[nixos]") + f"data_dir: {fits}x\n", "stack.yaml"))


def test_a_state_folder_too_long_for_a_socket_stops_services_sh(short_tmp):
    """At run time (the default data_dir under $HOME, or STACKGEN_DATA_DIR): services.sh says
    which socket does not fit and exits 1 before it creates anything or starts process-compose
    (a recording stand-in on PATH shows whether it ran)."""
    files = rendered(PG_STACK)
    (short_tmp / "tree/nix/processes").mkdir(parents=True)
    for rel in ("process-compose.yaml", "nix/processes/services.sh"):
        (short_tmp / "tree" / rel).write_text(files[rel])
    (short_tmp / "bin").mkdir()
    (short_tmp / "bin/process-compose").write_text(f"#!/bin/sh\necho ran > {short_tmp}/ran\n")
    (short_tmp / "bin/process-compose").chmod(0o755)

    def run(env):
        return subprocess.run(
            ["bash", str(short_tmp / "tree/nix/processes/services.sh"), "up", "-t=false"], cwd=short_tmp,
            env={"PATH": f"{short_tmp}/bin:{os.defpath}", **env}, capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    # the default, $HOME/.local/share/stackgen/s: a long home
    home = short_tmp / ("h" * (SOCKET_MAX - len(f"{short_tmp}/") - len("/.local/share/stackgen/s") - len(PG_SOCKET)))
    state = f"{home}/.local/share/stackgen/s"
    assert len(state + PG_SOCKET) == SOCKET_MAX
    proc = run({"HOME": f"{home}x"})
    assert proc.returncode == 1 and not (short_tmp / "ran").exists()
    assert proc.stderr == (
        f"services.sh: the state folder {home}x/.local/share/stackgen/s is too long: the Unix socket"
        f" {home}x/.local/share/stackgen/s{PG_SOCKET} would be 108 bytes, and a socket path holds at most 107."
        " Use a shorter folder: STACKGEN_DATA_DIR=/short/path, or data_dir: in stack.yaml\n"
    )
    assert not Path(f"{home}x").exists()  # nothing created
    # bytes, not characters: a two-byte character makes the same path one byte too long
    proc = run({"STACKGEN_DATA_DIR": state[:-1] + "é"})
    assert proc.returncode == 1 and "would be 108 bytes" in proc.stderr and not (short_tmp / "ran").exists()
    proc = run({"HOME": str(home)})  # one byte less: process-compose starts
    assert proc.returncode == 0, proc.stderr
    assert (short_tmp / "ran").exists() and Path(state, "logs").is_dir()


def test_postgres_fails_cryptically_on_a_path_one_byte_longer(short_tmp):
    """Why the check exists and that its limit is PostgreSQL's: the real server (Debian's) starts
    on a socket folder whose socket path is 107 bytes and refuses one of 108."""
    initdb = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not initdb:
        require_tool("initdb", "the socket limit is checked against the real PostgreSQL")
    bindir = initdb[-1].parent
    user = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        entry = pwd.getpwnam("postgres")
        user = {"user": entry.pw_uid, "group": entry.pw_gid}
        os.chown(short_tmp, entry.pw_uid, entry.pw_gid)
    data = short_tmp / "d"
    subprocess.run([bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-N"], check=True, capture_output=True, **user)
    port = 5432
    for length, ok in ((SOCKET_MAX, True), (SOCKET_MAX + 1, False)):
        run = short_tmp / ("r" * (length - len(str(short_tmp)) - len(f"/.s.PGSQL.{port}") - 1))
        run.mkdir()
        if user:
            os.chown(run, user["user"], user["group"])
        assert len(f"{run}/.s.PGSQL.{port}") == length
        server = subprocess.Popen(
            [bindir / "postgres", "-D", data, "-k", run, "-p", str(port), "-c", "listen_addresses="],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **user,
        )  # fmt: skip
        try:
            if ok:
                deadline = time.monotonic() + 30
                while not (run / f".s.PGSQL.{port}").exists():
                    assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()
                    time.sleep(0.1)
            else:
                out = server.communicate(timeout=30)[0]
                assert server.returncode != 0 and "is too long (maximum 107 bytes)" in out, out
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)


def services_sh_down(tmp: Path, stand_in: str | None, socket_left: bool) -> subprocess.CompletedProcess:
    """`bash services.sh down` of a rendered stack, in `tmp`, with `stand_in` (a shell script)
    as process-compose (None: no process-compose on PATH), and the control socket's file as a
    killed server leaves it when `socket_left`."""
    script = tmp / "tree/nix/processes/services.sh"
    script.parent.mkdir(parents=True)
    script.write_text(rendered(PG_STACK)["nix/processes/services.sh"])
    path = os.defpath
    if stand_in is not None:
        (tmp / "bin").mkdir()
        (tmp / "bin/process-compose").write_text(stand_in)
        (tmp / "bin/process-compose").chmod(0o755)
        path = f"{tmp}/bin:{path}"
    else:
        assert not any(Path(d, "process-compose").exists() for d in os.defpath.split(":") if d)
    (tmp / "state").mkdir()
    if socket_left:
        with socket.socket(socket.AF_UNIX) as left:
            left.bind(str(tmp / "state/process-compose.sock"))
    return subprocess.run(
        [shutil.which("bash"), str(script), "down"], cwd=tmp, capture_output=True, text=True,
        env={"PATH": path, "STACKGEN_DATA_DIR": str(tmp / "state")}, timeout=30,
    )  # fmt: skip


@pytest.mark.parametrize(
    "down_rc, list_rc, want_rc, calls",
    [
        (0, 0, 0, ["down"]),  # answered: done
        (1, 1, 0, ["down", "process list"]),  # exited before it answered, socket dead: down
        (7, 0, 7, ["down", "process list"]),  # still answering: `down` really failed, its status
    ],
)
def test_down_counts_a_stack_that_stopped_before_it_answered(short_tmp, down_rc, list_rc, want_rc, calls):
    """process-compose v1.87 answers `down` from the server it is stopping, and sometimes exits
    first (the client: "project/stop: EOF", about 1 run in 8 in the e2e test). services.sh then
    asks the control socket: no answer means the stack is down. The race itself cannot be
    forced; a stand-in process-compose plays both outcomes."""
    stand_in = (
        f'#!/bin/sh\ncase "$1" in\n'
        f'  down) echo down >> {short_tmp}/calls; exit {down_rc} ;;\n'
        f'  process) echo "process $2" >> {short_tmp}/calls; exit {list_rc} ;;\n'
        f'esac\nexit 9\n'
    )
    proc = services_sh_down(short_tmp, stand_in, socket_left=True)
    assert proc.returncode == want_rc, proc.stderr
    assert (short_tmp / "calls").read_text().splitlines() == calls
    assert ("the stack is down" in proc.stderr) == (calls == ["down", "process list"] and want_rc == 0)


def test_down_without_process_compose(short_tmp):
    """A missing process-compose is an error (exit 127), not a stopped stack."""
    proc = services_sh_down(short_tmp, None, socket_left=True)
    assert proc.returncode == 127 and "process-compose is not on PATH" in proc.stderr and "the stack is down" not in proc.stderr


def test_down_without_a_control_socket(short_tmp):
    """With no control socket at all no server runs: nothing is asked after `down` failed."""
    proc = services_sh_down(short_tmp, f'#!/bin/sh\necho "$1" >> {short_tmp}/calls\nexit 1\n', socket_left=False)
    assert proc.returncode == 0 and "the stack is down" in proc.stderr
    assert (short_tmp / "calls").read_text().splitlines() == ["down"]
