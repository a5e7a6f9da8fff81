"""The `nixos` target: nix/nixos.nix, a NixOS module that sets nixpkgs' own service options
(rendered by stackgen.nixosmodule, which the fleet target shares)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..nixmodules import copy_modules
from ..nixosmodule import module
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    text, imports = module(spec, tpl)
    return {"nix/nixos.nix": text, **copy_modules("nixos", imports)}
