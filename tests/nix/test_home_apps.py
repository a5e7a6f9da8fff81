"""home-manager: an `app` with `command:` as a systemd user service, and containers that use
a service home-manager runs natively (Ollama, such an app) on the host's network.

- CI (stub evaluation): the rendered module's systemd.user.services and podman containers:
  the command, the connection variables at the addresses the services listen on or are
  published on, each secret as the path its `stackgen.*` option names (only when set),
  Restart=, Requires=/After= on the used services' user units.
- With STACKGEN_NIXPKGS_LIB and STACKGEN_HOME_MANAGER: the unit text home-manager's own
  modules/systemd.nix writes from it (tests/nix/options/home-units.nix), verified by
  `systemd-analyze verify` and read back by systemd's parser (`systemd --test`): hostile
  command words, environment values and secret paths arrive exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import render_text, yaml_str
from test_modules import nix_literal, stub_eval
from test_sink_properties import SETTINGS, command_line, parsed_units, systemd_tools  # noqa: F401 (fixture)

HERE = Path(__file__).parent
STUB_STORE = "/nix/store/00000000000000000000000000000000-"  # tests/nix/options/stub-pkgs.nix


def spec_text(command: list[str], env: dict[str, str], pg_password: str | None = "/run/secrets/pg") -> str:
    password = f", password_file: {yaml_str(pg_password)}" if pg_password else ""
    env_items = ", ".join(f"{k}: {yaml_str(v)}" for k, v in env.items())
    return "\n".join([
        "version: 1",
        "name: hm",
        "nixpkgs: nixos-26.05",
        "targets: [home-manager]",
        "services:",
        "  ollama: {}",
        f"  postgres: {{databases: [app]{password}}}",
        "  redis: {}",
        "  api:",
        "    kind: app",
        f"    command: [{', '.join(yaml_str(w) for w in command)}]",
        "    uses: [ollama, postgres, redis]",
        f"    env: {{{env_items}}}",
        "  worker:",  # a container without a port, using the native Ollama and the native app
        "    kind: container",
        "    image: docker.io/library/busybox:1.36",
        "    command: [sleep, infinity]",
        "    uses: [ollama, api, redis]",
        "",
    ])  # fmt: skip


def with_option(tmp_path: Path, option: str, value: str | None) -> Path:
    wrapper = tmp_path / "with-option.nix"
    wrapper.write_text(f"{{ imports = [ ./nix/home.nix ]; config.stackgen.{option} = {nix_literal(value)}; }}")
    return wrapper


CONNECTION = {
    "OLLAMA_URL": "http://127.0.0.1:11434",
    "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
    "OLLAMA_HOST": "127.0.0.1:11434",
    "POSTGRES_URL": "postgresql://app@127.0.0.1:5432/app",
    "DATABASE_URL": "postgresql://app@127.0.0.1:5432/app",
    "REDIS_URL": "redis://127.0.0.1:6379",
}


@pytest.mark.parametrize("password", ["/run/secrets/pg", None])
def test_app_is_a_user_service(password, tmp_path, nix):
    render_text(spec_text(["api-server", "--port", "8091"], {"MODE": "dev"}, password), tmp_path)
    cfg = stub_eval(nix, with_option(tmp_path, "postgres.passwordFile", password))
    unit = cfg["systemd"]["user"]["services"]["hm-api"]
    deps = ["ollama.service", "podman-hm-postgres.service", "podman-hm-redis.service"]
    assert unit["Unit"] == {"Description": "api of hm", "Requires": deps, "After": deps}
    service = unit["Service"]
    # not an absolute path: env(1) looks it up on PATH, the home profile first
    assert service["ExecStart"] == f"{STUB_STORE}coreutils/bin/env api-server --port 8091"
    path, *env = service["Environment"]
    assert path.startswith("PATH=%h/.nix-profile/bin:") and path.endswith(":/usr/bin:/bin")
    expected = {**CONNECTION, "MODE": "dev", **({"POSTGRES_PASSWORD_FILE": password} if password else {})}
    assert env == [f'"{k}={v}"' for k, v in sorted(expected.items())]
    assert (service["Restart"], service["RestartSec"]) == ("on-failure", 5)
    assert unit["Install"] == {"WantedBy": ["default.target"]}
    containers = cfg["services"]["podman"]["containers"]
    assert "hm-api" not in containers and "hm-ollama" not in containers
    # the worker shares the host's network: it reaches Ollama on loopback, Redis on its published port
    worker = containers["hm-worker"]
    assert worker["network"] == ["host"] and "ports" not in worker
    assert worker["environment"] == {k: v for k, v in CONNECTION.items() if k.startswith(("OLLAMA", "REDIS"))}
    assert worker["extraConfig"]["Unit"]["Requires"] == ["ollama.service", "hm-api.service", "podman-hm-redis.service"]


def test_absolute_command_runs_without_env(tmp_path, nix):
    render_text(spec_text(["/srv/api/bin/api"], {}, None), tmp_path)
    service = stub_eval(nix, tmp_path / "nix/home.nix")["systemd"]["user"]["services"]["hm-api"]["Service"]
    assert service["ExecStart"] == "/srv/api/bin/api"
    assert not any(e.startswith("PATH=") for e in service["Environment"])


# --- home-manager's own unit text, read back by systemd ------------------------------------

WORD_META = ["%", "%%", "%h", "$HOME", "${X}", "$$", "'", '"', "\\", "\\n", ";", "#", "`id`", "$(id)", "中文", "🚀", "a b", "  "]
WORD = st.lists(st.one_of(st.sampled_from(WORD_META), st.text(alphabet="abcXYZ019-._/=:", min_size=1, max_size=4)), min_size=1, max_size=5).map("".join)
# an environment value may also hold tabs (a command word may not; a line break reaches the unit
# as `\n`, but systemd's dump prints it raw, where this test cannot tell it from a new line)
VALUE = st.lists(st.one_of(st.sampled_from([*WORD_META, "\t"]), st.text(alphabet="abc019", min_size=1, max_size=3)), min_size=1, max_size=5).map("".join)
PATH_META = ["%", "%%", "%n", "$x", "${HOME}", "'", ";", "#", "中文", "=", "&"]
SECRET = st.lists(st.one_of(st.sampled_from(PATH_META), st.text(alphabet="abc019-_.", min_size=1, max_size=3)), min_size=1, max_size=4).map(lambda p: "/run/" + "".join(p))


@pytest.fixture(scope="module")
def home_manager() -> Path:
    import os

    path = os.environ.get("STACKGEN_HOME_MANAGER")
    if not path:
        pytest.skip("STACKGEN_HOME_MANAGER is not set: point it at a checkout of nix-community/home-manager")
    if not (Path(path) / "modules" / "systemd.nix").exists():
        pytest.fail(f"STACKGEN_HOME_MANAGER={path} holds no modules/systemd.nix")
    return Path(path)


def home_units(nix, lib: Path, home_manager: Path, module: Path) -> dict[str, str]:
    expr = (
        f"import {HERE}/options/home-units.nix {{ lib = import {lib}; homeManager = {home_manager}; "
        f"mirror = {HERE}/options/home-26.05.nix; module = {module}; }}"
    )
    return json.loads(nix("--eval", "--strict", "--json", "-E", expr).stdout)


@SETTINGS
@given(
    # systemd's dump leaves a word bare that bash (reading the dump back) would take for a comment
    args=st.lists(WORD.filter(lambda w: not w.startswith("#")), min_size=1, max_size=4),
    values=st.lists(VALUE, min_size=1, max_size=3),
    secret=SECRET,
    absolute=st.booleans(),
)
def test_user_unit_carries_hostile_values_exactly(args, values, secret, absolute, tmp_path_factory, nix, nixpkgs_lib, home_manager, systemd_tools):
    tree = tmp_path_factory.mktemp("hm-app")
    program = shutil.which("true") if absolute else "true"
    env = {f"V{i}": v for i, v in enumerate(values)}
    render_text(spec_text([program, *args], env, "/run/secrets/pg"), tree)
    units = home_units(nix, nixpkgs_lib, home_manager, with_option(tree, "postgres.passwordFile", secret))
    text = units["hm-api"]
    assert f"ExecStart={STUB_STORE}coreutils/bin/env " in text or absolute
    text = text.replace(f"{STUB_STORE}coreutils/bin/env", shutil.which("env"))  # a real env(1) for verify
    assert f"ExecStartPre={STUB_STORE}hm-api-wait\n" in text  # it waits for Ollama to answer first
    text = text.replace(f"{STUB_STORE}hm-api-wait", shutil.which("true"))  # (the script: tests/unit/test_health.py)
    # the units it requires, as stand-ins, so that systemd loads the whole transaction
    deps = {n: "[Service]\nExecStart=/bin/true\n" for n in ("ollama", "podman-hm-postgres", "podman-hm-redis")}
    parsed = parsed_units({"hm-api": text, **deps}, {}, systemd_tools)["hm-api"]
    got = dict(line.split("=", 1) for line in parsed["Environment"])
    assert {k: got[k] for k in env} == env
    assert got["POSTGRES_PASSWORD_FILE"] == secret
    assert {k: got[k] for k in CONNECTION} == CONNECTION
    # the dump shows the words as stored; at exec time systemd turns each `$$` into `$`
    # (every `$` is doubled, so none expands a variable)
    assert command_line(parsed, 0) == [shutil.which("true")]  # ExecStartPre=, the wait
    words = [w.replace("$$", "$") for w in command_line(parsed, 1)]
    assert words == ([program] if absolute else [shutil.which("env"), program]) + args
