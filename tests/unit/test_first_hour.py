"""What a new user trips over in the first hour (issue 13): each test fails without its fix."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from stackgen.cli import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_counts_one_service_in_the_singular(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "stack.yaml", "version: 1\nname: demo\nservices:\n  ollama: {}\n")
    result = run("validate", "stack.yaml")
    assert result.exit_code == 0
    assert "(demo: 1 service, targets" in result.output
    write(tmp_path / "stack.yaml", "version: 1\nname: demo\nservices:\n  ollama: {}\n  redis: {}\n")
    assert "(demo: 2 services, targets" in run("validate", "stack.yaml").output


def test_a_quoted_postgres_version_means_the_number(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = "version: 1\nname: demo\ntargets: [compose]\nservices:\n  postgres: {version: %s, databases: [app], password_file: /run/secrets/pg}\n"
    write(tmp_path / "a.yaml", base % "16")
    write(tmp_path / "b.yaml", base % '"16"')
    assert run("render", "a.yaml", "-o", "a").exit_code == 0
    result = run("render", "b.yaml", "-o", "b")
    assert result.exit_code == 0, result.output
    compose_a = (tmp_path / "a" / "compose.yaml").read_text()
    assert "postgres:16" in compose_a or "pg16" in compose_a, compose_a
    assert (tmp_path / "b" / "compose.yaml").read_text() == compose_a


def test_a_quoted_unsupported_postgres_version_names_the_supported_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "s.yaml", 'version: 1\nname: demo\nservices:\n  postgres: {version: "12"}\n')
    result = run("validate", "s.yaml")
    assert result.exit_code == 1
    assert "services.postgres.version '12' is not supported; use one of: 14, 15, 16, 17, 18" in result.stderr
    assert "did you mean" not in result.stderr
