"""`hosts:`: which machine of a fleet runs which service instance (SPEC "Scale-out").

Every instance is on exactly one host; a host's address is an IP literal (each of its
services binds it, and the other hosts' firewall rules name it); `system` is one of the
spec's systems; `gpu` says whether the machine has the spec's NVIDIA GPU. Without `hosts:`
the spec describes one machine and nothing here runs.
"""

from __future__ import annotations

from typing import Any

from ..errors import did_you_mean
from . import checks as ck
from .checks import INVALID, Collector, dotted
from .model import ALL_SYSTEMS, Gpu, Host, Service

HOST_KEYS = ("address", "services", "system", "gpu")


def hosts(c: Collector, value: Any, services: dict[str, Service], declared: list[str], systems: Any, gpu: Gpu) -> dict[str, Host]:
    """The validated hosts (empty without `hosts:`). `declared`: every service name the spec
    has (also the ones with errors of their own, so that they are not reported as unknown)."""
    path = ("hosts",)
    if value is None:
        return {}
    if not isinstance(value, dict):
        c.error(path, f"hosts must be a mapping of host names, not {ck.kind_of(value)}")
        return {}
    data = value
    if not data:
        c.error(path, "hosts: is empty", "name at least one host, or remove hosts: to render for one machine", at_key=True)
        return {}
    out: dict[str, Host] = {}
    placed: dict[str, str] = {}  # service -> the host that took it first
    for name, raw in data.items():
        hpath = path + (name,)
        valid = isinstance(name, str) and ck.NAME_RE.fullmatch(name)
        if not valid:
            c.error(hpath, f"host name {name!r} is not a valid name", "use lowercase letters, digits and '-', starting with a letter, at most 63 (it becomes networking.hostName)", at_key=True)
        # checked even under a bad name: its services count as placed (no second error for them)
        host = _host(c, hpath, str(name), raw, services, declared, systems, gpu, placed)
        if host is not None and valid:
            out[name] = host
    _single_instance(c, data, services)
    for svc in services:
        if svc not in placed:
            c.error(("services", svc), f"services.{svc} is on no host of hosts:", f"add {svc} to the services of one host (hosts: {', '.join(data)})", at_key=True)
    return out


def _host(c: Collector, hpath: tuple, name: str, raw: Any, services: dict[str, Service], declared: list[str], systems: Any, gpu: Gpu, placed: dict[str, str]) -> Host | None:
    raw = ck.mapping(c, hpath, raw, HOST_KEYS)
    if raw is INVALID:
        return None
    for key in ("address", "services"):
        if key not in raw:
            c.error(hpath, f"hosts.{name} needs '{key}'", "for example {address: 10.0.0.11, services: [ollama]}", at_key=True)
    address = _address(c, hpath + ("address",), raw["address"]) if "address" in raw else INVALID
    names = ck.listof(ck.NAME, min_len=1)(c, hpath + ("services",), raw["services"]) if "services" in raw else INVALID
    system_choices = tuple(systems) if systems is not INVALID else ()
    linux = tuple(s for s in system_choices if s.endswith("-linux"))
    system = INVALID
    if "system" in raw and raw["system"] is not None:
        wanted = raw["system"]
        if isinstance(wanted, str) and wanted.endswith("-linux") and wanted not in linux and wanted in ALL_SYSTEMS:
            system = c.error(hpath + ("system",), f"hosts.{name}.system {wanted} is not one of the spec's systems", f"add {wanted} to systems (its packages are built for the systems listed there)")
        else:
            system = ck.enum(linux or ("x86_64-linux",))(c, hpath + ("system",), wanted)
    elif linux:
        system = linux[0]
    elif system_choices:
        c.error(hpath, f"hosts.{name} runs NixOS, but systems lists no Linux system", "add x86_64-linux or aarch64-linux to systems", at_key=True)
    on_gpu = _gpu(c, hpath, name, raw.get("gpu"), gpu)
    if names is not INVALID:
        for i, svc in enumerate(names):
            spath = hpath + ("services", i)
            if svc not in declared:
                c.error(spath, f"{dotted(spath)} {svc!r} is not a declared service", did_you_mean(svc, declared) or "declared: " + ", ".join(declared))
            elif svc in placed:
                c.error(spath, f"services.{svc} is on two hosts: hosts.{placed[svc]} and hosts.{name}", "a service runs on exactly one host: remove it from one of them")
            else:
                placed[svc] = name
                _gpu_fits(c, spath, name, services.get(svc), on_gpu)
    if INVALID in (address, names, system, on_gpu):
        return None
    return Host(name=name, address=address, services=tuple(names), system=system, gpu=on_gpu)


def _address(c: Collector, path: tuple, value: Any) -> Any:
    """An IP literal without a zone: it is bound by the services and named in firewall rules."""
    import ipaddress

    value = ck.string(max_len=64)(c, path, value)
    if value is INVALID:
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return c.error(path, f"{dotted(path)} {value!r} is not an IP address", "write the host's address on the fleet's network, such as 10.0.0.11 or fd00::11 (no names: the firewall rules need addresses)")
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        return c.error(path, f"{dotted(path)} {value} is not an address other hosts can reach", "write the host's own address on the fleet's network")
    return str(address)  # canonical form: the same address is written once, one way


def _gpu(c: Collector, hpath: tuple, name: str, value: Any, gpu: Gpu) -> Any:
    """true/false, or the vendor (nvidia/none); the default: the spec's gpu.vendor."""
    if value is None:
        return gpu.nvidia
    if isinstance(value, str):
        value = ck.enum(("nvidia", "none"))(c, hpath + ("gpu",), value)
        return value if value is INVALID else value == "nvidia"
    value = ck.boolean(c, hpath + ("gpu",), value)
    if value is True and not gpu.nvidia:
        return c.error(hpath + ("gpu",), f"hosts.{name}.gpu is true but gpu.vendor is none", "set gpu.vendor: nvidia (the fleet's GPUs are of one vendor), or remove gpu: true")
    return value


def _gpu_fits(c: Collector, spath: tuple, host: str, svc: Service | None, on_gpu: Any) -> None:
    """A service that asks for a GPU in the spec (`gpu: true`) is on a host that has one."""
    if svc is None or on_gpu is not False:
        return
    if c.raw(("services", svc.name, "gpu")) is not None and svc.gpu:
        c.error(spath, f"services.{svc.name} has gpu: true, but hosts.{host} has no GPU", f"move it to a host with gpu: true, or set services.{svc.name}.gpu: false")


def _single_instance(c: Collector, data: dict, services: dict[str, Service]) -> None:
    """A host runs nixpkgs' modules, as the nixos target does: a kind whose module runs one
    server may have one instance per host (another host may run the next one)."""
    from .instances import SINGLE_INSTANCE

    for name, raw in data.items():
        listed = raw.get("services") if isinstance(raw, dict) else None
        if not isinstance(listed, list):
            continue
        seen: dict[str, str] = {}
        for i, svc_name in enumerate(listed):
            svc = services.get(svc_name) if isinstance(svc_name, str) else None
            why = SINGLE_INSTANCE["nixos"].get(svc.kind) if svc else None
            if why and svc.kind in seen:
                c.error(
                    ("hosts", name, "services", i),
                    f"hosts.{name} runs a second {svc.kind}, services.{svc.name} (after services.{seen[svc.kind]}): {why}",
                    f"put services.{svc.name} on another host, or run it as kind: container",
                )
            if svc:
                seen.setdefault(svc.kind, svc.name)
