"""`stackgen init`: write a commented starter stack.yaml (never over an existing one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ..errors import Problem, StackError
from . import yaml_block, yaml_scalar

DEFAULT_MODEL = "llama3.2:3b"


@click.command()
@click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--detect", "use_detect", is_flag=True, help="Fill the gpu: block (and the model) from this host's GPUs.")
@click.option("--region", type=click.Choice(["global", "china"]), default="global", show_default=True, help="Which package mirrors the stack uses.")
def init(spec: Path, use_detect: bool, region: str) -> None:
    """Write a commented starter SPEC (default ./stack.yaml)."""
    if spec.exists():
        raise StackError(Problem(f"{spec} already exists; init never overwrites a spec", hint="edit it, or remove it first"))
    detection = None
    if use_detect:
        from ..hardware import detect

        detection = detect()
    text = starter(_name_for(spec), region, detection)
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
    click.echo(f"next: edit it, then 'stackgen validate {spec}' and 'stackgen render {spec}'")


def _name_for(spec: Path) -> str:
    folder = spec.resolve().parent.name.lower()
    name = re.sub(r"[^a-z0-9-]+", "-", folder).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
    return name or "my-stack"


def _check(text: str, spec: Path) -> None:
    """The starter must be a valid spec; a failure here is a stackgen bug, reported as one."""
    from ..spec.loader import parse
    from ..spec.validate import validate

    validate(parse(text, str(spec)))


def starter(name: str, region: str, detection=None) -> str:
    gpu = "# gpu:\n#   vendor: nvidia          # none (default) | nvidia; `stackgen detect` prints this block\n#   cuda: \"12\"\n"
    model = DEFAULT_MODEL
    if detection is not None and detection.found:
        gpu = "# From `stackgen detect` on this host:\n" + yaml_block("gpu", detection.gpu_block())
        fits = [m["ollama"] for m in detection.models()]
        model = fits[0] if fits else DEFAULT_MODEL
    elif detection is not None:
        gpu = f"# `stackgen detect` found no NVIDIA GPU here, so the stack runs on the CPU\n# ({detection.reason}).\n" + gpu
    mirrors = "mirrors:\n  region: china            # Tsinghua/USTC/SJTU/NJU Nix mirrors, Tsinghua PyPI, hf-mirror.com\n"
    if region == "global":
        mirrors = "mirrors:\n  region: global           # global (default) | china; `stackgen mirrors test` measures both\n"
    return f"""\
# stack.yaml: one file for the whole AI dev stack. `stackgen render` turns it into
# flake.nix (nix develop), NixOS/home-manager modules, compose.yaml, Quadlet units and
# env/mirrors.sh. Every key is described in the stackgen README.
version: 1
name: {yaml_scalar(name)}
description: "AI development stack"
{mirrors}\
{gpu}\
python:
  version: "3.12"            # 3.11 .. 3.14, from nixpkgs; uv manages the packages
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
