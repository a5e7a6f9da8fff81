"""Read a stack.yaml into plain Python values plus the position of every key and value.

PyYAML's `compose()` gives each node a start mark; we build the data ourselves from the node
tree so that we can reject duplicate keys, bound alias expansion (YAML bombs) and nesting
depth, and remember where each value came from for error messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import Problem, StackError

MAX_BYTES = 1024 * 1024  # a spec is a few KiB; a 1,000-service spec is ~100 KiB
MAX_NODES = 200_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 64

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
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

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

    def line_text(self, line: int) -> str | None:
        if self._lines is None:  # split once: a spec with many errors quotes many lines
            self._lines = self.text.splitlines()
        lines = self._lines
        if 1 <= line <= len(lines):
            return lines[line - 1]
        return None


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def read_text(path: Path, display: str) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise StackError(Problem(f"no such spec file: {display}", hint="create one with 'stackgen init'")) from None
    except IsADirectoryError:
        raise StackError(Problem(f"{display} is a directory, not a spec file")) from None
    except OSError as exc:
        raise StackError(Problem(f"cannot read {display}: {exc.strerror or exc}")) from None
    if len(raw) > MAX_BYTES:
        raise StackError(Problem(f"{display} is larger than {MAX_BYTES // 1024} KiB; a stack spec is a small text file", file=display))
    if b"\x00" in raw:
        raise StackError(Problem("the file contains NUL bytes: this is binary data, not a YAML spec", file=display))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackError(
            Problem(
                f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                file=display,
                line=line,
                col=col,
                hint="save the spec as UTF-8",
            )
        ) from None
    return text


def load(path: Path, display: str | None = None) -> Document:
    display = display if display is not None else str(path)
    return parse(read_text(path, display), display)


def parse(text: str, display: str) -> Document:
    doc = Document(file=display, text=text, data=None)
    loader, root = _compose(text, doc)
    try:
        if root is None:
            raise StackError(Problem("the spec is empty", file=display, hint="start from 'stackgen init' or examples/minimal.yaml"))
        builder = _Builder(loader, doc)
        doc.data = builder.build(root, (), 0)
    finally:
        loader.dispose()
    return doc


# libyaml's parser, where PyYAML has it: the same node tree (tags, values, positions) as the
# pure-Python one, ten times faster on a large spec. Its error messages are its own, so a
# document it rejects is parsed again by the pure-Python parser, whose message the user gets;
# so is one with characters the pure-Python reader refuses.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str, doc: Document) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    if _FAST_LOADER is not None and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        fast = _FAST_LOADER(text)
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()
    loader = yaml.SafeLoader(text)
    try:
        return loader, loader.get_single_node()
    except RecursionError:
        problem = Problem(f"the document is nested too deeply (more than {MAX_DEPTH} levels)", file=doc.file)
    except yaml.MarkedYAMLError as exc:
        problem = _yaml_problem(exc, doc)
    except yaml.YAMLError as exc:
        problem = Problem(f"invalid YAML: {exc}", file=doc.file)
    loader.dispose()
    raise StackError(problem)


def _yaml_problem(exc: yaml.MarkedYAMLError, doc: Document) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and exc.problem:
        message = f"invalid YAML: {exc.problem} ({exc.context})"
    hint = None
    line_text = doc.line_text(mark.line + 1) if mark else None
    if line_text is not None and "\t" in line_text[: mark.column + 1]:
        hint = "YAML does not allow tabs for indentation; use spaces"
    if mark is None:
        return Problem(message, file=doc.file, hint=hint)
    return Problem(message, file=doc.file, line=mark.line + 1, col=mark.column + 1, source_line=line_text, hint=hint)


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, doc: Document):
        self.loader = loader
        self.doc = doc
        self.nodes = 0

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
        self.doc.value_marks.setdefault(path, _mark(node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, path + (i,), depth + 1) for i, item in enumerate(node.value)]
        self.doc.scalars[path] = f"{node.style}{node.value}{node.style}" if node.style else node.value  # libyaml: plain is ""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            line, col = _mark(node)
            raise StackError(
                Problem(f"invalid value: {exc.problem}", file=self.doc.file, line=line, col=col, source_line=self.doc.line_text(line))
            ) from None
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp that is not a date
            line, col = _mark(node)
            raise StackError(
                Problem(f"invalid value: {exc}", file=self.doc.file, line=line, col=col, source_line=self.doc.line_text(line))
            ) from None

    def _mapping(self, node: yaml.MappingNode, path: Path_, depth: int) -> dict:
        out: dict = {}
        problems: list[Problem] = []
        # `<<` merge keys are flattened by PyYAML's flatten_mapping; reuse it.
        self.loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                line, col = _mark(key_node)
                problems.append(
                    Problem("a key must be a plain string", file=self.doc.file, line=line, col=col, source_line=self.doc.line_text(line))
                )
                continue
            key = self.loader.construct_object(key_node)
            if not isinstance(key, str):
                # `yes:` / `1:` as keys: keep the text the user wrote so errors quote it.
                key = key_node.value
            if key in out:
                line, col = _mark(key_node)
                first = self.doc.key_marks.get(path + (key,), (None, None))[0]
                problems.append(
                    Problem(
                        f"duplicate key '{key}'" + (f" (first defined on line {first})" if first else ""),
                        file=self.doc.file,
                        line=line,
                        col=col,
                        source_line=self.doc.line_text(line),
                        hint="remove one of the two",
                    )
                )
                continue
            self.doc.key_marks[path + (key,)] = _mark(key_node)
            out[key] = self.build(value_node, path + (key,), depth + 1)
        self.doc.problems.extend(problems)
        return out
