# shellcheck shell=bash
# Watching processes the scripts started, and rovy-fast's start-up line.

# rf_alive PID: true while PID runs (an exited child that was not yet reaped counts as gone).
rf_alive() {
  local stat state
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  state="${stat%% *}"
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# rf_wait_ready LOG PID SECONDS: waits until the rovy-fast node PID has printed its start-up
# line `rovy-fast: ready: …` to LOG (its stderr). Only that exact line counts: an error such as
# "already in use" must never pass for a running node. Returns 1, with a one-line reason on
# stderr, if the node exits first or SECONDS pass.
rf_wait_ready() {
  local log="$1" pid="$2" deadline=$((SECONDS + $3))
  until grep -q '^rovy-fast: ready: ' "$log" 2>/dev/null; do
    if ! rf_alive "$pid"; then
      echo "rovy-fast (pid $pid) exited during start-up" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "rovy-fast (pid $pid) printed no 'rovy-fast: ready:' line within $3 s" >&2
      return 1
    fi
    sleep 0.1
  done
}
