"""The start-up trace's table from made-up runs: the kit's phases, rank 0's setup steps inside the worker setup, the
time inside model.fit after Keras' end of training, and every process by name and order of start."""

from benchmarks.startup_trace import markdown


def run(scale, stall):
    costs = {"interpreter_start_seconds": 0.1, "imports_and_data_check_seconds": 0.1, "ray_init_seconds": 0.3,
             "driver_setup_seconds": 0.7, "worker_group_start_seconds": 6.0 * scale, "worker_setup_seconds": 3.0,
             "worker_setup_spans": {"tensorflow": 1.0 * scale, "strategy": 0.5, "model": 0.7},
             "first_step_seconds": 3.0, "fit_edges": {"train_end_to_return": stall},
             "command_start_to_fit_seconds": 10.0 * scale, "command_start_to_first_step_seconds": 13.0 * scale}
    processes = [{"name": "driver (training.ray_training)", "start": 0.0, "cpu": 1.7},
                 {"name": "ray::RayTrainWorker", "start": 3.3, "cpu": 22.0},
                 {"name": "ray::RayTrainWorker", "start": 3.4, "cpu": 21.0}]
    return costs, processes, 7.0


def test_the_table_holds_the_medians_of_each_phase_step_and_process():
    lines = markdown([run(1.0, 0.0), run(1.2, 4.0), run(1.1, 0.1)], "cmd").splitlines()
    row = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in lines if line.startswith("| ")}
    assert row["worker group start: controller, placement, worker processes, backend"][:2] == ["6.60", "6.0-7.2 |"]
    assert row["&nbsp;&nbsp;of which (rank 0): TensorFlow: what is left of its import, thread pools"][0] == "1.10"
    # A step no run recorded has no row; the stall's row shows its median and how far the runs spread.
    assert not any("tf.data datasets" in line for line in lines)
    assert row["inside model.fit, after Keras' end of training (not start-up)"][:2] == ["0.10", "0.0-4.0 |"]
    assert row["`ray::RayTrainWorker #2`"][:2] == ["3.40", "21.00"]
    # The setup steps sit right under the worker setup they are part of.
    names = [line.split(" | ")[0] for line in lines]
    assert names.index("| worker setup: TensorFlow, strategy, data, model, up to model.fit") + 1 == \
        names.index("| &nbsp;&nbsp;of which (rank 0): TensorFlow: what is left of its import, thread pools")
