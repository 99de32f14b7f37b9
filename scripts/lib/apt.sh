# shellcheck shell=bash
# rf_ensure_commands CMD=PACKAGE…: installs, with apt-get, the Debian package of every CMD not
# on PATH. Needs root only when something is missing; says what it installs on stderr.
rf_ensure_commands() {
  local pair need=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null 2>&1 || need+=("${pair#*=}")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "$(basename "$0"): missing ${need[*]}; installing them needs root: sudo $0" >&2
    return 1
  fi
  echo "$(basename "$0"): installing ${need[*]} (apt-get)" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
