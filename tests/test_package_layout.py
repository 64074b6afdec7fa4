"""The package layout: every Python file imports the kit as packages, nothing rewrites the import path, the
tests mirror the packages, and what bash runs before .venv exists needs no installed package."""

import ast
import glob
import json
import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT

PACKAGES = ("training", "benchmarks", "tests")


def _python_files():
    for package in PACKAGES:
        yield from glob.glob(os.path.join(REPO_ROOT, package, "**", "*.py"), recursive=True)


def _touches_sys_path(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
            return True
    return False


def test_no_module_edits_the_import_path():
    offenders = []
    for path in _python_files():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        if _touches_sys_path(tree):
            offenders.append(os.path.relpath(path, REPO_ROOT))
    assert offenders == []


def test_scripts_holds_bash_only():
    """scripts/ is the bash entry points and their library; Python the scripts run lives in the packages."""
    python = [os.path.relpath(path, REPO_ROOT)
              for path in glob.glob(os.path.join(REPO_ROOT, "scripts", "**", "*.py"), recursive=True)]
    assert python == []


def test_every_folder_with_python_is_a_package():
    missing = sorted({os.path.relpath(os.path.dirname(path), REPO_ROOT) for path in _python_files()
                      if not os.path.exists(os.path.join(os.path.dirname(path), "__init__.py"))})
    assert missing == []


def test_the_kits_own_imports_name_a_module_that_exists():
    """`from training.core import settings` style everywhere: a flat `import settings` would only have worked
    with a path edit, and a moved module would leave a dangling import behind."""
    dangling = []
    for path in _python_files():
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] not in PACKAGES:
                    continue
                target = os.path.join(REPO_ROOT, *name.split("."))
                if not (os.path.exists(target + ".py") or os.path.isdir(target)) and name == names[0]:
                    dangling.append(f"{os.path.relpath(path, REPO_ROOT)}: {name}")
    assert dangling == []


@pytest.mark.parametrize("package", ["core", "distributed", "checkpointing", "walkthrough", "sweep", "cluster"])
def test_the_tests_mirror_the_training_packages(package):
    assert os.path.isdir(os.path.join(REPO_ROOT, "training", package))
    assert glob.glob(os.path.join(REPO_ROOT, "tests", package, "test_*.py"))


@pytest.mark.parametrize("module", ["training.core.settings", "training.cluster.__main__"])
def test_what_bash_runs_before_the_virtualenv_needs_only_the_standard_library(module):
    """`python3 -S` has no site-packages: the import works only if the module and the packages above it
    import nothing installed."""
    probe = (f"import json, sys, {module}; "
             "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names))))")
    out = subprocess.run([sys.executable, "-S", "-c", probe], cwd=REPO_ROOT, env={"PATH": os.environ["PATH"]},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert set(json.loads(out.stdout)) <= {"__main__", "training"}
