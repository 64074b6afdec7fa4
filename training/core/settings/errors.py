"""How every program of the kit reports bad input: one line naming the setting, exit code 2, no traceback."""

import argparse
import sys

EXIT_BAD_INPUT = 2


class SettingsError(argparse.ArgumentTypeError, ValueError):
    """A setting has a value outside what is allowed; the message names the setting. An ArgumentTypeError so
    argparse shows its message instead of 'invalid parse value'."""


def fail(message, code=EXIT_BAD_INPUT):
    """Prints one line and exits: how every entry point reports bad input or a known failure."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def run_program(main, kept="no results written"):
    """Runs a program's main(); Ctrl-C ends it with one line saying what was kept, and exit code 130."""
    try:
        main()
    except KeyboardInterrupt:
        fail(f"interrupted; {kept}", code=130)
