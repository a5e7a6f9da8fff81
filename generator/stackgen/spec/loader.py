"""Read a stack.yaml into plain Python values plus the position of every key and value.

PyYAML's `compose()` gives each node a start mark; we build the data ourselves from the node
tree so that we can reject duplicate keys, bound alias expansion (YAML bombs) and nesting
depth, and remember where each value came from for error messages.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem, StackError, shown
from ..records import dataclass, field  # as dataclasses', without exec() or importing dataclasses
from ..safeio import MAX_SPEC_BYTES, read_spec_bytes

MAX_BYTES = MAX_SPEC_BYTES
MAX_NODES = 100_000  # bounds alias expansion ("billion laughs"): ~30 MB; real specs have < 10,000
MAX_DEPTH = 64
COMPOSE_FRAMES = 4 * MAX_DEPTH + 100  # the composer takes 2 frames a level; _Builder reports depth

Path_ = tuple  # a path into the document: ("services", "ollama", "port")


@dataclass
class Document:
    """The loaded spec: data plus positions, and the text to quote in errors."""

    file: str
    text: str
    data: Any
    value_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # the source text of each scalar, to tell `yes` from `true` and `3.10` from `"3.10"`
    scalars: dict[Path_, str] = field(default_factory=dict)
    # problems found while loading that do not stop validation (duplicate keys)
    problems: list[Problem] = field(default_factory=list)

    def problem(self, path: Path_, message: str, hint: str | None = None, *, at_key: bool = False) -> Problem:
        """A Problem located at the value (or the key) of `path`, or the nearest parent known."""
        marks = self.key_marks if at_key else self.value_marks
        probe = tuple(path)
        while probe and probe not in marks and probe not in self.value_marks:
            probe = probe[:-1]
        pos = marks.get(probe) or self.value_marks.get(probe)
        if pos is None:
            return Problem(message, file=self.file, hint=hint)
        line, col = pos
        return Problem(message, file=self.file, line=line, col=col, source_line=self.line_text(line), hint=hint)

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def line_text(self, line: int) -> str | None:
        if 1 <= line <= len(self.lines):
            return self.lines[line - 1]
        return None


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def read_text(path: Path, display: str, raw: bytes | None = None) -> str:
    """The spec's text; `raw`: its bytes, already read (a pipe can be read only once)."""
    if raw is None:
        raw = read_spec_bytes(path, display, MAX_BYTES)
    if len(raw) > MAX_BYTES:
        raise StackError(Problem(f"{display} is larger than {MAX_BYTES // 1024} KiB; a stack spec is a small text file", file=display))
    encoding = _wide_encoding(raw)
    if encoding:
        raise StackError(Problem(f"the file is encoded as {encoding}, not UTF-8", file=display, hint="save the spec as UTF-8"))
    if b"\x00" in raw:
        raise StackError(Problem("the file contains NUL bytes: this is binary data, not a YAML spec", file=display))
    # A UTF-8 byte-order mark is dropped, as the "utf-8-sig" codec would (without importing it);
    # an error's line and column are counted in the text after it, as an editor shows them.
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        col = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackError(
            Problem(
                f"the file is not valid UTF-8 (byte 0x{body[exc.start]:02x})",
                file=display,
                line=line,
                col=col,
                hint="save the spec as UTF-8",
            )
        ) from None
    return text


def _wide_encoding(raw: bytes) -> str | None:
    """UTF-16 or UTF-32, told by the byte-order mark or by the NULs of ASCII text in them."""
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            return name
    head = raw[:64]
    if len(head) >= 8 and (head[1::2].count(0) == len(head[1::2]) or head[0::2].count(0) == len(head[0::2])):
        return "UTF-16"
    return None


def load(path: Path, display: str | None = None, raw: bytes | None = None) -> Document:
    display = display if display is not None else str(path)
    return parse(read_text(path, display, raw), display)


def parse(text: str, display: str) -> Document:
    doc = Document(file=display, text=text, data=None)
    loader, root = _compose(text, doc)
    try:
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == f"{_CORE}null" and root.value == ""):
            raise StackError(Problem("the spec is empty", file=display, hint="'stackgen init' writes a commented starter spec"))
        try:
            doc.data = _Builder(loader, doc).build(root, (), 0)
        except RecursionError:  # MAX_DEPTH stops it first; this is the belt to those braces
            raise StackError(Problem(f"the document is nested too deeply (more than {MAX_DEPTH} levels)", file=display)) from None
    finally:
        loader.dispose()
    return doc


# libyaml's parser, where PyYAML has it: the same node tree (tags, values, positions) as the
# pure-Python one, ten times faster on a large spec. Its error messages are its own, so a
# document it rejects is parsed again by the pure-Python parser, whose message the user gets;
# so is one with characters the pure-Python reader refuses.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str, doc: Document) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    # libyaml accepts a tab after "key:", the pure-Python parser does not: tabs take the slow path
    if _FAST_LOADER is not None and "\t" not in text and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        fast = _FAST_LOADER(text)
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow anywhere
        raise StackError(_reader_problem(exc, doc)) from None
    try:
        with _recursion_limit(COMPOSE_FRAMES):
            return loader, loader.get_single_node()
    except RecursionError:
        problem = Problem(f"the document is nested too deeply (more than {MAX_DEPTH} levels)", file=doc.file)
    except yaml.MarkedYAMLError as exc:
        problem = _yaml_problem(exc, doc)
    except yaml.YAMLError as exc:
        problem = Problem(f"invalid YAML: {exc}", file=doc.file)
    loader.dispose()
    raise StackError(problem)


@contextmanager
def _recursion_limit(frames: int):
    """Let the YAML composer recurse only `frames` deeper than here. PyYAML's scanner slows
    down with the square of the flow nesting, so `[[[[...` fails in a blink, not in seconds."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(min(old, depth + frames))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _reader_problem(exc: yaml.reader.ReaderError, doc: Document) -> Problem:
    # count lines the way Document.lines (str.splitlines) does: \r, \x85 and \u2028 break lines too
    lines = doc.text[: exc.position].splitlines(keepends=True) or [""]
    if lines[-1] != lines[-1].rstrip("\r\n\x85\u2028\u2029"):
        line, col = len(lines) + 1, 1
    else:
        line, col = len(lines), len(lines[-1]) + 1
    return Problem(
        f"the file contains the character {chr(exc.character)!r}, which YAML does not allow",
        file=doc.file,
        line=line,
        col=col,
        source_line=doc.line_text(line),
        hint="remove it; to put a control character in a value, write it as an escape inside double quotes",
    )


def _yaml_problem(exc: yaml.MarkedYAMLError, doc: Document) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        message = f"invalid YAML: {exc.problem} ({exc.context})"
    hint = None
    line_text = doc.line_text(mark.line + 1) if mark else None
    if line_text is not None and "\t" in line_text[: mark.column + 1]:
        indent = line_text[: len(line_text) - len(line_text.lstrip(" \t"))]
        if "\t" in indent:
            hint = "YAML does not allow tabs for indentation; use spaces"
        else:
            hint = "replace the tab with a space (YAML does not allow a tab here)"
    if mark is None:
        return Problem(message, file=doc.file, hint=hint)
    return Problem(message, file=doc.file, line=mark.line + 1, col=mark.column + 1, source_line=line_text, hint=hint)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: Document):
        self.loader = loader
        self.doc = doc
        self.nodes = 0
        self.open_nodes: set[int] = set()  # ids of the collections being built (alias cycles)

    def build(self, node: yaml.Node, path: Path_, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise StackError(
                Problem(
                    f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)",
                    file=self.doc.file,
                    hint="a stack spec has no need for deeply repeated YAML aliases",
                )
            )
        if depth > MAX_DEPTH:
            raise StackError(self.doc.problem(path, f"the document is nested too deeply (more than {MAX_DEPTH} levels)"))
        self._check_tag(node)
        self.doc.value_marks.setdefault(path, _mark(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            if id(node) in self.open_nodes:
                raise StackError(self.doc.problem(path, "a recursive alias: this value contains itself"))
            self.open_nodes.add(id(node))
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path, depth)
                return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
            finally:
                self.open_nodes.discard(id(node))
        # libyaml reports a plain scalar's style as "", the pure-Python parser as None
        self.doc.scalars.setdefault(path, f"{node.style}{node.value}{node.style}" if node.style else node.value)
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise StackError(self._at(node, f"invalid value: {exc.problem}")) from None
        except (ValueError, OverflowError) as exc:  # a timestamp that is not a date; a 5,000-digit number
            message = f"invalid value: {exc}"
            if node.tag == f"{_CORE}int":
                message = f"invalid value: the number has {len(node.value)} characters; no value in a spec is that large"
            hint = None
            if node.tag == f"{_CORE}timestamp":
                hint = f'YAML reads {node.value} as a date; write "{node.value}" to keep the text'
            raise StackError(self._at(node, message, hint)) from None

    def _at(self, node: yaml.Node, message: str, hint: str | None = None) -> Problem:
        line, col = _mark(node)
        return Problem(message, file=self.doc.file, line=line, col=col, source_line=self.doc.line_text(line), hint=hint)

    def _check_tag(self, node: yaml.Node) -> None:
        """Plain YAML only: an explicit tag (!!python/object, !!binary, !!set, !custom) is refused."""
        allowed = _MAP_TAGS if isinstance(node, yaml.MappingNode) else _SEQ_TAGS if isinstance(node, yaml.SequenceNode) else _SCALAR_TAGS
        if node.tag not in allowed:
            tag = "!!" + node.tag[len(_CORE) :] if node.tag.startswith(_CORE) else node.tag
            raise StackError(
                self._at(node, f"the YAML tag {shown(tag)} is not allowed in a stack spec", "a spec holds plain strings, numbers, booleans, lists and mappings")
            )

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict:
        """A mapping, with `<<` merge keys: keys written here win over merged ones, and among
        merged mappings the earlier wins (YAML's merge-key rules). Merged mappings are built
        node by node like everything else, so they count towards MAX_NODES."""
        out: dict = {}
        merges: list[yaml.Node] = []
        problems: list[Problem] = []
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(self._at(key_node, "a key must be a plain string"))
                continue
            self._check_tag(key_node)
            # the text the user wrote, also for `yes:` or `1:` keys, so errors quote it
            key = "<<" if key_node.tag == f"{_CORE}merge" else key_node.value
            if key in seen:
                problems.append(
                    self._at(key_node, f"duplicate key '{shown(key)}' (first defined on line {seen[key]})", "remove one of the two")
                )
                continue
            seen[key] = _mark(key_node)[0]
            if key_node.tag == f"{_CORE}merge":
                merges.extend(value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node])
                continue
            self.doc.key_marks.setdefault(path + (key,), _mark(key_node))
            out[key] = self.build(value_node, path + (key,), depth + 1)
        for source in merges:
            if not isinstance(source, yaml.MappingNode):
                problems.append(self._at(source, "a '<<' merge key takes a mapping or a list of mappings (usually an *alias)"))
                continue
            if id(source) in self.open_nodes:
                problems.append(self._at(source, "a mapping merges itself (a '<<' alias to a mapping that contains it)"))
                continue
            for key, value in self.build(source, path, depth).items():
                out.setdefault(key, value)
        self.doc.problems.extend(problems)
        return out


_CORE = "tag:yaml.org,2002:"
_MAP_TAGS = {f"{_CORE}map"}
_SEQ_TAGS = {f"{_CORE}seq"}
_SCALAR_TAGS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "merge")}
