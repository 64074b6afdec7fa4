"""The comparison's arithmetic on known inputs, its files and its warnings."""

import json
import subprocess
import sys

import pytest

import compare
from conftest import TRAINING_DIR
from results import write_results
from results_factory import fake_result


def test_speedups_and_efficiency_on_known_times():
    baseline = fake_result("baseline", seconds=120.0, cpus=1, accuracy=0.80, wall=150.0)
    equal = fake_result("baseline", seconds=70.0, cpus=2)
    ray = fake_result("ray_distributed", seconds=80.0, cpus=2, workers=2, accuracy=0.78, wall=120.0)
    c = compare.compare(baseline, ray, equal)
    assert c["speedup"] == pytest.approx(1.5)
    assert c["efficiency"] == pytest.approx(0.75)
    assert c["equal_resources_speedup"] == pytest.approx(70.0 / 80.0)
    assert c["end_to_end_speedup"] == pytest.approx(1.25)
    assert c["accuracy_delta"] == pytest.approx(-0.02)
    assert (c["baseline_cpus"], c["ray_cpus"], c["equal_resources_baseline_cpus"]) == (1, 2, 2)
    assert c["warnings"] == []


def test_unfair_inputs_are_flagged():
    baseline = fake_result("baseline", cpus=2, epochs=3)
    ray = fake_result("ray_distributed", cpus=2, workers=2, dataset="digits", restarts=1)
    warnings = " | ".join(compare.compare(baseline, ray)["warnings"])
    assert "baseline used 2 CPUs but a Ray worker used 1" in warnings
    assert "epochs differs" in warnings and "restarted 1 time" in warnings


def test_synthetic_accuracy_is_marked_meaningless():
    c = compare.compare(fake_result(dataset="synthetic"), fake_result("ray_distributed", workers=2, cpus=2,
                                                                      dataset="synthetic"))
    assert not c["accuracy_meaningful"] and any("synthetic" in w for w in c["warnings"])


def test_cli_writes_json_markdown_and_plots(tmp_path):
    write_results(str(tmp_path / "baseline_results.json"), fake_result(seconds=100.0))
    write_results(str(tmp_path / "baseline_equal_resources_results.json"), fake_result(seconds=60.0, cpus=2))
    write_results(str(tmp_path / "ray_results_2workers.json"),
                  fake_result("ray_distributed", seconds=50.0, cpus=2, workers=2))
    out = subprocess.run([sys.executable, f"{TRAINING_DIR}/compare.py", "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads((tmp_path / "comparison.json").read_text())
    assert set(doc) >= {"baseline", "ray_distributed", "comparison"}
    assert doc["comparison"]["speedup"] == pytest.approx(2.0) and doc["comparison"]["efficiency"] == pytest.approx(1.0)
    assert "Speedup 2.00x, efficiency 1.00" in out and "Equal-resources speedup 1.20x" in out
    assert "| Ray Train, 2 workers | 2 |" in (tmp_path / "comparison.md").read_text()
    for png in ("training_time.png", "training_curves.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_results_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, f"{TRAINING_DIR}/compare.py", "--results-dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "baseline_results.json' does not exist" in proc.stderr


def test_strong_scaling_compares_global_batches():
    baseline = fake_result("baseline", per_worker_batch=64)
    ray = fake_result("ray_distributed", workers=2, cpus=2, per_worker_batch=32)
    ray["config"]["batch_size_mode"] = "global"
    assert not any("batch_size differs" in w for w in compare.compare(baseline, ray)["warnings"])
    ray["config"]["per_worker_batch_size"], ray["config"]["global_batch_size"] = 64, 128
    assert any("global_batch_size differs" in w for w in compare.compare(baseline, ray)["warnings"])
