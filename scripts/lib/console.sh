#!/usr/bin/env bash
# console::run LOG CMD [ARGS...]: runs CMD with its whole output (stdout and stderr, as they come) appended to
# LOG, its stdout also on the terminal, and of its stderr only what is not a library's start-up chatter. A
# genuine error, a Python traceback or a warning of any library still reaches the terminal; TensorFlow's C++
# info lines, absl's pre-init notice and the CUDA probe of a CPU-only build do not, because on a laptop without
# a GPU "failed call to cuInit: ... CUDA error" reads as a failure when it is none. Returns CMD's exit code.
#
# In-epoch progress: the trainers print a plain progress line every PROGRESS_INTERVAL seconds (the log file keeps
# them all). When the user's terminal is a tty, console::run redraws them in place, one line per run that the
# epoch's summary line then replaces, as Keras' bar does; a pipe or a file gets them as they are.
#
# console::noise_filter: the same filter on standard input (tests feed it lines).
# console::progress_view: the in-place redrawing on standard input, when standard output is a tty.
# console::choose_progress_interval: PROGRESS_INTERVAL=1 where unset and standard output is a tty.

# One extended regex per kind of chatter, each anchored on the exact shape its library prints.
CONSOLE_NOISE_PATTERNS=(
  # absl, before TensorFlow initializes its logging
  '^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$'
  # TensorFlow's C++ INFO and WARNING lines (glog format: level, date, time, thread, file:line])
  '^[IW][0-9]{4} [0-9:.]+ +[0-9]+ [A-Za-z0-9_.]+\.(cc|h):[0-9]+\] '
  # The CUDA probe that every TensorFlow build runs at import, ERROR-level on machines without a GPU
  '^E[0-9]{4} [0-9:.]+ +[0-9]+ cuda_(platform|executor|diagnostics)\.cc:[0-9]+\] '
)

# training/core/step_progress.py PROGRESS_PATTERN (a test holds them equal): the lines that may be redrawn.
CONSOLE_PROGRESS_PATTERN='^\[[^]]+\] (epoch [0-9]+/[0-9]+  step [0-9]+/[0-9]+|starting the workers: |scoring the test set: )'
# On a terminal a line is redrawn in place, so a fast one costs nothing to read; in a log it would be noise.
CONSOLE_TTY_PROGRESS_INTERVAL=1
# Carriage return and erase-to-end-of-line: back to the start of the progress line, and clear it.
CONSOLE_REDRAW=$'\r\e[K'

console::choose_progress_interval() {
  if [[ -z "${PROGRESS_INTERVAL:-}" && -t 1 ]]; then export PROGRESS_INTERVAL="${CONSOLE_TTY_PROGRESS_INTERVAL}"; fi
}

console::_columns() {
  local size
  size="$(stty size 2>/dev/null </dev/tty)" || size=""
  echo "${size#* }" | grep -E '^[0-9]+$' || echo 80
}

console::progress_view() {
  if [[ ! -t 1 ]]; then
    cat
    return
  fi
  local line pending=0 width
  # A line longer than the terminal wraps, and a carriage return would then redraw only its last row.
  width=$(($(console::_columns) - 1))
  while IFS= read -r line || [[ -n "${line}" ]]; do
    if [[ "${line}" =~ ${CONSOLE_PROGRESS_PATTERN} ]]; then
      printf '%s%s' "${CONSOLE_REDRAW}" "${line:0:${width}}"
      pending=1
    else
      if ((pending)); then printf '%s' "${CONSOLE_REDRAW}"; fi
      printf '%s\n' "${line}"
      pending=0
    fi
  done
  if ((pending)); then printf '\n'; fi
}

# A stderr line on a terminal first clears a progress line that is waiting there (the next one is drawn below).
console::_stderr_view() {
  if [[ -t 1 ]]; then sed -u "s/^/${CONSOLE_REDRAW}/"; else cat; fi
}

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
  { "$@" 2>&1 1>&3 3>&- | tee -a "${log}" | console::noise_filter | console::_stderr_view >&2; } 3>&1 |
    tee -a "${log}" | console::progress_view
}
