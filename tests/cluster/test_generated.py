"""The files made from the pod profiles (training/cluster/generated.py): the update / verify commands that keep
them current (whether they are is tests/scripts/test_generated.py's one check of every generated file)."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT
from training.cluster import generated, manifests, profiles


def test_a_profile_change_reaches_every_file_that_states_it(monkeypatch):
    """One owner: a default worker pod of 3 CPUs makes the RayCluster, its RayJob and both fit tables stale, and
    leaves the small profile's RayJob alone."""
    monkeypatch.setitem(profiles.PROFILES, "default", dict(profiles.PROFILES["default"], worker_cpu="3"))
    assert sorted(generated.stale(REPO_ROOT)) == sorted(
        [manifests.CLUSTER_MANIFEST, manifests.rayjob_path("default"), *generated.FIT_TABLE_DOCS])
    assert "--cpus-per-worker 3" in generated.expected(REPO_ROOT)[manifests.rayjob_path("default")]


def _checkout_copy(tmp_path):
    """The generated files and their templates, in a folder laid out as the checkout."""
    for path in generated.expected(REPO_ROOT):
        os.makedirs(tmp_path / os.path.dirname(path), exist_ok=True)
        shutil.copy(os.path.join(REPO_ROOT, path), tmp_path / path)
    return tmp_path


def _cluster_cli(*args):
    return subprocess.run([sys.executable, "-m", "training.cluster", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_generate_check_names_each_stale_file_and_generate_repairs_them(tmp_path):
    root = _checkout_copy(tmp_path)
    job = root / manifests.rayjob_path("small")
    job.write_text(job.read_text().replace("--cpus-per-worker 1", "--cpus-per-worker 2"))
    guide = root / generated.FIT_TABLE_DOCS[0]
    guide.write_text(guide.read_text().replace("| `small` |", "| `tiny` |"))
    (root / "k8s" / "ray-job.yaml").write_text("kind: RayJob\n")  # the pre-profile file, now made by no profile

    check = _cluster_cli("generate", "--check", "--root", str(root))
    assert check.returncode == 1, check.stderr
    named = sorted(line.split()[1] for line in check.stderr.splitlines())
    assert named == sorted([manifests.rayjob_path("small"), generated.FIT_TABLE_DOCS[0], "k8s/ray-job.yaml"])

    update = _cluster_cli("generate", "--root", str(root))
    assert update.returncode == 0, update.stderr
    assert not (root / "k8s" / "ray-job.yaml").exists()
    with open(os.path.join(REPO_ROOT, manifests.rayjob_path("small")), encoding="utf-8") as committed:
        assert job.read_text() == committed.read()
    assert _cluster_cli("generate", "--check", "--root", str(root)).returncode == 0


def test_a_document_without_its_fit_table_block_is_one_line_of_error(tmp_path):
    root = _checkout_copy(tmp_path)
    (root / generated.FIT_TABLE_DOCS[1]).write_text("no block here\n")
    result = _cluster_cli("generate", "--check", "--root", str(root))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {generated.FIT_TABLE_DOCS[1]} has no ")


@pytest.mark.parametrize("profile", sorted(profiles.PROFILES))
def test_rayjob_on_demand_carries_this_environments_settings(profile):
    """`rayjob --profile P` is the committed file's job with the caller's settings on top."""
    env = {"PATH": os.environ["PATH"], "EPOCHS": "3", "NUM_WORKERS": "1"}
    result = subprocess.run([sys.executable, "-m", "training.cluster", "rayjob", "--profile", profile],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--epochs 3" in result.stdout and "--num-workers 1" in result.stdout
    assert "/tmp/kit/ray_results_1workers.json" in result.stdout
