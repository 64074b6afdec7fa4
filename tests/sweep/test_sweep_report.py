"""The report's arithmetic on known inputs: a workflow export and results files with chosen training times."""

import dataclasses
import json
import os

import pytest

pytest.importorskip("temporalio", reason="the plan's runs are the workflow's dataclasses")

from tests.helpers.results_factory import fake_result  # noqa: E402
from training.core import atomic_files  # noqa: E402
from training.core.results import write_results  # noqa: E402
from training.sweep import report, scales  # noqa: E402
from training.sweep.scales import Scale  # noqa: E402

TIMES = {  # scale -> training seconds of repeat 1 and 2
    Scale(workers=0, epochs=2, batch_size=64, cpus_per_worker=1): (100.0, 110.0),
    Scale(workers=0, epochs=2, batch_size=64, cpus_per_worker=2): (60.0, 62.0),
    Scale(workers=1, epochs=2, batch_size=64, cpus_per_worker=1): (120.0, 130.0),
    Scale(workers=2, epochs=2, batch_size=64, cpus_per_worker=1): (70.0, 80.0),
}


def write_experiment(folder, times, scaling="weak", skip=(), target_accuracy=None):
    """A finished sweep as the driver leaves it: the workflow's result exported, and validated results."""
    runs = scales.build_plan(list(times), scaling, {"DATASET": "digits"}, "known", repeat=2)
    os.makedirs(folder, exist_ok=True)
    records = []
    for run in runs:
        spec = dataclasses.asdict(run)
        if run.run_id in skip:
            records.append({"run": spec, "state": "failed", "result": None, "error": "exit 1: broken"})
            continue
        scale = Scale(workers=run.workers, epochs=run.epochs, batch_size=run.batch_size,
                      cpus_per_worker=run.cpus_per_worker, gpus_per_worker=run.gpus_per_worker)
        seconds = times[scale][run.repeat - 1]
        kind = "baseline" if run.kind == "baseline" else "ray_distributed"
        result = fake_result(kind, seconds=seconds, cpus=run.cpus, workers=max(run.workers, 1))
        result["run_id"] = run.run_id
        relative = f"runs/{run.run_id}/results.json"
        write_results(os.path.join(folder, relative), result)
        records.append({"run": spec, "state": "succeeded", "error": None,
                        "result": {"run_id": run.run_id, "results": relative, "attempt": 1, "seconds": seconds,
                                   "training_time_seconds": seconds, "best_val_accuracy": None, "reused": False}})
    atomic_files.write_json(os.path.join(folder, report.EXPORT_FILE), {
        "workflow_id": "sweep-known", "experiment": "known", "scaling": scaling, "target": "local",
        "settings": {}, "target_accuracy": target_accuracy, "records": records, "stopped": None})
    return runs


def rows_by_scale(doc):
    return {(row["kind"], row["workers"], row["cpus"]): row for row in doc["scales"]}


def test_speedups_efficiencies_and_overhead_from_medians(tmp_path):
    write_experiment(str(tmp_path), TIMES, target_accuracy=0.5)
    doc = report.build_report(str(tmp_path))
    rows = rows_by_scale(doc)
    base, ray1, ray2 = rows[("baseline", 0, 1)], rows[("ray", 1, 1)], rows[("ray", 2, 2)]
    assert base["training_time_seconds"] == {"median": 105.0, "min": 100.0, "max": 110.0, "n": 2}
    assert ray2["total_speedup"] == pytest.approx(105 / 75)
    assert ray2["efficiency"] == pytest.approx(105 / 75 / 2)
    assert ray2["total_speedup_range"] == pytest.approx([100 / 80, 110 / 70])
    assert ray2["parallel_speedup"] == pytest.approx(125 / 75)
    assert ray2["parallel_efficiency"] == pytest.approx(125 / 75 / 2)
    assert ray2["equal_resources_speedup"] == pytest.approx(61 / 75)
    assert ray1["ray_overhead"] == pytest.approx(125 / 105)
    assert ray1["total_speedup"] == pytest.approx(105 / 125) and ray1["parallel_speedup"] == pytest.approx(1.0)
    assert doc["ray_overhead"] == [{"index": ray1["index"], "cpus": 1, "ratio": pytest.approx(125 / 105),
                                    "baseline_index": base["index"]}]
    # The stand-in history reaches val_accuracy 0.55 in its second (last) epoch: time to target = T.
    assert ray2["time_to_target_seconds"]["median"] == pytest.approx(75.0)
    assert ray2["time_to_target_reached"] == "2/2"
    assert ray2["cpus_used"] == [2] and ray2["global_batch_size"] == 128
    assert doc["scaling"] == "weak" and "per-worker batch is fixed" in doc["scaling_statement"]
    assert doc["warnings"] == []


def test_report_files_state_the_numbers_and_the_scaling_mode(tmp_path):
    write_experiment(str(tmp_path), TIMES, scaling="strong")
    paths = report.write_report(str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["report.json", "report.md", "scaling.png"]
    text = open(os.path.join(tmp_path, "report.md")).read()
    assert "strong scaling: the global batch is fixed" in text
    assert "| Ray 2 x 1 CPU | 2 | 2/2 | 75.0s (70.0-80.0) |" in text
    assert "T(Ray, 1 worker) / T(baseline) = 1.19 (Ray slower)" in text
    assert json.load(open(paths[0]))["scales"][3]["total_speedup"] == pytest.approx(1.4)
    assert open(paths[2], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_missing_runs_and_incomparable_scales_are_said_not_hidden(tmp_path):
    times = dict(TIMES)
    longer = Scale(workers=2, epochs=5, batch_size=64, cpus_per_worker=1)
    times[longer] = (200.0, 210.0)
    runs = scales.build_plan(list(times), "weak", {"DATASET": "digits"}, "known", repeat=2)
    skipped = next(r.run_id for r in runs if r.workers == 2 and r.epochs == 2 and r.repeat == 2)
    write_experiment(str(tmp_path), times, skip={skipped})
    doc = report.build_report(str(tmp_path))
    ray2 = [row for row in doc["scales"] if row["workers"] == 2 and row["scale"]["epochs"] == 2][0]
    assert ray2["repeats_done"] == 1 and ray2["total_speedup"] == pytest.approx(105 / 70)
    other = [row for row in doc["scales"] if row["scale"]["epochs"] == 5][0]
    assert other["total_speedup"] is None and other["parallel_speedup"] is None
    assert any(skipped in w and "failed (exit 1: broken)" in w for w in doc["warnings"])
    assert any("no comparable baseline" in w for w in doc["warnings"])


def test_time_to_accuracy_counts_epochs_until_the_target():
    history = [{"seconds": 10, "val_accuracy": 0.3}, {"seconds": 12, "val_accuracy": 0.6},
               {"seconds": 11, "val_accuracy": 0.7}]
    assert report.time_to_accuracy(history, 0.6) == 22
    assert report.time_to_accuracy(history, 0.9) is None


def test_no_report_files_until_a_run_succeeded(tmp_path):
    times = {Scale(workers=1, epochs=2, batch_size=64, cpus_per_worker=1): (1.0, 1.0)}
    runs = scales.build_plan(list(times), "weak", {"DATASET": "digits"}, "known", repeat=2)
    write_experiment(str(tmp_path), times, skip={r.run_id for r in runs})
    assert report.write_report(str(tmp_path)) == []
    assert not os.path.exists(os.path.join(tmp_path, "report.json"))
