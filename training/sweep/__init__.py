"""Scaling sweeps as a Temporal workflow: the baseline and Ray at several worker counts, each run once, retried
when it fails, resumed after a crash, visible in Temporal Web, then a report that compares the runs fairly.

Run from the repository root (scripts/run-benchmark.sh --sweep calls this through scripts/lib/sweep.sh):
    python -m training.sweep run --sweep 1,2,3                    # baseline + Ray with 1, 2 and 3 workers
    python -m training.sweep run --scales scales.yaml --repeat 3  # scale configs from a file, each run 3 times
    python -m training.sweep status --experiment NAME             # the table, from the workflow's query

Modules: scales.py (what to run, run ids), workflow.py (the deterministic workflow, standard library and
temporalio only), activities.py (one run as a child process, heartbeats, cancellation), server.py (the
embedded Temporal server or yours), driver.py (start or resume, the worker, status), report.py (the
arithmetic and report files), __main__.py (the command line). A run is launched by training/launch.py, as
every run of the kit is.

Nothing here may touch the file system at import: the workflow sandbox re-imports this package.
"""

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING = 3
EXIT_INFRA = 4
EXIT_INTERRUPTED = 130


class SweepError(Exception):
    """Bad input (exit code 2), a missing prerequisite (3), a server that cannot be reached (4), or a state the
    sweep refuses to act on (1): one line for the user."""

    def __init__(self, message, code=EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code
