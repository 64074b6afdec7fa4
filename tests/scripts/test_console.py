"""The benchmark's console: library start-up chatter goes to the run's log only; the kit's lines, genuine errors
and tracebacks still reach the terminal. The chatter samples are lines TensorFlow 2.21 (tensorflow-cpu) printed
on this project's machines at import, verbatim but for their timestamps."""

import shlex
import subprocess

from tests.helpers.common import REPO_ROOT

CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796222542.138540    5105 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To "
    "turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796222542.138845    5105 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796222545.234369    5105 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
]
KEPT = [
    "error: EPOCHS must be a positive integer, got 'x'",
    "Traceback (most recent call last):",
    "E0000 00:00:1796222545.234369    5105 op_kernel.cc:1857] OP_REQUIRES failed: OOM when allocating tensor",
    "UserWarning: a warning from some library",
    "2026-12-02 16:12:15,450\tWARNING worker.py:2000 -- a Ray warning about something else",
]


def bash(code, *args, stdin=None):
    script = (f'source "{REPO_ROOT}/scripts/lib/common.sh"; source "{REPO_ROOT}/scripts/lib/console.sh"; '
              + code)
    return subprocess.run(["bash", "-c", script, "bash", *args], input=stdin, capture_output=True, text=True,
                          timeout=30)


def test_filter_drops_exactly_the_chatter():
    out = bash("console::noise_filter", stdin="\n".join(CHATTER + KEPT) + "\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == KEPT


def test_filter_of_only_chatter_succeeds_with_nothing():
    out = bash("console::noise_filter", stdin="\n".join(CHATTER) + "\n")
    assert (out.returncode, out.stdout) == (0, "")


def test_run_logs_everything_shows_only_what_matters_and_keeps_the_exit_code(tmp_path):
    log = tmp_path / "logs" / "step.log"
    lines = CHATTER + KEPT
    emit = "; ".join(f"printf '%s\\n' {shlex.quote(line)} >&2" for line in lines)
    code = f'step() {{ echo "[kit] progress"; {emit}; echo "[kit] done"; return 7; }}; console::run "$1" step'
    out = bash(code, str(log))
    assert out.returncode == 7
    assert out.stdout.splitlines() == ["[kit] progress", "[kit] done"]
    assert out.stderr.splitlines() == KEPT
    logged = log.read_text().splitlines()
    assert sorted(logged) == sorted(["[kit] progress", "[kit] done"] + lines)
