"""`python3 -m training.cluster` as bash calls it: the profile's values, the head run's defaults, and the one-line
error contract for bad input."""

import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT
from training.cluster import head_run, profiles


def cluster_cli(*args, **environ):
    env = {"PATH": os.environ["PATH"], **environ}
    return subprocess.run([sys.executable, "-m", "training.cluster", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def values(stdout):
    return dict(line.split("=", 1) for line in stdout.splitlines())


@pytest.mark.parametrize("environ,name,worker_cpus", [({}, "default", "2"), ({"CLUSTER_PROFILE": ""}, "default", "2"),
                                                      ({"CLUSTER_PROFILE": "small"}, "small", "1")])
def test_profile_names_the_profile_an_unset_cluster_profile_means(environ, name, worker_cpus):
    result = cluster_cli("profile", **environ)
    assert result.returncode == 0, result.stderr
    got = values(result.stdout)
    assert (got["name"], got["worker_cpus"], got["nodes"]) == (name, worker_cpus, str(profiles.NODES))
    assert int(got["worker_cpus_total"]) == int(got["workers"]) * int(worker_cpus)


@pytest.mark.parametrize("args,environ,fragment", [
    (["profile"], {"CLUSTER_PROFILE": "huge"}, "CLUSTER_PROFILE 'huge' is not a profile (allowed: default, small)"),
    (["head-argv", "--profile", "small"], {"DATA_DIR": "/data"}, "DATA_DIR"),
    (["head-argv"], {"NUM_WORKERS": "two"}, "NUM_WORKERS"),
    (["pod-defaults", "EPOCHS"], {}, "EPOCHS is not a value of the head run"),
])
def test_bad_input_is_one_line_and_exit_2(args, environ, fragment):
    result = cluster_cli(*args, **environ)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_pod_defaults_fill_only_what_the_environment_leaves_unset():
    assert cluster_cli("pod-defaults", "NUM_WORKERS", "CPUS_PER_WORKER", CLUSTER_PROFILE="small").stdout == \
        "NUM_WORKERS=2\nCPUS_PER_WORKER=1\n"
    assert cluster_cli("pod-defaults", "NUM_WORKERS", NUM_WORKERS="3").stdout.strip() == ""


def test_the_head_runs_store_is_the_settings_tables_and_its_output_is_named_by_the_workers():
    from training.core import settings

    run = head_run.values("small", {"NUM_WORKERS": "1"})
    assert run["STORAGE_PATH"] == settings.BY_NAME["CHECKPOINT_STORAGE_URI"].default
    assert run["OUTPUT"] == f"{head_run.POD_KIT_DIR}/ray_results_1workers.json"
    assert head_run.values("small", {"CHECKPOINT_STORAGE_URI": "s3://b/r"})["STORAGE_PATH"] == "s3://b/r"


def test_head_argv_is_nul_separated_with_the_given_values_first():
    result = cluster_cli("head-argv", "--profile", "small", "RUN_ID=r1-ray", EPOCHS="2")
    assert result.returncode == 0, result.stderr
    words = result.stdout.split("\0")[:-1]
    assert words == head_run.argv("small", {"RUN_ID": "r1-ray"}, {"EPOCHS": "2"})
    assert words[words.index("--run-id") + 1] == "r1-ray" and words[words.index("--epochs") + 1] == "2"
