# stackgen as a Nix package: `nix run github:<owner>/stackgen -- render stack.yaml`.
# Keep `dependencies` in step with pyproject.toml (tests/nix/test_project_flake.py checks it).
{ lib, python3Packages }:
python3Packages.buildPythonApplication {
  pname = "stackgen";
  version = "0.1.0";
  pyproject = true;

  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: type:
      let
        rel = lib.removePrefix (toString ../. + "/") (toString path);
        top = builtins.head (lib.splitString "/" rel);
      in
      builtins.elem top [
        "pyproject.toml"
        "README.md"
        "generator"
        "templates"
        "modules"
      ];
  };

  build-system = [ python3Packages.hatchling ];

  dependencies = [
    python3Packages.click
    python3Packages.jinja2
    python3Packages.pyyaml
    python3Packages.tomlkit
    python3Packages.httpx
    python3Packages.nvidia-ml-py
  ];

  # The test suite needs nix, podman and network-free services; it runs in CI, not in the sandbox.
  doCheck = false;
  pythonImportsCheck = [ "stackgen" ];

  meta = {
    description = "Render one stack.yaml into Nix, NixOS, home-manager, compose and Quadlet files";
    license = lib.licenses.mit;
    mainProgram = "stackgen";
  };
}
