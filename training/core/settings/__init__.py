"""The kit's configuration: every setting in one table, and what is made of it. Each module holds one job, and
the package imports nothing of the kit outside it (and only the standard library), so no import cycle can form
through it and bash can run it before any virtualenv exists (`python3 -m training.core.settings`, __main__.py).

    errors     one-line errors and exit codes (fail, run_program, SettingsError)
    kinds      the types of values; policies and cifar_folder the two that know a format
    table      the rows: name, type with its choices, default and why, programs, pod/results/hash flags
    recipes    --quick and the per-program defaults (default_of)
    datasets   the datasets' sizes, for checks before any data loads
    rules      rules between settings, and the derived batches and learning rate
    resolved   one run's settings resolved once (ResolvedRun): trainers, results config, workers
    args       argparse: flags with defaults from the environment, then the rules
    commands   trainer argv, bash's NAME=value defaults, --help listings
    docs       the settings table in docs/QUICK_REFERENCE.md

The names below are what programs use; import the modules for the rest.
"""

from training.core.settings.args import KitArgumentParser, parse, parser_for, refuse_conflicts
from training.core.settings.commands import PROGRAMS, TRAINERS, trainer_argv
from training.core.settings.errors import EXIT_BAD_INPUT, SettingsError, fail, run_program
from training.core.settings.recipes import PROGRAM_DEFAULTS, QUICK, default_of
from training.core.settings.resolved import ResolvedRun
from training.core.settings.rules import conflicts, validate_environment
from training.core.settings.table import (ALLREDUCE_DTYPES, BY_NAME, CHOICES, DATASETS, DEFAULTS, HASHED_SETTINGS,
                                          MUST_MATCH, SCALINGS, SETTINGS, allowed, model_options, of_program)

__all__ = ["ALLREDUCE_DTYPES", "BY_NAME", "CHOICES", "DATASETS", "DEFAULTS", "EXIT_BAD_INPUT", "HASHED_SETTINGS",
           "KitArgumentParser", "MUST_MATCH", "PROGRAMS", "PROGRAM_DEFAULTS", "QUICK", "ResolvedRun", "SCALINGS",
           "SETTINGS", "SettingsError", "TRAINERS", "allowed", "conflicts", "default_of", "fail", "model_options",
           "of_program", "parse", "parser_for", "refuse_conflicts", "run_program", "trainer_argv",
           "validate_environment"]
