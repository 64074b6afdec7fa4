"""Bad settings: one line naming the setting and what is allowed, exit code 2, no traceback, within seconds,
and nothing written."""

import os
import subprocess

import pytest

from tests.helpers.common import REPO_ROOT, program

MISTAKES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mistakes.tsv")


def _refused_by(*who):
    """(settings, expected message) of every row of mistakes.tsv refused by one of `who`."""
    with open(MISTAKES_FILE, encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip() and not line.startswith("#")]
    return [(dict(item.split("=", 1) for item in settings.split()), expected) for settings, expected, by in rows
            if by in who]


def run(args, env, timeout=120):
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(proc, expected):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {expected}"] or (len(lines) == 1 and expected in lines[0]), proc.stderr


@pytest.mark.parametrize("settings,expected", _refused_by("trainers"))
@pytest.mark.parametrize("script", ["training.baseline_training", "training.ray_training"])
def test_training_scripts_reject_bad_settings(script, settings, expected, python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), **settings)
    proc = run(program(script), env)
    assert_one_line_error(proc, expected)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("settings,expected", _refused_by("ray"))
def test_ray_training_rejects_bad_ray_settings(settings, expected, python_env, tmp_path):
    env = dict(python_env, RESULTS_DIR=str(tmp_path), **settings)
    proc = run(program("training.ray_training"), env)
    assert_one_line_error(proc, expected)
    assert os.listdir(tmp_path) == []


def test_kit_benchmark_rejects_a_bad_allreduce_dtype(python_env):
    env = dict(python_env, BENCH_ALLREDUCE_DTYPE="int8")
    proc = run([os.path.join(REPO_ROOT, "scripts", "benchmark.sh"), "--quick"], env, timeout=30)
    assert_one_line_error(proc, "BENCH_ALLREDUCE_DTYPE must be one of float32, bfloat16, float16, got 'int8'")


@pytest.mark.parametrize("settings,expected", _refused_by("trainers", "ray", "script"))
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
