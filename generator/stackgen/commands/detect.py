"""`stackgen detect`: the host's NVIDIA GPUs, the spec's `gpu:` block, and the models that fit."""

from __future__ import annotations

import click

from . import echo_json, table, yaml_block


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the reading as JSON.")
def detect(as_json: bool) -> None:
    """Read the NVIDIA GPUs through NVML: driver, CUDA version, compute capability, VRAM."""
    from ..hardware import detect as read_gpus

    found = read_gpus()
    if as_json:
        echo_json(found.as_json())
        return
    if not found.found:
        click.echo(f"no NVIDIA GPU found ({found.reason})")
        click.echo("keep gpu.vendor: none (the default) in stack.yaml")
        return
    click.echo(report(found), nl=False)


def report(found) -> str:
    from ..hardware import gib

    out = [f"driver {found.driver_version}, CUDA {found.cuda_driver_version} (the newest CUDA this driver runs)", ""]
    rows = [
        (g.index, g.name, g.uuid, g.compute_capability, gib(g.memory_total), gib(g.memory_free))
        for g in found.gpus
    ]
    out += [table(("gpu", "name", "uuid", "capability", "memory", "free"), rows), ""]
    out += [f"warning: {w}" for w in found.warnings]
    out += ["suggested gpu: block for stack.yaml:", "", yaml_block("gpu", found.gpu_block()).rstrip("\n"), ""]
    models = found.models()
    largest = max(g.memory_total for g in found.gpus)
    if models:
        out.append(f"models that fit in {gib(largest)} with headroom, largest first:")
        out.append(table(("ollama", "llama.cpp GGUF", "needs"), [(m["ollama"], m["gguf"], f"{m['vram_gib']:.1f} GiB") for m in models]))
    else:
        out.append(f"no model of the built-in table fits in {gib(largest)}")
    return "\n".join(out) + "\n"
