"""Bad settings: one line naming the setting and what is allowed, exit code 2, no traceback, within seconds,
and nothing written."""

import os
import subprocess

import pytest

from tests.helpers.common import REPO_ROOT, program

CASES = [
    ({"EPOCHS": "0"}, "EPOCHS must be a positive integer, got '0'"),
    ({"EPOCHS": "ten"}, "EPOCHS must be a positive integer, got 'ten'"),
    ({"BATCH_SIZE": "-4"}, "BATCH_SIZE must be a positive integer"),
    ({"TRAIN_SAMPLES": "1.5"}, "TRAIN_SAMPLES must be a positive integer"),
    ({"DATASET": "imagenet"}, "DATASET must be one of cifar10, synthetic, digits, got 'imagenet'"),
    ({"DATA_DIR": "/no/such/dir"}, "DATA_DIR '/no/such/dir' does not exist"),
    ({"LEARNING_RATE": "fast"}, "LEARNING_RATE must be a positive number"),
    ({"PROGRESS_INTERVAL": "-1"}, "PROGRESS_INTERVAL must be a number, 0 or more, got '-1'"),
]
# Ray-only settings: checked by ray_training.py and by the benchmark script before anything starts.
RAY_CASES = [
    ({"ALLREDUCE_DTYPE": "float64"}, "ALLREDUCE_DTYPE must be one of float32, bfloat16, float16, got 'float64'"),
]


def run(args, env, timeout=120):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, expected):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {expected}"] or (len(lines) == 1 and expected in lines[0]), proc.stderr


@pytest.mark.parametrize("settings,expected", CASES)
@pytest.mark.parametrize("script", ["training.baseline_training", "training.ray_training"])
def test_training_scripts_reject_bad_settings(script, settings, expected, python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), **settings)
    proc = run(program(script), env)
    assert_one_line_error(proc, expected)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("settings,expected", RAY_CASES)
def test_ray_training_rejects_bad_ray_settings(settings, expected, python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), **settings)
    proc = run(program("training.ray_training"), env)
    assert_one_line_error(proc, expected)
    assert os.listdir(tmp_path) == []


def test_kit_benchmark_rejects_a_bad_allreduce_dtype(python_env):
    env = dict(python_env, BENCH_ALLREDUCE_DTYPE="int8")
    proc = run([os.path.join(REPO_ROOT, "scripts", "benchmark.sh"), "--quick"], env, timeout=30)
    assert_one_line_error(proc, "BENCH_ALLREDUCE_DTYPE must be one of float32, bfloat16, float16, got 'int8'")


@pytest.mark.parametrize("settings,expected", CASES + RAY_CASES + [
    ({"NUM_WORKERS": "0"}, "NUM_WORKERS must be a positive integer"),
    ({"LOCAL_RAY_PIN_CPUS": "yes"}, "LOCAL_RAY_PIN_CPUS must be one of 0, 1, got 'yes'"),
    ({"LOCAL_RAY_DASHBOARD": "maybe"}, "LOCAL_RAY_DASHBOARD must be 0 or 1, got 'maybe'"),
    ({"DASHBOARD_LOCAL_PORT": "http"}, "DASHBOARD_LOCAL_PORT must be a positive integer, got 'http'"),
    # Mistakes that used to pass the up-front check and surface only in the Ray run, after the baselines.
    ({"BATCH_SIZE_MODE": "globl"}, "BATCH_SIZE_MODE must be one of per-worker, global, got 'globl'"),
    ({"LR_SCALING": "squareroot"}, "LR_SCALING must be one of sqrt, linear, none, got 'squareroot'"),
    ({"CHECKPOINT_POLICY": "evry"}, "CHECKPOINT_POLICY must be one of every, never"),
    ({"INJECT_FAILURE_EPOCH": "3", "EPOCHS": "2"}, "INJECT_FAILURE_EPOCH must be at most EPOCHS (2), got 3"),
    ({"BATCH_SIZE_MODE": "global", "BATCH_SIZE": "63"}, "BATCH_SIZE must divide evenly among NUM_WORKERS=2")])
def test_benchmark_script_rejects_bad_settings_before_installing_anything(settings, expected, python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), **settings)
    proc = run([os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), "--local"], env, timeout=30)
    assert_one_line_error(proc, expected)
    assert os.listdir(tmp_path) == []


def test_benchmark_script_refuses_more_workers_than_cores(python_env, tmp_path):
    cpus = len(os.sched_getaffinity(0))
    env = dict(python_env, RESULTS_DIR=str(tmp_path), NUM_WORKERS=str(cpus + 1), DATASET="digits")
    proc = run([os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), "--local"], env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"this machine has {cpus}" in proc.stderr and os.listdir(tmp_path) == []


def test_unknown_option_is_named(python_env):
    proc = run([os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), "--locale"], python_env, timeout=30)
    assert_one_line_error(proc, "unknown option '--locale'")


def test_ray_checks_batch_split_and_failure_settings(python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), DATASET="digits")
    proc = run([*program("training.ray_training"), "--num-workers", "3",
                "--batch-size", "64", "--batch-size-mode", "global"], env)
    assert_one_line_error(proc, "BATCH_SIZE must divide evenly among NUM_WORKERS=3 workers")
    proc = run([*program("training.ray_training"), "--inject-failure-epoch", "2",
                "--max-failures", "0"], env)
    assert_one_line_error(proc, "INJECT_FAILURE_EPOCH needs MAX_FAILURES of at least 1")
    proc = run([*program("training.ray_training"), "--train-samples", "100",
                "--num-workers", "2"], env)
    assert_one_line_error(proc, "TRAIN_SAMPLES must hold at least one global batch (128 images")


def test_help_lists_settings_with_defaults(python_env):
    out = run([os.path.join(REPO_ROOT, "scripts", "run-benchmark.sh"), "--help"], python_env).stdout
    for name in ("EPOCHS=10", "BATCH_SIZE=64", "NUM_WORKERS=2", "DATASET=cifar10", "DATA_DIR", "TRAIN_SAMPLES",
                 "RESULTS_DIR=results", "--local", "--quick"):
        assert name in out
    out = run([*program("training.ray_training"), "--help"], python_env).stdout
    assert "PER WORKER by default" in " ".join(out.split()) and "sqrt" in out
