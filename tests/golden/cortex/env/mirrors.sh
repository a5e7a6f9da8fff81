# Session-scoped mirror switch for "cortex" (rendered by stackgen 0.1.0).
# Source it in bash or zsh; it changes only the current shell's environment and writes no
# file (nix.conf, pip.conf and the Hugging Face cache stay as they are):
#
#   source env/mirrors.sh china    # China mirrors for Nix, uv/pip and Hugging Face
#   source env/mirrors.sh global   # undo: restore what this shell had before the switch
#   source env/mirrors.sh show     # print what is in effect now
#   source env/mirrors.sh test     # probe every mirror of both regions (curl), print a table
#   source env/mirrors.sh auto     # probe, then switch to china or global, whichever serves better
#
# `test` and `auto` need curl; each probe is bounded by STACKGEN_MIRRORS_TIMEOUT seconds
# (default 5) and all run at once, so they take about that long at worst.
#
# Nix uses extra substituters only for trusted users (trusted-users in nix.conf); run
# `stackgen doctor` to check.

if [ -n "${BASH_VERSION:-}" ] && [ "${BASH_SOURCE[0]:-}" = "$0" ]; then
  echo "env/mirrors.sh must be sourced: source env/mirrors.sh china|global|show|test|auto" >&2
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

_stackgen_mirrors_china() {
  _stackgen_mirrors_restore
  _stackgen_mirrors_save
  export NIX_CONFIG="${NIX_CONFIG:+$NIX_CONFIG
}"'extra-substituters = https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store https://mirrors.ustc.edu.cn/nix-channels/store https://mirror.sjtu.edu.cn/nix-channels/store https://mirror.nju.edu.cn/nix-channels/store https://mirrors.bfsu.edu.cn/nix-channels/store'
  export UV_DEFAULT_INDEX=https://pypi.tuna.tsinghua.edu.cn/simple
  export PIP_INDEX_URL=https://pypi.tuna.tsinghua.edu.cn/simple
  export HF_ENDPOINT=https://hf-mirror.com
  export STACKGEN_MIRRORS=china
  _stackgen_mirrors_show
}

_stackgen_mirrors_endpoints() {
  # region kind url-to-probe shown-url, one endpoint a line
  printf '%s %s %s %s\n' global nix https://cache.nixos.org/nix-cache-info https://cache.nixos.org
  printf '%s %s %s %s\n' global pypi https://pypi.org/simple/pip/ https://pypi.org/simple
  printf '%s %s %s %s\n' global hf https://huggingface.co/openai-community/gpt2/resolve/main/config.json https://huggingface.co
  printf '%s %s %s %s\n' china nix https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store/nix-cache-info https://mirrors.tuna.tsinghua.edu.cn/nix-channels/store
  printf '%s %s %s %s\n' china nix https://mirrors.ustc.edu.cn/nix-channels/store/nix-cache-info https://mirrors.ustc.edu.cn/nix-channels/store
  printf '%s %s %s %s\n' china nix https://mirror.sjtu.edu.cn/nix-channels/store/nix-cache-info https://mirror.sjtu.edu.cn/nix-channels/store
  printf '%s %s %s %s\n' china nix https://mirror.nju.edu.cn/nix-channels/store/nix-cache-info https://mirror.nju.edu.cn/nix-channels/store
  printf '%s %s %s %s\n' china nix https://mirrors.bfsu.edu.cn/nix-channels/store/nix-cache-info https://mirrors.bfsu.edu.cn/nix-channels/store
  printf '%s %s %s %s\n' china pypi https://pypi.tuna.tsinghua.edu.cn/simple/pip/ https://pypi.tuna.tsinghua.edu.cn/simple
  printf '%s %s %s %s\n' china pypi https://mirrors.aliyun.com/pypi/simple/pip/ https://mirrors.aliyun.com/pypi/simple/
  printf '%s %s %s %s\n' china pypi https://pypi.mirrors.ustc.edu.cn/simple/pip/ https://pypi.mirrors.ustc.edu.cn/simple/
  printf '%s %s %s %s\n' china hf https://hf-mirror.com/openai-community/gpt2/resolve/main/config.json https://hf-mirror.com
}

_stackgen_mirrors_probe() {
  # Probe every endpoint at once; print "region kind failed ms url" a line, answers before failures
  # (failed: 0 when the endpoint answered 200, ms: how long that took).
  if ! command -v curl >/dev/null 2>&1; then
    echo "env/mirrors.sh: test and auto need curl, which is not installed" >&2
    return 1
  fi
  _stackgen_mirrors_endpoints | (
    while read -r _r _k _p _u; do
      {
        _t=$(curl --globoff -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time "${STACKGEN_MIRRORS_TIMEOUT:-5}" \
          --connect-timeout "${STACKGEN_MIRRORS_TIMEOUT:-5}" --max-filesize 1048576 --max-redirs 3 -L "$_p" 2>/dev/null)
        case "$_t" in
          "200 "*) printf '%s %s 0 %s %s\n' "$_r" "$_k" "$(printf '%s' "${_t#200 }" | awk '{ printf "%d", $1 * 1000 }')" "$_u" ;;
          *) printf '%s %s 1 0 %s\n' "$_r" "$_k" "$_u" ;;
        esac
      } &
    done
    wait
  ) | sort -k1,1r -k2,2 -k3,3n -k4,4n -k5,5
}

_stackgen_mirrors_table() {
  awk '{ printf "  %-7s %-5s %9s  %s\n", $1, $2, ($3 == 0 ? $4 " ms" : "FAIL"), $5 }'
}

_stackgen_mirrors_choose() {
  # china or global: the region with more kinds (nix, pypi, hf) answering wins; on a tie, the
  # smaller sum of each kind's fastest answer. A tie on both keeps global.
  awk '
    $3 == 0 { k = $1 " " $2; if (!(k in best) || $4 + 0 < best[k]) best[k] = $4 + 0 }
    END {
      for (k in best) { split(k, p, " "); n[p[1]]++; t[p[1]] += best[k] }
      if (n["china"] + 0 > n["global"] + 0 || (n["china"] + 0 == n["global"] + 0 && n["china"] > 0 && t["china"] < t["global"])) print "china"
      else print "global"
    }
  '
}

case "${1:-show}" in
  china)
    _stackgen_mirrors_china
    ;;
  global)
    _stackgen_mirrors_restore
    _stackgen_mirrors_show
    ;;
  show)
    _stackgen_mirrors_show
    ;;
  test)
    if _stackgen_mirrors_results=$(_stackgen_mirrors_probe); then
      echo "mirrors: probed in ${STACKGEN_MIRRORS_TIMEOUT:-5} s at most (region kind latency endpoint)"
      printf '%s\n' "$_stackgen_mirrors_results" | _stackgen_mirrors_table
      echo "auto would choose: $(printf '%s\n' "$_stackgen_mirrors_results" | _stackgen_mirrors_choose)"
    else
      _stackgen_mirrors_status=1
    fi
    unset _stackgen_mirrors_results
    ;;
  auto)
    if _stackgen_mirrors_results=$(_stackgen_mirrors_probe); then
      printf '%s\n' "$_stackgen_mirrors_results" | _stackgen_mirrors_table
      if [ "$(printf '%s\n' "$_stackgen_mirrors_results" | _stackgen_mirrors_choose)" = china ]; then
        echo "auto: china serves better from here"
        _stackgen_mirrors_china
      else
        echo "auto: global serves better from here"
        _stackgen_mirrors_restore
        _stackgen_mirrors_show
      fi
    else
      _stackgen_mirrors_status=1
    fi
    unset _stackgen_mirrors_results
    ;;
  *)
    echo "usage: source env/mirrors.sh china|global|show|test|auto" >&2
    _stackgen_mirrors_status=2
    ;;
esac
unset -f _stackgen_mirrors_save _stackgen_mirrors_restore _stackgen_mirrors_show _stackgen_mirrors_china \
  _stackgen_mirrors_endpoints _stackgen_mirrors_probe _stackgen_mirrors_table _stackgen_mirrors_choose
if [ -n "${_stackgen_mirrors_status:-}" ]; then
  # the status is a number this file set; eval expands it before the unset runs
  eval "unset _stackgen_mirrors_status; return $_stackgen_mirrors_status"
fi
