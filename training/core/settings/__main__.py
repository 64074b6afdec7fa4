"""The settings table from bash, standard library only: bash runs it before any virtualenv exists, so a typo in
EPOCHS fails in a second instead of after a multi-minute install.

    python3 -m training.core.settings check --programs baseline,ray     validates the environment; one line, exit 2
    python3 -m training.core.settings defaults [--quick] [--programs P] NAME...   NAME=value lines for bash to export
    python3 -m training.core.settings argv --program ray --target pod NAME=VALUE ...   a trainer's argv, NUL-separated
    python3 -m training.core.settings table                              the Markdown table of every setting
    python3 -m training.core.settings docs [--check]                     writes (checks) it in docs/QUICK_REFERENCE.md
    python3 -m training.core.settings list --programs ...                NAME=default lines, for a script's --help

Bad input never produces a traceback: one line `error: <SETTING> ...` on stderr and exit code 2.
"""

import os
import sys

from training.core.settings import commands, docs
from training.core.settings.args import KitArgumentParser
from training.core.settings.errors import SettingsError, fail
from training.core.settings.rules import validate_environment

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _programs(text_value):
    names = [name for name in text_value.split(",") if name]
    unknown = [name for name in names if name not in commands.PROGRAMS]
    if unknown or not names:
        fail(f"--programs must list some of {', '.join(commands.PROGRAMS)}, got '{text_value}'")
    return names


def main(argv):
    parser = KitArgumentParser(prog="python3 -m training.core.settings",
                               description="The kit's settings table, from bash.")
    parser.add_argument("command", choices=("check", "defaults", "argv", "table", "list", "docs"))
    parser.add_argument("--programs", default="local")
    parser.add_argument("--program", default="ray")
    parser.add_argument("--target", default="local")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--check", action="store_true", help="docs: exit 1 if the docs' table is not current")
    parser.add_argument("values", nargs="*", help="argv: NAME=VALUE settings; defaults: NAME of settings")
    args = parser.parse_intermixed_args(argv[1:])
    try:
        if args.command == "check":
            errors = validate_environment(_programs(args.programs))
            if errors:
                fail(errors[0])
        elif args.command == "defaults":
            print("\n".join(commands.default_assignments(args.values, _programs(args.programs)[0], quick=args.quick)))
        elif args.command == "argv":
            values = dict(value.split("=", 1) for value in args.values if "=" in value)
            words = commands.trainer_argv(args.program, args.target, values)
            sys.stdout.write("".join(f"{word}\0" for word in words))
        elif args.command == "docs":
            changed = docs.update_docs(REPO_ROOT, check=args.check)
            if changed and args.check:
                fail(f"{changed} is not current: run scripts/update-generated.sh", code=1)
            print(f"{changed or docs.DOCS_FILE} {'is current' if not changed else 'rewritten'}")
        elif args.command == "list":
            sys.stdout.write(commands.listing(_programs(args.programs)))
        else:
            sys.stdout.write(docs.markdown_table())
    except SettingsError as err:
        fail(str(err))


if __name__ == "__main__":
    main(sys.argv)
