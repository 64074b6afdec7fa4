"""The checkpoint policy simulation (training/checkpointing/simulate_checkpoints.py): its command-line contract and the
comparisons it must get right with a fixed seed."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT

from training.checkpointing import simulate_checkpoints

SCRIPT = ["-m", "training.checkpointing.simulate_checkpoints"]
SMALL = ["--epochs", "8", "--epoch-seconds", "60", "--checkpoint-seconds", "3", "--restart-seconds", "20",
         "--mtbf-seconds", "200,50000", "--trials", "40", "--seed", "3"]


def run_command(args, tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    environ.update(env)
    return subprocess.run([sys.executable, *SCRIPT, *args, "--output-dir", str(tmp_path)], cwd=REPO_ROOT,
                          env=environ, capture_output=True, text=True, timeout=300)


def simulated(argv):
    return simulate_checkpoints.simulate(simulate_checkpoints.parse_args(argv))


def cell(doc, mtbf, policy):
    return next(c for c in doc["results"] if c["mtbf_seconds"] == mtbf and c["policy"] == policy)


def test_command_prints_the_table_and_writes_json_and_plot(tmp_path):
    out = run_command(SMALL, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "E[total] s" in out.stdout and "adaptive" in out.stdout and "<- best" in out.stdout
    doc = json.loads((tmp_path / "checkpoint_simulation.json").read_text())
    assert {(c["mtbf_seconds"], c["policy"]) for c in doc["results"]} == {
        (m, p) for m in (200.0, 50000.0) for p in ("every", "never", "interval:5", "adaptive")}
    assert all(c["trials"] == 40 for c in doc["results"])
    assert doc["failure_free_seconds"] == pytest.approx(8 * 60, rel=0.1)
    png = (tmp_path / "checkpoint_simulation.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_settings_come_from_the_environment(tmp_path):
    out = run_command(["--mtbf-seconds", "1000"], tmp_path, SIM_EPOCHS="3", SIM_TRIALS="7", SIM_POLICIES="never,every")
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "checkpoint_simulation.json").read_text())
    assert doc["settings"]["epochs"] == 3 and doc["settings"]["trials"] == 7
    assert doc["settings"]["policies"] == ["never", "every"]


@pytest.mark.parametrize("args, env, setting", [
    (["--mtbf-seconds", "soon"], {}, "SIM_MTBF_SECONDS"),
    (["--mtbf-seconds", "100,-5"], {}, "SIM_MTBF_SECONDS"),
    (["--policies", "every,sometimes"], {}, "SIM_POLICIES"),
    (["--policies", "interval:0"], {}, "SIM_POLICIES"),
    ([], {"SIM_TRIALS": "0"}, "SIM_TRIALS"),
    ([], {"SIM_JITTER": "1.5"}, "SIM_JITTER"),
    (["--epoch-seconds", "nan"], {}, "SIM_EPOCH_SECONDS"),
    (["--timings", "/nonexistent/results.json"], {}, "SIM_TIMINGS"),
])
def test_bad_input_is_one_line_naming_the_setting_and_writes_nothing(tmp_path, args, env, setting):
    earlier = tmp_path / "checkpoint_simulation.json"
    earlier.write_text("earlier result\n")
    out = run_command(args, tmp_path, **env)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {setting} ")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert earlier.read_text() == "earlier result\n"
    assert not (tmp_path / "checkpoint_simulation.png").exists()


def test_timings_are_replayed_from_a_results_file(tmp_path):
    results = {"history": [{"epoch": i + 1, "seconds": s} for i, s in enumerate([50.0, 30.0, 30.0, 31.0])],
               "checkpoints": {"saved": 2, "seconds": 3.0},
               "fixed_costs": {"worker_group_start_seconds": 4.0, "worker_setup_seconds": 6.0}}
    path = tmp_path / "ray_results_2workers.json"
    path.write_text(json.dumps(results))
    args = simulate_checkpoints.parse_args(["--timings", str(path), "--trials", "5", "--output-dir", str(tmp_path)])
    assert (args.epochs, args.epoch_times) == (4, [50.0, 30.0, 30.0, 31.0])
    assert (args.checkpoint_seconds, args.restart_seconds) == (1.5, 10.0)


def test_same_seed_same_numbers_other_seed_other_numbers():
    first, again, other = (simulated(SMALL[:-1] + [seed]) for seed in ("3", "3", "4"))
    assert first["results"] == again["results"]
    assert first["results"] != other["results"]


@pytest.fixture(scope="module")
def default_comparison():
    """The default scenario (20 epochs of ~120 s, 5 s checkpoints, 30 s restarts), 400 trials, seed 42."""
    return simulated(["--mtbf-seconds", "300,3600,86400", "--trials", "400", "--seed", "42"])


def test_adaptive_beats_never_when_failures_are_frequent(default_comparison):
    adaptive, never = cell(default_comparison, 300, "adaptive"), cell(default_comparison, 300, "never")
    assert adaptive["expected_total_seconds"] < 0.2 * never["expected_total_seconds"]
    assert adaptive["unfinished_trials"] == 0


def test_adaptive_beats_every_when_failures_are_rare(default_comparison):
    adaptive, every = cell(default_comparison, 86400, "adaptive"), cell(default_comparison, 86400, "every")
    gap = every["expected_total_seconds"] - adaptive["expected_total_seconds"]
    assert gap > 4 * (every["stderr_total_seconds"] + adaptive["stderr_total_seconds"])
    assert adaptive["checkpoints_mean"] < every["checkpoints_mean"]


def test_adaptive_is_never_far_from_the_best_policy(default_comparison):
    for mtbf in (300, 3600, 86400):
        best = min(c["expected_total_seconds"] for c in default_comparison["results"] if c["mtbf_seconds"] == mtbf)
        assert cell(default_comparison, mtbf, "adaptive")["expected_total_seconds"] < 1.1 * best


def test_adaptive_checkpoints_more_when_failures_are_more_frequent(default_comparison):
    counts = [cell(default_comparison, m, "adaptive")["checkpoints_mean"] for m in (86400, 3600, 300)]
    assert counts == sorted(counts) and counts[-1] > counts[0] + 3


def test_fixed_policies_write_what_they_promise(default_comparison):
    for mtbf in (300, 3600, 86400):
        assert cell(default_comparison, mtbf, "never")["checkpoints_mean"] == 0
    # Without failures 'every' writes exactly one checkpoint per epoch; failures only add rewrites.
    assert cell(default_comparison, 86400, "every")["checkpoints_mean"] >= 20
    assert cell(default_comparison, 86400, "interval:5")["checkpoints_mean"] >= 4
