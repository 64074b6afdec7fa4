"""The one verify step of every generated file (scripts/update-generated.sh --check, as kind's hack/verify-*):
the settings table in the docs, the cluster's manifests and fit tables. A source changed without regenerating
fails here, naming each stale file; `scripts/update-generated.sh` repairs them."""

import os
import shutil
import subprocess

from tests.helpers.common import REPO_ROOT


def _update_generated(*args, root=REPO_ROOT):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run([os.path.join(root, "scripts", "update-generated.sh"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_every_generated_file_is_current():
    proc = _update_generated("--check")
    assert proc.returncode == 0, f"run scripts/update-generated.sh:\n{proc.stdout}{proc.stderr}"


def test_the_check_names_a_stale_file_and_the_update_repairs_it(tmp_path):
    """On a copy of the checkout: a settings row's help changed without regenerating is named, and fixed."""
    root = tmp_path / "kit"
    shutil.copytree(REPO_ROOT, root, ignore=shutil.ignore_patterns(".git", ".venv", "results", "__pycache__"))
    table = root / "training" / "core" / "settings" / "table.py"
    table.write_text(table.read_text().replace('"epochs to train"', '"epochs to train, all of them"'))
    stale = _update_generated("--check", root=str(root))
    assert stale.returncode == 1 and "docs/QUICK_REFERENCE.md is not current" in stale.stderr, stale.stderr
    assert _update_generated(root=str(root)).returncode == 0
    assert _update_generated("--check", root=str(root)).returncode == 0
    assert "epochs to train, all of them" in (root / "docs" / "QUICK_REFERENCE.md").read_text()
