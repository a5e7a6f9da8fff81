"""`nix run .#services`: the rendered flake's apps/packages.<system>.services, evaluated by real
Nix with a stand-in nixpkgs (writeShellApplication returns its arguments, packages are
strings), then the wrapper's text run by real bash (after shellcheck, which
writeShellApplication runs when it builds) with a stand-in process-compose that records how it
was started: the dev shell's variables (hostile values intact), the tree, and `up -f
<tree>/process-compose.yaml` with the control socket in the state folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from conftest import render_text, require_tool

STUB = (Path(__file__).parent / "stub-pkgs.nix").resolve()

# The packages the wrapper names, as strings; the parts of nixpkgs' API it calls, as functions.
NIXPKGS = f"""
let
  base = import {STUB};
  pkg = name: {{ outPath = "/nix/store/fake-" + name; name = name; }};
  names = [ "process-compose" "bash" "coreutils" "gnused" "gnugrep" "curl" "redis" "qdrant" "open-webui"
            "ollama" "ollama-cuda" "ollama-cpu" "jq" "ripgrep" "git" ];
  pg = v: pkg "postgresql_${{v}}" // {{
    withPackages = f: pkg ("postgresql_${{v}}-with-" + builtins.concatStringsSep "+" (map (p: p.name) (f {{ pgvector = pkg "pgvector"; pg_cron = pkg "pg_cron"; timescaledb-apache = pkg "timescaledb-apache"; }})));
  }};
in
base // builtins.listToAttrs (map (n: {{ name = n; value = pkg n; }}) names) // {{
  writeShellApplication = args: args // {{ outPath = "/nix/store/fake-app-" + args.name; }};
  llama-cpp = pkg "llama-cpp" // {{ override = a: pkg "llama-cpp-cuda-${{if a.cudaSupport then "on" else "off"}}"; }};
  postgresql_15 = pg "15"; postgresql_17 = pg "17";
}}
"""


def evaluate(tree: Path, nix, tmp_path: Path) -> dict:
    stub = tmp_path / "nixpkgs"
    stub.mkdir(exist_ok=True)
    (stub / "default.nix").write_text("{ system ? null, config ? { } }: " + NIXPKGS)
    expr = f"""
      let
        flake = import {tree}/flake.nix;
        nixpkgs = {{ outPath = {stub}; lib = {{ genAttrs = names: f: builtins.listToAttrs (map (n: {{ name = n; value = f n; }}) names); }}; }};
        out = flake.outputs {{ self = out; inherit nixpkgs; }};
        app = out.packages.x86_64-linux.services;
      in {{
        program = out.apps.x86_64-linux.services.program;
        type = out.apps.x86_64-linux.services.type;
        inherit (app) name text;
        inputs = map (p: p.name or p.outPath) app.runtimeInputs;
      }}
    """
    # --read-write-mode: the tree (`${./..}`) is really copied into the store, as a build would
    return json.loads(nix("--eval", "--read-write-mode", "--strict", "--json", "-E", expr).stdout)


SPEC = """\
version: 1
name: svc
systems: [x86_64-linux]
mirrors: {pypi: "https://pypi.example.org/a%3Fb/simple"}
packages: [jq]
env: {GREETING: "it's $HOME `id` \\"q\\" ${X}"}
targets: [devshell, processes]
data_dir: /srv/it's state
services:
  postgres: {version: 15, databases: [app], extensions: [pgvector]}
  redis: {}
  llama-cpp: {model: /m/a.gguf}
"""


def test_the_flake_runs_services_with_the_dev_shells_environment(tmp_path, nix):
    shellcheck = require_tool("shellcheck", "writeShellApplication checks its text with shellcheck")
    tree = tmp_path / "tree"
    render_text(SPEC, tree)
    got = evaluate(tree, nix, tmp_path)
    assert got["type"] == "app" and got["program"] == "/nix/store/fake-app-services/bin/services"
    assert got["inputs"] == [
        "/nix/store/fake-python", "/nix/store/fake-uv", "process-compose", "bash", "coreutils", "gnused", "gnugrep", "curl",
        "llama-cpp-cuda-off", "postgresql_15-with-pgvector", "redis", "jq",
    ]  # fmt: skip

    # writeShellApplication's script: a bash shebang and strict mode, then the text
    script = tmp_path / "services"
    script.write_text("#!/usr/bin/env bash\nset -o errexit\nset -o nounset\nset -o pipefail\n" + got["text"])
    proc = subprocess.run([shellcheck, str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout

    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "record.json"
    (bindir / "process-compose").write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
    )
    (bindir / "process-compose").chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HOME": str(tmp_path), "STACKGEN_DATA_DIR": str(tmp_path / "state")}
    subprocess.run([shutil.which("bash"), str(script)], env=env, check=True, cwd=tmp_path)
    seen = json.loads(record.read_text())
    store_tree = seen["env"]["STACKGEN_TREE"]
    assert store_tree.startswith("/nix/store/") and Path(store_tree, "process-compose.yaml").read_text() == (tree / "process-compose.yaml").read_text()
    assert seen["argv"][:3] == ["up", "-f", f"{store_tree}/process-compose.yaml"]
    assert seen["argv"][-3:] == ["-U", "-u", str(tmp_path / "state" / "process-compose.sock")]
    assert seen["env"]["GREETING"] == "it's $HOME `id` \"q\" ${X}"
    assert seen["env"]["PIP_INDEX_URL"] == seen["env"]["UV_DEFAULT_INDEX"] == "https://pypi.example.org/a%3Fb/simple"
    assert seen["env"]["UV_PYTHON"] == "/nix/store/fake-python/bin/python3.12" and seen["env"]["UV_PYTHON_DOWNLOADS"] == "never"
    assert seen["env"]["LD_LIBRARY_PATH"].startswith("/nix/store/fake-gcc-lib/lib:")

    # The tree's services.sh falls back to the spec's data_dir (one word, the quote kept).
    services_sh = Path(store_tree, "nix/processes/services.sh").read_text()
    assert "  STACKGEN_DATA_DIR='/srv/it'\"'\"'s state'\n" in services_sh
