"""Scaling sweeps as a Temporal workflow (`python -m training.sweep`; how it works and why Temporal:
docs/SWEEPS.md). Nothing here may touch the file system at import: the workflow sandbox re-imports this package.
"""

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_MISSING, EXIT_INFRA, EXIT_INTERRUPTED = 1, 2, 3, 4, 130


class SweepError(Exception):
    """One line for the user, and the exit code: bad input 2, a missing prerequisite 3, a server that cannot be
    reached 4, a state the sweep refuses to act on 1."""

    def __init__(self, message, code=EXIT_BAD_INPUT):
        super().__init__(message)
        self.code = code
