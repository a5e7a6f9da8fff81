"""The `mirrors` target: env/mirrors.sh, a session-scoped switch of Nix/PyPI/HF mirrors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import mirrordata
from ..spec.model import Spec

if TYPE_CHECKING:
    from ..render import Templates


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    china = mirrordata.china_profile(spec)
    nix_config = "extra-substituters = " + " ".join(china["nix"])
    keys = sorted({c.key for c in spec.mirrors.nix if c.key})
    if keys:
        nix_config += "\nextra-trusted-public-keys = " + " ".join(keys)
    return {
        "env/mirrors.sh": tpl(
            "mirrors/mirrors.sh.j2",
            nix_config=nix_config,
            pypi=china["pypi"],
            hf=china["huggingface"],
            probes=[
                (region, kind, url, mirrordata.probe_url(kind, url))
                for region, kind, url in mirrordata.probe_endpoints(spec)
            ],
        )
    }
