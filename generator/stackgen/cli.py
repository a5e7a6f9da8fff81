"""The command line. Each command is small: it calls the pipeline stages and prints.

Exit codes: 0 ok; 1 the user's input or state is wrong (spec errors, drift, refused
overwrite); 2 command-line usage (click's own UsageError). Heavy modules (jinja2, httpx,
pynvml) are imported inside the commands that need them, so `stackgen --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import StackError

TARGET_NAMES = ("devshell", "nixos", "home-manager", "compose", "quadlet", "mirrors")
SPEC_ARG = click.argument("spec", default="stack.yaml", type=click.Path(dir_okay=False, path_type=Path))


# The host commands live in their own modules, imported only when one of them runs (or
# `--help` lists them), so `render` and `validate` do not pay for them.
LAZY_COMMANDS = ("detect", "init", "mirrors", "status", "models", "doctor")  # stackgen.commands.<name>


class StackGroup(click.Group):
    """Turns user errors into a message and exit 1; no traceback reaches the user."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module = importlib.import_module(f".commands.{name}", __package__)
            self.add_command(getattr(module, name))
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except StackError as exc:
            click.echo(exc.format(), err=True)
            ctx.exit(1)
        except OSError as exc:
            where = f" {exc.filename}:" if exc.filename else ""
            click.echo(f"error:{where} {exc.strerror or exc}", err=True)
            ctx.exit(1)


@click.group(cls=StackGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackgen")
def cli() -> None:
    """Render one stack.yaml into a Nix dev shell, NixOS and home-manager modules,
    compose and Quadlet files, and a mirror switch."""


@cli.command()
@SPEC_ARG
def validate(spec: Path) -> None:
    """Check SPEC (default ./stack.yaml) and report every problem at once."""
    from .spec import load_spec

    loaded = load_spec(spec, str(spec))
    _warn(loaded)
    click.echo(f"{spec}: ok ({loaded.name}: {_count(len(loaded.services), 'service')}, targets {', '.join(loaded.targets)})")


@cli.command()
@SPEC_ARG
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output directory (default: the spec's directory).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change (a CI drift gate).")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print the unified diff of what would change.")
@click.option("--force", is_flag=True, help="Overwrite files edited by hand, keeping each as <file>.orig.")
@click.option("--only", type=click.Choice(TARGET_NAMES), help="Render one target only.")
def render(spec: Path, out_dir: Path | None, check: bool, show_diff: bool, force: bool, only: str | None) -> None:
    """Render SPEC (default ./stack.yaml) into files."""
    from . import safeio, write

    if check and force:
        raise click.UsageError("--check writes nothing, so --force has no meaning with it")
    out_dir = out_dir if out_dir is not None else _default_output(spec)
    raw = safeio.read_spec_bytes(spec, str(spec), safeio.MAX_SPEC_BYTES)  # once: it may be a pipe
    from .branches import may_warn

    # The up-to-date shortcut loads no spec, so a spec that may warn takes the full path.
    key = _render_key(raw) if only is None and not show_diff and not force and not may_warn(raw) else None
    unchanged = write.up_to_date(out_dir, key) if key else None
    if unchanged is not None:  # the last full render of this spec, by this stackgen, is on disk
        click.echo(f"{out_dir}: up to date ({unchanged} files)" if check else f"{out_dir}: 0 written, {unchanged} unchanged, 0 removed")
        return

    from .render import render_tree
    from .spec import load_spec
    from .spec.model import NIX_TARGETS

    loaded = load_spec(spec, str(spec), raw)
    _warn(loaded)
    if only is not None and only not in loaded.targets:
        raise StackError(_not_a_target(spec, only, loaded.targets))
    files = render_tree(loaded, only)
    owners = None if only is None else ({only, "flake"} if only in NIX_TARGETS else {only})
    plan = write.plan(out_dir, files, loaded.source_sha256, owners, key)

    if show_diff:
        click.echo(write.diff(plan), nl=False)
    if check or show_diff:
        _report(plan, dry=True)
        if check and plan.dirty:
            click.echo(f"{len([c for c in plan.changes if c.action != 'unchanged'])} file(s) out of date in {out_dir}; run 'stackgen render'", err=True)
            sys.exit(1)
        if check:
            click.echo(f"{out_dir}: up to date ({len(plan.changes)} files)")
        return
    backups = write.apply(plan, force=force)
    _report(plan, dry=False)
    for backup in backups:
        click.echo(f"  kept your version as {backup}")
    for temp in plan.swept:
        click.echo(f"  removed {temp} (left by an interrupted render)")
    written = len(plan.by(*write.WRITES, "conflict"))
    click.echo(f"{out_dir}: {written} written, {len(plan.by('unchanged'))} unchanged, {len(plan.by('remove'))} removed")


def _warn(loaded) -> None:
    """The spec's warnings (an ending nixpkgs release), on stderr: they stop nothing."""
    for problem in loaded.warnings:
        click.echo(problem.format(), err=True)


def _default_output(spec: Path) -> Path:
    """The spec's directory. A spec read from a pipe or a device, or named through `/dev` or
    `/proc` (`/dev/stdin`, `/dev/fd/0`, even when stdin is a file), has no directory that
    means anything: there the output directory must be given."""
    import os
    import stat

    parent = spec.parent if str(spec.parent) else Path(".")
    try:
        regular = stat.S_ISREG(os.stat(spec).st_mode)
    except OSError:
        regular = True  # missing or unreadable: reading it says so
    if not regular:
        raise click.UsageError(f"{spec} is not a regular file (a pipe or a device), so it has no directory to render into: give one with -o DIR")
    real = os.path.realpath(parent)
    if real == "/dev" or real.startswith("/proc/"):
        raise click.UsageError(f"{spec} is named through {real}, which is no project directory: give the output directory with -o DIR")
    return parent


def _render_key(raw: bytes) -> str | None:
    """freshness.render_key of the spec's bytes, or None to take the full path."""
    from . import freshness

    return freshness.render_key(raw) if freshness.enabled() else None


def _report(plan, *, dry: bool) -> None:
    labels = {"create": "create", "update": "update", "conflict": "CONFLICT", "remove": "remove", "orphan": "left"}
    for c in plan.changes:
        if c.action == "unchanged":
            continue
        note = f"  ({c.reason})" if c.reason else ""
        click.echo(f"  {labels[c.action]:<8} {c.path}{note}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _not_a_target(spec: Path, only: str, targets: tuple[str, ...]):
    from .errors import Problem

    return Problem(f"--only {only}: the spec does not render that target", file=str(spec), hint="its targets are: " + ", ".join(targets))


def main() -> None:
    cli(prog_name="stackgen")


if __name__ == "__main__":
    main()
