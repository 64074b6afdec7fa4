"""The benchmark's CPU attribution: which group each process belongs to, and windows kept only while training."""

from benchmarks import cpu_sampler


def test_processes_fall_into_the_groups_the_report_names():
    assert cpu_sampler.group_of("ray::RayTrainWorker") == "training workers"
    assert cpu_sampler.group_of("ray::TrainController.run") == "Ray Train actors"
    assert cpu_sampler.group_of("ray::_QueueActor.get") == "Ray Train actors"
    assert cpu_sampler.group_of("ray::DashboardAgent") == "Ray system processes"
    assert cpu_sampler.group_of("/venv/lib/python3.11/site-packages/ray/core/src/ray/raylet/raylet --x") == \
        "Ray system processes"
    assert cpu_sampler.group_of("/venv/bin/python -u /venv/.../ray/_private/log_monitor.py") == \
        "Ray system processes"
    assert cpu_sampler.group_of(".venv/bin/python -m training.ray_training --num-workers 2") == "driver"
    assert cpu_sampler.group_of("kdamond.0").startswith("other")


def test_no_training_means_no_window():
    # Nothing named ray::RayTrainWorker runs during the test: every window is dropped, none is invented.
    with cpu_sampler.Sampler(workers=2, interval=0.2) as sampler:
        import time

        time.sleep(0.7)
    assert sampler.shares() is None
