#!/usr/bin/env bash
# Deploy the fleet "ai-fleet" (rendered by stackgen 0.1.0): for each host,
#   nixos-rebuild <action> --flake <this tree>#<host> --target-host root@<address>
# which builds the host's system here, copies it over SSH and activates it there.
#
#   bash hosts/deploy.sh                 # every host, in the order below (switch)
#   bash hosts/deploy.sh db-1 app-1      # only these hosts
#   bash hosts/deploy.sh --action boot   # or test, dry-activate, build
#
# Needs: nix with flakes and nixos-rebuild here, and root SSH to each host.
# Secrets never pass through here or the Nix store: put each file on its host first
# (agenix, sops-nix, or scp; see the README, "From one machine to a fleet"):
#   gpu-1: none
#   db-1:
#     /run/secrets/postgres-password  (services.postgres.password_file)
#     /run/secrets/qdrant.env  (services.qdrant.api_key_file)
#     /run/secrets/redis-password  (services.redis.password_file)
#   app-1:
#     /run/secrets/postgres-password  (services.postgres.password_file, read by services.aidb)
#     /run/secrets/qdrant.env  (services.qdrant.api_key_file, read by services.aidb)
#     /run/secrets/redis-password  (services.redis.password_file, read by services.aidb)
set -euo pipefail

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)

# Deployment order: a host after the hosts whose services it uses.
hosts=(gpu-1 db-1 app-1)
declare -A address=(
  [gpu-1]=10.0.0.11
  [db-1]=10.0.0.12
  [app-1]=10.0.0.13
)

action=switch
chosen=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --action)
      [ "$#" -ge 2 ] || { echo "deploy.sh: --action needs switch, boot, test, dry-activate or build" >&2; exit 2; }
      action=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,9p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      if [ -z "${address[$1]+set}" ]; then
        echo "deploy.sh: no host named '$1' (hosts: ${hosts[*]})" >&2
        exit 2
      fi
      chosen+=("$1")
      shift
      ;;
  esac
done
case "$action" in
  switch | boot | test | dry-activate | build) ;;
  *) echo "deploy.sh: unknown action '$action' (switch, boot, test, dry-activate, build)" >&2; exit 2 ;;
esac
if [ "${#chosen[@]}" -eq 0 ]; then
  chosen=("${hosts[@]}")
fi

for host in "${hosts[@]}"; do
  for want in "${chosen[@]}"; do
    if [ "$want" = "$host" ]; then
      echo "==> $host (${address[$host]}): nixos-rebuild $action" >&2
      nixos-rebuild "$action" --flake "$here#$host" --target-host "root@${address[$host]}"
    fi
  done
done
