"""The start-up trace's process record: who started during a run, under which roots, and the names it gives."""

import os
import subprocess
import sys

from benchmarks.process_trace import ProcessTrace, short_name


def test_a_trace_keeps_the_processes_a_root_started_and_leaves_out_the_others():
    with ProcessTrace(interval=0.05) as trace:
        # A child that starts a grandchild (both under this test), and a process that is not ours.
        mine = subprocess.Popen([sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '0.6'])"])
        other = subprocess.Popen(["sleep", "0.6"])
        mine.wait()
        other.wait()
    found = trace.processes([mine.pid])
    assert [p["pid"] for p in found][0] == mine.pid
    assert any(p["title"] == "sleep 0.6" for p in found[1:]), found
    assert other.pid not in [p["pid"] for p in found]
    assert [p["start"] for p in found] == sorted(p["start"] for p in found)
    assert trace.processes([os.getpid()])  # this process started both


def test_ray_titles_are_their_own_names_and_known_programs_get_theirs():
    assert short_name("ray::TrainController.run") == "ray::TrainController.run"
    assert short_name("ray::RayTrainWorker") == "ray::RayTrainWorker"
    assert short_name("/venv/lib/ray/core/src/ray/raylet/raylet --raylet_socket_name=x") == "raylet"
    assert short_name("/venv/bin/python -m training.ray_training --epochs 2") == "driver (training.ray_training)"
