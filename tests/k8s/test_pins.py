"""docker/requirements.txt and the laptop list it includes: one TensorFlow version, the right package per
platform (TensorFlow publishes tensorflow-cpu for Linux x86_64 only), and every reader of the pins agreeing with
pip's reading of them (environment markers and includes)."""

import pytest

from tests.helpers import pins
from tests.helpers.stub_tools import REPO_ROOT, StubWorld

TENSORFLOW_NAMES = {"tensorflow", "tensorflow-cpu"}


@pytest.mark.parametrize("platform,package", [("linux/x86_64", "tensorflow-cpu"), ("linux/aarch64", "tensorflow"),
                                              ("darwin/arm64", "tensorflow")])
def test_exactly_one_tensorflow_package_per_platform(platform, package):
    chosen = pins.for_platform(pins.FULL, platform)
    assert TENSORFLOW_NAMES & set(chosen) == {package}
    assert chosen[package] == chosen["tf-keras"] == "2.21.0"


def test_every_platform_gets_the_same_versions_of_everything_else():
    seen = [{k: v for k, v in pins.for_platform(pins.FULL, p).items() if k not in TENSORFLOW_NAMES}
            for p in pins.PLATFORMS]
    assert all(s == seen[0] for s in seen) and {"ray", "tf-keras", "matplotlib"} <= set(seen[0])


@pytest.mark.parametrize("platform", sorted(pins.PLATFORMS))
def test_the_laptop_list_is_light_and_inside_the_full_one(platform):
    """The cluster target's laptop side installs this alone: no TensorFlow or Ray, and the same versions the full
    environment (and so the image) has."""
    laptop = pins.for_platform(pins.LAPTOP, platform)
    full = pins.for_platform(pins.FULL, platform)
    assert not {"ray", "tf-keras", "scikit-learn"} & set(laptop) and not TENSORFLOW_NAMES & set(laptop)
    assert {"matplotlib", "jsonschema", "numpy", "pyyaml"} <= set(laptop)
    assert laptop.items() <= full.items()


def test_the_bash_reader_of_the_pins_agrees_with_pip(tmp_path):
    """k8s::pinned_version (image tag, version check in the pods) must read marker lines and the included list."""
    expected = dict(pins.for_platform(pins.FULL, "linux/x86_64"))
    expected["tensorflow"] = expected["tensorflow-cpu"]
    names = sorted(expected) + ["PyYAML"]
    script = "source scripts/lib/k8s.sh; for p in \"$@\"; do printf '%s=%s\\n' \"$p\" \"$(k8s::pinned_version \"$p\")\"; done"
    result = StubWorld(tmp_path).run_bash(script, *names)
    assert result.returncode == 0, result.stderr
    read = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert {n: read[n] for n in sorted(expected)} == expected
    assert read["PyYAML"] == expected["pyyaml"]


def test_the_image_installs_both_lists_from_one_folder():
    """requirements.txt includes the laptop list by a relative path; the Dockerfile copies both beside each other."""
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    assert "COPY --chown=1000:100 docker/requirements.txt docker/requirements-laptop.txt /home/ray/" in dockerfile
    assert "-r requirements-laptop.txt" in (REPO_ROOT / "docker" / "requirements.txt").read_text().splitlines()
