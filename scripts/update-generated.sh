#!/usr/bin/env bash
# Regenerates every file the kit generates from its own sources, or (--check) verifies each is current, as the
# test suite does once. What it covers:
#   docs/QUICK_REFERENCE.md   the settings table          python3 -m training.core.settings docs
#   k8s/ and GETTING_STARTED  the cluster's manifests and fit table, from the pod profiles (training/cluster)
#   the quick-start blocks    README, GETTING_STARTED, EXERCISE and BENCHMARKS figures: measured, so only with
#                             --measure (scripts/measure-quick-start.sh: three quick runs, about 5 minutes)
#
# Usage: scripts/update-generated.sh [--check] [--measure]
#
# Options:
#   --check      change nothing; exit 1 naming every file that is not current
#   --measure    also re-measure the quick start and rewrite its blocks (not with --check)
#   -h, --help   this text
#
# Needs only the system python3 (the generators are standard library only), except --measure.

source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

CHECK=()
MEASURE=0
for arg in "$@"; do
  case "${arg}" in
    --check) CHECK=(--check) ;;
    --measure) MEASURE=1 ;;
    -h | --help) usage_from_header "$0" && exit 0 ;;
    *) die "${EXIT_BAD_INPUT}" "unknown option '${arg}' (allowed: --check, --measure, --help)" ;;
  esac
done
[[ ${#CHECK[@]} -eq 0 || "${MEASURE}" -eq 0 ]] || die "${EXIT_BAD_INPUT}" "--measure rewrites docs; it cannot run with --check"

stale=0
settings::py docs "${CHECK[@]}" || stale=1
python3 -m training.cluster generate "${CHECK[@]}" || stale=1
if [[ "${MEASURE}" -eq 1 ]]; then
  "${REPO_ROOT}/scripts/measure-quick-start.sh" || stale=1
fi
exit "${stale}"
