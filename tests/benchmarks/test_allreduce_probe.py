"""The benchmark's all-reduce probe: two real TensorFlow processes under MultiWorkerMirroredStrategy."""

import json
import subprocess
import sys

import pytest

from tests.helpers.common import REPO_ROOT

PROBE = ["-m", "benchmarks.allreduce_probe"]


def _probe(dtype):
    out = subprocess.run([sys.executable, *PROBE, "--workers", "2", "--steps", "3", "--dtype", dtype],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_bfloat16_sends_half_the_bytes_of_the_float32_gradients():
    exact, narrow = _probe("float32"), _probe("bfloat16")
    # The model's trainable weights: 3.25M parameters less batch normalization's moving statistics.
    assert 12_000_000 < exact["bytes_per_worker"] < 13_100_000
    assert narrow["bytes_per_worker"] * 2 == exact["bytes_per_worker"]
    assert exact["tensors"] == narrow["tensors"] == 23
    assert exact["n"] == 3 and 0 < exact["min_seconds"] <= exact["median_seconds"] <= exact["max_seconds"]
