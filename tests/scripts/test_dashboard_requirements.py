"""docker/requirements-dashboard.txt, the packages LOCAL_RAY_DASHBOARD adds for the local head only: together with
.venv they are everything ray[default] needs, and none of them is a package .venv already has (the folder goes
first on the head's PYTHONPATH, where a second copy would replace .venv's for the head's processes)."""

import importlib.metadata
import pathlib
import re

from tests.helpers.common import REPO_ROOT


def _name(text):
    return re.split(r"[<>=!~;\[ ]", text.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pins():
    lines = (pathlib.Path(REPO_ROOT) / "docker" / "requirements-dashboard.txt").read_text().splitlines()
    return {_name(line): line.split("==")[1] for line in lines if line.strip() and not line.startswith("#")}



def installed(name):
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def test_every_package_of_ray_default_is_in_the_venv_or_pinned_for_the_dashboard():
    wanted = {_name(r) for r in importlib.metadata.requires("ray") if 'extra == "default"' in r}
    pinned = pins()
    assert wanted and all(installed(name) or name in pinned for name in wanted), sorted(
        name for name in wanted if not installed(name) and name not in pinned)


def test_no_dashboard_pin_replaces_a_package_of_the_venv():
    assert [name for name in pins() if installed(name)] == []
