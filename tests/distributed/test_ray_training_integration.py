"""Ray Train for real: 2 workers on a local cluster of a head and 2 worker nodes, on scikit-learn's digits.
Checks that it learns as well as the baseline, that the workers saw disjoint shards, and that a worker killed
in the middle of training is recovered from the checkpoint."""

import json
import os
import re
import subprocess

import pytest

from tests.helpers.cluster import start_cluster, stop_cluster
from tests.helpers.common import kit_env, program
from training.core import settings
from training.core.tf_env import WORKER_ENV

pytestmark = pytest.mark.slow

# The same global batch (64) and steps per epoch on both sides, so accuracies after the same epochs compare.
COMMON = {"DATASET": "digits", "EPOCHS": "4", "SEED": "3", "CHECKPOINT_POLICY": "every"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("ray-state")
    # With the (opt-in) pinning of each worker's op threads, so that the tests cover it too.
    env = start_cluster(str(state), workers=2, cpus=1, port=6490, pin_cpus=True)
    yield env
    stop_cluster(str(state))


def train(script, env, *args, timeout=600):
    proc = subprocess.run([*program(script), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def ray_run(cluster, python_env, tmp_path, name, *extra):
    env = dict(python_env, **COMMON, **cluster)
    out = train("training.ray_training", env, "--ray-address", cluster["RAY_ADDRESS"], "--num-workers", "2",
                "--batch-size", "64", "--batch-size-mode", "global", "--record-shards",
                "--storage-path", str(tmp_path / "ckpt"), "--run-id", name,
                "--output", str(tmp_path / f"{name}.json"), *extra)
    return json.loads((tmp_path / f"{name}.json").read_text()), out


@pytest.fixture(scope="module")
def undisturbed(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ray-run")
    env = kit_env()
    return ray_run(cluster, env, tmp, "undisturbed", "--progress-interval", "1")


def test_two_workers_learn_like_the_baseline_on_disjoint_shards(undisturbed, python_env, tmp_path):
    ray_result, out = undisturbed
    train("training.baseline_training", dict(python_env, **COMMON), "--batch-size", "64", "--threads", "2",
          "--output", str(tmp_path / "baseline.json"))
    baseline = json.loads((tmp_path / "baseline.json").read_text())

    assert ray_result["config"]["global_batch_size"] == baseline["config"]["global_batch_size"] == 64
    assert ray_result["config"]["steps_per_epoch"] == baseline["config"]["steps_per_epoch"]
    assert ray_result["test_accuracy"] > 0.5, "well above the 0.1 of chance"
    assert abs(ray_result["test_accuracy"] - baseline["test_accuracy"]) < 0.1
    assert len(re.findall(r"^\[ray 2w\] epoch \d/4  loss ", out, re.M)) == 4 and "~0s left" in out
    # Rank 0's in-epoch progress, once a second, for the group: its own steps of the epoch, never rank 1's too.
    steps = re.findall(r"^\[ray 2w\] epoch \d/4  step (\d+)/(\d+)", out, re.M)
    assert steps and {int(total) for _, total in steps} == {ray_result["workers"][0]["steps_per_epoch"]}
    assert all(int(done) <= int(total) for done, total in steps)

    workers = ray_result["workers"]
    assert [w["rank"] for w in workers] == [0, 1]
    shards = [set(w["shard_indices"]) for w in workers]
    assert not shards[0] & shards[1]
    assert len(shards[0]) == len(shards[1]) == workers[0]["steps_per_epoch"] * 32
    assert len({w["node_id"] for w in workers}) == 2, "one worker on each worker node"
    assert all(w["tf_threads"] == {"intra_op": 1, "inter_op": 1} for w in workers)
    # tf-keras and the allocator settings reached each worker process (here through its node: local_node.py).
    assert all(w["env_at_start"] == WORKER_ENV for w in workers)
    # Each worker's TensorFlow import began as its process started (runtime_env.train_worker_env's hook).
    assert [w["tf_import_started_by"] for w in workers] == ["process start", "process start"]
    # Each step of each worker takes its whole per-worker batch (no rebatching by the strategy).
    assert [w["images_per_step"] for w in workers] == [32, 32]
    # The local cluster holds each worker's training threads to a CPU of its own.
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        assert sorted(w["pinned_cpus"] for w in workers) == [[cpus[0]], [cpus[1]]]
    # Every epoch of every worker records the CPU it used and how long its compute thread waited for one.
    assert all(len(w["epoch_cpu"]) == 4 for w in workers)
    assert all(e["cpu_seconds"] > 0 and e["cpu_wait_seconds"] >= 0 for w in workers for e in w["epoch_cpu"])
    fixed = ray_result["fixed_costs"]
    assert fixed["command_start_to_first_step_seconds"] > fixed["start_to_fit_seconds"] > fixed["ray_init_seconds"]
    # Rank 0's setup, step by step, adds up to the worker setup (the spans end where its `worker` message went).
    spans = fixed["worker_setup_spans"]
    assert list(spans) == ["tensorflow", "strategy", "data", "model", "checkpoint_cost", "datasets", "first_batch"]
    assert 0 < sum(spans.values()) <= fixed["worker_setup_seconds"]
    cluster_shape = ray_result["environment"]["ray_cluster"]
    assert cluster_shape["nodes"] == 3 and cluster_shape["cpus"] == 2
    assert ray_result["environment"]["cpus_used"] == 2
    assert ray_result["checkpoints"]["epochs"] == [1, 2, 3, 4]


def test_a_killed_worker_is_recovered_from_the_checkpoint(undisturbed, cluster, tmp_path):
    env = kit_env()
    result, out = ray_run(cluster, env, tmp_path, "with-failure", "--inject-failure-epoch", "3",
                          "--max-failures", "1")
    ft = result["fault_tolerance"]
    assert "injected failure: rank 1 exits in epoch 3" in out and "resuming after epoch 2" in out
    assert ft["restarts"] == 1 and ft["events"][0]["injected"]
    assert ft["events"][0]["resumed_after_epoch"] == 2 and ft["epochs_redone"] <= 1
    assert ft["seconds_lost"] > 0
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3, 4] and result["epochs_completed"] == 4
    assert abs(result["test_accuracy"] - undisturbed[0]["test_accuracy"]) < 0.1
    # The restarted workers told the restored controller what the failure cost, as the simulation does, so the
    # adaptive policy learns from real recoveries too.
    observed = result["workers"][0]["recovery_observed"]
    assert observed["in_this_run"] and observed["epochs_redone"] == ft["epochs_redone"]
    # From the commit of the epoch-2 checkpoint to the restored workers: part of epoch 3, the restart.
    assert 0 < observed["seconds_lost"] < result["wall_time_seconds"]
    state = result["checkpoints"]["controller_state"]
    assert state["recoveries"] == 1 and state["failures"] == 1
    assert state["exposed_seconds"] > observed["seconds_lost"], "lost time and the epochs' own are exposure"
    calm = undisturbed[0]["checkpoints"]["controller_state"]
    assert calm["recoveries"] == 0 and calm["failures"] == 0
    # What the policy learned: a failure seen, so it expects the next one sooner than the calm run does.
    from training.checkpointing.checkpoint_policy import CheckpointController

    assert CheckpointController.from_state(state).mtbf_seconds() < CheckpointController.from_state(calm).mtbf_seconds()
    # And it learned what the simulation says it should: the run's own epoch and checkpoint seconds and the
    # recovery its workers observed, driven through the checkpoint loop the simulation drives, end in the state the
    # real run ended in.
    replayed = replay_through_the_checkpoint_loop(result)
    assert replayed.keys() == state.keys()
    for key, value in state.items():
        assert replayed[key] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value), key


def replay_through_the_checkpoint_loop(result):
    """The controller state a run with one recovery ends in, as the simulation computes it (simulate_checkpoints
    drives the same CheckpointLoop), from the figures in the run's results."""
    from training.checkpointing.checkpoint_loop import CheckpointLoop
    from training.checkpointing.checkpoint_policy import CheckpointController

    final = result["checkpoints"]["controller_state"]
    checkpoint_seconds = result["checkpoints"]["seconds_by_epoch"]
    epoch_seconds = {h["epoch"]: h["seconds"] for h in result["history"]}
    resumed = result["fault_tolerance"]["events"][0]["resumed_after_epoch"]
    total = result["config"]["epochs"]
    saved = {}

    def drive(loop, epochs):
        for epoch in epochs:
            def save(state, epoch=epoch):
                saved[epoch] = state  # what the checkpoint of this epoch holds
                return checkpoint_seconds[str(epoch)]

            loop.end_epoch(epoch, epoch_seconds[epoch], save)

    # The priors are what nothing observed changes: the final state still holds the ones the run started from.
    priors = CheckpointController.from_state(final).priors()
    drive(CheckpointLoop.fresh(final["policy"], total, **priors), range(1, resumed + 1))
    loop = CheckpointLoop.resumed(saved[resumed], total, result["workers"][0]["recovery_observed"])
    drive(loop, range(resumed + 1, total + 1))
    return loop.state()


def test_quick_recipe_learns_alike_on_both_sides(cluster, python_env, tmp_path):
    """The README's quick run, its two trainings at settings.QUICK: both learn, and they agree, because they take
    the same steps of the same global batch at the same rate."""
    env = dict(python_env, **settings.QUICK)
    train("training.baseline_training", env, "--threads", "1", "--output", str(tmp_path / "baseline.json"))
    train("training.ray_training", dict(env, **cluster), "--ray-address", cluster["RAY_ADDRESS"], "--num-workers", "2",
          "--storage-path", str(tmp_path / "ckpt"), "--output", str(tmp_path / "ray.json"))
    baseline, ray = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("baseline", "ray"))
    for key in ("global_batch_size", "steps_per_epoch", "learning_rate", "epochs"):
        assert baseline["config"][key] == ray["config"][key], key
    assert ray["config"]["per_worker_batch_size"] == baseline["config"]["global_batch_size"] // 2
    assert baseline["test_accuracy"] >= 0.85 and ray["test_accuracy"] >= 0.85, (baseline["test_accuracy"],
                                                                                  ray["test_accuracy"])
    assert abs(baseline["test_accuracy"] - ray["test_accuracy"]) <= 0.03


def test_more_workers_than_the_cluster_has_fails_fast(cluster, python_env, tmp_path):
    env = dict(python_env, DATASET="digits", **cluster)
    proc = subprocess.run([*program("training.ray_training"), "--ray-address",
                           cluster["RAY_ADDRESS"], "--num-workers", "3", "--output", str(tmp_path / "x.json")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "NUM_WORKERS=3 with CPUS_PER_WORKER=1 needs 3 CPUs" in proc.stderr
    assert "the Ray cluster has 2 CPUs on 3 node(s)" in proc.stderr
    assert not (tmp_path / "x.json").exists()
