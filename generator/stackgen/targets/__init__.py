"""Targets: each turns the validated spec into `{relative path: text}`.

Adding a target is adding a module here, a templates folder, and a line below.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Callable, Iterator

from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates

Target = Callable[[Spec, "Templates"], dict[str, str]]


class _Registry(Mapping):
    """Target name -> its render function. A target's module is imported the first time it is
    looked up, so a render imports the targets its spec names and no others (issue 11)."""

    def __init__(self, modules: dict[str, str]):
        self._modules = modules  # name -> module in this package

    def __getitem__(self, name: str) -> Target:
        return importlib.import_module(f".{self._modules[name]}", __name__).render

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)


# Files shared by the Nix targets (flake.nix): rendered when any Nix target is selected.
SHARED: Mapping[str, Target] = _Registry({"flake": "flake"})

TARGETS: Mapping[str, Target] = _Registry(
    {
        "devshell": "devshell",
        "nixos": "nixos",
        "home-manager": "home",
        "compose": "compose",
        "quadlet": "quadlet",
        "mirrors": "mirrors",
        "processes": "processes",
        "kubernetes": "kubernetes",
        "fleet": "fleet",
    }
)
