"""What the settings become outside Python: a trainer's command line (the one builder for this machine and the
pods), NAME=value lines for bash to export, and a script's --help listing."""

import os
import textwrap

from training.core.settings.errors import SettingsError
from training.core.settings.recipes import QUICK, default_of
from training.core.settings.rules import pod_refusal
from training.core.settings.table import BY_NAME, SETTINGS, allowed, of_program

# How each program is started from the repository root, and how the builder names it.
PROGRAMS = {
    "baseline": "python -m training.baseline_training",
    "ray": "python -m training.ray_training",
    "patterns": "python -m training.walkthrough.ray_patterns",
    "simulate": "python -m training.checkpointing.simulate_checkpoints",
    "compare": "python -m training.compare",
    "sweep": "python -m training.sweep",
    "benchmark": "scripts/benchmark.sh",
    "cluster": "scripts/run-benchmark.sh (cluster target)",
    "local": "scripts/run-benchmark.sh --local",
}
TRAINERS = ("baseline", "ray")
TARGETS = ("local", "pod")


def quick_assignments(environ=None):
    """NAME=value lines for the QUICK settings the environment leaves unset, for bash to export."""
    environ = os.environ if environ is None else environ
    return [f"{name}={value}" for name, value in QUICK.items() if not environ.get(name)]


def default_assignments(names, program=None, environ=None, quick=False):
    """NAME=value for the settings bash reads itself (`names`) that the environment leaves unset: the quick
    recipe's first (with --quick), then the table's defaults for `program`."""
    environ = dict(os.environ if environ is None else environ)
    lines = quick_assignments(environ) if quick else []
    environ.update(line.split("=", 1) for line in lines)
    for name in names:
        if name not in BY_NAME:
            raise SettingsError(f"no setting {name} in the table")
        default = default_of(BY_NAME[name], program)
        if default is not None and not environ.get(name):
            lines.append(f"{name}={default}")
    return lines


def trainer_argv(program, target="local", values=None, environ=None):
    """The argv of one training run, without the interpreter: `-m` and the trainer's module, then a flag for
    every setting of the program that `values` (NAME -> value, first) or the environment sets. The pods see no
    environment of this machine, so everything reaches them as a flag; a setting they cannot take is refused
    here, in one line."""
    if program not in TRAINERS:
        raise SettingsError(f"--program must be one of {', '.join(TRAINERS)}, got '{program}'")
    if target not in TARGETS:
        raise SettingsError(f"--target must be one of {', '.join(TARGETS)}, got '{target}'")
    environ = os.environ if environ is None else environ
    values = {name: str(value) for name, value in (values or {}).items()}
    foreign = sorted(set(values) - {setting.name for setting in of_program(program)})
    if foreign:
        raise SettingsError(f"{foreign[0]} is not a setting of {PROGRAMS[program]}")
    argv = PROGRAMS[program].split()[1:]
    for setting in of_program(program):
        given = setting.name in values
        value = values[setting.name] if given else (environ.get(setting.name, "") if setting.env else "")
        if value == "":
            continue
        if target == "pod" and not given and setting.pod == "refuse":
            raise SettingsError(pod_refusal(setting))
        if target == "pod" and not given and setting.pod == "local":
            continue
        parsed = setting.parser()(value)
        if setting.is_switch:
            argv += [setting.flag(program)] if parsed else []
        else:
            argv += [setting.flag(program), value]
    return argv


def listing(programs):
    """The settings of `programs`, one per line as NAME=default, for a script's --help."""
    lines = []
    for setting in (s for s in SETTINGS if s.env and any(p in s.programs for p in programs)):
        lines.append(f"  {setting.name}={setting.default or ''}")
        lines += textwrap.wrap(f"{setting.help} (allowed: {allowed(setting)})", 110, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    return "\n".join(lines) + "\n"
