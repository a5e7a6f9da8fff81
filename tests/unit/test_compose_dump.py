"""compose.yaml's body is built as a node tree for libyaml (issue 11, speed): it must be the
YAML that PyYAML's SafeRepresenter writes for the same data, byte for byte, and load back to
the interpolation-safe data."""

from __future__ import annotations

import yaml

from stackgen.targets import compose

AWKWARD = [
    "", " ", "yes", "no", "on", "off", "true", "False", "null", "~", "1", "0o17", "0x1f", "1e3", "1.0", ".inf", "-", "- a",
    "a: b", "a #b", "#x", "&a", "*a", "!t", "|", ">", "'q'", '"q"', "%x", "@x", "`x", "{a}", "[a]", "${X}", "$$", "$X",
    "x\ny", "x\n", "\tx", " lead", "trail ", "é ✓", "\u2028", "\x85", "\x00", "a" * 300, "2001:db8::1", "12:30", "2026-01-01",
]


def data() -> dict:
    return {
        "name": "fan",
        "services": {
            f"s{i}": {"image": s, "command": [s, "x"], "environment": {"K": s, "N": i, "B": i % 2 == 0, "Z": None}, "empty": {}, "none": []}
            for i, s in enumerate(AWKWARD)
        },
        "ports": [1, -2, 65535, True, False, None],
        7: "an int key",
        "${KEY}": "a key is written as it is",
    }


def test_the_node_tree_dumps_as_the_representer_would():
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # without libyaml, _dump is yaml.dump itself
    expected = yaml.dump(compose._interpolation_safe(data()), Dumper=dumper, sort_keys=False, allow_unicode=True, width=1 << 16)
    got = compose._dump(data())
    assert got == expected
    assert yaml.safe_load(got) == compose._interpolation_safe(data())


def test_an_unsupported_type_takes_yaml_dump():
    assert yaml.safe_load(compose._dump({"x": 1.5, "y": "$V"})) == {"x": 1.5, "y": "$$V"}
