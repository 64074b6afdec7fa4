"""The settings table is the one owner of every setting: the parsers, the argv builder, the environment check, the
sweep hash and the docs come from it, and agree with each other."""

import importlib
import os
import subprocess
import sys
import time

import pytest

from tests.helpers.common import REPO_ROOT
from training.core import settings
from training.core.settings import docs, kinds, rules

PARSING_PROGRAMS = ("baseline", "ray", "patterns", "simulate", "compare", "sweep", "benchmark")


def test_every_default_is_a_value_its_own_type_accepts():
    for setting in settings.SETTINGS:
        layers = [setting.default] + [layer.get(setting.name) for layer in settings.PROGRAM_DEFAULTS.values()]
        layers.append(settings.QUICK.get(setting.name))
        for value in (v for v in layers if v is not None):
            setting.parser()(value)  # raises SettingsError, naming the setting, when the table is wrong


def test_every_one_of_setting_lists_its_choices_and_every_program_is_known():
    for setting in settings.SETTINGS:
        assert set(setting.programs) <= set(settings.PROGRAMS), setting.name
        assert hasattr(setting.kind, "choices") == (setting.name in settings.CHOICES), setting.name
        assert setting.pod in ("pass", "refuse", "local"), setting.name


def _parser_flags(program):
    parser = settings.parser_for(program, "test")
    return {action.option_strings[0] for action in parser._actions if action.option_strings} - {"-h"}


@pytest.mark.parametrize("program", PARSING_PROGRAMS)
def test_each_programs_flags_are_exactly_its_settings_in_the_table(program):
    assert _parser_flags(program) == {s.flag(program) for s in settings.of_program(program)}


@pytest.mark.parametrize("program", settings.TRAINERS)
def test_the_argv_builder_and_the_trainers_parser_agree_on_every_setting(program, tmp_path):
    """Round trip: a value for each setting, built into argv, parses back to the same value in the trainer."""
    module = importlib.import_module({"baseline": "training.baseline_training", "ray": "training.ray_training"}[program])
    values = {}
    for setting in settings.of_program(program):
        if setting.name == "DATA_DIR":
            continue  # needs a real CIFAR-10 folder; tests/core/test_data.py covers it
        values[setting.name] = _a_value_other_than_the_default(setting, program)
    values.update(OUTPUT=str(tmp_path / "out.json"), RESULTS_DIR=str(tmp_path))
    if program == "ray":  # the rules between settings must hold
        values.update(NUM_WORKERS="2", BATCH_SIZE="64", BATCH_SIZE_MODE="global", TRAIN_SAMPLES="640",
                      INJECT_FAILURE_EPOCH="1", MAX_FAILURES="2", EPOCHS="3")
    argv = settings.trainer_argv(program, "local", values, environ={})
    assert ["python", *argv[:2]] == settings.PROGRAMS[program].split() == ["python", "-m", module.__name__]
    args = module.parse_args(argv[2:])
    for name, text in values.items():
        setting = settings.BY_NAME[name]
        expected = setting.parser()(text)
        got = getattr(args, setting.dest(program))
        assert got == expected or (name == "STORAGE_PATH" and got == os.path.abspath(text)), name


def _a_value_other_than_the_default(setting, program):
    if setting.name in settings.CHOICES:
        return next(c for c in settings.CHOICES[setting.name] if c != setting.default)
    if setting.kind is kinds.switch:
        return "1"
    if setting.kind is kinds.checkpoint_policy:
        return "interval:2"
    if setting.kind is kinds.text:
        return f"some-{setting.name.lower()}"
    return {"fraction": "0.25"}.get(setting.kind.__name__, "3")


def test_the_environment_rides_along_and_given_values_win():
    argv = settings.trainer_argv("ray", "local", {"EPOCHS": "4"}, environ={"EPOCHS": "9", "SEED": "7"})
    assert argv[argv.index("--epochs") + 1] == "4" and argv[argv.index("--seed") + 1] == "7"


def test_the_pods_are_never_given_what_they_cannot_take():
    with pytest.raises(settings.SettingsError, match="DATA_DIR is a folder on this machine"):
        settings.trainer_argv("baseline", "pod", environ={"DATA_DIR": "/data"})
    # This machine's paths and Ray address stay here; the pod's own are given explicitly.
    argv = settings.trainer_argv("ray", "pod", {"RAY_ADDRESS": "auto"},
                                 environ={"RAY_ADDRESS": "127.0.0.1:6390", "RESULTS_DIR": "/home/me/results"})
    assert argv[argv.index("--ray-address") + 1] == "auto" and "--results-dir" not in argv


def test_the_progress_interval_reaches_both_trainers_and_the_pods():
    for program in ("baseline", "ray"):
        for target in ("local", "pod"):
            argv = settings.trainer_argv(program, target, environ={"PROGRESS_INTERVAL": "1"})
            assert argv[argv.index("--progress-interval") + 1] == "1"
    assert settings.parse("baseline", "", []).progress_interval == 10.0
    assert settings.parse("ray", "", ["--progress-interval", "0"]).progress_interval == 0.0  # off


def test_the_builder_refuses_a_setting_the_program_does_not_take_and_a_bad_value():
    with pytest.raises(settings.SettingsError, match="STORAGE_PATH is not a setting of python -m training.baseline"):
        settings.trainer_argv("baseline", "local", {"STORAGE_PATH": "/x"})
    with pytest.raises(settings.SettingsError, match="EPOCHS must be a positive integer, got 'ten'"):
        settings.trainer_argv("baseline", "local", {"EPOCHS": "ten"})


def test_the_sweep_hashes_exactly_the_settings_the_table_marks():
    from training.sweep import scales

    assert scales.HASHED_SETTINGS == tuple(s.name for s in settings.SETTINGS if s.hashed)
    assert {"ALLREDUCE_DTYPE", "COLLECTIVE", "LEARNING_RATE", "DATASET"} <= set(scales.HASHED_SETTINGS)
    assert scales.hashed_settings_from({"COLLECTIVE": "RING"}) != scales.hashed_settings_from({})


def test_the_docs_table_lists_exactly_the_settings_the_environment_sets():
    """(Whether the block is current is tests/scripts/test_generated.py's one check of every generated file.)"""
    text = open(os.path.join(REPO_ROOT, docs.DOCS_FILE), encoding="utf-8").read()
    for setting in settings.SETTINGS:
        assert (f"| `{setting.name}` |" in text) == setting.env, setting.name


def test_model_hyper_parameters_reach_build_model_by_name():
    import inspect

    from training.core import model

    accepted = inspect.signature(model.build_model).parameters
    for name in settings.model_options({s.name.lower(): None for s in settings.SETTINGS}):
        assert name in accepted, name


# --- every entry point refuses every class of mistake, in one line, before any work ------------------------------

MISTAKES = {
    "wrong type": ({"EPOCHS": "ten"}, "EPOCHS must be a positive integer, got 'ten'"),
    "out of range": ({"VAL_FRACTION": "1.5"}, "VAL_FRACTION must be a number between 0 and 1 (exclusive)"),
    "not allowed": ({"DATASET": "imagenet"}, "DATASET must be one of cifar10, synthetic, digits"),
    "conflict": ({"EPOCHS": "2", "INJECT_FAILURE_EPOCH": "3"}, "INJECT_FAILURE_EPOCH must be at most EPOCHS (2)"),
}
BENCHMARK_MISTAKES = {
    "wrong type": ({"BENCH_EPOCHS": "ten"}, "BENCH_EPOCHS must be a positive integer, got 'ten'"),
    "out of range": ({"REPEATS": "0"}, "REPEATS must be a positive integer, got '0'"),
    "not allowed": ({"BENCH_ALLREDUCE_DTYPE": "int8"}, "BENCH_ALLREDUCE_DTYPE must be one of float32"),
}
ENTRY_POINTS = {
    "local": ["scripts/run-benchmark.sh", "--local", "--quick"],
    "cluster": ["scripts/run-benchmark.sh", "--quick"],
    "sweep": ["scripts/run-benchmark.sh", "--local", "--sweep", "1,2"],
    "sweep module": [sys.executable, "-m", "training.sweep", "run", "--sweep", "1,2"],
}


def _refused_at_once(command, env_settings, expected, tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "RESULTS_DIR": str(tmp_path),
           "PYTHONPATH": REPO_ROOT, **env_settings}
    started = time.monotonic()
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - started
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    # Nothing ran: no run folder (made before the first training process), no experiment, nothing written.
    assert os.listdir(tmp_path) == []
    assert seconds < 10, seconds


@pytest.mark.parametrize("mistake", MISTAKES)
@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_every_entry_point_refuses_every_class_of_mistake_before_any_work(entry, mistake, tmp_path):
    env_settings, expected = MISTAKES[mistake]
    _refused_at_once(ENTRY_POINTS[entry], env_settings, expected, tmp_path)


@pytest.mark.parametrize("mistake", BENCHMARK_MISTAKES)
def test_the_kits_benchmark_refuses_every_class_of_mistake_before_any_work(mistake, tmp_path):
    env_settings, expected = BENCHMARK_MISTAKES[mistake]
    _refused_at_once(["scripts/benchmark.sh", "--quick"], env_settings, expected, tmp_path)


def test_the_cluster_target_refuses_data_dir_and_a_zero_timeout_before_any_kubectl_call(tmp_path):
    _refused_at_once(ENTRY_POINTS["cluster"], {"DATA_DIR": str(tmp_path)}, "DATA_DIR is a folder on this machine",
                     tmp_path)
    _refused_at_once(ENTRY_POINTS["cluster"], {"RUN_TIMEOUT_S": "0"}, "RUN_TIMEOUT_S must be a positive integer "
                     "on the cluster target", tmp_path)


# --- one resolved run --------------------------------------------------------------------------------------------


def test_the_batch_arithmetic_lives_in_one_place_and_the_trainers_use_it():
    from training import ray_training
    from training.distributed.ray_run_config import RayRunConfig

    assert rules.batches(64, "global", 2, "sqrt") == (32, 64, 1.0)
    assert rules.batches(64, "per-worker", 4, "linear") == (64, 256, 4.0)
    run = RayRunConfig.from_args(ray_training.parse_args(["--num-workers", "4", "--batch-size", "64",
                                                          "--lr-scaling", "sqrt", "--learning-rate", "0.001"]))
    assert (run.per_worker_batch, run.global_batch, run.lr_factor) == (64, 256, 2.0)
    assert run.learning_rate == pytest.approx(0.002) and run.base_learning_rate == 0.001


def test_every_recorded_setting_reaches_the_results_config_without_being_listed_again():
    """A new Ray setting is a row, the code that uses it and a test: the resolved run carries every row of the
    program to the workers and into the results, so no list of fields can drop one."""
    from training import ray_training
    from training.distributed.ray_run_config import RayRunConfig

    run = RayRunConfig.from_args(ray_training.parse_args(["--num-workers", "2", "--collective", "RING"]))
    record = run.record()
    for setting in settings.of_program("ray"):
        assert (setting.name.lower() in record) == setting.recorded, setting.name
    assert record["collective"] == "RING" and record["global_batch_size"] == 128
    assert RayRunConfig.from_dict(run.to_dict()) == run
    assert run.replace(run_id="r1").storage_dir.endswith("/r1")


def test_the_comparisons_must_match_list_comes_from_the_rows():
    from training import compare

    assert set(settings.MUST_MATCH) == {"epochs", "dataset", "seed", "val_fraction", "bn_momentum"}
    assert set(settings.MUST_MATCH) < set(compare.MUST_MATCH)
    assert all(settings.BY_NAME[name.upper()].recorded for name in settings.MUST_MATCH)


@pytest.mark.parametrize("name, train, test", [("digits", None, None), ("digits", 500, 100),
                                              ("synthetic", None, None), ("synthetic", 333, 77)])
def test_a_bundled_datasets_split_known_without_loading_it_is_the_loaders(name, train, test):
    """The Ray driver and the early checks use datasets.bundled_sizes; data.load_dataset must agree."""
    from training.core import data
    from training.core.settings import datasets

    loaded = data.load_dataset(name, None, train, test, 0.1, 7)
    assert loaded.sizes() == datasets.bundled_sizes(name, train, test, 0.1)
    assert len(loaded.y_train) == datasets.training_images(name, train, 0.1)


@pytest.mark.parametrize("programs, environ, expected", [
    ("patterns", {"BATCH_SIZE": "400"}, "TRAIN_SAMPLES must hold at least one batch (400 images), got 320"),
    ("baseline,ray,local", {"DATASET": "digits", "BATCH_SIZE": "1000000"},
     "BATCH_SIZE must be at most the 1294 training images of DATASET=digits, got 1000000"),
    ("ray", {"DATASET": "digits", "BATCH_SIZE": "1000", "NUM_WORKERS": "2"},
     "BATCH_SIZE must give a global batch (2000 images: BATCH_SIZE 1000, per-worker, 2 workers) of at most the "
     "1294 training images of DATASET=digits, got 1000"),
    ("ray", {"TRAIN_SAMPLES": "100", "BATCH_SIZE": "64"}, "TRAIN_SAMPLES must hold at least one global batch"),
    ("baseline", {"DATASET": "digits", "TRAIN_SAMPLES": "5000"}, "TRAIN_SAMPLES must be at most 1294 for "
     "DATASET=digits (it has 1438 training images, 10% held out), got 5000"),
    ("ray", {"DATASET": "digits", "TEST_SAMPLES": "400"}, "TEST_SAMPLES must be at most 359 for DATASET=digits"),
])
def test_a_batch_no_epoch_could_fill_is_refused_from_the_command_line_in_one_line(programs, environ, expected):
    proc = subprocess.run([sys.executable, "-m", "training.core.settings", "check", "--programs", programs],
                          cwd=REPO_ROOT, env={"PATH": os.environ["PATH"], **environ}, capture_output=True, text=True)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"error: {expected}"), proc.stderr


def test_a_program_default_is_a_default_of_the_rules_too():
    """The rules fill an unset setting with the program's default, not only the table's (the tasks demo's
    TRAIN_SAMPLES is 320 where the table has none)."""
    assert rules.value_of({}, "TRAIN_SAMPLES", "patterns") == 320
    assert rules.value_of({}, "TRAIN_SAMPLES", "baseline") is None
    assert rules.conflicts("patterns", {"BATCH_SIZE": 320}) == []
