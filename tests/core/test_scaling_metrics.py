"""The one definition of speedup and efficiency, on known times and on the figures a run may lack."""

import pytest

from training.core.scaling_metrics import (efficiency, images_per_epoch, overhead, ratio, speedup, speedup_range,
                             steady_images_per_second)


def test_scale_out_speedup_and_efficiency_on_known_times():
    s = speedup(120.0, 40.0)
    assert s == pytest.approx(3.0)
    assert efficiency(s, 4) == pytest.approx(0.75)


def test_one_worker_efficiency_is_the_speedup():
    assert efficiency(speedup(100.0, 125.0), 1) == pytest.approx(0.8)


def test_overhead_is_the_inverse_of_a_speedup():
    assert overhead(125.0, 100.0) == pytest.approx(1.25)
    assert overhead(125.0, 100.0) * speedup(100.0, 125.0) == pytest.approx(1.0)


@pytest.mark.parametrize("numerator,denominator", [(None, 10.0), (10.0, None), (10.0, 0), (10.0, 0.0),
                                                   (None, None)])
def test_a_missing_or_zero_time_gives_none_not_an_error(numerator, denominator):
    assert ratio(numerator, denominator) is None
    assert speedup(numerator, denominator) is None
    assert efficiency(numerator, denominator) is None


def test_a_zero_numerator_is_a_real_zero():
    assert speedup(0.0, 5.0) == 0.0


def test_zero_workers_give_no_efficiency():
    assert efficiency(2.0, 0) is None


def test_range_runs_from_slowest_reference_over_fastest_ray_to_the_reverse():
    reference = {"median": 100.0, "min": 90.0, "max": 110.0}
    ray = {"median": 50.0, "min": 45.0, "max": 60.0}
    assert speedup_range(reference, ray) == [pytest.approx(90 / 60), pytest.approx(110 / 45)]
    assert speedup_range({"min": None, "max": None}, ray) == [None, None]


def test_steady_throughput_from_a_results_document():
    result = {"config": {"steps_per_epoch": 20, "global_batch_size": 64}, "steady_state_epoch_seconds": 8.0}
    assert images_per_epoch(result["config"]) == 1280
    assert steady_images_per_second(result) == pytest.approx(160.0)


def test_steady_throughput_is_none_without_steps_or_a_steady_epoch():
    assert steady_images_per_second({"config": {"steps_per_epoch": None, "global_batch_size": 64},
                                     "steady_state_epoch_seconds": 8.0}) is None
    assert steady_images_per_second({"config": {"steps_per_epoch": 20, "global_batch_size": 64}}) is None
