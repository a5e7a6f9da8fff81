#!/usr/bin/env python3
"""Fuzz the spec loader and validator (and the renderer, for specs that pass) for a fixed time.

Not part of CI. Run it nightly or before a release:

    .venv/bin/python tools/fuzz_loader.py --seconds 300 [--seed N] [--nix]

Three generators take turns:
  structured  hypothesis builds spec-shaped YAML: the real keys, hostile scalars (YAML 1.1
              booleans, octal and base-60 numbers, dates, tags, anchors, merge keys,
              control characters, Nix/shell/YAML metacharacters) at random places;
  mutate      byte-level mutations of the shipped examples and of tests/specs/invalid/;
  bytes       random bytes, including BOMs and truncated UTF-8.

The oracle, for every input:
  - loading + validating either returns a Spec or raises StackError, never anything else;
  - the error text is printable (no control character from the input reaches a terminal),
    no line is longer than 400 characters, and at most 100 problems are shown;
  - a valid spec renders without an exception, and (with --nix) every .nix file parses;
  - no input takes longer than --slow seconds.

Each finding is printed with the input (repr, cut) and saved under --out (default
/tmp/stackgen-fuzz/) as a .yaml file to replay with `stackgen validate`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "generator"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from stackgen.errors import StackError  # noqa: E402
from stackgen.render import render_tree  # noqa: E402
from stackgen.spec.loader import parse, read_text  # noqa: E402
from stackgen.spec.validate import validate  # noqa: E402

# --- generators ----------------------------------------------------------------------------

KEYS = {
    "": ["version", "name", "description", "systems", "nixpkgs", "mirrors", "gpu", "python", "packages", "env", "services", "targets"],
    "mirrors": ["region", "nix", "pypi", "huggingface"],
    "gpu": ["vendor", "cuda", "capabilities", "open"],
    "python": ["version", "uv"],
    "services": ["ollama", "llama-cpp", "postgres", "redis", "qdrant", "open-webui"],
    "service": ["port", "host", "gpu", "image", "models", "model", "model_url", "model_sha256", "context", "gpu_layers",
                "version", "databases", "extensions", "password_file", "maxmemory", "maxmemory_policy", "appendonly", "settings", "grpc_port", "api_key_file", "secret_key_file", "password"],
}  # fmt: skip
SCALARS = [
    "1", "0", "-1", "65535", "65536", "0755", "0x1F", "1:30", "1_000", "3.10", "1e400", ".inf", ".nan", "~", "null", "",
    "yes", "no", "on", "off", "y", "n", "true", "False", "2024-01-01", "2024-13-45", "2001-12-14t21:59:43.10-05:00",
    "nvidia", "none", "china", "global", "12", "13", "8.9", "x86_64-linux", "nixos-26.05", "devshell", "compose",
    "https://cache.example.org", "https://u:p@x.org", "file:///etc/passwd", "http://[::1", "https://x.org:99999/",
    "/var/lib/models/a.gguf", "/a/../b", "relative/path", "${builtins.abort \"x\"}", "''${x}", "$(reboot)", "`id`",
    "a\\nb", "\"quoted\"", "'single'", "!!binary aGk=", "!!python/object/apply:os.system [id]", "!custom x",
    "&anchor value", "*anchor", "*undefined", "<<", "[a, b", "{a: b", "- item", "? complex", "|\n  block", ">\n  folded",
    "\"\\e[2J\"", "\"\\x9b\"", "\"\\u202e\"", "\"\\ud800\"", "\"\\L\"", "\"\\N\"", "\"\\0\"", "café", "中文", "🚀",
    "9" * 5000, "x" * 5000,
]  # fmt: skip
CHUNKS = ["\n", "\r\n", "\r", "\t", " ", ":", ": ", "- ", "#", "&a ", "*a", "<<: *a\n", "---\n", "...\n", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n",
          "[", "]", "{", "}", ",", "\"", "'", "\\", "|", ">", "!", "?", "@", "`", "\ufeff", "\x85", "\u2028", "\x00", "\x1b", "\x7f"]  # fmt: skip


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


@st.composite
def yaml_value(draw, depth: int = 0, section: str = "service"):
    kind = draw(st.integers(0, 9 if depth < 4 else 5))
    if kind <= 5:
        return draw(st.sampled_from(SCALARS)) if kind < 5 else draw(st.text(max_size=30)).replace("\n", " ")
    if kind <= 7:
        items = draw(st.lists(yaml_value(depth + 1, section), max_size=4))
        return "[" + ", ".join(i.replace("\n", " ") for i in items) + "]" if kind == 6 else "\n" + "\n".join(_indent("- " + i, 2) for i in items)
    keys = draw(st.lists(st.one_of(st.sampled_from(KEYS.get(section, KEYS["service"])), st.sampled_from(SCALARS[:30])), max_size=5))
    lines = []
    for key in keys:
        sub = draw(yaml_value(depth + 1, "service" if section == "services" else key))
        lines.append(f"{key}:{'' if sub.startswith(chr(10)) else ' '}{sub}")
    return "\n" + _indent("\n".join(lines), 2) if lines else "{}"


@st.composite
def spec_text(draw):
    lines = []
    for key in draw(st.lists(st.sampled_from(KEYS[""] + ["version", "name", "services"]), min_size=1, max_size=10)):
        value = draw(yaml_value(1, key))
        lines.append(f"{key}:{'' if value.startswith(chr(10)) else ' '}{value}")
    text = "\n".join(lines) + "\n"
    for _ in range(draw(st.integers(0, 3))):  # a few syntax splinters at random places
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(CHUNKS)) + text[at:]
    return text.encode("utf-8", errors="surrogatepass")


def seeds() -> list[bytes]:
    files = sorted((ROOT / "examples").glob("*.yaml")) + sorted((ROOT / "tests/specs").rglob("*.yaml"))
    return [f.read_bytes() for f in files]


def mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        at = rng.randint(0, len(data))
        if op == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[at:at] = rng.choice(CHUNKS).encode("utf-8", errors="surrogatepass")
        elif op == 2:
            data[at:at] = rng.choice(SCALARS).encode()
        elif op == 3 and data:
            end = min(len(data), at + rng.randint(1, 40))
            del data[at:end]
        elif op == 4 and data:
            start = rng.randint(0, len(data) - 1)
            data[at:at] = data[start : start + rng.randint(1, 200)] * rng.randint(1, 4)
        else:
            data[at:at] = os.urandom(rng.randint(1, 8))
    return bytes(data)


def random_bytes(rng: random.Random) -> bytes:
    head = rng.choice([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff", b"version: 1\nname: x\n"])
    return head + os.urandom(rng.randint(0, 300))


# --- oracle --------------------------------------------------------------------------------


class Fuzz:
    def __init__(self, out: Path, slow: float, nix: bool):
        self.out = out
        self.slow = slow
        self.nix = nix and shutil.which("nix-instantiate") is not None
        self.tried = 0
        self.valid = 0
        self.findings: dict[str, bytes] = {}
        self.by_generator: dict[str, int] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="stackgen-fuzz-"))

    def check(self, data: bytes, generator: str) -> None:
        self.tried += 1
        self.by_generator[generator] = self.by_generator.get(generator, 0) + 1
        spec_file = self.tmp / "spec.yaml"
        spec_file.write_bytes(data)
        start = time.monotonic()
        try:
            loaded = validate(parse(read_text(spec_file, "spec.yaml"), "spec.yaml"))
        except StackError as exc:
            self._check_message(exc, data)
        except Exception:  # noqa: BLE001 - any other exception is what we look for
            self.finding("crash in load/validate: " + traceback.format_exc(limit=3).strip().splitlines()[-1], data)
            return
        else:
            self.valid += 1
            try:
                files = render_tree(loaded)
            except Exception:  # noqa: BLE001
                self.finding("crash in render: " + traceback.format_exc(limit=3).strip().splitlines()[-1], data)
                return
            if self.nix:
                self._parse_nix(files, data)
        took = time.monotonic() - start
        if took > self.slow:
            self.finding(f"slow: {took:.1f} s", data)

    def _check_message(self, exc: StackError, data: bytes) -> None:
        text = exc.format()
        bad = sorted({ch for ch in text if not (ch.isprintable() or ch in "\n\t")})
        if bad:
            self.finding(f"unprintable characters in the error output: {bad!r}", data)
        if any(len(line) > 400 for line in text.splitlines()):
            self.finding("an error line longer than 400 characters", data)
        if text.count("error:") > 100:
            self.finding("more than 100 problems printed", data)

    def _parse_nix(self, files, data: bytes) -> None:
        for f in files:
            if f.path.endswith(".nix"):
                path = self.tmp / "out.nix"
                path.write_text(f.text)
                proc = subprocess.run(["nix-instantiate", "--parse", str(path)], capture_output=True, text=True)
                if proc.returncode != 0:
                    self.finding(f"{f.path} does not parse: {proc.stderr.strip().splitlines()[-1]}", data)

    def finding(self, what: str, data: bytes) -> None:
        key = what.split(" in ")[0] + "|" + what[-120:]
        if key in self.findings:
            return
        self.findings[key] = data
        self.out.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(data).hexdigest()[:12] + ".yaml"
        (self.out / name).write_bytes(data)
        print(f"FINDING {what}\n  input ({len(data)} bytes, saved as {self.out / name}): {data[:300]!r}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--slow", type=float, default=2.0, help="an input that takes longer is a finding")
    ap.add_argument("--nix", action="store_true", help="parse every rendered .nix file with nix-instantiate (slower)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "stackgen-fuzz")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    fuzz = Fuzz(args.out, args.slow, args.nix)
    corpus = seeds()
    deadline = time.monotonic() + args.seconds

    @settings(max_examples=200, deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck))
    @given(spec_text())
    def structured(data: bytes) -> None:
        if time.monotonic() < deadline:
            fuzz.check(data, "structured")

    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
        structured()
        end = min(deadline, time.monotonic() + 5)
        while time.monotonic() < end:
            fuzz.check(mutate(rng, rng.choice(corpus)), "mutate")
            if rng.random() < 0.1:
                fuzz.check(random_bytes(rng), "bytes")
    shutil.rmtree(fuzz.tmp, ignore_errors=True)
    print(
        f"fuzz: seed {seed}, {args.seconds:.0f} s, {fuzz.tried} inputs ({', '.join(f'{k} {v}' for k, v in sorted(fuzz.by_generator.items()))}), "
        f"{fuzz.valid} valid specs rendered, {len(fuzz.findings)} findings"
    )
    return 1 if fuzz.findings else 0


if __name__ == "__main__":
    sys.exit(main())
