"""The `fleet` target: one NixOS configuration per host of `hosts:` (SPEC "Scale-out").

For every host it renders
  nix/fleet/<host>/services.nix  the stack's NixOS module (stackgen.nixosmodule) for that
                                 host's services only, each bound to the host's address, the
                                 services it uses on other hosts reached at their addresses;
  nix/fleet/<host>/default.nix   that module, the host name, and the firewall: the services'
                                 ports open to the fleet's other hosts only (nftables rules by
                                 source address; never allowedTCPPorts, which admits anyone);
  hosts/<host>/hardware.nix      the user's file (imports the generated hardware file, boot loader, stateVersion):
                                 written once as a commented placeholder, never again
                                 (stackgen.outputs.USER_OWNED);
and hosts/deploy.sh, which runs `nixos-rebuild switch --flake .#<host> --target-host
root@<address>` for each host, in the order the hosts use each other. flake.nix gets
`nixosConfigurations.<host>` (see targets/flake.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..nixmodules import copy_modules
from ..nixosmodule import Placement, module
from ..records import replace
from ..spec.model import Gpu, Host, Service, Spec

if TYPE_CHECKING:
    from ..render import Templates

# Where the hosts' modules are, and the reusable modules they import (one copy for all).
FLEET_DIR = "nix/fleet"
MODULES_DIR = f"{FLEET_DIR}/modules/nixos"


def render(spec: Spec, tpl: "Templates") -> dict[str, str]:
    peers = placed_services(spec)
    files: dict[str, str] = {}
    imports: set[str] = set()
    for host in spec.hosts.values():
        view = host_view(spec, host, peers)
        place = Placement(host=host.name, peers=peers, clients=other_addresses(spec, host))
        text, used = module(view, tpl, place, nixpkgs_config="../../nixpkgs-config.nix", modules_dir="../modules/nixos/")
        imports.update(used)
        files[f"{FLEET_DIR}/{host.name}/services.nix"] = text
        files[f"{FLEET_DIR}/{host.name}/default.nix"] = tpl("fleet/host.nix.j2", host=host, rules=firewall_rules(spec, view, place.clients))
        files[f"hosts/{host.name}/hardware.nix"] = tpl("fleet/hardware.nix.j2", host=host, state_version=spec.branch.state_version)
    files["hosts/deploy.sh"] = tpl("fleet/deploy.sh.j2", order=deploy_order(spec), secrets=host_secrets(spec, peers))
    files.update({f"{FLEET_DIR}/modules/nixos/{name.split('/')[-1]}": text for name, text in copy_modules("nixos", sorted(imports)).items()})
    return files


def host_of(spec: Spec) -> dict[str, Host]:
    """Service name -> the host that runs it."""
    return {name: host for host in spec.hosts.values() for name in host.services}


def placed_services(spec: Spec) -> dict[str, Service]:
    """Every instance as it runs in the fleet: bound to its host's address, with a GPU only
    where its host has one. A client anywhere reaches it at that address."""
    where = host_of(spec)
    return {
        name: replace(svc, host=where[name].address, gpu=svc.gpu and where[name].gpu)
        for name, svc in spec.services.items()
    }


def host_view(spec: Spec, host: Host, peers: dict[str, Service]) -> Spec:
    """The spec as one host sees it: its own services (in the spec's order), its GPU, and no
    container targets (the fleet runs its services natively, as the nixos target does)."""
    local = {name: svc for name, svc in peers.items() if name in host.services}
    gpu = spec.gpu if host.gpu else Gpu()
    return replace(spec, services=local, gpu=gpu, targets=("fleet",), hosts={})


def other_addresses(spec: Spec, host: Host) -> tuple[str, ...]:
    return tuple(h.address for h in spec.hosts.values() if h.name != host.name)


def firewall_rules(spec: Spec, view: Spec, clients: tuple[str, ...]) -> list[str]:
    """nftables rules for networking.firewall.extraInputRules: the host's service ports,
    accepted from the other hosts' addresses only (one rule per address family)."""
    from ..services import KINDS

    ports = sorted({port for svc in view.services.values() for _, port in KINDS[svc.kind].host_ports(svc)})
    if not ports or not clients:
        return []
    rules = []
    for family, match in (("ip", lambda a: ":" not in a), ("ip6", lambda a: ":" in a)):
        sources = [a for a in clients if match(a)]
        if sources:
            rules.append(
                f"{family} saddr {{ {', '.join(sources)} }} tcp dport {{ {', '.join(map(str, ports))} }} accept"
                f' comment "{spec.name}: services for the fleet\'s hosts"'
            )
    return rules


def deploy_order(spec: Spec) -> list[Host]:
    """The hosts in the order to deploy them: a host after the hosts whose services its own
    use (data before the applications); the spec's order among equals and within a cycle."""
    where = host_of(spec)
    needs = {
        host.name: {where[u].name for s in host.services for u in spec.services[s].options.get("uses", ()) if where[u].name != host.name}
        for host in spec.hosts.values()
    }
    done: list[str] = []
    while len(done) < len(needs):
        ready = [h for h in needs if h not in done and needs[h] <= set(done)]
        done.append(ready[0] if ready else next(h for h in needs if h not in done))
    return [spec.hosts[h] for h in done]


def host_secrets(spec: Spec, peers: dict[str, Service]) -> dict[str, list[tuple[str, str]]]:
    """Host -> (path, what reads it) for every secret file that must be on it: its services'
    own, and those of the services they use (a client reads the password file too)."""
    from ..services import KINDS

    out: dict[str, list[tuple[str, str]]] = {}
    for host in spec.hosts.values():
        found: dict[str, str] = {}
        for name in host.services:
            svc = peers[name]
            for option in KINDS[svc.kind].secrets:
                if svc.options.get(option):
                    found.setdefault(svc.options[option], f"services.{name}.{option}")
            for used in (peers[u] for u in svc.options.get("uses", ())):
                for option in KINDS[used.kind].secret_variables:
                    if used.options.get(option):
                        found.setdefault(used.options[option], f"services.{used.name}.{option}, read by services.{name}")
        out[host.name] = sorted(found.items())
    return out
