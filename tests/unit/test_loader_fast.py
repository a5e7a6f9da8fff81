"""libyaml's parser (when PyYAML has it) must give exactly what the pure-Python parser gives."""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import EXAMPLES, SPECS
from stackgen.errors import StackError
from stackgen.spec import loader

TEXTS = {
    "unicode": 'version: 1\nname: u\ndescription: "中文 — émoji 🚀"\nenv: {Ü: "ñ", B: \'x\'}\n',
    "crlf": "version: 1\r\nname: c\r\npackages:\r\n  - git\r\n  - jq\r\n",
    "styles": "a: plain\nb: 'single'\nc: \"double\"\nd: |\n  literal\ne: >\n  folded\nf: yes\ng: 3.10\nh: ~\n",
    "anchors": "base: &b {port: 1, host: x}\nsvc:\n  <<: *b\n  port: 2\nlist: [*b, *b]\n",
    "duplicates": "a: 1\nb: 2\na: 3\n",
    "keys": "1: x\nyes: y\n? [a]\n: z\n",
}


def both(text: str):
    """(fast, pure) results of parse(): the Document's parts, or the error text."""
    out = []
    for fast in (loader._FAST_LOADER, None):
        saved = loader._FAST_LOADER
        loader._FAST_LOADER = fast
        try:
            doc = loader.parse(text, "s.yaml")
            out.append((doc.data, doc.value_marks, doc.key_marks, doc.scalars, [p.format() for p in doc.problems]))
        except StackError as exc:
            out.append(exc.format())
        finally:
            loader._FAST_LOADER = saved
    return out


def cases():
    files = [*EXAMPLES.glob("*.yaml"), *(SPECS / "valid").glob("*.yaml"), *(SPECS / "invalid").glob("*.yaml")]
    texts = {p.name: p.read_bytes().decode("utf-8", errors="replace") for p in files}
    return {**texts, **TEXTS}


@pytest.fixture(autouse=True)
def _need_libyaml():
    if loader._FAST_LOADER is None:
        message = "PyYAML was built without libyaml: only the pure-Python parser is used"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.parametrize("name", sorted(cases()))
def test_same_document_and_same_errors(name):
    fast, pure = both(cases()[name])
    assert fast == pure


def test_a_large_spec_is_read_by_libyaml(monkeypatch):
    text = "version: 1\nname: big\npackages:\n" + "".join(f"  - p{i}\n" for i in range(2000))
    used = []
    real = loader._FAST_LOADER

    class Spy(real):
        def __init__(self, stream):
            used.append(True)
            super().__init__(stream)

    monkeypatch.setattr(loader, "_FAST_LOADER", Spy)
    assert loader.parse(text, "s.yaml").data["packages"][-1] == "p1999"
    assert used == [True]
    assert isinstance(loader._FAST_LOADER, type) and issubclass(real, yaml.CSafeLoader)
