"""The nixpkgs branches a spec may name, and what each means for the rendered Nix.

The one table keyed on `nixpkgs:` (sources: NIXOS-FACTS.md of the project docs, and the
README's NixOS section). Kept free of heavy imports.
"""

from __future__ import annotations

from .records import dataclass  # as dataclasses', without exec() or importing dataclasses


@dataclass(frozen=True)
class Branch:
    """What a nixpkgs branch means for the rendered Nix."""

    name: str
    home_manager: str  # the home-manager branch that follows it
    state_version: str  # system.stateVersion / home.stateVersion of the flake's checks
    llama_settings: bool  # services.llama-cpp takes RFC 42 `settings` (not host/port/extraFlags)
    ollama_models_dir: str  # the name of services.ollama's models directory option
    x86_64_darwin: bool  # nixpkgs still builds for Intel Macs
    end_of_life: str | None = None  # a date once the release is announced to end


BRANCH_TABLE = {
    b.name: b
    for b in (
        Branch("nixos-26.11", "release-26.11", "26.11", llama_settings=True, ollama_models_dir="modelsDir", x86_64_darwin=False),
        Branch("nixos-26.05", "release-26.05", "26.05", llama_settings=False, ollama_models_dir="models", x86_64_darwin=True, end_of_life="2026-12-31"),
        Branch("nixos-unstable", "master", "26.11", llama_settings=True, ollama_models_dir="modelsDir", x86_64_darwin=False),
    )
}
BRANCHES = tuple(BRANCH_TABLE)
DEFAULT_BRANCH = "nixos-26.11"
