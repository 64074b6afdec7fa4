"""The docs' quick-start figures come from scripts/measure-quick-start.sh: each doc has its marked block, and the
rewriter fills the blocks from the runs' own output and comparison.json, changing nothing around them."""

import json
import os
import subprocess

import pytest

from tests.helpers.common import REPO_ROOT, program
from tests.helpers.results_factory import fake_result
from training.core.results import write_results

from benchmarks import quick_start_docs


@pytest.mark.parametrize("doc,name", quick_start_docs.BLOCKS)
def test_each_doc_has_its_block(doc, name):
    text = open(os.path.join(REPO_ROOT, doc)).read()
    assert text.count(f"<!-- {name}:begin -->") == 1 and text.count(f"<!-- {name}:end -->") == 1


def fake_run(work, index, wall, ray_accuracy):
    folder = work / f"run{index}"
    folder.mkdir()
    write_results(str(folder / "baseline_results.json"), fake_result(seconds=40.0, accuracy=0.98))
    write_results(str(folder / "baseline_equal_resources_results.json"), fake_result(seconds=25.0, cpus=2))
    write_results(str(folder / "ray_results_2workers.json"),
                  fake_result("ray_distributed", seconds=30.0, cpus=2, workers=2, accuracy=ray_accuracy))
    out = subprocess.run([*program("training.compare"), "--results-dir",
                          str(folder)], capture_output=True, text=True, check=True).stdout
    (work / f"run{index}.stdout").write_text(f"[12:00:00] Run x: local target\n{out}"
                                             f"[12:02:00] Results in {folder}/ (...)\n")
    (work / f"run{index}.stderr").write_text("")
    (work / f"run{index}.time").write_text(f"1000.0 {1000.0 + wall}\n")


def test_blocks_are_filled_from_the_median_run_and_the_rest_is_kept(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for index, wall, accuracy in ((1, 150.0, 0.97), (2, 130.0, 0.96), (3, 170.0, 0.95)):
        fake_run(work, index, wall, accuracy)
    root = tmp_path / "checkout"
    for doc, name in quick_start_docs.BLOCKS:
        (root / doc).parent.mkdir(parents=True, exist_ok=True)
        with open(root / doc, "a") as handle:
            handle.write(f"before\n<!-- {name}:begin -->\nold figures\n<!-- {name}:end -->\nafter\n")
    subprocess.run([*program("benchmarks.quick_start_docs"), "--work",
                    str(work), "--runs", "3", "--root", str(root)], check=True, capture_output=True, text=True)
    readme = (root / "README.md").read_text()
    assert readme.startswith("before\n") and readme.endswith("after\n") and "old figures" not in readme
    assert "2 min 30 s in all" in readme, "the run of median wall time (150 s) is the one shown"
    assert "1. Steady state" in readme and "median of 3 consecutive runs" in readme
    assert "0.9700 (Ray)" in (root / "GETTING_STARTED.md").read_text()
    console = (root / "docs" / "EXERCISE.md").read_text()
    assert "Results in results/" in console and str(work) not in console
    assert '"steady_state_speedup"' in console and "old figures" not in console
    table = (root / "BENCHMARKS.md").read_text()
    assert table.count("| 1 | ") == table.count("| 2 | ") == table.count("| 3 | ") == 1
    assert "median 2 min 30 s (2 min 10 s - 2 min 50 s)" in table and "target at most 3 min: met" in table
    assert "largest gap 3.0 points" in table
    json.dumps(quick_start_docs.read_run(str(work), 1), default=str)  # plain data throughout


def test_chatter_is_counted_by_the_consoles_own_filter():
    from tests.scripts.test_console import CHATTER, KEPT

    text = "\n".join(["[12:00:00] Run x"] + CHATTER + KEPT) + "\n"
    assert quick_start_docs.chatter_lines(text) == len(CHATTER)
