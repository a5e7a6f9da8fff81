"""Kubernetes' own OpenAPI (swagger 2.0) definitions -> JSON schemas in kubeconform's layout.

    python tests/kubeschemas.py SWAGGER_JSON OUT_DIR

`SWAGGER_JSON` is api/openapi-spec/swagger.json of the k8s.io/kubernetes module
(`go mod download -json k8s.io/kubernetes@v1.35.0` prints the folder). One file per kind and
API version, named as kubeconform looks them up: `<kind>[-<group>]-<version>.json` in lower
case, group = the first part of the API group (apps, batch, networking; none for core/v1).
Each file is standalone (the definitions it reaches are copied into it, `$ref`s point inside
the file, so recursive types stay finite) and strict: every object with properties refuses
properties it does not declare. Kubernetes' two scalar unions are spelled out: IntOrString
(an integer or a string) and Quantity (a string or a number: `nvidia.com/gpu: 1`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PREFIX = "#/definitions/"
UNIONS = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def convert(swagger: dict) -> dict[str, dict]:
    """{file name: schema} for every kind the swagger names."""
    definitions = {name: _strict(UNIONS.get(name, schema)) for name, schema in swagger["definitions"].items()}
    out: dict[str, dict] = {}
    for name, schema in swagger["definitions"].items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            group = gvk["group"].split(".")[0]
            file = "-".join(p for p in (gvk["kind"], group, gvk["version"]) if p).lower() + ".json"
            reached = _reached(name, definitions)
            doc = dict(definitions[name])
            doc["definitions"] = {n: definitions[n] for n in sorted(reached) if n != name}
            if name in reached:  # a kind that contains itself (none do today): keep it reachable
                doc["definitions"][name] = definitions[name]
            doc["$schema"] = "http://json-schema.org/draft-07/schema#"
            out[file] = doc
    return out


def _strict(schema):
    """`schema` with every object that lists properties closed to others; unions expanded."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key == "description":
            continue  # annotations for generators: no meaning to a validator
        if key == "$ref":
            out[key] = value
        elif key == "properties":
            out[key] = {name: _strict(s) for name, s in value.items()}
        else:
            out[key] = _strict(value)
    if "format" in out and out["format"] == "int-or-string":
        return dict(UNIONS["io.k8s.apimachinery.pkg.util.intstr.IntOrString"])
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _reached(name: str, definitions: dict[str, dict]) -> set[str]:
    seen: set[str] = set()
    todo = list(_refs(definitions[name]))
    while todo:
        ref = todo.pop()
        if ref not in seen:
            seen.add(ref)
            todo += _refs(definitions[ref])
    return seen


def _refs(schema) -> list[str]:
    if isinstance(schema, list):
        return [r for s in schema for r in _refs(s)]
    if not isinstance(schema, dict):
        return []
    found = [schema["$ref"].removeprefix(PREFIX)] if isinstance(schema.get("$ref"), str) else []
    return found + [r for k, v in schema.items() if k != "$ref" for r in _refs(v)]


def write(swagger_path: Path, out_dir: Path) -> int:
    schemas = convert(json.loads(swagger_path.read_text()))
    out_dir.mkdir(parents=True, exist_ok=True)
    for file, schema in sorted(schemas.items()):
        (out_dir / file).write_text(json.dumps(schema, sort_keys=True))
    return len(schemas)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"{write(Path(sys.argv[1]), Path(sys.argv[2]))} schemas in {sys.argv[2]}")
