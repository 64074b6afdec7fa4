"""Reading the kit's Markdown documents for tests/scripts/test_docs.py: code blocks, inline code, links, and the commands,
paths, flags and settings they name. Pure text processing; no Ray, no TensorFlow."""

import glob
import os
import re
import shlex
import subprocess
import sys
from functools import lru_cache

from tests.helpers.common import REPO_ROOT, kit_env


# The documents a newcomer reads, in the order they read them.
DOC_FILES = ["README.md", "GETTING_STARTED.md", "AGENTS.md"] + sorted(
    os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))

# Folders of the repository whose files the documents point at. results/ is output only, so never checked.
SOURCE_DIRS = ("scripts", "training", "k8s", "docker", "tests", "docs", ".ci")
SETTING_SOURCES = ("scripts", "training", "docker", "k8s")

FENCE = re.compile(r"^```([\w-]*)\s*$")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
# A path inside the repository: starts with one of its folders (or is a top-level Markdown file).
REPO_PATH = re.compile(
    r"(?<![\w./~-])((?:" + "|".join(re.escape(d) for d in SOURCE_DIRS) + r")/[\w./-]*|[A-Z][A-Z_]*\.md)(?![\w<{*])")
SETTING_NAME = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
ASSIGNMENT = re.compile(r"(?:^|(?<=\s))([A-Z][A-Z0-9_]*)=")
FLAG = re.compile(r"^--[a-z][a-z0-9-]*$")
# Upper-case words with an underscore that are not the kit's settings: names of files, and other tools' names.
NOT_SETTINGS = {"GETTING_STARTED", "QUICK_REFERENCE"}


def read(doc):
    with open(os.path.join(REPO_ROOT, doc), encoding="utf-8") as handle:
        return handle.read()


def split_blocks(text):
    """(prose lines, [(language, [lines])]) of a Markdown text: fenced code blocks apart from the rest."""
    prose, blocks, current = [], [], None
    for line in text.splitlines():
        fence = FENCE.match(line.strip())
        if current is None and fence:
            current = (fence.group(1), [])
        elif current is not None and line.strip() == "```":
            blocks.append(current)
            current = None
        elif current is not None:
            current[1].append(line)
        else:
            prose.append(line)
    return prose, blocks


def inline_code(doc):
    prose, _ = split_blocks(read(doc))
    return [span for line in prose for span in INLINE_CODE.findall(line)]


def bash_lines(doc):
    """Command lines of the bash code blocks, comments cut off, continuation lines joined."""
    _, blocks = split_blocks(read(doc))
    lines = []
    for language, body in blocks:
        if language not in ("bash", "sh", "shell"):
            continue
        pending = ""
        for line in body:
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            lines.append(strip_comment(pending + line).strip())
            pending = ""
    return [line for line in lines if line]


def strip_comment(line):
    """Cuts a trailing `# comment` that is outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if char in "'\"" and quote in (None, char):
            quote = None if quote else char
        elif char == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def all_code_texts(doc):
    """Every piece of code a document shows: inline spans and every line of every code block."""
    _, blocks = split_blocks(read(doc))
    return inline_code(doc) + [line for _, body in blocks for line in body]


def repo_paths(doc):
    """Repository paths named anywhere in the document (prose, inline code, code blocks)."""
    found = set()
    for match in REPO_PATH.finditer(read(doc)):
        path = match.group(1).rstrip(".,:;")
        if path.endswith("/") and path.count("/") == 1 and path[:-1] in SOURCE_DIRS:
            path = path[:-1]
        found.add(path)
    return sorted(found)


def relative_links(doc):
    return [target for target in LINK.findall(read(doc))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def github_anchor(heading):
    """The id GitHub gives a Markdown heading."""
    text = re.sub(r"`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc):
    prose, _ = split_blocks(read(doc))
    return {github_anchor(line.lstrip("#")) for line in prose if re.match(r"^#{1,6} ", line)}


def settings_named(doc):
    """Upper-case names a document uses as settings: NAME=... anywhere in code, a lone `NAME` in inline code,
    and any UPPER_SNAKE name in the text (file names like GETTING_STARTED.md excepted)."""
    text = read(doc)
    names = {m.group(0) for m in SETTING_NAME.finditer(text)
             if not text[m.end():].startswith(".md") and m.group(0) not in NOT_SETTINGS}
    for code in all_code_texts(doc):
        names.update(ASSIGNMENT.findall(code))
    names.update(span for span in inline_code(doc) if re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", span))
    return sorted(names - NOT_SETTINGS)


# --- the kit's scripts and their flags ---------------------------------------------------------------------

def kit_scripts():
    """Every entry point of the kit, as a document writes it: the bash scripts by path, the Python programs by
    module (`python -m training.ray_training`)."""
    scripts = glob.glob(os.path.join(REPO_ROOT, "scripts", "*.sh")) + glob.glob(
        os.path.join(REPO_ROOT, "docker", "*.sh"))
    modules = []
    for package in ("training", "benchmarks", "scripts"):
        for path in glob.glob(os.path.join(REPO_ROOT, package, "**", "*.py"), recursive=True):
            with open(path, encoding="utf-8") as handle:
                if '__name__ == "__main__"' not in handle.read():
                    continue
            module = os.path.relpath(path, REPO_ROOT)[:-len(".py")].replace(os.sep, ".")
            modules.append(module[:-len(".__main__")] if module.endswith(".__main__") else module)
    return sorted(os.path.relpath(p, REPO_ROOT) for p in scripts) + sorted(modules)


def module_source(module):
    """The source of a module or package an entry point names, with the folder's other modules for a package
    (a flag may be declared in any of them)."""
    folder = os.path.join(REPO_ROOT, *module.split("."))
    paths = sorted(glob.glob(os.path.join(folder, "*.py"))) if os.path.isdir(folder) else [folder + ".py"]
    text = ""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text += handle.read()
    return text


@lru_cache(maxsize=None)
def script_flags_text(script):
    """What an entry point accepts, as text: its --help output and its source (and, for bash, the libraries in
    scripts/lib/ it may hand flags to)."""
    if script.endswith(".sh"):
        path = os.path.join(REPO_ROOT, script)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for lib in glob.glob(os.path.join(REPO_ROOT, "scripts", "lib", "*.sh")):
            with open(lib, encoding="utf-8") as handle:
                text += handle.read()
        command = ["bash", path, "--help"]
    else:
        text, command = module_source(script), [sys.executable, "-m", script, "--help"]
    proc = subprocess.run(command, cwd=REPO_ROOT, env=kit_env(), capture_output=True, text=True, timeout=60)
    return text + proc.stdout


def command_segments(code):
    """Splits a line of shell into simple commands (at |, &&, ||, ;) as word lists; unparsable text is skipped."""
    try:
        words = shlex.split(code, posix=True)
    except ValueError:
        return []
    segments, current = [], []
    for word in words:
        if word in ("|", "&&", "||", ";", "&"):
            segments.append(current)
            current = []
        else:
            current.append(word)
    segments.append(current)
    return [s for s in segments if s]


def kit_invocations(code):
    """(entry point, flags) for each call of a kit entry point in a line of code: a script's repository path,
    or the module of `python -m MODULE`."""
    calls = []
    scripts = set(kit_scripts())
    for words in command_segments(code):
        # Drop leading assignments, `time`, `flock LOCK`, `.venv/bin/python` and the like.
        for i, word in enumerate(words):
            script = word[2:] if word.startswith("./") else word
            if script in scripts:
                calls.append((script, [w.split("=")[0] for w in words[i + 1:] if w.startswith("--")]))
                break
            if word == "-m" and i + 1 < len(words) and words[i + 1] in scripts:
                calls.append((words[i + 1], [w.split("=")[0] for w in words[i + 2:] if w.startswith("--")]))
                break
    return calls


def local_benchmark_commands(doc):
    """The local-path commands of a document: lines of its bash blocks that run scripts/run-benchmark.sh
    --local, as (assignments dict, flags list, the line)."""
    commands = []
    for line in bash_lines(doc):
        for words in command_segments(line):
            assignments = {}
            while words and re.match(r"^[A-Z][A-Z0-9_]*=", words[0]):
                name, _, value = words.pop(0).partition("=")
                assignments[name] = value
            if words and words[0] in ("scripts/run-benchmark.sh", "./scripts/run-benchmark.sh") and "--local" in words:
                commands.append((assignments, words[1:], line))
    return commands
