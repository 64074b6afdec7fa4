"""The settings table in docs/QUICK_REFERENCE.md, made from the rows (scripts/update-generated.sh writes it, the
test suite's verify step checks it is current)."""

import os

from training.core.settings.commands import PROGRAMS
from training.core.settings.recipes import PROGRAM_DEFAULTS, QUICK
from training.core.settings.table import SETTINGS, allowed

DOCS_FILE = "docs/QUICK_REFERENCE.md"
DOCS_BLOCK = ("<!-- settings-table:begin (generated: python3 -m training.core.settings docs) -->",
              "<!-- settings-table:end -->")
# Where a default differs by program or mode, the docs say so next to the table's default.
_DEFAULT_NOTES = (("--quick", QUICK), ("tasks demo", PROGRAM_DEFAULTS["patterns"]),
                  ("benchmark --quick", PROGRAM_DEFAULTS["benchmark --quick"]),
                  ("cluster target", PROGRAM_DEFAULTS["cluster"]), ("sweep", PROGRAM_DEFAULTS["sweep"]))


def _default_cell(setting):
    cell = f"`{setting.default}`" if setting.default not in (None, "") else "unset"
    notes = [f"{label}: `{layer[setting.name]}`" for label, layer in _DEFAULT_NOTES
             if layer.get(setting.name) not in (None, setting.default)]
    return cell + (f" ({'; '.join(notes)})" if notes else "")


def markdown_table():
    """The Markdown table of every setting bash or the environment can set."""
    rows = ["| Setting | Allowed | Default | Taken by | What it does; why the default |", "|---|---|---|---|---|"]
    for setting in SETTINGS:
        if not setting.env:
            continue
        why = f" *Default: {setting.why}.*" if setting.why else ""
        match = " The baseline and the Ray run must agree on it (the comparison warns)." if setting.must_match else ""
        rows.append(f"| `{setting.name}` | {allowed(setting)} | {_default_cell(setting)} | "
                    f"{', '.join(setting.programs)} | {setting.help}.{match}{why} |")
    return "\n".join(rows) + "\n"


def docs_block():
    legend = "Taken by: " + "; ".join(f"{name} = `{where}`" for name, where in PROGRAMS.items()) + ".\n\n"
    return f"{DOCS_BLOCK[0]}\n{legend}{markdown_table()}{DOCS_BLOCK[1]}"


def with_docs_block(text):
    """`text` (QUICK_REFERENCE.md) with its settings block replaced by the table's current one."""
    start, end = text.index(DOCS_BLOCK[0]), text.index(DOCS_BLOCK[1]) + len(DOCS_BLOCK[1])
    return text[:start] + docs_block() + text[end:]


def update_docs(repo_root, check=False):
    """Writes the current block into the docs file (through a temporary file, so a reader never sees half of
    it); with check, writes nothing. Returns the path when the file was (or, checking, would be) changed."""
    path = os.path.join(repo_root, DOCS_FILE)
    with open(path, encoding="utf-8") as handle:
        old = handle.read()
    new = with_docs_block(old)
    if new == old:
        return None
    if not check:
        with open(path + ".tmp", "w", encoding="utf-8") as handle:
            handle.write(new)
        os.replace(path + ".tmp", path)
    return path
