"""What a Mac's laptop side needs: bash 4.4 and GNU timeout (named gtimeout by Homebrew's coreutils) said up
front, and a cluster target that installs only the light laptop list (docker/requirements-laptop.txt), which has
no TensorFlow: the pins' TensorFlow wheels are Linux x86_64's."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.helpers.stub_tools import REPO_ROOT, StubWorld, assert_one_line_error

BASH = shutil.which("bash")


def _bin_without_timeout(tmp_path, with_gtimeout):
    """A PATH folder with what common.sh runs (dirname, date, python3), no `timeout`, and optionally a `gtimeout`
    that says it ran."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("dirname", "date", "python3", "sed", "cat"):
        (folder / tool).symlink_to(shutil.which(tool, path="/usr/bin:/bin"))
    if with_gtimeout:
        (folder / "gtimeout").write_text('#!/bin/sh\necho "gtimeout $*"\n')
        (folder / "gtimeout").chmod(0o755)
    return folder


def _source_common(tmp_path, code, with_gtimeout):
    folder = _bin_without_timeout(tmp_path, with_gtimeout)
    return subprocess.run([BASH, "-c", f"source scripts/lib/common.sh; {code}"], cwd=REPO_ROOT, capture_output=True,
                          text=True, env={"PATH": str(folder), "HOME": str(tmp_path)}, timeout=30)


def test_an_old_bash_is_refused_with_what_to_install():
    """macOS ships bash 3.2; the check is a function so that the refusal can be tested on this bash."""
    result = subprocess.run([BASH, "-c", "source scripts/lib/common.sh; kit::require_shell 3 2; echo went-on"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert_one_line_error(result, 3, "bash 4.4 or newer", "bash 3.2", "brew install bash coreutils")
    assert "went-on" not in result.stdout


def test_gtimeout_stands_in_for_a_missing_timeout(tmp_path):
    result = _source_common(tmp_path, "timeout 5 true", with_gtimeout=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gtimeout 5 true"


def test_no_timeout_at_all_is_a_missing_prerequisite(tmp_path):
    result = _source_common(tmp_path, "echo went-on", with_gtimeout=False)
    assert_one_line_error(result, 3, "GNU timeout", "brew install coreutils")
    assert "went-on" not in result.stdout


FAKE_PYTHON = """#!/bin/sh
# A stand-in python3.11: `-c` (the version check) passes, `-m venv DIR` copies itself to DIR/bin/python,
# `-m pip ...` records its arguments beside itself.
case "$1" in
  -c) exit 0 ;;
  -m) if [ "$2" = venv ]; then mkdir -p "$3/bin" && cp "$0" "$3/bin/python"; exit 0; fi
      if [ "$2" = pip ]; then shift 2; printf '%s\\n' "$@" >>"$(dirname "$0")/../pip-calls"; echo END >>"$(dirname "$0")/../pip-calls"; exit 0; fi ;;
esac
exit 0
"""


def _copy_of_the_kit(tmp_path):
    """The kit's scripts, code and pin files in a folder of their own, so its .venv is a throwaway one."""
    root = tmp_path / "kit"
    for part in ("scripts", "training", "docker"):
        shutil.copytree(REPO_ROOT / part, root / part, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests").mkdir()
    shutil.copy(REPO_ROOT / "tests" / "requirements.txt", root / "tests" / "requirements.txt")
    fake = tmp_path / "python3.11"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return root, fake


def _pip_calls(root):
    path = root / ".venv" / "pip-calls"
    if not path.exists():
        return []
    return [call.strip("\n").split("\n") for call in path.read_text().split("END\n") if call.strip()]


def test_the_cluster_target_installs_only_the_laptop_list(tmp_path):
    root, fake = _copy_of_the_kit(tmp_path)
    world = StubWorld(tmp_path)
    world.on("kubectl", "*get --raw=/readyz*", 1)  # it stops at the cluster, after setting up .venv
    result = world.run([str(root / "scripts" / "run-benchmark.sh"), "--quick"], KIT_PYTHON=str(fake),
                       RESULTS_DIR=str(tmp_path / "results"))
    assert result.returncode == 4, result.stderr
    (call,) = _pip_calls(root)
    files = [call[i + 1] for i, word in enumerate(call) if word == "-r"]
    assert files == [str(root / "docker" / "requirements-laptop.txt")]


def test_a_full_environment_also_serves_the_laptop_side_without_a_reinstall(tmp_path):
    root, fake = _copy_of_the_kit(tmp_path)
    code = "source scripts/lib/common.sh; source scripts/lib/venv.sh; venv::ensure full; venv::ensure laptop"
    result = subprocess.run([BASH, "-c", code], cwd=root, capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, KIT_PYTHON=str(fake)))
    assert result.returncode == 0, result.stderr
    (call,) = _pip_calls(root)
    files = {Path(call[i + 1]).name for i, word in enumerate(call) if word == "-r"}
    assert {"requirements.txt", "requirements-laptop.txt"} <= files
