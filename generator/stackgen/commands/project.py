"""What `stackgen init` learns from an existing Python project in the spec's folder.

It reads `pyproject.toml` (PEP 621 `[project]`, Poetry's `[tool.poetry]`, PEP 735
`[dependency-groups]`, uv's `dev-dependencies`), `.python-version` (written by uv and pyenv) and
`requirements*.txt`. Nothing here executes project code; each file is read at most
`MAX_BYTES`, and a file that cannot be parsed is reported, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import shown
from ..spec.model import PYTHON_VERSIONS

MAX_BYTES = 1 << 20
DEFAULT_PYTHON = "3.12"

# Distributions whose presence means "this project wants a GPU" (PEP 503-normalized names).
GPU_PACKAGES = frozenset({
    "torch", "torchvision", "torchaudio", "transformers", "accelerate", "vllm", "xformers",
    "bitsandbytes", "flash-attn", "sentence-transformers", "diffusers", "peft", "trl",
    "deepspeed", "llama-cpp-python", "onnxruntime-gpu", "tensorflow", "jax", "cupy",
    "triton", "unsloth", "auto-gptq", "exllamav2",
})

_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")
_CLAUSE = re.compile(r"\s*(~=|===|==|!=|<=|>=|<|>|\^|~)?\s*([0-9]{1,9}(?:\.[0-9]{1,9}){0,5})(\.\*)?\s*")


@dataclass
class Project:
    """What was found; every field may stay empty."""

    name: str | None = None
    name_from: str | None = None
    description: str | None = None
    requires_python: str | None = None  # the text, as written
    requires_from: str | None = None
    pinned_python: str | None = None  # from .python-version
    gpu_packages: dict[str, str] = field(default_factory=dict)  # package -> the file that lists it
    warnings: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return bool(self.name or self.requires_python or self.pinned_python or self.gpu_packages)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def scan(folder: Path) -> Project:
    project = Project()
    pyproject = _read(folder / "pyproject.toml", project)
    if pyproject is not None:
        _from_pyproject(pyproject, project)
    pinned = _read(folder / ".python-version", project)
    if pinned is not None:
        first = next((ln.strip() for ln in pinned.splitlines() if ln.strip() and not ln.startswith("#")), "")
        match = re.fullmatch(r"(?:cpython-|python)?(3\.[0-9]+)(?:\.[0-9]+)?", first)
        if match:
            project.pinned_python = match.group(1)
    for req in sorted(folder.glob("requirements*.txt")):
        text = _read(req, project)
        if text is not None:
            _mark(project, _requirement_lines(text), req.name)
    return project


def choose_python(project: Project) -> tuple[str, str | None]:
    """The python.version to write and, when the project decided it, a comment saying why."""
    if project.pinned_python in PYTHON_VERSIONS:
        return project.pinned_python, "from .python-version"
    if project.requires_python is None:
        return DEFAULT_PYTHON, None
    allowed = allowed_versions(project.requires_python)
    source = f"{project.requires_from}: requires-python '{shown(project.requires_python, 60)}'"
    if allowed is None:
        return DEFAULT_PYTHON, f"{source} could not be read; check the version"
    if not allowed:
        return DEFAULT_PYTHON, f"{source} allows none of {', '.join(PYTHON_VERSIONS)}; nixpkgs has only these"
    if DEFAULT_PYTHON in allowed:
        return DEFAULT_PYTHON, source
    below = [v for v in allowed if _key(v) < _key(DEFAULT_PYTHON)]
    return (max(below, key=_key) if below else min(allowed, key=_key)), source


def allowed_versions(spec: str) -> list[str] | None:
    """Which supported python minor versions a PEP 440 / Poetry constraint admits (None: unreadable).

    A minor version X.Y is admitted when some X.Y.z is: enough to pick an interpreter.
    """
    alternatives = [part for part in spec.split("||")]
    out: set[str] = set()
    for alternative in alternatives:
        clauses = [c for c in re.split(r"[,\s]+(?=[~=!<>^0-9])|,", alternative) if c.strip()]
        parsed = []
        for clause in clauses:
            match = _CLAUSE.fullmatch(clause)
            if not match:
                return None
            parsed.append((match.group(1) or "==", tuple(int(p) for p in match.group(2).split(".")), bool(match.group(3))))
        for version in PYTHON_VERSIONS:
            if all(_admits(op, ver, star, _key(version)) for op, ver, star in parsed):
                out.add(version)
    return sorted(out, key=_key)


def _admits(op: str, ver: tuple[int, ...], star: bool, minor: tuple[int, int]) -> bool:
    """Whether some release minor.z satisfies one clause (minor.z ranges over [minor.0, minor.999])."""
    lo, hi = minor + (0,), minor + (999,)
    v = (ver + (0, 0))[:3]
    if star:  # ==3.11.* / !=3.11.*: a prefix match
        prefix = ver[:2]
        matches = minor[: len(prefix)] == prefix
        return matches if op in ("==", "===") else not (matches and len(prefix) >= 2)
    if op in ("==", "==="):
        return v[:2] == minor
    if op == "!=":  # excludes one release; the minor's other releases remain
        return True
    if op == ">=":
        return hi >= v
    if op == ">":
        return hi > v
    if op == "<=":
        return lo <= v
    if op == "<":
        return lo < v
    # ~=3.11 means >=3.11,<4; ~=3.11.2 means >=3.11.2,<3.12; Poetry's ~3.11 means >=3.11,<3.12
    # and its ^3.11 means >=3.11,<4.
    if op == "~=":
        kept = ver[:-1] if len(ver) > 1 else ver
    elif op == "~":
        kept = ver[:2] if len(ver) > 1 else ver[:1]
    else:  # "^"
        kept = ver[:1]
    upper = (kept[:-1] + (kept[-1] + 1,) + (0, 0))[:3]
    return hi >= v and lo < upper


def _key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def _read(path: Path, project: Project) -> str | None:
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        project.warnings.append(f"could not read {path.name}: {exc.strerror or exc}")
        return None
    if len(data) > MAX_BYTES:
        project.warnings.append(f"{path.name} is larger than {MAX_BYTES // 1024} KiB; not read")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        project.warnings.append(f"{path.name} is not UTF-8; not read")
        return None


def _from_pyproject(text: str, project: Project) -> None:
    import tomlkit  # lazy: only init reads TOML
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text).unwrap()
    except (TOMLKitError, ValueError) as exc:
        project.warnings.append(f"pyproject.toml is not valid TOML ({_one_line(exc)}); not read")
        return
    pep621 = _table(doc.get("project"))
    tool = _table(doc.get("tool"))
    poetry = _table(tool.get("poetry"))
    name = pep621.get("name") or poetry.get("name")
    if isinstance(name, str) and name.strip():
        project.name, project.name_from = name.strip(), "pyproject.toml"
    description = pep621.get("description") or poetry.get("description")
    if isinstance(description, str) and description.strip():
        project.description = " ".join(description.split())[:200]
    requires = pep621.get("requires-python")
    poetry_deps = _table(poetry.get("dependencies"))
    if not isinstance(requires, str):
        requires = poetry_deps.get("python")
    if isinstance(requires, str) and requires.strip():
        project.requires_python, project.requires_from = requires.strip(), "pyproject.toml"
    lists = [pep621.get("dependencies")]
    lists += list(_table(pep621.get("optional-dependencies")).values())
    lists += list(_table(doc.get("dependency-groups")).values())
    lists.append(_table(tool.get("uv")).get("dev-dependencies"))
    for items in lists:
        if isinstance(items, list):
            _mark(project, [i for i in items if isinstance(i, str)], "pyproject.toml")
    poetry_tables = [poetry_deps] + [_table(_table(g).get("dependencies")) for g in _table(poetry.get("group")).values()]
    for table in poetry_tables:
        _mark(project, [k for k in table if k != "python"], "pyproject.toml")


def _table(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _requirement_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):  # options (-r, -e, --index-url) are not names
            out.append(line)
    return out


def _mark(project: Project, requirements: list[str], source: str) -> None:
    for requirement in requirements:
        match = _NAME.match(requirement)
        if match and normalize(match.group(1)) in GPU_PACKAGES:
            project.gpu_packages.setdefault(normalize(match.group(1)), source)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]
