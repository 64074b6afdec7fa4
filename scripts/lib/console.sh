#!/usr/bin/env bash
# console::run LOG CMD [ARGS...]: runs CMD with its whole output (stdout and stderr, as they come) appended to
# LOG, its stdout also on the terminal, and of its stderr only what is not a library's start-up chatter. A
# genuine error, a Python traceback or a warning of any library still reaches the terminal; TensorFlow's C++
# info lines, absl's pre-init notice and the CUDA probe of a CPU-only build do not, because on a laptop without
# a GPU "failed call to cuInit: ... CUDA error" reads as a failure when it is none. Returns CMD's exit code.
#
# console::noise_filter: the same filter on standard input (tests feed it lines).

# One extended regex per kind of chatter, each anchored on the exact shape its library prints.
CONSOLE_NOISE_PATTERNS=(
  # absl, before TensorFlow initializes its logging
  '^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$'
  # TensorFlow's C++ INFO and WARNING lines (glog format: level, date, time, thread, file:line])
  '^[IW][0-9]{4} [0-9:.]+ +[0-9]+ [A-Za-z0-9_.]+\.(cc|h):[0-9]+\] '
  # The CUDA probe that every TensorFlow build runs at import, ERROR-level on machines without a GPU
  '^E[0-9]{4} [0-9:.]+ +[0-9]+ cuda_(platform|executor|diagnostics)\.cc:[0-9]+\] '
)

console::noise_filter() {
  local joined
  joined="$(IFS='|' && echo "${CONSOLE_NOISE_PATTERNS[*]}")"
  # grep exits 1 when every line was chatter: that is success here.
  grep --line-buffered -v -E "${joined}" || [[ $? == 1 ]]
}

console::run() {
  local log="$1"
  shift
  mkdir -p "$(dirname "${log}")"
  # CMD's stderr goes through the pipe (to the log, then the filter); its stdout through fd 3 to tee.
  { "$@" 2>&1 1>&3 3>&- | tee -a "${log}" | console::noise_filter >&2; } 3>&1 | tee -a "${log}"
}
