"""The compiled-template cache: used when it can be, never wrong, never in the way."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from stackgen import render


@pytest.fixture
def templates(tmp_path) -> Path:
    root = tmp_path / "templates"
    (root / "t").mkdir(parents=True)
    (root / "t" / "a.j2").write_text("{{ spec | nix_str }} v1\n")
    return root


def compile_counter(env, monkeypatch) -> list[str]:
    calls: list[str] = []
    real = env.compile

    def counting(source, name=None, filename=None, *args, **kwargs):
        calls.append(name)
        return real(source, name, filename, *args, **kwargs)

    monkeypatch.setattr(env, "compile", counting)
    return calls


def test_second_environment_reads_the_cache_instead_of_compiling(templates, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = render.make_environment(templates, cache)
    assert first.get_template("t/a.j2").render(spec='x"y') == '"x\\"y" v1\n'
    assert len(list(cache.iterdir())) == 1
    assert cache.stat().st_mode & 0o777 == 0o700

    second = render.make_environment(templates, cache)
    calls = compile_counter(second, monkeypatch)
    assert second.get_template("t/a.j2").render(spec="z") == '"z" v1\n'
    assert calls == []


def test_a_changed_template_is_recompiled(templates, tmp_path):
    cache = tmp_path / "cache"
    render.make_environment(templates, cache).get_template("t/a.j2").render(spec="x")
    (templates / "t" / "a.j2").write_text("{{ spec | sh_quote }} v2\n")
    assert render.make_environment(templates, cache).get_template("t/a.j2").render(spec="a b") == "'a b' v2\n"


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_a_damaged_cache_file_is_a_miss(templates, tmp_path, damage):
    cache = tmp_path / "cache"
    render.make_environment(templates, cache).get_template("t/a.j2").render(spec="x")
    (entry,) = cache.iterdir()
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 3] if damage is None else damage)  # None: truncated mid-way
    assert render.make_environment(templates, cache).get_template("t/a.j2").render(spec="x") == '"x" v1\n'


def test_an_unusable_cache_directory_turns_the_cache_off(templates, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = render.make_environment(templates, blocker / "cache")  # its parent is a file
    assert env.bytecode_cache is None
    assert env.get_template("t/a.j2").render(spec="x") == '"x" v1\n'


def test_cache_location_and_key(monkeypatch, tmp_path):
    monkeypatch.delenv("STACKGEN_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    where = render.template_cache_dir()
    assert where.parent == tmp_path / "xdg" / "stackgen" and where.name.startswith("templates-")
    monkeypatch.setitem(render.ENV_OPTIONS, "trim_blocks", False)
    assert render.template_cache_dir() != where, "an option that changes compiled code must change the key"
    monkeypatch.setenv("STACKGEN_NO_CACHE", "1")
    assert render.template_cache_dir() is None


def test_the_cache_is_never_inside_the_install(monkeypatch):
    monkeypatch.delenv("STACKGEN_NO_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    where = render.template_cache_dir()
    assert where is None or not where.is_relative_to(Path(render.__file__).resolve().parents[2])


# --- trust: a cache entry is code (Jinja2 unpickles and unmarshals it) --------------------------


class Payload:
    """Unpickling it runs code: it creates the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


def payload_bytes(marker: Path) -> bytes:
    import pickle

    from jinja2.bccache import bc_magic

    return bc_magic + pickle.dumps(Payload(marker), 2)


def test_the_planted_payload_runs_when_jinja2_loads_it(tmp_path):
    """The control for the tests below: the payload is real, so its absence there means something."""
    from io import BytesIO

    import jinja2

    marker = tmp_path / "ran"
    bucket = jinja2.bccache.Bucket(jinja2.Environment(), "k", "checksum")
    bucket.load_bytecode(BytesIO(payload_bytes(marker)))
    assert marker.exists()


def other_user() -> int:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a file to another user (the suite runs as root in CI)")
    return 65534


def cached_entry(templates: Path, cache: Path) -> Path:
    assert render.make_environment(templates, cache).get_template("t/a.j2").render(spec="x") == '"x" v1\n'
    (entry,) = [p for p in cache.iterdir() if p.name.endswith(".cache")]
    return entry


@pytest.mark.parametrize("how", ["folder of another user", "folder mode 0777", "folder mode 0750", "folder is a symlink"])
def test_an_untrusted_cache_folder_is_not_used(templates, tmp_path, how):
    cache = tmp_path / "cache"
    marker = tmp_path / "ran"
    entry = cached_entry(templates, cache)
    entry.write_bytes(payload_bytes(marker))
    used = cache
    if how == "folder of another user":
        os.chown(cache, other_user(), other_user())
    elif how == "folder mode 0777":
        cache.chmod(0o777)
    elif how == "folder mode 0750":
        cache.chmod(0o750)
    else:
        used = tmp_path / "link"
        used.symlink_to(cache)
    env = render.make_environment(templates, used)
    assert env.bytecode_cache is None
    assert env.get_template("t/a.j2").render(spec="x") == '"x" v1\n'
    assert not marker.exists(), "a payload planted in an untrusted cache ran"
    assert entry.read_bytes() == payload_bytes(marker), "nothing is written into an untrusted folder"


@pytest.mark.parametrize("how", ["file of another user", "file mode 0666", "file mode 0620", "file is a symlink", "file is a FIFO"])
def test_an_untrusted_cache_file_is_a_miss_and_never_unpickled(templates, tmp_path, how):
    cache = tmp_path / "cache"
    marker = tmp_path / "ran"
    entry = cached_entry(templates, cache)
    entry.write_bytes(payload_bytes(marker))
    if how == "file of another user":
        os.chown(entry, other_user(), other_user())
    elif how == "file mode 0666":
        entry.chmod(0o666)
    elif how == "file mode 0620":
        entry.chmod(0o620)
    elif how == "file is a symlink":
        elsewhere = tmp_path / "elsewhere.cache"
        elsewhere.write_bytes(payload_bytes(marker))
        elsewhere.chmod(0o600)
        entry.unlink()
        entry.symlink_to(elsewhere)
    else:
        entry.unlink()
        os.mkfifo(entry)
    with unblocking(entry if how == "file is a FIFO" else None):
        env = render.make_environment(templates, cache)
        assert env.bytecode_cache is not None, "the folder itself is trusted"
        assert env.get_template("t/a.j2").render(spec="x") == '"x" v1\n'
    assert not marker.exists(), "a cache file that is not the user's own was unpickled"
    # the miss was compiled and cached again, as a file of the user's own
    st = os.lstat(entry)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


@contextmanager
def unblocking(fifo: Path | None, after: float = 10.0):
    """Fail, rather than hang the suite, when a read blocks on `fifo`: after `after` seconds
    a writer opens and closes it, which ends a blocked read with EOF."""
    if fifo is None:
        yield
        return
    hung = threading.Event()

    def unblock():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # ENXIO: nobody is reading, all is well
        except OSError:
            return
        hung.set()
        os.close(fd)

    timer = threading.Timer(after, unblock)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    assert not hung.is_set(), f"a read blocked on the FIFO {fifo}"


def test_a_trusted_cache_file_is_used(templates, tmp_path, monkeypatch):
    """The checks do not turn the cache off: the user's own entry is read, not recompiled."""
    cache = tmp_path / "cache"
    cached_entry(templates, cache)
    env = render.make_environment(templates, cache)
    calls = compile_counter(env, monkeypatch)
    assert env.get_template("t/a.j2").render(spec="x") == '"x" v1\n'
    assert calls == []


# --- where the cache goes: never a missing HOME or XDG_CACHE_HOME ---------------------------------


def render_with(env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    spec = tmp_path / "stack.yaml"
    spec.write_text("version: 1\nname: cache-test\nsystems: [x86_64-linux]\ntargets: [devshell]\n")
    base = {k: v for k, v in os.environ.items() if k not in ("HOME", "XDG_CACHE_HOME", "STACKGEN_NO_CACHE")}
    return subprocess.run(
        [sys.executable, "-m", "stackgen", "render", str(spec), "-o", str(tmp_path / "out")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_home_is_never_created(tmp_path):
    proc = render_with({"HOME": str(tmp_path / "nonexistent" / "x")}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "nonexistent").exists()
    assert (tmp_path / "out" / "flake.nix").exists()


def test_a_missing_xdg_cache_home_is_never_created(tmp_path):
    proc = render_with({"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "no" / "cache")}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "no").exists()


def settled_code() -> None:
    """Wait until stackgen's code is old enough for its digest to be cached (freshness.SETTLED_NS)."""
    import time

    from stackgen import freshness

    newest = max(max(st.st_mtime_ns, st.st_ctime_ns) for *_, st in freshness._listing(freshness.code_roots()))
    time.sleep(max(0, newest + freshness.SETTLED_NS - time.time_ns()) / 1e9 + 0.1)


def test_an_existing_cache_home_gets_a_private_stackgen_folder(tmp_path):
    (tmp_path / "xdg").mkdir(mode=0o755)
    settled_code()
    proc = render_with({"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path)
    assert proc.returncode == 0, proc.stderr
    # the compiled templates' folder, and the render key's code digest (stored: the code has settled)
    folders = sorted((tmp_path / "xdg" / "stackgen").iterdir())
    assert [f.name.split("-")[0] for f in folders] == ["keys", "templates"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o700 for f in folders)
    folder = folders[1]
    assert stat.S_IMODE((tmp_path / "xdg" / "stackgen").stat().st_mode) == 0o700
    assert any(p.name.endswith(".cache") for p in folder.iterdir())


def test_loading_a_cache_file_is_jinja2s_own_loading(tmp_path):
    """render._load_bucket (marshal.loads on the bytes) ends where Jinja2's
    Bucket.bytecode_from_string (marshal.load from a BytesIO) ends: the same code, or the
    same reset, for every real template's cache file, cut or altered in every part."""
    import io
    import pickle

    import jinja2.bccache

    from stackgen.freshness import resource_root

    root = resource_root("templates")
    cache = tmp_path / "cache"
    env = render.make_environment(root, cache)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*.j2"))
    for name in names:
        env.get_template(name)
    entries = sorted(cache.iterdir())
    assert len(entries) == len(names) >= 10

    def both(data: bytes, checksum: str):
        ours, theirs = jinja2.bccache.Bucket(env, "k", checksum), jinja2.bccache.Bucket(env, "k", checksum)
        outcome = []
        for bucket, load in ((ours, lambda b: render._load_bucket(b, data)), (theirs, lambda b: b.bytecode_from_string(data))):
            try:
                load(bucket)
                outcome.append(("code", bucket.code))
            except Exception as exc:  # noqa: BLE001 - compared, not hidden
                outcome.append(("raised", type(exc)))
        return outcome

    loaded = 0
    for entry in entries:
        data = entry.read_bytes()
        stream = io.BytesIO(data)  # the stored checksum, read as Jinja2 reads it
        stream.read(len(jinja2.bccache.bc_magic))
        checksum = pickle.load(stream)
        ours, theirs = both(data, checksum)
        assert ours == theirs and ours[0] == "code" and ours[1] is not None
        loaded += 1
        assert both(data, checksum + "x")[0] == ("code", None)  # a changed template
        assert both(b"j3" + data[2:], checksum)[0] == ("code", None)  # another Jinja2's magic
        for cut in (1, len(jinja2.bccache.bc_magic) + 3, stream.tell() + 1, len(data) // 2, len(data) - 1):
            ours, theirs = both(data[:cut], checksum)
            assert ours == theirs, (entry.name, cut)
    assert loaded == len(entries)
