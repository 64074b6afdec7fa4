"""The documents tell the truth about the kit: every script, file, flag and setting they name exists, every
relative link resolves, and the local-path commands of README and GETTING_STARTED run as written.

Fast except test_readme_quick_start_runs (slow: a real, tiny benchmark run)."""

import json
import os
import re
import shlex
import subprocess

import pytest

from tests.helpers import docs as docs

from benchmarks import quick_start_docs
from tests.helpers.common import program
from tests.helpers.docs import REPO_ROOT

REQUIRED_DOCS = ["README.md", "GETTING_STARTED.md", "AGENTS.md", "docs/EXERCISE.md", "docs/QUICK_REFERENCE.md"]
# What the slow test changes, through the environment only, so that the command as written finishes in about a
# minute: the README's own words stay as they are.
TINY_SETTINGS = {"EPOCHS": "1", "TRAIN_SAMPLES": "256", "TEST_SAMPLES": "100"}


def present_docs():
    return [d for d in docs.DOC_FILES if os.path.exists(os.path.join(REPO_ROOT, d))]


@pytest.mark.parametrize("doc", REQUIRED_DOCS)
def test_document_exists(doc):
    assert os.path.isfile(os.path.join(REPO_ROOT, doc)), f"{doc} is missing"


@pytest.mark.parametrize("doc", present_docs())
def test_named_paths_exist(doc):
    missing = []
    for path in docs.repo_paths(doc):
        candidates = [path] if "/" in path else [path, os.path.join("docs", path)]
        if not any(os.path.exists(os.path.join(REPO_ROOT, c)) for c in candidates):
            missing.append(path)
    assert not missing, f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", present_docs())
def test_relative_links_resolve(doc):
    broken = []
    folder = os.path.dirname(os.path.join(REPO_ROOT, doc))
    for target in docs.relative_links(doc):
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(REPO_ROOT, doc)
        if not os.path.exists(resolved):
            broken.append(target)
        elif anchor and resolved.endswith(".md"):
            if anchor not in docs.anchors(os.path.relpath(resolved, REPO_ROOT)):
                broken.append(target)
    assert not broken, f"{doc} has links that lead nowhere: {broken}"


def all_scripts_text():
    return "\n".join(docs.script_flags_text(s) for s in docs.kit_scripts())


@pytest.mark.parametrize("doc", present_docs())
def test_flags_of_kit_scripts_exist(doc):
    unknown = []
    for code in docs.all_code_texts(doc):
        for script, flags in docs.kit_invocations(code):
            text = docs.script_flags_text(script)
            unknown += [f"{script} {flag}" for flag in flags
                        if not re.search(re.escape(flag) + r"(?![\w-])", text)]
    # A flag named on its own (`--quick`) must belong to some kit script.
    lone = [span for span in docs.inline_code(doc) if docs.FLAG.match(span.split()[0]) and len(span.split()) <= 2]
    if lone:
        text = all_scripts_text()
        unknown += [span for span in lone if not re.search(re.escape(span.split()[0]) + r"(?![\w-])", text)]
    assert not unknown, f"{doc} names flags no kit script accepts: {unknown}"


def source_text():
    chunks = []
    for folder in docs.SETTING_SOURCES:
        for root, _, files in os.walk(os.path.join(REPO_ROOT, folder)):
            for name in files:
                if name.endswith((".py", ".sh", ".yaml", ".txt")) or name == "Dockerfile":
                    with open(os.path.join(root, name), encoding="utf-8", errors="replace") as handle:
                        chunks.append(handle.read())
    return "\n".join(chunks)


@pytest.mark.parametrize("doc", present_docs())
def test_settings_exist(doc):
    text = source_text()
    unknown = [name for name in docs.settings_named(doc) if not re.search(rf"\b{name}\b", text)]
    assert not unknown, f"{doc} names settings that no script or training module reads: {unknown}"


def benchmark_flags():
    """The flags scripts/run-benchmark.sh parses: the words of its parse_flags case arms."""
    with open(os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), encoding="utf-8") as handle:
        source = handle.read()
    return set(re.findall(r"(--[a-z][a-z-]*)\b", source.split("parse_flags()", 1)[1].split("\n}\n", 1)[0]))


@pytest.mark.parametrize("doc", ["README.md", "GETTING_STARTED.md"])
def test_local_path_commands_are_valid(doc):
    commands = docs.local_benchmark_commands(doc)
    assert commands, f"{doc} shows no `scripts/run-benchmark.sh --local` command"
    accepted = benchmark_flags()
    for assignments, words, line in commands:
        flags = [w for w in words if w.startswith("-")]
        assert set(flags) <= accepted, f"{doc}: `{line}` uses flags run-benchmark.sh does not parse"
        env = {k: v for k, v in os.environ.items() if k not in TINY_SETTINGS}
        env.update(assignments)
        proc = subprocess.run([*program("training.core.settings"), "check"],
                              cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, f"{doc}: the settings of `{line}` are refused: {proc.stderr.strip()}"


def readme_quick_start():
    """The first local-path command in the README's Quick start section."""
    text = docs.read("README.md")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        if line.strip().startswith("scripts/run-benchmark.sh --local"):
            return docs.strip_comment(line).strip()
    raise AssertionError("the README's Quick start has no `scripts/run-benchmark.sh --local` line")


def test_quick_start_is_one_of_the_checked_commands():
    assert readme_quick_start() in [line for _, _, line in docs.local_benchmark_commands("README.md")]


@pytest.mark.slow
def test_readme_quick_start_runs(tmp_path):
    command = readme_quick_start()
    env = dict(os.environ, RESULTS_DIR=str(tmp_path / "results"), **TINY_SETTINGS)
    for name in ("DATASET", "DATA_DIR", "NUM_WORKERS", "CPUS_PER_WORKER", "BATCH_SIZE", "RAY_ADDRESS"):
        env.pop(name, None)
    if "--quick" not in command:
        env["DATASET"] = "digits"  # offline: CI cannot download CIFAR-10
    proc = subprocess.run(shlex.split(command), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    comparison = tmp_path / "results" / "comparison.json"
    assert comparison.is_file(), proc.stdout[-3000:]
    block = json.loads(comparison.read_text())["comparison"]
    assert block["num_workers"] == 2 and block["speedup"] > 0
    assert "Speedup" in proc.stdout
    # A clean console: TensorFlow's and absl's start-up lines went to the run's logs, not to the terminal.
    assert quick_start_docs.chatter_lines(proc.stdout + proc.stderr) == 0, (proc.stdout + proc.stderr)[-3000:]
    (run_dir,) = (tmp_path / "results" / "runs").iterdir()
    logs = {p.name for p in (run_dir / "logs").iterdir()}
    assert {"baseline.log", "baseline-equal-resources.log", "ray.log", "compare.log"} <= logs


def test_every_script_the_docs_tell_users_to_run_is_executable():
    """The docs show `scripts/NAME.sh` as a command to type: a new script must carry its executable bit."""
    named = set()
    for doc in present_docs():
        named |= set(re.findall(r"\b((?:scripts|docker)/[\w-]+\.sh)\b", docs.read(doc)))
    assert "scripts/measure-quick-start.sh" in named
    not_executable = [p for p in sorted(named) if os.path.exists(os.path.join(REPO_ROOT, p))
                      and not os.access(os.path.join(REPO_ROOT, p), os.X_OK)]
    assert not_executable == []
