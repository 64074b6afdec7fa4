"""The comparison's arithmetic on known inputs, its files and its warnings."""

import json
import subprocess

import pytest

from tests.helpers.common import program
from tests.helpers.results_factory import fake_result
from training import compare
from training.core.results import write_results


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
    out = subprocess.run([*program("training.compare"), "--results-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    doc = json.loads((tmp_path / "comparison.json").read_text())
    assert set(doc) >= {"baseline", "ray_distributed", "comparison"}
    assert doc["comparison"]["speedup"] == pytest.approx(2.0) and doc["comparison"]["efficiency"] == pytest.approx(1.0)
    assert "Speedup 2.00x, efficiency 1.00" in out and "Equal-resources speedup 1.20x" in out
    assert "| Ray Train, 2 workers | 2 |" in (tmp_path / "comparison.md").read_text()
    for png in ("training_time.png", "training_curves.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_without_results_is_one_line(tmp_path):
    proc = subprocess.run([*program("training.compare"), "--results-dir", str(tmp_path)],
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


def fixed(start, tracing, after):
    return {"command_start_to_fit_seconds": start, "first_epoch_excess_seconds": tracing, "after_fit_seconds": after}


def steady_pair():
    """A 3-epoch baseline at 12 s per steady epoch and a 2-worker Ray run at 8 s, each with its fixed costs."""
    baseline = fake_result("baseline", seconds=38.0, cpus=1, epochs=3, epoch_seconds=[14.0, 12.0, 12.0],
                           wall=48.0, fixed_costs=fixed(7.0, 2.0, 1.0))
    ray = fake_result("ray_distributed", seconds=28.0, cpus=2, workers=2, per_worker_batch=32, epochs=3,
                      epoch_seconds=[12.0, 8.0, 8.0], wall=70.0, fixed_costs=fixed(33.0, 4.0, 5.0))
    ray["config"]["batch_size_mode"] = "global"
    equal = fake_result("baseline", seconds=26.0, cpus=2, epochs=3, epoch_seconds=[10.0, 8.0, 8.0])
    return baseline, ray, equal


def test_steady_state_leads_and_fixed_costs_are_set_apart():
    baseline, ray, equal = steady_pair()
    c = compare.compare(baseline, ray, equal)
    assert c["steady_state_speedup"] == pytest.approx(1.5)
    assert c["steady_state_efficiency"] == pytest.approx(0.75)
    assert c["equal_resources_steady_state_speedup"] == pytest.approx(1.0)
    assert c["fixed_costs"]["baseline"] == fixed(7.0, 2.0, 1.0) and c["fixed_costs"]["ray"] == fixed(33.0, 4.0, 5.0)
    # Ray's fixed costs are 32 s more, and it saves 4 s per steady epoch: it pays back after 8 epochs.
    assert c["break_even_epochs"] == pytest.approx(8.0)
    assert c["end_to_end_speedup"] == pytest.approx(48.0 / 70.0)
    assert c["same_optimization"], "one global batch of 64, split over 2 workers, same steps and rate"
    assert any("same 45 optimizer steps" in n for n in c["notes"])
    assert any("catch up after about 8 epochs" in n for n in c["notes"])


def test_different_recipes_are_named_as_the_reason_for_an_accuracy_gap():
    baseline = fake_result("baseline", per_worker_batch=64)
    ray = fake_result("ray_distributed", workers=2, cpus=2, per_worker_batch=64, learning_rate=0.0014)
    c = compare.compare(baseline, ray)
    assert not c["same_optimization"]
    assert any("part of any accuracy gap is the recipe" in n for n in c["notes"])


def test_summary_prints_steady_state_then_fixed_costs_then_end_to_end(tmp_path, capsys):
    baseline, ray, equal = steady_pair()
    for name, doc in (("baseline_results.json", baseline), ("baseline_equal_resources_results.json", equal),
                      ("ray_results_2workers.json", ray)):
        write_results(str(tmp_path / name), doc)
    compare.main(["--results-dir", str(tmp_path)])
    out = capsys.readouterr().out
    steady = out.index("1. Steady state")
    fixed_at = out.index("2. Fixed costs")
    end = out.index("3. End to end")
    assert steady < fixed_at < end
    assert "Speedup 1.50x, efficiency 0.75" in out[steady:fixed_at]
    assert "Equal-resources speedup 1.00x" in out[steady:fixed_at]
    start_line = next(line for line in out[fixed_at:end].splitlines() if line.strip().startswith("start-up"))
    assert start_line.split()[-2:] == ["7.0", "33.0"]
    doc = json.loads((tmp_path / "comparison.json").read_text())
    assert doc["comparison"]["steady_state_efficiency"] == pytest.approx(0.75)
    assert "Why" in (tmp_path / "comparison.md").read_text()


def test_curves_have_whole_epoch_ticks_a_legend_off_the_plots_and_a_title_that_says_what(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    baseline, ray, equal = steady_pair()
    for name, doc in (("baseline_results.json", baseline), ("ray_results_2workers.json", ray)):
        write_results(str(tmp_path / name), doc)
    doc, histories = compare.build(str(tmp_path))
    fig = compare.curves_figure(doc, histories)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend_box = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert not legend_box.overlaps(ax.get_window_extent(renderer)), "the legend covers a plot"
        styles = {line.get_linestyle() for line in ax.get_lines()}
        assert styles == {"-", "--"}, "training and validation are drawn differently"
    title = fig._suptitle.get_text()
    assert "digits" in title and "2 workers" in title
