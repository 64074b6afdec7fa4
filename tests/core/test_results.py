"""One results schema, one atomic writer."""

import json
import os

import pytest

from tests.helpers.results_factory import fake_result
from training.core.results import SCHEMA_VERSION, ResultsError, load_results, write_results


def test_round_trip_keeps_every_field(tmp_path):
    result = fake_result(seconds=42.0)
    path = write_results(str(tmp_path / "baseline_results.json"), result)
    loaded = load_results(path)
    assert loaded == json.loads(json.dumps(result))
    assert loaded["schema_version"] == SCHEMA_VERSION
    for key in ("run_id", "training_type", "config", "training_time_seconds", "epochs_completed", "history",
                "test_accuracy", "test_loss", "per_class_accuracy", "images_per_second", "num_parameters",
                "environment"):
        assert key in loaded
    assert loaded["environment"]["ray_version"] == "2.60.0"
    assert loaded["images_per_second"] == pytest.approx(2000 / 42.0)


def test_invalid_result_is_refused_and_the_old_file_kept(tmp_path):
    path = str(tmp_path / "r.json")
    write_results(path, fake_result(seconds=1.0))
    bad = fake_result()
    del bad["history"]
    with pytest.raises(ResultsError, match="history"):
        write_results(path, bad)
    assert load_results(path)["training_time_seconds"] == 1.0
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(str(tmp_path / "none.json"))
    (tmp_path / "half.json").write_text('{"schema_version": 1, "run')
    with pytest.raises(ResultsError, match="half.json' is not readable JSON"):
        load_results(str(tmp_path / "half.json"))
