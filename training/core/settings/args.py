"""The programs' command lines: a flag for every setting a program takes, its default from the environment, else
the table (with the program's own defaults); errors in one line naming the setting; the rules checked after."""

import argparse
import os

from training.core.settings.errors import SettingsError, fail
from training.core.settings.kinds import switch
from training.core.settings.recipes import default_of
from training.core.settings.rules import conflicts
from training.core.settings.table import of_program


class KitArgumentParser(argparse.ArgumentParser):
    """argparse that reports errors as one line naming the setting, instead of usage text plus a message."""

    def error(self, message):
        # argparse wraps our own messages as "argument --x: <message>"; ours already name the setting.
        prefix, sep, rest = message.partition(": ")
        if sep and prefix.startswith("argument ") and rest.split(" ")[0].isupper():
            message = rest
        fail(message)

    def parse_args(self, args=None, namespace=None):
        try:
            return super().parse_args(args, namespace)
        except SettingsError as err:  # raised by a type function applied to an environment default
            fail(str(err))


def _help_text(setting, default):
    source = f"env {setting.name}" if setting.env else "flag only"
    shown = f", default {default}" if default not in (None, "") else ""
    return f"{setting.help} ({source}{shown})".replace("%", "%%")


def add_settings(parser, program, overlay=None, environ=None):
    """Adds a flag for each setting `program` takes, its default from the environment, else the table."""
    environ = os.environ if environ is None else environ
    for setting in of_program(program):
        default = default_of(setting, program, overlay)
        help_text = _help_text(setting, default)
        if setting.env and environ.get(setting.name):
            default = environ[setting.name]
        if setting.is_switch:
            parser.add_argument(setting.flag(program), action="store_true",
                                default=switch(setting.name)(default or "0"), help=help_text)
        else:
            parser.add_argument(setting.flag(program), type=setting.parser(), default=default, help=help_text)
    return parser


def parser_for(program, description, overlay=None, **kwargs):
    return add_settings(KitArgumentParser(description=description, **kwargs), program, overlay)


def refuse_conflicts(program, args):
    errors = conflicts(program, args)
    if errors:
        fail(errors[0])


def parse(program, description, argv=None, overlay=None, **kwargs):
    """The program's settings from argv and the environment, every cross-setting rule checked."""
    args = parser_for(program, description, overlay, **kwargs).parse_args(argv)
    refuse_conflicts(program, args)
    return args
