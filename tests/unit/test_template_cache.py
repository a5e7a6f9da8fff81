"""The compiled-template cache: used when it can be, never wrong, never in the way."""

from __future__ import annotations

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
