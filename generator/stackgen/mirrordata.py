"""Known package mirrors and caches (see NIXOS-FACTS.md, "Binary caches and mirrors").

One table, read by the devshell, NixOS, mirrors and `mirrors test` code alike.
"""

from __future__ import annotations

from .spec.model import NixCache, Spec

CACHE_NIXOS_ORG = "https://cache.nixos.org"
CACHE_NIXOS_ORG_KEY = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
CUDA_CACHE = NixCache("https://cache.nixos-cuda.org", "cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M=")

# Mirrors of cache.nixos.org: same signatures, so no extra key. They carry no CUDA builds.
CHINA_NIX = (
    "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store",
    "https://mirrors.ustc.edu.cn/nix-channels/store",
    "https://mirror.sjtu.edu.cn/nix-channels/store",
    "https://mirror.nju.edu.cn/nix-channels/store",
    # Beijing Foreign Studies University, run by TUNA's people: the same tree as TUNA, on
    # other hosts, for when TUNA is overloaded (https://mirrors.bfsu.edu.cn/help/nix-channels/).
    "https://mirrors.bfsu.edu.cn/nix-channels/store",
)
# Flake inputs that do not go through GitHub (`mirrors.flake_inputs: mirror`). TUNA serves
# each channel's nixexprs.tar.xz, which holds nixpkgs' flake.nix (a tarball flake input, as
# `https://channels.nixos.org/<branch>/nixexprs.tar.xz` is), and a git mirror of home-manager.
GITHUB_INPUTS = {
    "nixpkgs": "github:NixOS/nixpkgs/{branch}",
    "home-manager": "github:nix-community/home-manager/{branch}",
}
CHINA_INPUTS = {
    "nixpkgs": "https://mirrors.tuna.tsinghua.edu.cn/nix-channels/{branch}/nixexprs.tar.xz",
    "home-manager": "git+https://mirrors.tuna.tsinghua.edu.cn/git/home-manager.git?ref={branch}",
}
CHINA_PYPI = (
    "https://pypi.tuna.tsinghua.edu.cn/simple",
    "https://mirrors.aliyun.com/pypi/simple/",
    "https://pypi.mirrors.ustc.edu.cn/simple/",
)
GLOBAL_PYPI = "https://pypi.org/simple"
CHINA_HF = "https://hf-mirror.com"
GLOBAL_HF = "https://huggingface.co"

# What answers a probe, per kind of endpoint: `stackgen mirrors test` and env/mirrors.sh's
# `test`/`auto` ask the same small files.
PROBE_PATHS = {
    "nix": "/nix-cache-info",  # a binary cache's self-description (a few bytes)
    "pypi": "/pip/",  # pip's page of a PEP 503 simple index
    "hf": "/openai-community/gpt2/resolve/main/config.json",  # a small, long-lived model file
}


def probe_url(kind: str, url: str) -> str:
    return url.rstrip("/") + PROBE_PATHS[kind]


def probe_endpoints(spec: Spec) -> list[tuple[str, str, str]]:
    """(region, kind, url) for each endpoint that `source env/mirrors.sh test` probes: the
    built-in global ones and what `china` switches to."""
    china = china_profile(spec)
    out = [("global", "nix", CACHE_NIXOS_ORG), ("global", "pypi", GLOBAL_PYPI), ("global", "hf", GLOBAL_HF)]
    out += [("china", "nix", url) for url in china["nix"]]
    out += [("china", "pypi", url) for url in dict.fromkeys([china["pypi"], *CHINA_PYPI])]
    out.append(("china", "hf", china["huggingface"]))
    return out


def flake_inputs(spec: Spec) -> dict[str, str]:
    """The flake input URL of nixpkgs and home-manager, from GitHub or the China mirror."""
    table = CHINA_INPUTS if spec.mirrors.flake_inputs == "mirror" else GITHUB_INPUTS
    return {
        "nixpkgs": table["nixpkgs"].format(branch=spec.nixpkgs),
        "home-manager": table["home-manager"].format(branch=spec.branch.home_manager),
    }


def nix_caches(spec: Spec) -> list[NixCache]:
    """Extra substituters, in priority order: region mirrors, the spec's own, the CUDA cache.
    A URL listed twice keeps its first place and any key given for it (a built-in mirror
    has none of its own, so a key the spec gives for that URL must survive the merge)."""
    merged: dict[str, NixCache] = {}
    for cache in _all_caches(spec):
        first = merged.get(cache.url)
        merged[cache.url] = cache if first is None else NixCache(cache.url, first.key or cache.key)
    return list(merged.values())


def _all_caches(spec: Spec) -> list[NixCache]:
    caches: list[NixCache] = []
    if spec.mirrors.region == "china":
        caches += [NixCache(url) for url in CHINA_NIX]
    caches += list(spec.mirrors.nix)
    if spec.gpu.nvidia:
        caches.append(CUDA_CACHE)
    return caches


def nix_keys(spec: Spec) -> list[str]:
    """Every key given for any listed cache, even two keys for one URL (a key rotation)."""
    return sorted({c.key for c in _all_caches(spec) if c.key})


def pypi_index(spec: Spec) -> str | None:
    """The PyPI index baked into the stack, or None for pypi.org."""
    if spec.mirrors.pypi:
        return spec.mirrors.pypi
    if spec.mirrors.region == "china":
        return CHINA_PYPI[0]
    return None


def hf_endpoint(spec: Spec) -> str | None:
    if spec.mirrors.huggingface:
        return spec.mirrors.huggingface
    if spec.mirrors.region == "china":
        return CHINA_HF
    return None


def china_profile(spec: Spec) -> dict[str, object]:
    """What `source env/mirrors.sh china` switches to."""
    return {
        "nix": list(dict.fromkeys([*CHINA_NIX, *(c.url for c in spec.mirrors.nix)])),
        "pypi": spec.mirrors.pypi or CHINA_PYPI[0],
        "huggingface": spec.mirrors.huggingface or CHINA_HF,
    }
