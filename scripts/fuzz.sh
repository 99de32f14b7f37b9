#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ and runs them.
#
#   scripts/fuzz.sh [--smoke] [--execs N] [--sanitizer address|none] [TARGET…]
#
# Without TARGET, every target (`cargo fuzz list`). Each target first replays its committed
# corpus (fuzz/corpus/TARGET, every file once: the regression tests), then fuzzes for N
# executions (default 10 000 000; --smoke: 20 000, on a fresh working corpus so the pass is the
# same every time). New inputs found go to target/fuzz-corpus/TARGET, never into the committed
# seeds. Prints per target: executions, seconds, and libFuzzer's final coverage (cov: edges,
# ft: features). Any crash, assertion failure, leak or timeout fails the script (exit 1) and
# keeps the input that caused it in fuzz/artifacts/TARGET/. A target's fuzzer stopped by hand
# (SIGINT or SIGTERM to its process) prints what it ran, and the script goes on to the next.
#
# --sanitizer none builds without the address sanitizer (into target/fuzz-none, beside the
# default build): 3 to 15 times the executions per second, since the targets are safe Rust and
# ASan's stack and heap bookkeeping dominates them. Long campaigns use it; the smoke pass and
# the corpus replay in the suite keep ASan. Debug assertions stay on either way.
#
# Only a stable toolchain is needed: cargo-fuzz's sanitizer flags are unlocked with
# RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed into the build tree by install-fuzz.sh.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

execs=10000000
smoke=0
sanitizer=address
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; execs=20000; shift ;;
    --execs) execs="$2"; shift 2 ;;
    --sanitizer)
      sanitizer="$2"; shift 2
      case "$sanitizer" in address|none) ;; *) echo "fuzz.sh: --sanitizer address|none" >&2; exit 2 ;; esac ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

cargo_fuzz="$(scripts/install-fuzz.sh)"
fuzz() { RUSTC_BOOTSTRAP=1 "$cargo_fuzz" fuzz "$@" --fuzz-dir fuzz; }
build_dir=fuzz/target
build=(build --debug-assertions --sanitizer "$sanitizer")
if [ "$sanitizer" = none ]; then
  build_dir=target/fuzz-none
  build+=(--target-dir "$build_dir")
fi

echo "fuzz: building (sanitizer: $sanitizer, debug assertions)"
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(fuzz list)
  fuzz "${build[@]}" >&2
else
  for target in "${targets[@]}"; do fuzz "${build[@]}" "$target" >&2; done
fi

triple="$(rustc -vV | sed -n 's/^host: //p')"
bin_dir="$build_dir/$triple/release"
work_root="target/fuzz-corpus"
# libFuzzer's exit status when told to stop; a crash or timeout exits otherwise.
interrupted=72
[ "$smoke" -eq 1 ] && work_root="$(mktemp -d)"
failed=()
printf '%-16s %12s %9s %8s %8s\n' target executions seconds cov ft
for target in "${targets[@]}"; do
  seeds="fuzz/corpus/$target"
  work="$work_root/$target"
  artifacts="fuzz/artifacts/$target/"
  mkdir -p "$seeds" "$work" "$artifacts"
  log="$(mktemp)"
  common=(-artifact_prefix="$artifacts" -timeout=10 -print_final_stats=1
    -interrupted_exit_code="$interrupted")
  start=$(date +%s.%N)
  status=0
  # Replay: every committed input once, no mutation.
  nice -n 19 "$bin_dir/$target" "${common[@]}" -runs=0 "$seeds" >"$log" 2>&1 || status=$?
  if [ "$status" -eq 0 ]; then
    nice -n 19 "$bin_dir/$target" "${common[@]}" -runs="$execs" "$work" "$seeds" >>"$log" 2>&1 ||
      status=$?
  fi
  end=$(date +%s.%N)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  printf '%-16s %12s %9.1f %8s %8s\n' "$target" "${runs:-?}" "$(awk "BEGIN { print $end - $start }")" \
    "${cov:-?}" "${ft:-?}"
  if [ "$status" -eq "$interrupted" ]; then
    # Stopped by hand (SIGINT or SIGTERM): the row above has what ran; go on to the next target.
    echo "fuzz: $target stopped before $execs executions" >&2
  elif [ "$status" -ne 0 ]; then
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $status); its output:" >&2
    grep -A4 'panicked at\|ERROR: \|SUMMARY' "$log" | head -40 >&2 || true
    ls "$artifacts" >&2 || true
  fi
  rm -f "$log"
done
[ "$smoke" -eq 1 ] && rm -rf "$work_root"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}; inputs kept in fuzz/artifacts/" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s) passed"
