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


# --- init inside an existing Python project -----------------------------------------------


def init_in(folder, *args):
    from click.testing import CliRunner

    return CliRunner().invoke(cli, ["init", str(folder / "stack.yaml"), *args])


def test_reads_name_description_and_requires_python_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "Tutor_API"\ndescription = "Spanish tutoring \\"API\\"\\nservices: {}"\n'
        'requires-python = ">=3.13"\ndependencies = ["fastapi>=0.110"]\n'
    )
    result = init_in(tmp_path)
    assert result.exit_code == 0, result.output
    assert "name from pyproject.toml: Tutor_API" in result.output
    assert "python 3.13 (pyproject.toml: requires-python '>=3.13')" in result.output
    assert "ran detect" not in result.output  # no GPU packages: detect is not run
    spec = load_spec(tmp_path / "stack.yaml")
    assert spec.name == "tutor-api" and spec.python.version == "3.13"
    assert spec.description == 'Spanish tutoring "API" services: {}'  # data, never YAML structure
    assert "requires-python '>=3.13'" in (tmp_path / "stack.yaml").read_text()  # the why, as a comment


def test_python_version_follows_the_projects_constraint():
    from stackgen.commands.project import Project, choose_python

    cases = {
        ">=3.10": "3.12", ">=3.13": "3.13", "<3.12,>=3.11": "3.11", "~=3.14": "3.14",
        "^3.11": "3.12", "==3.11.*": "3.11", ">=3.9,!=3.12.*": "3.11", "<3.11": "3.12",
    }
    for constraint, expected in cases.items():
        assert choose_python(Project(requires_python=constraint, requires_from="pyproject.toml"))[0] == expected, constraint
    none_fit = choose_python(Project(requires_python="<3.11", requires_from="pyproject.toml"))[1]
    assert "allows none of 3.11, 3.12, 3.13, 3.14" in none_fit
    assert choose_python(Project(requires_python=">=3.10", pinned_python="3.13")) == ("3.13", "from .python-version")


def test_poetry_project_and_python_version_file(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry]\nname = "router-cli"\n[tool.poetry.dependencies]\npython = "^3.11"\nhttpx = "*"\n'
    )
    (tmp_path / ".python-version").write_text("3.14.1\n")
    result = init_in(tmp_path)
    assert result.exit_code == 0, result.output
    spec = load_spec(tmp_path / "stack.yaml")
    assert spec.name == "router-cli" and spec.python.version == "3.14"


def test_gpu_packages_run_detect_and_fill_the_gpu_block(tmp_path, monkeypatch):
    FakeNvml(monkeypatch, [gpu("NVIDIA GeForce RTX 4090", (8, 9), 24)])
    (tmp_path / "requirements-gpu.txt").write_text("# training\n--index-url https://example.org/simple\nTorch==2.5.1  # cu124\n")
    result = init_in(tmp_path)  # no --detect: the torch dependency asks for it
    assert result.exit_code == 0, result.output
    assert "GPU packages in the project (torch): ran detect" in result.output
    spec = load_spec(tmp_path / "stack.yaml")
    assert spec.gpu.nvidia and spec.gpu.capabilities == ("8.9",)
    assert "# The project uses torch; from `stackgen detect`" in (tmp_path / "stack.yaml").read_text()


def test_gpu_packages_in_dependency_groups_without_a_gpu(tmp_path, monkeypatch):
    FakeNvml(monkeypatch, [], fail={"nvmlInit": pynvml.NVML_ERROR_DRIVER_NOT_LOADED})
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[dependency-groups]\nml = ["transformers"]\n')
    result = init_in(tmp_path)
    assert result.exit_code == 0, result.output
    assert not load_spec(tmp_path / "stack.yaml").gpu.nvidia
    assert "The project uses transformers, but `stackgen detect` found no NVIDIA GPU" in (tmp_path / "stack.yaml").read_text()


def test_a_broken_pyproject_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project\nname = \x1b[2J\n")
    result = init_in(tmp_path)
    assert result.exit_code == 0, result.output
    assert "warning: pyproject.toml is not valid TOML" in result.stderr
    assert "\x1b" not in result.output  # terminal escapes from the file are never printed raw
    assert load_spec(tmp_path / "stack.yaml").name == _name_for(tmp_path / "stack.yaml")  # the folder's name


def test_a_huge_version_number_is_unreadable_not_a_traceback(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = ">=3.' + "1" * 5000 + '"\n')
    result = init_in(tmp_path)
    assert result.exit_code == 0, result.output
    assert "could not be read; check the version" in (tmp_path / "stack.yaml").read_text()
