"""training/launch.py, the one launcher of every run: the command it builds is the settings table's for both
targets, and stop() ends the run's whole process group, not just its first process."""

import os
import subprocess
import sys
import time

from training import launch
from training.core import settings


def test_a_local_run_is_the_settings_tables_command_with_this_python():
    values = {"EPOCHS": 3, "NUM_WORKERS": 2, "OUTPUT": "/tmp/out.json"}
    assert launch.command("ray", "local", values, environ={}) == \
        [sys.executable] + settings.trainer_argv("ray", "local", values, environ={})


def test_a_pod_run_goes_through_cluster_benchmark_pod_run_with_the_pod_argv():
    values = {"EPOCHS": 3, "THREADS": 2, "OUTPUT": "/tmp/kit/run-7.json"}
    argv = launch.command("baseline", "k8s", values, environ={}, run_dir="/r/run-7", cpus=2)
    assert argv[:9] == ["bash", os.path.join(launch.LIB, "cluster_benchmark.sh"), "pod-run", "baseline", "2",
                        "run-7.json", "/r/run-7", "--", "python"]
    assert argv[9:] == settings.trainer_argv("baseline", "pod", values, environ={})


def test_stop_ends_the_whole_group_of_a_run_that_ignores_sigint():
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              "child = subprocess.Popen(['sleep', '600']); print(child.pid, flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                               **{k: v for k, v in launch.child_options().items() if k != "cwd"})
    child = int(process.stdout.readline())
    began = time.monotonic()
    launch.stop(process, grace=1)
    assert process.returncode is not None and time.monotonic() - began < 15
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_bad_setting_is_one_line_and_exit_2(python_env):
    done = subprocess.run([sys.executable, "-m", "training.launch", "baseline", "EPOCHS=ten"], env=python_env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip() == "error: EPOCHS must be a positive integer, got 'ten'"
