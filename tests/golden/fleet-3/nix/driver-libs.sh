# Find the host's NVIDIA driver (libcuda.so.1) and put it, and only it, on LD_LIBRARY_PATH.
# Sourced by the dev shell's shellHook at every `nix develop`, so it must be fast: it only
# tests files and reads ld.so.conf.d; it never runs nvidia-smi, ldconfig or the network.
#
# On NixOS the driver has a directory of its own (/run/opengl-driver/lib). Elsewhere libcuda
# sits beside every host library built against the host's glibc (/usr/lib/x86_64-linux-gnu),
# so putting that directory on the path breaks Nix programs; the driver's own libraries are
# linked into a private directory instead, and that one goes on the path.
#
# STACKGEN_SYSROOT, when set (tests only), is prefixed to every absolute path searched.

# Set STACKGEN_DRIVER_DIR to the directory that holds libcuda.so.1, or return 1.
# (A variable rather than output: command substitution would fork a subshell.)
stackgen_find_driver() {
  local root="${STACKGEN_SYSROOT:-}" dir conf line
  STACKGEN_DRIVER_DIR=""
  for dir in /run/opengl-driver/lib /usr/lib/wsl/lib /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
    /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    if [ -e "$root$dir/libcuda.so.1" ]; then
      STACKGEN_DRIVER_DIR="$root$dir"
      return 0
    fi
  done
  # A driver installed elsewhere registers its directory with the dynamic linker.
  for conf in "$root"/etc/ld.so.conf.d/*.conf; do
    [ -r "$conf" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      line="${line%%#*}"
      line="${line#"${line%%[![:space:]]*}"}"
      line="${line%"${line##*[![:space:]]}"}"
      case "$line" in "" | include* | [!/]*) continue ;; esac
      if [ -e "$root$line/libcuda.so.1" ]; then
        STACKGEN_DRIVER_DIR="$root$line"
        return 0
      fi
    done <"$conf"
  done
  return 1
}

# Put the driver on LD_LIBRARY_PATH; $1 is the private directory for the links.
# Sets STACKGEN_DRIVER_DIR to where the driver was found (empty when none was).
# The links are remade only when the driver's files change (a stamp file records them),
# so a warm start forks no process at all.
stackgen_use_driver() {
  local links="$1" lib stamp="" found=""
  local -a libs=()
  stackgen_find_driver || return 0
  if [ "$STACKGEN_DRIVER_DIR" = "${STACKGEN_SYSROOT:-}/run/opengl-driver/lib" ]; then
    export LD_LIBRARY_PATH="$STACKGEN_DRIVER_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    return 0
  fi
  for lib in "$STACKGEN_DRIVER_DIR"/libcuda.so* "$STACKGEN_DRIVER_DIR"/libcudadebugger.so* \
    "$STACKGEN_DRIVER_DIR"/libnvidia-*.so* "$STACKGEN_DRIVER_DIR"/libnvcuvid.so* "$STACKGEN_DRIVER_DIR"/libdxcore.so*; do
    if [ -e "$lib" ]; then
      libs+=("$lib")
      found="$found ${lib##*/}"
    fi
  done
  found="$STACKGEN_DRIVER_DIR:$found"
  if [ -r "$links/.stamp" ]; then
    IFS= read -r stamp <"$links/.stamp"
  fi
  if [ "$stamp" != "$found" ]; then
    mkdir -p "$links" || return 0
    rm -f "$links"/lib*
    ln -s "${libs[@]}" "$links/" && printf '%s\n' "$found" >"$links/.stamp"
  fi
  export LD_LIBRARY_PATH="$links${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
}
