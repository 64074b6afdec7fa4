"""What every Kubernetes script keeps, whatever it does: shellcheck passes, --help prints its header without
touching anything, an unknown argument is bad input (exit 2, one line).
"""

import shutil
import subprocess

import pytest

from tests.helpers.stub_tools import REPO_ROOT, assert_one_line_error


SCRIPTS = ["scripts/setup-minikube.sh", "scripts/install-ray.sh", "scripts/cleanup.sh",
           "scripts/kill-worker-pod.sh", "docker/build-and-push.sh"]


LIBS = ["scripts/lib/k8s.sh", "scripts/lib/cluster_benchmark.sh"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
@pytest.mark.parametrize("path", SCRIPTS + LIBS + ["tests/k8s/stubs/stub-common.sh", "tests/k8s/stubs/kubectl"])
def test_script_passes_shellcheck(path):
    result = subprocess.run(["shellcheck", "-x", path], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_usage_and_settings_without_touching_anything(world, script):
    result = world.run_script(script, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "Settings:" in result.stdout
    assert world.calls() == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_unknown_argument_is_bad_input(world, script):
    assert_one_line_error(world.run_script(script, "--frobnicate"), 2, "--frobnicate")
