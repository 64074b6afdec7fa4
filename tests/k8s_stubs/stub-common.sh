#!/usr/bin/env bash
# Shared body of the stub kubectl, helm, minikube and docker that tests/k8s_helpers.py puts first on PATH.
# Usage (from a stub): source stub-common.sh TOOL "$@"
#
# Every call appends one line to $STUB_LOG: the tool and each argument, tab-separated. Standard input given
# with `-f -` is appended to $STUB_LOG.stdin, so a test can read a manifest that was piped in.
# Answers come from $STUB_RULES, lines of `tool<TAB>glob<TAB>exit code<TAB>stdout` (stdout with \n escapes);
# the first rule whose glob matches the space-joined arguments wins; no match means exit 0 and no output.
# `kubectl ... cp POD:/dir/NAME DEST` copies $STUB_CP_DIR/NAME to DEST and fails like kubectl when it is absent.

stub_tool="$1"
shift
{
  printf '%s' "${stub_tool}"
  printf '\t%s' "$@"
  printf '\n'
} >>"${STUB_LOG:?STUB_LOG must be set}"

stub_args="$*"
if [[ " ${stub_args} " == *" -f - "* ]]; then
  cat >>"${STUB_LOG}.stdin"
fi

if [[ -n "${STUB_RULES:-}" && -f "${STUB_RULES}" ]]; then
  while IFS=$'\t' read -r rule_tool rule_glob rule_code rule_out; do
    [[ "${rule_tool}" == "${stub_tool}" ]] || continue
    # shellcheck disable=SC2053  # the rule is a glob on purpose
    if [[ "${stub_args}" == ${rule_glob} ]]; then
      [[ -z "${rule_out}" ]] || printf '%b\n' "${rule_out}"
      exit "${rule_code}"
    fi
  done <"${STUB_RULES}"
fi

if [[ "${stub_tool}" == "kubectl" && " ${stub_args} " == *" cp "* ]]; then
  stub_src="${*: -2:1}"
  stub_dest="${*: -1}"
  if [[ -n "${STUB_CP_DIR:-}" && -f "${STUB_CP_DIR}/${stub_src##*/}" ]]; then
    cp "${STUB_CP_DIR}/${stub_src##*/}" "${stub_dest}"
    exit 0
  fi
  printf 'error: %s: No such file or directory\n' "${stub_src}" >&2
  exit 1
fi
exit 0
