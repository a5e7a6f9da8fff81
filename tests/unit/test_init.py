"""`stackgen init`: the starter spec goes through the real validator and renderer."""

from __future__ import annotations

import pynvml
from click.testing import CliRunner

from stackgen.cli import cli
from stackgen.commands.init import _name_for
from stackgen.render import render_tree
from stackgen.spec import load_spec
from test_detect import FakeNvml, gpu


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_starter_validates_and_renders(tmp_path, monkeypatch):
    project = tmp_path / "rag-lab"
    project.mkdir()
    monkeypatch.chdir(project)
    result = run("init")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("wrote stack.yaml (region global)")
    spec = load_spec(project / "stack.yaml")
    assert spec.name == "rag-lab" and spec.mirrors.region == "global" and not spec.gpu.nvidia
    assert spec.services["ollama"].models == ("llama3.2:3b",) and spec.services["ollama"].host == "127.0.0.1"
    assert {f.path for f in render_tree(spec)} >= {"flake.nix", "env/mirrors.sh"}
    assert "# llama-cpp:" in (project / "stack.yaml").read_text()  # the other services are there, commented


def test_refuses_to_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stack.yaml").write_text("mine\n")
    result = run("init", "--region", "china")
    assert result.exit_code == 1
    assert result.stderr == "error: stack.yaml already exists; init never overwrites a spec\n  hint: edit it, or remove it first\n"
    assert (tmp_path / "stack.yaml").read_text() == "mine\n"


def test_region_china(tmp_path):
    result = run("init", str(tmp_path / "s.yaml"), "--region", "china")
    assert result.exit_code == 0, result.output
    assert load_spec(tmp_path / "s.yaml").mirrors.region == "china"


def test_detect_fills_the_gpu_block(tmp_path, monkeypatch):
    FakeNvml(monkeypatch, [gpu("NVIDIA GeForce RTX 4090", (8, 9), 24)])
    result = run("init", str(tmp_path / "stack.yaml"), "--detect")
    assert result.exit_code == 0, result.output
    assert "gpu: nvidia, cuda 12, capabilities 8.9" in result.output
    spec = load_spec(tmp_path / "stack.yaml")
    assert spec.gpu.nvidia and spec.gpu.cuda == "12" and spec.gpu.capabilities == ("8.9",)
    assert spec.services["ollama"].gpu is True
    assert spec.services["ollama"].models in (("qwen2.5:14b",), ("qwen2.5-coder:14b",))  # the largest that fits


def test_detect_without_gpu(tmp_path, monkeypatch):
    FakeNvml(monkeypatch, [], fail={"nvmlInit": pynvml.NVML_ERROR_DRIVER_NOT_LOADED})
    result = run("init", str(tmp_path / "stack.yaml"), "--detect")
    assert result.exit_code == 0, result.output
    assert "no NVIDIA GPU: gpu.vendor none" in result.output
    text = (tmp_path / "stack.yaml").read_text()
    assert "found no NVIDIA GPU here" in text and "kernel driver is not loaded" in text
    assert not load_spec(tmp_path / "stack.yaml").gpu.nvidia


def test_name_from_folder(tmp_path):
    for folder, name in [("My Project_2", "my-project-2"), ("2024-llm", "llm"), ("123", "my-stack"), ("a" * 80, "a" * 63)]:
        (tmp_path / folder).mkdir()
        assert _name_for(tmp_path / folder / "stack.yaml") == name
