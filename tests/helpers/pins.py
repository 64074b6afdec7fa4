"""The pinned requirement files read as pip reads them: `-r` includes followed, environment markers evaluated for
a given platform (packaging, the library pip vendors for both)."""

from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import common

DOCKER = Path(common.REPO_ROOT) / "docker"
FULL = DOCKER / "requirements.txt"
LAPTOP = DOCKER / "requirements-laptop.txt"

# (sys_platform, platform_machine) of the machines the kit meets: an x86_64 Linux node or CI, an arm64 Linux node
# (Apple Silicon's Docker VM reports aarch64), a Mac's own Python (platform.machine() is arm64 there).
PLATFORMS = {"linux/x86_64": ("linux", "x86_64"), "linux/aarch64": ("linux", "aarch64"),
             "darwin/arm64": ("darwin", "arm64")}


def requirements(path):
    """Every Requirement of `path`, with the files it includes (`-r FILE`, relative to it) in place."""
    out = []
    for raw in Path(path).read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r"):
            out += requirements(Path(path).parent / line[2:].strip())
            continue
        out.append(Requirement(line))
    return out


def for_platform(path, platform):
    """{canonical name: version} of what pip installs from `path` on `platform` (a key of PLATFORMS)."""
    sys_platform, machine = PLATFORMS[platform]
    env = dict(default_environment(), sys_platform=sys_platform, platform_machine=machine,
               platform_system={"linux": "Linux", "darwin": "Darwin"}[sys_platform])
    chosen = {}
    for req in requirements(path):
        if req.marker is None or req.marker.evaluate(env):
            (spec,) = req.specifier
            assert spec.operator == "==", f"{req} is not pinned with =="
            assert canonicalize_name(req.name) not in chosen, f"{req.name} pinned twice for {platform}"
            chosen[canonicalize_name(req.name)] = spec.version
    return chosen
