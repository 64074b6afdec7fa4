#!/usr/bin/env bash
# Shared body of the stub kubectl, helm, minikube and docker that tests/helpers/stub_tools.py puts first on PATH.
# Usage (from a stub): source stub-common.sh TOOL "$@"
#
# Every call appends one line to $STUB_LOG: the tool and each argument, tab-separated, with backslash, tab and
# newline inside an argument written as \\, \t and \n (stub_tools.StubWorld.calls reads them back). Standard
# input given with `-f -` is appended to $STUB_LOG.stdin, so a test can read a manifest that was piped in.
# Answers come from $STUB_RULES, lines of `tool<TAB>glob<TAB>exit code<TAB>=stdout<TAB>=stderr`: stdout and
# stderr are printed byte for byte after printf %b (stub_tools.py escapes them and adds the `=` so that an
# empty field is not swallowed by `read`); the first rule whose glob matches the space-joined arguments wins;
# no match means exit 0 and no output.
# `kubectl ... cp POD:/dir/NAME DEST` copies $STUB_CP_DIR/NAME to DEST (printing, on stdout, the warning of the
# pod's tar as kubectl does) and fails like kubectl when it is absent.
#
# Real-kubectl cross-check: when $STUB_REAL_KUBECTL names a real kubectl, every kubectl call is also handed to
# it (same arguments, same standard input) with a kubeconfig of its own whose one cluster is an unreachable
# server on loopback, and its exit code, stdout and stderr land in $STUB_REAL_DIR (one set of files per distinct
# arguments + standard input, shared by all tests) and the set's name in $STUB_REAL_USED, for real_kubectl.py to
# judge.
# The real kubectl runs with a clean environment and is never on the script's PATH.

stub_tool="$1"
shift
# The line is written with one printf, so one write(2): the two stubs of a pipeline (`kubectl create ... |
# kubectl apply -f -`) run at once, and line pieces written separately interleaved in the log.
stub_line="${stub_tool}"
for stub_arg in "$@"; do
  stub_arg="${stub_arg//\\/\\\\}"
  stub_arg="${stub_arg//$'\t'/\\t}"
  stub_line+=$'\t'"${stub_arg//$'\n'/\\n}"
done
printf '%s\n' "${stub_line}" >>"${STUB_LOG:?STUB_LOG must be set}"

stub_args="$*"
stub_stdin=/dev/null
if [[ " ${stub_args} " == *" -f - "* || " ${stub_args} " == *" --filename=- "* ]]; then
  stub_stdin="$(mktemp "${STUB_LOG}.stdin.XXXXXX")"
  cat >"${stub_stdin}"
  cat "${stub_stdin}" >>"${STUB_LOG}.stdin"
fi

# The real kubectl's verdict on this command line (once per distinct arguments + standard input).
stub_check_real_kubectl() {
  local key dir context kubeconfig
  dir="${STUB_REAL_DIR:?STUB_REAL_DIR must be set with STUB_REAL_KUBECTL}"
  key="$({ printf '%s\0' "$@"; cat "${stub_stdin}"; } | sha1sum)"
  key="${dir}/${key%% *}"
  printf '%s\n' "${key}" >>"${STUB_REAL_USED:?}"
  [[ -e "${key}.rc" ]] && return 0
  printf '%s\0' "$@" >"${key}.args"
  # Every context the command line names exists in the throwaway kubeconfig, all on the unreachable cluster.
  local -a contexts=("${STUB_REAL_CONTEXT:-raybench}")
  local previous=""
  for arg in "$@"; do
    [[ "${previous}" == "--context" ]] && contexts+=("${arg}")
    [[ "${arg}" == --context=* ]] && contexts+=("${arg#--context=}")
    previous="${arg}"
  done
  kubeconfig="${key}.kubeconfig"
  {
    printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: unreachable\n  cluster:\n'
    printf '    server: %s\n    insecure-skip-tls-verify: true\n' "${STUB_REAL_SERVER:-https://127.0.0.1:1}"
    printf 'users:\n- name: nobody\n  user:\n    token: not-a-real-token\n'
    printf 'current-context: "%s"\ncontexts:\n' "${contexts[0]}"
    local written=$'\n'
    for context in "${contexts[@]}"; do
      [[ "${written}" == *$'\n'"${context}"$'\n'* ]] && continue
      written+="${context}"$'\n'
      printf -- '- name: "%s"\n  context:\n    cluster: unreachable\n    user: nobody\n' "${context}"
    done
  } >"${kubeconfig}"
  env -i PATH=/usr/bin:/bin HOME="${STUB_REAL_HOME:?}" KUBECONFIG="${kubeconfig}" LANG=C.UTF-8 \
    timeout "${STUB_REAL_TIMEOUT_S:-30}" "${STUB_REAL_KUBECTL}" "$@" \
    <"${stub_stdin}" >"${key}.out" 2>"${key}.err"
  printf '%s\n' "$?" >"${key}.rc.tmp"
  mv "${key}.rc.tmp" "${key}.rc"
}

if [[ "${stub_tool}" == "kubectl" && -n "${STUB_REAL_KUBECTL:-}" ]]; then
  stub_check_real_kubectl "$@"
fi

if [[ -n "${STUB_RULES:-}" && -f "${STUB_RULES}" ]]; then
  while IFS=$'\t' read -r rule_tool rule_glob rule_code rule_out rule_err; do
    [[ "${rule_tool}" == "${stub_tool}" ]] || continue
    # shellcheck disable=SC2053  # the rule is a glob on purpose
    if [[ "${stub_args}" == ${rule_glob} ]]; then
      printf '%b' "${rule_out#=}"
      printf '%b' "${rule_err#=}" >&2
      exit "${rule_code}"
    fi
  done <"${STUB_RULES}"
fi

# A client-side dry run that no rule answers prints what the real kubectl printed: it needs no server.
if [[ "${stub_tool}" == "kubectl" && -n "${STUB_REAL_KUBECTL:-}" && " ${stub_args} " == *" --dry-run=client "* ]]; then
  stub_key="$({ printf '%s\0' "$@"; cat "${stub_stdin}"; } | sha1sum)"
  stub_key="${STUB_REAL_DIR}/${stub_key%% *}"
  if [[ "$(cat "${stub_key}.rc")" == 0 ]]; then
    cat "${stub_key}.out"
    exit 0
  fi
fi

if [[ "${stub_tool}" == "kubectl" && " ${stub_args} " == *" cp "* ]]; then
  stub_src="${*: -2:1}"
  stub_dest="${*: -1}"
  if [[ -n "${STUB_CP_DIR:-}" && -f "${STUB_CP_DIR}/${stub_src##*/}" ]]; then
    cp "${STUB_CP_DIR}/${stub_src##*/}" "${stub_dest}"
    # The pod's `tar cf - /abs/path` warns, and kubectl passes the pod's stderr to its stdout (kubernetes/kubectl
    # pkg/cmd/cp/cp.go TarPipe.initReadFrom: ErrOut is o.Out; canned_answers.canned_kubectl_cp_from_pod_stdout).
    [[ "${stub_src#*:}" != /* ]] || printf '%s\n' "tar: Removing leading \`/' from member names"
    exit 0
  fi
  printf 'error: %s: No such file or directory\n' "${stub_src}" >&2
  exit 1
fi
exit 0
