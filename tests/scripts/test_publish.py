"""results/ holds one run: publishing a finished run replaces the files of the one before, leaves everything
else in the folder alone, and what it leaves is what compare.py reads."""

import json
import subprocess

from tests.helpers.common import REPO_ROOT, program
from tests.helpers.results_factory import fake_result
from training.core.results import write_results


def publish(run_dir, results_dir):
    script = (f'source "{REPO_ROOT}/scripts/lib/common.sh"; source "{REPO_ROOT}/scripts/lib/publish.sh"; '
              'publish::run "$1" "$2"')
    return subprocess.run(["bash", "-c", script, "bash", str(run_dir), str(results_dir)], capture_output=True,
                          text=True, timeout=30)


def make_run(folder, workers):
    folder.mkdir(parents=True)
    write_results(str(folder / "baseline_results.json"), fake_result(seconds=100.0))
    write_results(str(folder / f"ray_results_{workers}workers.json"),
                  fake_result("ray_distributed", seconds=60.0, cpus=workers, workers=workers))
    (folder / "comparison.md").write_text(f"# {workers} workers\n")
    return folder


def test_a_one_worker_run_after_a_two_worker_run_leaves_only_its_own_files(tmp_path):
    results = tmp_path / "results"
    (results / "runs").mkdir(parents=True)
    (results / "notes.txt").write_text("mine")
    first = make_run(results / "runs" / "a", workers=2)
    assert publish(first, results).returncode == 0
    (results / "training_curves.png").write_bytes(b"old plot")  # as if the first run had made it
    second = make_run(results / "runs" / "b", workers=1)
    out = publish(second, results)
    assert out.returncode == 0, out.stderr

    top = sorted(p.name for p in results.iterdir() if p.is_file())
    assert top == ["baseline_results.json", "comparison.md", "notes.txt", "ray_results_1workers.json"]
    assert (results / "comparison.md").read_text() == "# 1 workers\n"
    assert (first / "ray_results_2workers.json").exists(), "the earlier run keeps its own copy"
    # compare.py on the published folder reads the one run, without asking which worker count.
    proc = subprocess.run([*program("training.compare"), "--results-dir", str(results)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((results / "comparison.json").read_text())["comparison"]["num_workers"] == 1
