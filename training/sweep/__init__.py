"""Scaling sweeps that survive crashes: run the baseline and Ray at several worker counts, record every attempt
in an append-only ledger, resume after a kill, and write a report that compares runs fairly.

Run from the repository root (scripts/run-benchmark.sh --sweep calls this through scripts/lib/sweep.sh):
    python -m training.sweep run --sweep 1,2,3                # baseline + Ray with 1, 2 and 3 workers
    python -m training.sweep run --scales scales.yaml --repeat 3  # scale configs from a file, each run 3 times
    python -m training.sweep status --sweep 1,2,3             # the table, read from the ledger only

Modules: scales.py (what to run, run ids), ledger.py (durable progress, the lock), commands.py (the training
command of each run), runner.py (one subprocess per run), report.py (the arithmetic and report files),
status.py (the progress table), __main__.py (the command line).
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class SweepError(Exception):
    """Bad input (exit code 2), or a state the sweep refuses to act on, such as a corrupt ledger or another sweep
    holding the lock (exit code 1): one line for the user, and nothing written to the ledger."""

    def __init__(self, message, code=EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code
