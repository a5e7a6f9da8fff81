"""`stackgen init`: write a commented starter stack.yaml (never over an existing one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..errors import Problem, StackError
from ..errors import printable
from . import yaml_block, yaml_scalar

DEFAULT_MODEL = "llama3.2:3b"


@click.command()
@click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--detect", "use_detect", is_flag=True, help="Fill the gpu: block (and the model) from this host's GPUs.")
@click.option("--region", type=click.Choice(["global", "china"]), default="global", show_default=True, help="Which package mirrors the stack uses.")
def init(spec: Path, use_detect: bool, region: str) -> None:
    """Write a commented starter SPEC (default ./stack.yaml).

    In an existing Python project it reads pyproject.toml, .python-version and
    requirements*.txt: the project's name, a python.version its requires-python admits, and,
    when it depends on torch, transformers or the like, the GPU that `detect` finds.
    """
    if spec.exists():
        raise StackError(Problem(f"{spec} already exists; init never overwrites a spec", hint="edit it, or remove it first"))
    from .project import scan

    project = scan(spec.resolve().parent)
    for warning in project.warnings:
        click.echo(f"warning: {printable(warning)}", err=True)
    detection = None
    if use_detect or project.gpu_packages:
        from ..hardware import detect

        detection = detect()
    text = starter(_name_for(spec, project.name), region, detection, project)
    _check(text, spec)
    try:
        with open(spec, "x", encoding="utf-8") as fh:  # "x": never replace a file that appeared meanwhile
            fh.write(text)
    except FileExistsError:
        raise StackError(Problem(f"{spec} already exists; init never overwrites a spec")) from None
    gpu = "no NVIDIA GPU: gpu.vendor none" if detection is not None and not detection.found else ""
    if detection is not None and detection.found:
        block = detection.gpu_block()
        gpu = f"gpu: nvidia, cuda {block['cuda']}, capabilities {', '.join(block['capabilities'])}"
    click.echo(f"wrote {spec} (region {region}{'; ' + gpu if gpu else ''})")
    for line in _learned(project):
        click.echo(f"  {printable(line)}")
    click.echo(f"next: edit it, then 'stackgen validate {spec}' and 'stackgen render {spec}'")


def _learned(project) -> list[str]:
    from .project import choose_python

    lines = []
    if project.name:
        lines.append(f"name from {project.name_from}: {project.name}")
    version, why = choose_python(project)
    if why:
        lines.append(f"python {version} ({why})")
    if project.gpu_packages:
        names = ", ".join(sorted(project.gpu_packages))
        lines.append(f"GPU packages in the project ({names}): ran detect")
    return lines


def _name_for(spec: Path, wanted: str | None = None) -> str:
    """A valid stack name from the project's name, else from the spec's folder."""
    for source in (wanted, spec.resolve().parent.name):
        if not source:
            continue
        name = re.sub(r"[^a-z0-9-]+", "-", source.lower()).strip("-")
        name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
        if name:
            return name
    return "my-stack"


def _comment(text: str) -> str:
    """Project text in a YAML comment: one printable line."""
    return " ".join(printable(text).split())[:200]


def _check(text: str, spec: Path) -> None:
    """The starter must be a valid spec; a failure here is a stackgen bug, reported as one."""
    from ..spec.loader import parse
    from ..spec.validate import validate

    validate(parse(text, str(spec)))


def starter(name: str, region: str, detection=None, project=None) -> str:
    from .project import Project, choose_python

    project = project or Project()
    gpu = "# gpu:\n#   vendor: nvidia          # none (default) | nvidia; `stackgen detect` prints this block\n#   cuda: \"12\"\n"
    model = DEFAULT_MODEL
    wants = ", ".join(sorted(project.gpu_packages))
    if detection is not None and detection.found:
        why = f"The project uses {wants}; from" if wants else "From"
        gpu = f"# {why} `stackgen detect` on this host:\n" + yaml_block("gpu", detection.gpu_block())
        fits = [m["ollama"] for m in detection.models()]
        model = fits[0] if fits else DEFAULT_MODEL
    elif detection is not None:
        uses = f"The project uses {wants}, but `stackgen detect`" if wants else "`stackgen detect`"
        gpu = f"# {uses} found no NVIDIA GPU here, so the stack runs on the CPU\n# ({detection.reason}).\n" + gpu
    version, why = choose_python(project)
    python_comment = f"# {_comment(why)}" if why else "# 3.11 .. 3.14, from nixpkgs; uv manages the packages"
    name_comment = f"  # from {project.name_from}" if project.name else ""
    description = json.dumps(printable(project.description or "AI development stack"), ensure_ascii=False)
    mirrors = "mirrors:\n  region: china            # Tsinghua/USTC/SJTU/NJU Nix mirrors, Tsinghua PyPI, hf-mirror.com\n"
    if region == "global":
        mirrors = "mirrors:\n  region: global           # global (default) | china; `stackgen mirrors test` measures both\n"
    return f"""\
# stack.yaml: one file for the whole AI dev stack. `stackgen render` turns it into
# flake.nix (nix develop), NixOS/home-manager modules, compose.yaml, Quadlet units and
# env/mirrors.sh. Every key is described in the stackgen README.
version: 1
name: {yaml_scalar(name)}{name_comment}
description: {description}
{mirrors}\
{gpu}\
python:
  version: "{version}"            {python_comment}
  uv: true
packages: [git, curl, jq]    # nixpkgs attribute names
services:                    # each binds 127.0.0.1 unless you set host:
  ollama:
    port: 11434
    models: [{json.dumps(model)}]   # pulled by `stackgen models pull`
  # llama-cpp:
  #   port: 8080
  #   model: /var/lib/llama-cpp/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf
  #   model_url: https://...   # optional: `stackgen models pull` downloads it to model
  # postgres:
  #   version: 17
  #   databases: [app]
  #   extensions: [pgvector]
  #   password_file: /run/secrets/postgres-password   # never an inline password
  # redis: {{port: 6379, maxmemory: 512mb}}
  # qdrant: {{port: 6333}}
  # open-webui: {{port: 3000}}
"""
