#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian 12 machine (as root):
# the Python test dependencies into .venv, and the real validators through apt.
# Idempotent; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(
  nix-bin # nix-instantiate: parses and evaluates every generated .nix file
  # podman 4.3 runs the end-to-end container test: rootful, with runc (Debian's crun fails
  # on hybrid cgroup hosts), netavark + aardvark-dns for service-name DNS, iptables for ports
  podman runc conmon netavark aardvark-dns iptables
  busybox-static # the base of the test's locally built images (no registry is used)
  redis-tools    # Debian's redis-server binary (redis-check-rdb) and redis-cli, for a redis image
  ca-certificates debian-archive-keyring # the private Debian 13 download below
  redis-server # stackgen status probes a real Redis (tests/unit/test_status.py)
  postgresql # stackgen status probes a real PostgreSQL: initdb + postgres, run by the test
  curl # env/mirrors.sh test/auto probe mirrors with curl (tests/unit/test_mirrors_sh_probe.py)
  nftables # nft -c checks the fleet's firewall rules (tests/nix/test_fleet.py)
  shellcheck # lints the fleet's hosts/deploy.sh (tests/unit/test_fleet_deploy.py)
  # The processes end-to-end test (tests/e2e/test_processes_e2e.py): pg_cron is the stack's
  # preloaded extension (Debian 12 packages no pgvector); checks the rendered scripts
  postgresql-15-cron
  postgresql-server-dev-15 make gcc libc6-dev # PGXS: builds pgvector for that test (the pgvector block below)
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to apt-get install ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  # --no-install-recommends keeps crun, slirp4netns, fuse-overlayfs and uidmap out (rootless only)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# The CUDA loader test's wheels (tests/nix/loader-wheels.txt, hash-pinned, linux x86_64 only):
# one pip call per line (two versions of one package never resolve together); pip keeps files
# already downloaded, so a second run fetches nothing.
if [ "$(uname -m)" = x86_64 ]; then
  grep -v '^#' tests/nix/loader-wheels.txt | while IFS= read -r requirement; do
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux2014_x86_64 --python-version 3.11 --require-hashes \
      -r <(printf '%s\n' "$requirement") -d .venv/wheels
  done
fi

# Podman 5's quadlet generator (checks the Quadlet units) and docker-compose 2.x (checks
# compose.yaml strictly) from Debian 13: both link only against libc and run on Debian 12.
# They are downloaded with a private apt configuration (the system's sources, lists and
# caches stay untouched), unpacked, and only the two binaries are kept, in .venv/bin.
validators_ok() {
  [ -x .venv/bin/quadlet ] && [ -x .venv/bin/docker-compose ] &&
    .venv/bin/quadlet -version 2>/dev/null | grep -q '^5\.' &&
    .venv/bin/docker-compose version --short 2>/dev/null | grep -q '^2\.'
}
if ! validators_ok; then
  mirror=$( { awk '/^[[:space:]]*URIs:/{for(i=2;i<=NF;i++)print $i}' /etc/apt/sources.list.d/*.sources 2>/dev/null
              awk '/^[[:space:]]*deb[[:space:]]/{sub(/\[[^]]*\][[:space:]]*/,""); print $2}' \
                  /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; } |
            grep -E '^https?://[^[:space:]]+/debian/?$' | head -n1 || true)
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/lists/partial" "$work/debs" "$work/x"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror:-http://deb.debian.org/debian} trixie main" >"$work/sources.list"
  apt_private=(-qq -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null -o APT::Sandbox::User=root)
  apt-get "${apt_private[@]}" update
  (cd "$work/debs" && apt-get "${apt_private[@]}" download podman docker-compose >/dev/null)
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/x"; done
  install -m 0755 "$work/x/usr/libexec/podman/quadlet" .venv/bin/quadlet
  install -m 0755 "$work/x/usr/libexec/docker/cli-plugins/docker-compose" .venv/bin/docker-compose
  validators_ok || { echo "install-deps: the Debian 13 quadlet/docker-compose binaries do not run here" >&2; exit 1; }
fi

# Kubernetes manifests (the kubernetes target): kubeconform and kustomize, built with Go from
# the module proxy into .venv/bin, and Kubernetes' own schemas: the k8s.io/kubernetes module's
# api/openapi-spec/swagger.json (the module downloads but cannot be go-installed), converted by
# tests/kubeschemas.py into kubeconform's layout under .venv/k8s-schemas/<version>/.
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2 # v5.8.3 needs Go 1.27
KUBERNETES_VERSION=v1.35.0
go_bin=$(command -v go || echo /usr/local/go/bin/go)
# (a go-installed kubeconform says "development" to -v: the module version is in the binary)
built_from() { [ -x ".venv/bin/$1" ] && "$go_bin" version -m ".venv/bin/$1" 2>/dev/null | grep -qP "^\tmod\t$2\t$3\t"; }
k8s_tools_ok() {
  built_from kubeconform github.com/yannh/kubeconform "$KUBECONFORM_VERSION" &&
    built_from kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION"
}
if ! k8s_tools_ok; then
  GOBIN="$PWD/.venv/bin" "$go_bin" install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  GOBIN="$PWD/.venv/bin" "$go_bin" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  k8s_tools_ok || { echo "install-deps: kubeconform $KUBECONFORM_VERSION / kustomize $KUSTOMIZE_VERSION did not install" >&2; exit 1; }
fi
if [ ! -s ".venv/k8s-schemas/$KUBERNETES_VERSION/statefulset-apps-v1.json" ]; then
  k8s_dir=$("$go_bin" mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf ".venv/k8s-schemas/$KUBERNETES_VERSION"
  .venv/bin/python tests/kubeschemas.py "$k8s_dir/api/openapi-spec/swagger.json" ".venv/k8s-schemas/$KUBERNETES_VERSION"
fi

# process-compose for the processes target's tests (tests/unit/test_processes.py, tests/e2e/
# test_processes_e2e.py), built from the Go module proxy. The pin is v1.87.0: the proxy answers
# 403 "not available" for the v1.122.0 zip (and for v1.100-v1.121 and glippy v1.2.0, which
# v1.120 needs); v1.87.0 and all its dependencies are served. `go install pkg@version` also
# asks for the module's version list, which the proxy refuses too, so the module is downloaded
# (checksums verified against go.sum / the checksum database) and built in its own folder.
PROCESS_COMPOSE_VERSION=v1.87.0
if ! .venv/bin/process-compose version 2>/dev/null | grep -q "Version: *${PROCESS_COMPOSE_VERSION}\$"; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  out="$PWD/.venv/bin/process-compose"
  dir=$("$go" mod download -json "github.com/f1bonacc1/process-compose@${PROCESS_COMPOSE_VERSION}" |
        .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  (cd "$dir" && GOFLAGS=-mod=readonly "$go" build -buildvcs=false -trimpath \
    -ldflags "-s -w -X github.com/f1bonacc1/process-compose/src/config.Version=${PROCESS_COMPOSE_VERSION}" \
    -o "$out" .)
  .venv/bin/process-compose version 2>/dev/null | grep -q "Version: *${PROCESS_COMPOSE_VERSION}\$" ||
    { echo "install-deps: process-compose ${PROCESS_COMPOSE_VERSION} did not build" >&2; exit 1; }
fi

# pgvector for the processes end-to-end test (the stack's `extensions: [vector]`): Debian 12
# packages none, so its source comes from the Go module proxy (the zip's checksum verified
# against sum.golang.org) and is built with PGXS against Debian's PostgreSQL 15. The module
# folder is read-only: the build runs in a copy. OPTFLAGS= : portable code, not -march=native;
# with_llvm=no: no JIT bitcode (nothing here needs it, and it needs clang).
PGVECTOR_VERSION=0.8.1
pgvector_pg=/usr/lib/postgresql/15
pgvector_ok() {
  grep -qx "default_version = '${PGVECTOR_VERSION}'" /usr/share/postgresql/15/extension/vector.control 2>/dev/null &&
    [ -s "$pgvector_pg/lib/vector.so" ] && [ -s "/usr/share/postgresql/15/extension/vector--${PGVECTOR_VERSION}.sql" ]
}
if ! pgvector_ok; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install pgvector ${PGVECTOR_VERSION} into PostgreSQL 15" >&2
    exit 1
  fi
  pgvector_src=$("$go_bin" mod download -json "github.com/pgvector/pgvector@v${PGVECTOR_VERSION}" |
                 .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  (
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    cp -R "$pgvector_src/." "$build"
    chmod -R u+w "$build"
    make_args=(-C "$build" -s "PG_CONFIG=$pgvector_pg/bin/pg_config" OPTFLAGS= with_llvm=no)
    make "${make_args[@]}" >/dev/null
    make "${make_args[@]}" install >/dev/null
  )
  pgvector_ok || { echo "install-deps: pgvector ${PGVECTOR_VERSION} did not install" >&2; exit 1; }
fi
