"""The files of the checkout made from the profiles, written in one go and checked in one go (the update and
verify steps): k8s/ray-cluster.yaml (the `default` profile's values on its marked lines), one RayJob per profile
(k8s/ray-job-<profile>.yaml) and the fit table in the docs. A change to a profile is a change here plus
`python3 -m training.cluster generate`; `generate --check` names each file that is stale."""

import glob
import os

from training.cluster import manifests, profiles, sizing
from training.cluster.quantities import PlanError
from training.core import atomic_files

FIT_TABLE_DOCS = ("GETTING_STARTED.md", "docs/EXERCISE.md")
FIT_TABLE_BLOCK = ("<!-- cluster-fit-table:begin (generated: python3 -m training.cluster generate) -->",
                   "<!-- cluster-fit-table:end -->")
# Every RayJob manifest is generated, so one that no profile makes (a removed profile's) is stale too.
RAYJOB_GLOB = "k8s/ray-job*.yaml"


def _read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        return handle.read()


def with_fit_table(text, path="the document"):
    """`text` with its fit-table block holding the current table; the prose around it stays as written."""
    start, end = (text.find(marker) for marker in FIT_TABLE_BLOCK)
    if start < 0 or end < start:
        raise PlanError(f"{path} has no {FIT_TABLE_BLOCK[0]} ... {FIT_TABLE_BLOCK[1]} block")
    return f"{text[:start]}{FIT_TABLE_BLOCK[0]}\n{sizing.fit_table()}\n{text[end:]}"


def expected(root):
    """relative path -> the text it must hold, for every file this package generates."""
    files = {manifests.CLUSTER_MANIFEST: manifests.render_cluster(
        _read(root, manifests.CLUSTER_MANIFEST), profiles.DEFAULT_PROFILE, manifests.PLACEHOLDER_IMAGE,
        manifests.CLUSTER_NAME)}
    for profile in profiles.PROFILES:
        files[manifests.rayjob_path(profile)] = manifests.rayjob(profile, environ={})
    for path in FIT_TABLE_DOCS:
        files[path] = with_fit_table(_read(root, path), path)
    return files


def _orphans(root, files):
    found = (os.path.relpath(path, root) for path in glob.glob(os.path.join(root, RAYJOB_GLOB)))
    return sorted(path for path in found if path not in files)


def stale(root):
    """The generated files that differ from what the profiles make now (missing ones included), and RayJob
    manifests no profile makes; [] when all are current."""
    files = expected(root)
    out = []
    for path, text in files.items():
        full = os.path.join(root, path)
        if not os.path.exists(full) or _read(root, path) != text:
            out.append(path)
    return out + _orphans(root, files)


def write(root):
    """Writes every generated file that is stale and removes RayJob manifests no profile makes; returns the
    paths changed."""
    files = expected(root)
    changed = []
    for path, text in files.items():
        full = os.path.join(root, path)
        if not os.path.exists(full) or _read(root, path) != text:
            atomic_files.write_text(full, text)
            changed.append(path)
    for path in _orphans(root, files):
        os.remove(os.path.join(root, path))
        changed.append(path)
    return changed
