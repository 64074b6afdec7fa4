"""The kit's one definition of speedup and efficiency; the comparison, the sweep report and the kit's benchmark
all compute their ratios here.

A speedup is T(reference) / T(Ray) for the same work: above 1, Ray was faster. The reference says which speedup
it is, and each caller names it:
- scale-out: the baseline on ONE Ray worker's CPU share; what adding workers buys;
- equal resources: the baseline with ALL the Ray workers' CPUs in one process; whether Ray's N processes beat
  TensorFlow's own threads on the same hardware;
- parallel: Ray with one worker at the same CPUs per worker; Ray against itself.
Efficiency is speedup / scale, where scale is how many times the reference's CPUs the Ray run had: its worker
count when the reference holds one worker's share. 1.0 is perfect scaling.

The times may be either kind the results carry, and the definitions do not change with them: training time
(model.fit as a whole, first-epoch tracing included) or the steady epoch (median epoch after the first).

Standard library only. A missing time (None) or a zero denominator gives None, never an exception or an
infinity: a figure that could not be measured stays unknown in every report.
"""

import statistics


def ratio(numerator, denominator):
    return numerator / denominator if numerator is not None and denominator else None


def speedup(reference_seconds, ray_seconds):
    """T(reference) / T(Ray); the reference decides which speedup (see the module's text)."""
    return ratio(reference_seconds, ray_seconds)


def efficiency(speedup_value, scale):
    """speedup / scale; scale is the worker count against a one-worker reference, in general the Ray run's CPUs
    over the reference's."""
    return ratio(speedup_value, scale)


def overhead(ray_seconds, reference_seconds):
    """T(Ray) / T(reference at the same CPUs), the inverse of a speedup: above 1, Ray is slower."""
    return ratio(ray_seconds, reference_seconds)


def speedup_range(reference, ray):
    """[min, max] of the speedup over repeats, from each side's {"min", "max"} times: the slowest reference over
    the fastest Ray run to the fastest reference over the slowest."""
    return [speedup(reference["min"], ray["max"]), speedup(reference["max"], ray["min"])]


def images_per_epoch(config):
    steps = config.get("steps_per_epoch")
    return steps * config["global_batch_size"] if steps else None


def steady_images_per_second(result):
    """Training images per second over a steady epoch of a results document (all workers together)."""
    return ratio(images_per_epoch(result["config"]), result.get("steady_state_epoch_seconds"))


def spread(values):
    """Median, min, max and count of the values that were measured (None ones left out); the median and range are
    None, and n 0, when none was. How every report of the kit summarizes repeats."""
    values = [v for v in values if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
