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


# --- in-epoch progress: redrawn in place on a terminal, plain lines everywhere else ------------------------------

REDRAW = "\r\x1b[K"
PROGRESS = ["[ray 2w] epoch 1/2  step 10/57 17%  140 images/s  ~24s left, run ~1m20s",
            "[ray 2w] epoch 1/2  step 20/57 35%  141 images/s  ~17s left, run ~1m13s"]
EPOCH_LINE = "[ray 2w] epoch 1/2  loss 2.3100  acc 0.1000  40.1s  ~40s left"


def on_terminal(code, *args, stdin=""):
    """Runs `code` with standard output on a pseudo-terminal, as a user's shell would; returns what the terminal
    got, with the terminal's own newline translation (\\n -> \\r\\n) undone."""
    import os
    import pty

    leader, follower = pty.openpty()
    script = (f'source "{REPO_ROOT}/scripts/lib/common.sh"; source "{REPO_ROOT}/scripts/lib/console.sh"; '
              + code)
    proc = subprocess.Popen(["bash", "-c", script, "bash", *args], stdin=subprocess.PIPE, stdout=follower,
                            stderr=subprocess.PIPE, text=True)
    os.close(follower)
    proc.stdin.write(stdin)
    proc.stdin.close()
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal's other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_on_a_terminal_progress_lines_replace_each_other_and_the_epoch_line_replaces_them():
    lines = ["[kit] starting"] + PROGRESS + [EPOCH_LINE] + PROGRESS[:1]
    shown = on_terminal("console::progress_view", stdin="\n".join(lines) + "\n")
    assert shown == ("[kit] starting\n" + REDRAW + PROGRESS[0] + REDRAW + PROGRESS[1] + REDRAW + EPOCH_LINE + "\n"
                     + REDRAW + PROGRESS[0] + "\n")


def test_on_a_terminal_a_progress_line_wider_than_it_is_cut_so_that_it_never_wraps():
    wide = PROGRESS[0] + " " + "x" * 200
    shown = on_terminal("console::progress_view", stdin=wide + "\n")
    # No terminal size to read here: 80 columns, the line cut to 79.
    assert shown == REDRAW + wide[:79] + "\n"


def test_through_a_pipe_progress_lines_stay_plain_lines():
    lines = PROGRESS + [EPOCH_LINE]
    out = bash("console::progress_view", stdin="\n".join(lines) + "\n")
    assert out.stdout == "\n".join(lines) + "\n"


def test_run_on_a_terminal_redraws_while_the_log_keeps_plain_lines(tmp_path):
    log = tmp_path / "step.log"
    emit = "; ".join(f"echo {shlex.quote(line)}" for line in PROGRESS + [EPOCH_LINE])
    shown = on_terminal(f'step() {{ {emit}; }}; console::run "$1" step', str(log))
    assert shown == REDRAW + PROGRESS[0] + REDRAW + PROGRESS[1] + REDRAW + EPOCH_LINE + "\n"
    assert log.read_text() == "\n".join(PROGRESS + [EPOCH_LINE]) + "\n"


def test_the_progress_interval_is_fast_on_a_terminal_and_the_tables_elsewhere():
    show = 'console::choose_progress_interval; echo "interval=${PROGRESS_INTERVAL:-unset}"'
    assert on_terminal(show) == "interval=1\n"
    assert bash(show).stdout == "interval=unset\n"  # a pipe: the trainers use the table's default
    assert on_terminal(f"PROGRESS_INTERVAL=5; {show}") == "interval=5\n"
