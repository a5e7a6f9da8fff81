"""Property tests for the container targets: a spec string that the validator accepts comes
back out of compose.yaml (YAML load + compose's `$` interpolation) and out of the Quadlet
units (systemd's unit-file syntax: continuation lines, `%` specifiers, quoting) intact, and
cannot add keys, services or lines.

The compose and quadlet targets are built on another branch; until they are in
stackgen.targets.TARGETS these tests skip and say so.

Two checks per example, against a render of the same spec with benign values:
- shape: the same keys, list lengths, sections and lines (nothing injected);
- content: each hostile value carries a marker; every read-back string that contains a
  marker contains the whole value (for a model path: its whole directory or file name).
"""

from __future__ import annotations

import re

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import yaml_str
from stackgen.errors import StackError
from stackgen.render import render_tree
from stackgen.spec.checks import CONTROL
from stackgen.spec.loader import parse
from stackgen.spec.validate import validate
from stackgen.targets import TARGETS

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

META = list("${}\"'\\`;|&<>*?~#!%=:@[]()/, -") + ["${X}", "$$", "%%", "%n", "%h", "yes", "null", "~", ": ", "- ", "&a", "*a", "!x", "\\n", '\\"']
PATH_PART = st.lists(st.sampled_from(META + list("abcXYZ019._")), min_size=1, max_size=8).map("".join)
TEXT = st.lists(st.one_of(st.sampled_from(META + ["\n", "\t", " "]), st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"))), max_size=20).map("".join)
URL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&()*+,;=:@%/"

MARK_PATH, MARK_MODEL, MARK_URL, MARK_DESC = MARKS = ("qzpath", "qzmodel", "qzurl", "QZDESC")


def spec(model_dir: str, model_file: str, model: str, hf: str, description: str) -> str:
    return "\n".join(
        [
            "version: 1",
            "name: roundtrip",
            f"description: {yaml_str(description)}",
            "systems: [x86_64-linux]",
            "mirrors:",
            f"  huggingface: {yaml_str(hf)}",
            "services:",
            "  ollama:",
            f"    models: [{yaml_str(model)}]",
            "  llama-cpp:",
            f"    model: {yaml_str(model_dir + '/' + model_file)}",
            "targets: [compose, quadlet]",
            "",
        ]
    )


def render(text: str, target: str) -> dict[str, str] | None:
    try:
        loaded = validate(parse(text, "stack.yaml"))
    except StackError:
        return None
    return {f.path: f.text for f in render_tree(loaded, target)}


def render_hostile(values: dict, target: str) -> dict[str, str]:
    assume(all(CONTROL.search(v) is None for v in values.values()))
    files = render(spec(**values), target)
    assume(files is not None)  # the validator refused it (e.g. a path part of '..')
    return files


BENIGN = spec("/srv/models", "benign.gguf", "benign:1", "https://benign.example.org/x", "benign")

hostile = st.fixed_dictionaries(
    {
        "model_dir": st.lists(PATH_PART, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts)),
        "model_file": PATH_PART.map(lambda s: f"{MARK_PATH}{s}.gguf"),
        "model": st.from_regex(r"[A-Za-z0-9._-]{0,12}(:[A-Za-z0-9][A-Za-z0-9._-]{0,8})?", fullmatch=True).map(lambda s: MARK_MODEL + s),
        "hf": st.text(alphabet=URL_CHARS, max_size=24).map(lambda s: f"https://{MARK_URL}.example.org/{s}"),
        "description": TEXT.map(lambda s: MARK_DESC + s),
    }
)


def fragments(values: dict) -> dict[str, list[str]]:
    """marker -> the strings one of which a read-back string holding the marker must contain."""
    # model_file may hold a '/' itself: the container sees the real directory and file name
    path = values["model_dir"] + "/" + values["model_file"]
    directory, _, name = path.rpartition("/")
    return {
        MARK_PATH: [path, directory, name],
        MARK_MODEL: [values["model"]],
        MARK_URL: [values["hf"]],
        MARK_DESC: [values["description"]],
    }


def check_content(strings: list[str], values: dict) -> None:
    for marker, allowed in fragments(values).items():
        for s in strings:
            if marker in s:
                assert any(a in s for a in allowed), f"{s!r} holds a mangled {allowed[0]!r}"
    name = (values["model_dir"] + "/" + values["model_file"]).rpartition("/")[2]
    assert any(name in s for s in strings), "the llama.cpp model is not passed to the container"


# --- compose ---------------------------------------------------------------------------


def compose_value(s: str) -> str:
    """What podman-compose/docker compose make of a string: `$$` is `$`; a lone `$` would
    interpolate a variable, which a value from the spec must never do."""
    assert not re.search(r"(?<!\$)(\$\$)*\$(?!\$)", s), f"{s!r} would be interpolated by compose"
    return s.replace("$$", "$")


def walk(node) -> list[str]:
    if isinstance(node, dict):
        return [x for k, v in node.items() for x in walk(k) + walk(v)]
    if isinstance(node, list):
        return [x for v in node for x in walk(v)]
    return [compose_value(node)] if isinstance(node, str) else []


def shape(node):
    if isinstance(node, dict):
        return {("<value>" if any(m in str(k) for m in (*MARKS, "benign")) else k): shape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [shape(v) for v in node]
    return type(node).__name__


@pytest.mark.skipif("compose" not in TARGETS, reason="the compose target is not in stackgen.targets.TARGETS on this branch")
@SETTINGS
@given(values=hostile)
def test_compose_values_load_back_intact(values):
    files = render_hostile(values, "compose")
    benign = yaml.safe_load(render(BENIGN, "compose")["compose.yaml"])
    loaded = yaml.safe_load(files["compose.yaml"])
    assert shape(loaded) == shape(benign), "a spec value changed the structure of compose.yaml"
    check_content(walk(loaded), values)


# --- Quadlet -----------------------------------------------------------------------------


def unit_lines(text: str) -> list[tuple[str, str, str]]:
    """(section, key, raw value) of a systemd unit file, continuation lines joined."""
    out, section, pending = [], "", ""
    for line in text.splitlines():
        if pending:
            line, pending = pending + line, ""
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.endswith("\\") and not stripped.endswith("\\\\"):
            pending = stripped[:-1] + " "
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            continue
        key, sep, value = stripped.partition("=")
        assert sep, f"not a key=value line: {stripped!r}"
        out.append((section, key.strip(), value.strip()))
    return out


C_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "s": " ", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def specifiers(value: str) -> str:
    """systemd's `%` specifiers: `%%` is a `%`; any other `%x` would expand."""
    assert not re.search(r"(?<!%)(%%)*%(?!%)", value), f"{value!r} holds a systemd specifier"
    return value.replace("%%", "%")


def words(value: str) -> list[str]:
    """systemd's word splitting (Exec=, Environment=): quotes and C escapes."""
    out, cur, quote, i, started = [], "", None, 0, False
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            cur += C_ESCAPES.get(value[i + 1], value[i + 1])
            i += 2
            started = True
            continue
        if quote:
            if ch == quote:
                quote = None
            else:
                cur += ch
        elif ch in "\"'":
            quote, started = ch, True
        elif ch.isspace():
            if started:
                out.append(cur)
            cur, started = "", False
        else:
            cur, started = cur + ch, True
        i += 1
    if started:
        out.append(cur)
    return out


def dollars(value: str) -> str:
    """Quadlet copies [Container] values into the generated ExecStart=, where systemd expands
    `$VAR`; `$$` is a `$`. A lone `$` from the spec would expand."""
    assert not re.search(r"(?<!\$)(\$\$)*\$(?!\$)", value), f"{value!r} would be expanded by systemd"
    return value.replace("$$", "$")


# The [Container] keys quadlet splits into words (quotes and C escapes), checked against
# podman 5.4's generator: a `'` in Volume= reaches `podman run -v` as it is, in
# EnvironmentFile= it is a quote.
SPLIT_KEYS = {"Exec", "Environment", "EnvironmentFile", "PodmanArgs"}


def quadlet_strings(files: dict[str, str]) -> list[str]:
    strings = []
    for text in files.values():
        for section, key, raw in unit_lines(text):
            value = specifiers(raw)
            if section == "Container":
                value = dollars(value)
            if key in SPLIT_KEYS:
                for word in words(value):
                    strings += [word, word.partition("=")[2]]
            else:
                strings.append(value)
    return strings


def quadlet_shape(files: dict[str, str]) -> list:
    return sorted((path, [(s, k) for s, k, _ in unit_lines(text)]) for path, text in files.items())


@pytest.mark.skipif("quadlet" not in TARGETS, reason="the quadlet target is not in stackgen.targets.TARGETS on this branch")
@SETTINGS
@given(values=hostile)
def test_quadlet_values_survive_the_unit_file_syntax(values):
    files = render_hostile(values, "quadlet")
    benign = render(BENIGN, "quadlet")
    assert quadlet_shape(files) == quadlet_shape(benign), "a spec value changed the sections or keys of a unit"
    check_content(quadlet_strings(files), values)


def test_the_helpers_catch_what_they_must():
    """The checks above can fail: a lone `$`, a `%` specifier, and a broken value are caught."""
    with pytest.raises(AssertionError):
        compose_value("https://x.org/$HOME")
    assert compose_value("a$$b") == "a$b"
    with pytest.raises(AssertionError):
        specifiers("/models/%h.gguf")
    assert specifiers("100%%") == "100%"
    with pytest.raises(AssertionError):
        dollars("https://x.org/$0")
    assert dollars("a$$b") == "a$b"
    assert words('--model "/m/a b.gguf" X=\'y z\'') == ["--model", "/m/a b.gguf", "X=y z"]
    [(section, key, value)] = unit_lines("[Container]\nExec=a \\\n  b\n# c\n")
    assert (section, key, words(value)) == ("Container", "Exec", ["a", "b"])
    values = {"model_dir": "/m", "model_file": "qzpathx.gguf", "model": "qzmodel1", "hf": "https://qzurl.example.org/a", "description": "QZDESC"}
    with pytest.raises(AssertionError):
        check_content(["https://qzurl.example.org/"], values)
