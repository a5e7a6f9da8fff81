"""The command line. Each command is small: it calls the pipeline stages and prints.

Exit codes: 0 ok; 1 the user's input or state is wrong (spec errors, drift, refused
overwrite); 2 command-line usage (click's own UsageError). Heavy modules (jinja2, httpx,
pynvml) are imported inside the commands that need them, so `stackgen --help` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from .errors import Problem, StackError, printable

TARGET_NAMES = ("devshell", "nixos", "home-manager", "compose", "quadlet", "mirrors", "processes", "fleet", "kubernetes")  # spec.model.ALL_TARGETS
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
        except BrokenPipeError:
            _quiet_broken_pipe()
        except OSError as exc:
            _os_error(exc)


def _os_error(exc: OSError) -> NoReturn:
    where = f" {exc.filename}:" if exc.filename else ""
    click.echo(f"error:{where} {exc.strerror or exc}", err=True)
    sys.exit(1)


def _quiet_broken_pipe() -> None:
    """The reader of our output went away (`stackgen render --diff | head -1`): stop quietly
    with 141, as a program killed by SIGPIPE does. Later writes (click's own flush at exit)
    go to /dev/null instead of raising again."""
    _drop_stdout()
    sys.exit(141)


def _drop_stdout() -> None:
    """What is still to be written to stdout (now or by the flush at exit) goes to /dev/null."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


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
    _warn(loaded.warnings)
    click.echo(f"{spec}: ok ({loaded.name}: {_count(len(loaded.services), 'service')}, targets {', '.join(loaded.targets)})")


@cli.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output directory (default: the spec's directory).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any file would change (a CI drift gate).")
@click.option("--diff", "show_diff", is_flag=True, help="Write nothing; print the unified diff of what would change; exit 1 if anything would.")
@click.option("--force", is_flag=True, help="Overwrite files edited by hand, keeping each as <file>.orig.")
@click.option("--only", type=click.Choice(TARGET_NAMES), help="Render one target only.")
def render(spec: Path | None, out_dir: Path | None, check: bool, show_diff: bool, force: bool, only: str | None) -> None:
    """Render SPEC into files.

    SPEC defaults to ./stack.yaml; inside a tree rendered with -o DIR, to the spec that tree
    was rendered from (recorded in .stackgen/state.json). --check and --diff exit 1 when a
    file would change and 0 when none would, as `git diff --exit-code` does.
    """
    from . import safeio, write

    if check and force:
        raise click.UsageError("--check writes nothing, so --force has no meaning with it")
    recorded = False
    if spec is None:
        spec, recorded = _spec_here(out_dir)
        if recorded and out_dir is None:
            out_dir = Path(".")  # the tree that recorded it
    out_dir = out_dir if out_dir is not None else _default_output(spec)
    # once: it may be a pipe; a spec the tree's state names must be a regular file (never a FIFO)
    raw = safeio.read_spec_bytes(spec, str(spec), safeio.MAX_SPEC_BYTES, regular_only=recorded)
    key = _render_key(raw) if only is None and not show_diff and not force else None
    unchanged = write.up_to_date(out_dir, key) if key else None
    if unchanged is not None:  # the last full render of this spec, by this stackgen, is on disk
        count, warnings = unchanged
        # the warnings that render printed: a function of the spec's bytes and the code, as the key is
        _warn([Problem(file=str(spec), level="warning", **w) for w in warnings])
        click.echo(f"{out_dir}: up to date ({count} files)" if check else f"{out_dir}: 0 written, {count} unchanged, 0 removed")
        return

    from .render import render_tree
    from .spec import load_spec
    from .spec.model import NIX_TARGETS

    loaded = load_spec(spec, str(spec), raw)
    _warn(loaded.warnings)
    if only is not None and only not in loaded.targets:
        raise StackError(_not_a_target(spec, only, loaded.targets))
    files = render_tree(loaded, only)
    owners = None if only is None else ({only, "flake"} if only in NIX_TARGETS else {only})
    warned = [{k: getattr(p, k) for k in write.WARNING_FIELDS} for p in loaded.warnings]
    plan = write.plan(out_dir, files, loaded.source_sha256, owners, key, spec_path=_recordable(spec, out_dir), warnings=warned)

    if show_diff:
        click.echo(write.diff(plan), nl=False)
    if check or show_diff:
        _report(plan, dry=True)
        if plan.dirty:
            if check:
                click.echo(_out_of_date(plan, out_dir), err=True)
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
    if written:
        _flake_files_untracked(out_dir, [f.path for f in files])


def _flake_files_untracked(out_dir: Path, paths: list[str]) -> None:
    """In a git work tree, name the files a flake reads that git does not know yet: Nix copies
    only those into the store, and `nix develop` fails without them."""
    from . import vcs

    nix_files = [p for p in paths if p == "flake.nix" or p.startswith("nix/")]
    if not nix_files or not vcs.work_tree(out_dir):
        return
    missing = vcs.untracked(out_dir, nix_files)
    if missing is None:
        click.echo("note: this is a git work tree: Nix flakes see only files git knows; 'git add' the rendered files", err=True)
    elif missing:
        shown = " ".join(printable_word(str(out_dir / p) if str(out_dir) != "." else p) for p in missing)
        click.echo(
            f"note: Nix flakes see only files git knows, and {_count(len(missing), 'rendered file')} "
            f"{'is' if len(missing) == 1 else 'are'} not added yet; before 'nix develop': git add {shown}",
            err=True,
        )


def _spec_here(out_dir: Path | None) -> tuple[Path, bool]:
    """./stack.yaml, else the spec recorded in the state of the tree being rendered (the
    current directory, or -o DIR): (spec, whether it came from the record)."""
    import os

    default = Path("stack.yaml")
    if default.exists():
        return default, False
    from . import write

    tree = out_dir if out_dir is not None else Path(".")
    recorded = write.recorded_spec(tree)
    if recorded is None:
        return default, False  # reading it reports "no such spec file"
    spec = Path(os.path.normpath(tree / recorded))
    click.echo(f"spec: {printable_word(str(spec))} (recorded in {printable_word(str(tree / write.STATE_PATH))})", err=True)
    return spec, True


def _recordable(spec: Path, out_dir: Path) -> str | None:
    """The spec's path relative to the output tree, for its state file; None for a spec that
    has no lasting path (a pipe, /dev/stdin)."""
    import os
    import stat

    try:
        if not stat.S_ISREG(os.stat(spec).st_mode):
            return None
        return Path(os.path.relpath(os.path.abspath(spec), os.path.abspath(out_dir))).as_posix()
    except (OSError, ValueError):
        return None


def _out_of_date(plan, out_dir: Path) -> str:
    """What --check says, naming what resolves it."""
    from . import write

    changed = [c for c in plan.changes if c.action not in write.QUIET]
    edited = [c.path for c in changed if c.action == "conflict"]
    text = f"{_count(len(changed), 'file')} out of date in {out_dir}"
    if not edited:
        return f"{text}; run 'stackgen render'"
    return (
        f"{text}; {_count(len(edited), 'file')} edited by hand ({', '.join(edited[:5])}{', ...' if len(edited) > 5 else ''}):"
        " 'stackgen render --diff' shows the changes, and 'stackgen render --force' writes them,"
        " keeping each edited file as <file>.orig"
    )


def _warn(warnings) -> None:
    """The spec's warnings (an ending nixpkgs release), on stderr: they stop nothing."""
    for problem in warnings:
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
    from . import write

    labels = {"create": "create", "update": "update", "conflict": "CONFLICT", "remove": "remove", "orphan": "left"}
    lines = [f"  {labels[c.action]:<8} {printable(c.path)}{f'  ({c.reason})' if c.reason else ''}" for c in plan.changes if c.action not in write.QUIET]
    if lines:
        click.echo("\n".join(lines))  # one write, not one per file


def printable_word(path: str) -> str:
    """A path as a shell word a user can paste (quoted when it needs to be), never raw controls."""
    import shlex

    return shlex.quote(printable(path))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _not_a_target(spec: Path, only: str, targets: tuple[str, ...]):
    return Problem(f"--only {only}: the spec does not render that target", file=str(spec), hint="its targets are: " + ", ".join(targets))


YOUNG = 20_000  # allocations between two collections of the youngest generation (Python's default: 700)


def main() -> None:
    """The command line, for a caller in this process: it ends with SystemExit, as click does."""
    try:
        cli(prog_name="stackgen")  # standalone mode: it ends with SystemExit
    except BrokenPipeError:  # --help or --version, written before any command runs
        _quiet_broken_pipe()
    except OSError as exc:  # the same on a full disk: stdout is unusable, stderr says why
        _drop_stdout()
        _os_error(exc)


def run() -> NoReturn:
    """The process's entry point (the `stackgen` script, `python -m stackgen`): main() in a
    process that is stackgen's alone, so the collector and the exit are set for it."""
    # A command is one short process. What is alive now (click, PyYAML, Jinja2 and stackgen's
    # modules: most of the objects it will ever hold) lives until it exits, so the cyclic
    # collector is told to leave it alone rather than walk it again at each of its passes.
    # About a tenth of the import floor's time on the reference render (issue 11).
    import gc

    gc.freeze()
    # The objects made from here on are mostly short-lived and free of cycles (a spec's nodes,
    # template contexts, strings), yet every 700 allocations the collector walks them all: 24
    # collections and ~4 ms of a reference render, ~110 ms at 1,000 services. Collecting the
    # young generation every YOUNG allocations bounds what a cycle can hold as well (1,000
    # services: 10 collections, 1 MiB more peak memory).
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])
    try:
        main()
    except SystemExit as exc:
        _leave(exc)
    raise AssertionError("main() returned")  # pragma: no cover - click's standalone mode exits


def _leave(exc: SystemExit) -> NoReturn:
    """End the process with exc's status, without tearing the interpreter down.

    Python's own exit frees every module and object one by one: for a render that is about
    as long as importing stackgen, a tenth of the import floor, and it changes nothing outside
    the process. What an exit must still do is done here first or the normal exit is taken:
    stdout and stderr are flushed (a failure to flush is left to Python, which reports it as
    usual); with an atexit callback registered or a second thread alive Python exits as usual
    (`models pull` and `status` take that way: httpx and asyncio import logging, which
    registers one). The writer writes through os-level descriptors, fsyncs and closes; every
    other file a command writes is closed by a `with` before the command returns. Only run()
    calls this: main() called by another program ends with SystemExit, as before.
    """
    import atexit
    import os

    code = 0 if exc.code is None else exc.code
    threading = sys.modules.get("threading")
    pending = getattr(atexit, "_ncallbacks", lambda: 1)()  # CPython's count; elsewhere: assume some
    if type(code) is not int or not 0 <= code <= 255 or pending or (threading is not None and threading.active_count() > 1):
        raise exc
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        raise exc from None  # the normal exit flushes again and reports the failure
    os._exit(code)


if __name__ == "__main__":
    run()
