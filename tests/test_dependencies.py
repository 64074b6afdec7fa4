"""How the kit's modules depend on each other: no import cycle (every import statement, those inside functions
too), the settings package at the bottom importing nothing else of the kit, packages that depend one way, no
module reaching into another's private names, small files, and bash that takes its defaults from the table."""

import ast
import glob
import os
import re
import sys

import pytest

from tests.helpers.common import REPO_ROOT
from training.core import settings

PACKAGES = ("training", "benchmarks", "tests")
MAX_LINES = 500


def _modules():
    """Module name -> path of every Python file of the kit."""
    found = {}
    for package in PACKAGES:
        for path in glob.glob(os.path.join(REPO_ROOT, package, "**", "*.py"), recursive=True):
            name = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
            found[name[:-len(".__init__")] if name.endswith(".__init__") else name] = path
    return found


MODULES = _modules()


def _imports(name, path):
    """The kit modules `name` imports, anywhere in its text. `from P import M` is an import of P.M when M is a
    module (as the import system resolves it), else of P."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:
                    yield full
                elif base in MODULES:
                    yield base


GRAPH = {name: set(_imports(name, path)) - {name} for name, path in MODULES.items()}


def _cycle_from(start):
    """A path start -> ... -> start, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for target in GRAPH[node]:
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_no_import_cycle_among_the_kits_modules():
    cycles = [" -> ".join(cycle) for cycle in map(_cycle_from, sorted(GRAPH)) if cycle]
    assert cycles == []


def test_the_settings_package_imports_only_the_standard_library_and_itself():
    outside = sorted({f"{name} imports {target}" for name in GRAPH if name.startswith("training.core.settings")
                      for target in GRAPH[name] if not target.startswith("training.core.settings")})
    assert outside == []
    for name, path in MODULES.items():
        if name.startswith("training.core.settings"):
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), path)
            roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
            roots |= {node.module.split(".")[0] for node in ast.walk(tree)
                      if isinstance(node, ast.ImportFrom) and node.module and not node.level}
            assert roots - set(sys.stdlib_module_names) - {"training"} == set(), name


def _package(name):
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "training" and name in MODULES and len(parts) > 2 else None


@pytest.mark.parametrize("lower, upper", [("core", "checkpointing"), ("core", "distributed"),
                                          ("checkpointing", "distributed"), ("core", "sweep")])
def test_packages_depend_one_way(lower, upper):
    back = sorted(f"{name} imports {target}" for name in GRAPH if name.startswith(f"training.{lower}.")
                  for target in GRAPH[name] if target.startswith(f"training.{upper}"))
    assert back == []


def test_no_module_uses_another_modules_private_names():
    reaches = []
    for name, path in MODULES.items():
        if name.startswith("tests."):
            continue  # a test may look inside what it tests
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        imported = {alias.asname or alias.name.split(".")[-1] for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names
                    if (f"{getattr(node, 'module', None)}.{alias.name}" in MODULES or alias.name in MODULES)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                reaches.append(f"{name}: {node.value.id}.{node.attr}")
            if isinstance(node, ast.ImportFrom) and node.module in MODULES:
                reaches += [f"{name}: from {node.module} import {a.name}" for a in node.names
                            if a.name.startswith("_") and a.name != "__version__"]
    assert reaches == []


def test_no_python_file_is_over_500_lines():
    long_files = {}
    for path in MODULES.values():
        with open(path, encoding="utf-8") as handle:
            count = sum(1 for _ in handle)
        if count > MAX_LINES:
            long_files[os.path.relpath(path, REPO_ROOT)] = count
    assert long_files == {}


def test_scripts_hold_only_bash():
    python = glob.glob(os.path.join(REPO_ROOT, "scripts", "**", "*.py"), recursive=True)
    assert [os.path.relpath(path, REPO_ROOT) for path in python] == []


def test_bash_defines_no_default_the_settings_table_owns():
    """`${NAME:-value}` for a setting of the table would be a second default that can drift from the row;
    bash asks the table (settings::export_defaults) instead."""
    # `${NAME:-}` only reads an unset NAME as empty, and `${NAME:-${value}}` takes a value found at run time.
    pattern = re.compile(r"\$\{(\w+):-(?![}$])")
    owned = []
    for path in glob.glob(os.path.join(REPO_ROOT, "scripts", "**", "*.sh"), recursive=True) + \
            glob.glob(os.path.join(REPO_ROOT, "docker", "*.sh")):
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.lstrip().startswith("#"):
                    continue
                owned += [f"{os.path.relpath(path, REPO_ROOT)}:{number}: {name}" for name in pattern.findall(line)
                          if name in settings.BY_NAME]
    assert owned == []
