# Session-scoped mirror switch for "ai-stack" (rendered by stackgen 0.1.0).
# Source it in bash or zsh; it changes only the current shell's environment and writes no
# file (nix.conf, pip.conf and the Hugging Face cache stay as they are):
#
#   source env/mirrors.sh china    # China mirrors for Nix, uv/pip and Hugging Face
#   source env/mirrors.sh global   # undo: restore what this shell had before the switch
#   source env/mirrors.sh show     # print what is in effect now
#
# Nix uses extra substituters only for trusted users (trusted-users in nix.conf); run
# `stackgen doctor` to check.

if [ -n "${BASH_VERSION:-}" ] && [ "${BASH_SOURCE[0]:-}" = "$0" ]; then
  echo "env/mirrors.sh must be sourced: source env/mirrors.sh china|global|show" >&2
  exit 2
fi

_stackgen_mirrors_save() {
  # Remember this shell's own values once, before the first switch, so `global` restores them.
  [ -n "${_STACKGEN_MIRRORS_SAVED+x}" ] && return 0
  for _stackgen_v in NIX_CONFIG UV_DEFAULT_INDEX PIP_INDEX_URL HF_ENDPOINT; do
    if eval "[ -n \"\${$_stackgen_v+x}\" ]"; then
      eval "_STACKGEN_MIRRORS_OLD_$_stackgen_v=\"\$$_stackgen_v\""
    fi
  done
  unset _stackgen_v
  _STACKGEN_MIRRORS_SAVED=1
}

_stackgen_mirrors_restore() {
  [ -n "${_STACKGEN_MIRRORS_SAVED+x}" ] || return 0
  for _stackgen_v in NIX_CONFIG UV_DEFAULT_INDEX PIP_INDEX_URL HF_ENDPOINT; do
    if eval "[ -n \"\${_STACKGEN_MIRRORS_OLD_$_stackgen_v+x}\" ]"; then
      eval "export $_stackgen_v=\"\$_STACKGEN_MIRRORS_OLD_$_stackgen_v\""
      unset "_STACKGEN_MIRRORS_OLD_$_stackgen_v"
    else
      unset "$_stackgen_v"
    fi
  done
  unset _stackgen_v _STACKGEN_MIRRORS_SAVED STACKGEN_MIRRORS
}

_stackgen_mirrors_show() {
  echo "mirrors: ${STACKGEN_MIRRORS:-global (the shell as it was)}"
  for _stackgen_v in NIX_CONFIG UV_DEFAULT_INDEX PIP_INDEX_URL HF_ENDPOINT; do
    if eval "[ -n \"\${$_stackgen_v+x}\" ]"; then
      eval "printf '  %s=%s\n' \"$_stackgen_v\" \"\$$_stackgen_v\""
    else
      printf '  %s (unset)\n' "$_stackgen_v"
    fi
  done
  unset _stackgen_v
}

case "${1:-show}" in
  china)
    _stackgen_mirrors_restore
    _stackgen_mirrors_save
    export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}"'extra-substituters = https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store https://mirrors.ustc.edu.cn/nix-channels/store https://mirror.sjtu.edu.cn/nix-channels/store https://mirror.nju.edu.cn/nix-channels/store'
    export UV_DEFAULT_INDEX=https://pypi.tuna.tsinghua.edu.cn/simple
    export PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple
    export HF_ENDPOINT=https://hf-mirror.com
    export STACKGEN_MIRRORS=china
    _stackgen_mirrors_show
    ;;
  global)
    _stackgen_mirrors_restore
    _stackgen_mirrors_show
    ;;
  show)
    _stackgen_mirrors_show
    ;;
  *)
    echo "usage: source env/mirrors.sh china|global|show" >&2
    _stackgen_mirrors_status=2
    ;;
esac
unset -f _stackgen_mirrors_save _stackgen_mirrors_restore _stackgen_mirrors_show
if [ -n "${_stackgen_mirrors_status:-}" ]; then
  unset _stackgen_mirrors_status
  return 2
fi
