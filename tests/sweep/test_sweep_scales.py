"""Scale lists from --sweep and from scales files: what is accepted, what is refused, and stable run ids."""

import pytest

from training.sweep import SweepError, scales
from training.sweep.scales import Scale

DEFAULTS = {"epochs": 2, "batch_size": 64, "cpus_per_worker": 1}


def test_worker_list_becomes_scales_with_the_baseline_first():
    listed = scales.with_baseline(scales.scales_from_workers(scales.parse_worker_list(" 1, 2,3 "), DEFAULTS))
    assert [(s.kind, s.workers, s.cpus) for s in listed] == [("baseline", 0, 1), ("ray", 1, 1), ("ray", 2, 2),
                                                            ("ray", 3, 3)]


@pytest.mark.parametrize("text,message", [("", "must list worker counts"), ("1,,2", "must list worker counts"),
                                          ("0", "positive integer"), ("-1", "positive integer"),
                                          ("1.5", "positive integer"), ("2,2", "twice")])
def test_bad_worker_lists_are_refused_with_the_reason(text, message):
    with pytest.raises(SweepError, match=message) as err:
        scales.parse_worker_list(text)
    assert err.value.code == 2


def test_yaml_and_json_scales_files_read_the_same(tmp_path):
    (tmp_path / "s.yaml").write_text("scales:\n  - {type: baseline, cpus_per_worker: 2}\n"
                                     "  - {workers: 2, epochs: 5, batch_size: 32}\n")
    (tmp_path / "s.json").write_text('[{"type": "baseline", "cpus_per_worker": 2}, '
                                     '{"workers": 2, "epochs": 5, "batch_size": 32}]')
    from_yaml = scales.load_scales_file(tmp_path / "s.yaml", DEFAULTS)
    assert from_yaml == scales.load_scales_file(tmp_path / "s.json", DEFAULTS)
    assert from_yaml == [Scale(workers=0, epochs=2, batch_size=64, cpus_per_worker=2),
                         Scale(workers=2, epochs=5, batch_size=32, cpus_per_worker=1)]
    assert scales.with_baseline(from_yaml) == from_yaml  # it has one already


@pytest.mark.parametrize("text,message", [
    ("[]", "lists no scales"), ("scales: [", "does not parse"), ("42", "must hold a list"),
    ("- {workers: 0, type: ray}", "workers must be a positive integer"),
    ("- {workers: -3}", "workers must be a positive integer"), ("- {workers: two}", "workers must be"),
    ("- {workers: 2, color: red}", "unknown key 'color'"), ("- {cpus_per_worker: 2}", "workers is missing"),
    ("- {workers: 1, epochs: 0}", "epochs must be a positive integer"),
    ("- {workers: 1, gpus_per_worker: 2}", "gpus_per_worker must be one of 0, 1"),
    ("- {type: baseline, workers: 2}", "a baseline has no workers"), ("- 3", "expected a mapping"),
])
def test_bad_scales_files_name_the_problem_and_the_scale(tmp_path, text, message):
    path = tmp_path / "scales.yaml"
    path.write_text(text)
    with pytest.raises(SweepError, match=message) as err:
        scales.load_scales_file(path, DEFAULTS)
    assert str(path) in str(err.value)


def test_scales_larger_than_the_cluster_or_unsplittable_batches_are_refused():
    listed = scales.with_baseline(scales.scales_from_workers([1, 3], DEFAULTS))
    scales.check_scales(listed, cluster_cpus=3)
    with pytest.raises(SweepError, match="asks for 3 CPUs, more than the cluster has"):
        scales.check_scales(listed, cluster_cpus=2)
    with pytest.raises(SweepError, match="multiple of 3"):
        scales.check_scales(listed, cluster_cpus=None, scaling="strong")
    with pytest.raises(SweepError, match="same scale twice"):
        scales.check_scales(listed + listed[-1:], cluster_cpus=None)


def test_run_ids_are_deterministic_and_change_with_what_the_run_computes():
    pytest.importorskip("temporalio", reason="the plan's runs are the workflow's dataclasses")
    listed = scales.with_baseline(scales.scales_from_workers([1, 2], DEFAULTS))
    runs = scales.build_plan(listed, "weak", {"DATASET": "digits"}, "exp", repeat=2)
    again = scales.build_plan(listed, "weak", {"DATASET": "digits"}, "exp", repeat=2)
    assert [r.run_id for r in runs] == [r.run_id for r in again]
    assert len({r.run_id for r in runs}) == 6
    assert [r.repeat for r in runs] == [1, 1, 1, 2, 2, 2]  # a whole curve before any repeat
    assert runs[0].run_id.startswith("exp-00-") and runs[0].run_id.endswith("-r1")
    assert [(r.kind, r.workers, r.cpus) for r in runs[:3]] == [("baseline", 0, 1), ("ray", 1, 1), ("ray", 2, 2)]
    other = scales.build_plan(listed, "weak", {"DATASET": "cifar10"}, "exp", repeat=1)
    assert other[1].run_id != runs[1].run_id
    strong = scales.build_plan(listed, "strong", {"DATASET": "digits"}, "exp", repeat=1)
    assert strong[1].config_hash != runs[1].config_hash
    name = scales.derive_experiment_name(listed, "weak", {"DATASET": "digits"})
    assert name == scales.derive_experiment_name(listed, "weak", {"DATASET": "digits"})
    assert name.startswith("sweep-w1-2-weak-")


@pytest.mark.parametrize("setting,value", [("ALLREDUCE_DTYPE", "bfloat16"), ("COLLECTIVE", "RING")])
def test_settings_that_change_the_all_reduce_make_another_experiment(setting, value):
    """Gradients crossing workers in bfloat16, or by another collective, are another computation: a sweep run
    with them must not share a run id (and a report) with the float32 one."""
    listed = scales.with_baseline(scales.scales_from_workers([1, 2], DEFAULTS))
    plain = scales.hashed_settings_from({"DATASET": "digits"})
    changed = scales.hashed_settings_from({"DATASET": "digits", setting: value})
    assert scales.derive_experiment_name(listed, "weak", plain) != scales.derive_experiment_name(listed, "weak",
                                                                                                  changed)


@pytest.mark.parametrize("name", ["", "a/b", "../up", ".hidden", "x" * 81, "old.old"])
def test_experiment_names_that_could_escape_or_clash_are_refused(name):
    with pytest.raises(SweepError, match="--experiment"):
        scales.check_experiment_name(name)
