"""What a sweep runs: scales from `--sweep 1,2,3` or a scales file, checked, then runs with deterministic ids.

A scales file is YAML or JSON: a list of scales, or a mapping with a `scales` list. Keys left out take the
defaults (env EPOCHS, BATCH_SIZE, CPUS_PER_WORKER):
    scales:
      - {type: baseline, cpus_per_worker: 2}   # the baseline with 2 TensorFlow threads (workers: 0 also works)
      - {workers: 1}
      - {workers: 2, cpus_per_worker: 1, epochs: 5, batch_size: 64, gpus_per_worker: 0}
When no scale is the baseline, one is added first, with the CPUs of one worker of the first scale.
"""

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from training.core import settings
from training.sweep import SweepError

SCALE_KEYS = ("type", "workers", "epochs", "batch_size", "cpus_per_worker", "gpus_per_worker")
SCALE_TYPES = ("baseline", "ray")
# Settings that change what a run computes (the table's `hashed` column). They go into every run's hash, so
# changing one makes a different experiment instead of mixing old and new results in one report.
HASHED_SETTINGS = settings.HASHED_SETTINGS
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


@dataclass(frozen=True)
class Scale:
    workers: int  # 0 is the baseline: plain Keras in one process
    epochs: int
    batch_size: int  # the global batch under strong scaling, the per-worker batch under weak scaling
    cpus_per_worker: int  # for the baseline, its TensorFlow threads: the CPUs of one worker
    gpus_per_worker: float = 0

    @property
    def kind(self):
        return "baseline" if self.workers == 0 else "ray"

    @property
    def cpus(self):
        return self.cpus_per_worker * max(self.workers, 1)

    def describe(self):
        return describe(self.kind, self.workers, self.cpus_per_worker, self.cpus)


def describe(kind, workers, cpus_per_worker, cpus):
    """How a scale is named everywhere: errors, the --status table, the report and its plot."""
    return f"baseline ({cpus} CPU{'s' if cpus != 1 else ''})" if kind == "baseline" else \
        f"Ray {workers} x {cpus_per_worker} CPU"


def default_scale_values(environ):
    """EPOCHS, BATCH_SIZE, CPUS_PER_WORKER from the environment (which parse_args has checked against the table),
    or the table's defaults."""
    names = {"epochs": "EPOCHS", "batch_size": "BATCH_SIZE", "cpus_per_worker": "CPUS_PER_WORKER"}
    return {key: int(environ.get(name) or settings.DEFAULTS[name]) for key, name in names.items()}


def hashed_settings_from(environ):
    return {name: environ[name] for name in HASHED_SETTINGS if environ.get(name)}


def parse_worker_list(text):
    """'1,2,3' -> [1, 2, 3]. The baseline is not listed: the sweep adds it."""
    items = [item.strip() for item in text.split(",")]
    if "" in items:
        raise SweepError(f"--sweep must list worker counts separated by commas, such as 1,2,3, got '{text}'")
    for i, item in enumerate(items):
        if not re.fullmatch(r"[0-9]+", item) or int(item) < 1:
            raise SweepError(f"--sweep worker count '{item}' must be a positive integer (the baseline is added "
                             f"by the sweep), in '{text}'")
        if int(item) in map(int, items[:i]):
            raise SweepError(f"--sweep lists {item} workers twice, in '{text}'")
    return [int(item) for item in items]


def scales_from_workers(workers, defaults):
    return [Scale(workers=n, **defaults) for n in workers]


def _positive(value, key, where):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepError(f"{where}: {key} must be a positive integer, got {value!r}")
    return value


def scale_from_entry(entry, where, defaults):
    """One mapping of a scales file -> Scale; `where` names it in errors ("scales file 'f', scale 2")."""
    if not isinstance(entry, dict):
        raise SweepError(f"{where}: expected a mapping such as {{workers: 2}}, got {entry!r}")
    unknown = sorted(set(entry) - set(SCALE_KEYS))
    if unknown:
        raise SweepError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(SCALE_KEYS)})")
    kind = entry.get("type", "baseline" if entry.get("workers") == 0 else "ray")
    if kind not in SCALE_TYPES:
        raise SweepError(f"{where}: type must be one of {', '.join(SCALE_TYPES)}, got {kind!r}")
    if kind == "baseline":
        if entry.get("workers", 0) != 0:
            raise SweepError(f"{where}: a baseline has no workers (workers: 0 or left out), got {entry['workers']!r}")
        workers = 0
    elif "workers" not in entry:
        raise SweepError(f"{where}: workers is missing (a positive integer, or 0 for the baseline)")
    else:
        workers = _positive(entry["workers"], "workers", where)
    values = {key: _positive(entry.get(key, defaults[key]), key, where) for key in defaults}
    gpus = entry.get("gpus_per_worker", 0)
    # ray_training.py --use-gpu gives each worker exactly one GPU; the baseline uses what TensorFlow finds.
    allowed_gpus = (0,) if workers == 0 else (0, 1)
    if isinstance(gpus, bool) or gpus not in allowed_gpus:
        raise SweepError(f"{where}: gpus_per_worker must be one of {', '.join(map(str, allowed_gpus))}"
                         f"{' for the baseline' if workers == 0 else ''}, got {gpus!r}")
    return Scale(workers=workers, gpus_per_worker=gpus, **values)


def load_scales_file(path, defaults):
    """Reads a YAML or JSON scales file (JSON is read as JSON, so its errors give JSON line numbers)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise SweepError(f"scales file '{path}' cannot be read ({err.__class__.__name__}: {err})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        detail = " ".join(str(err).split())
        raise SweepError(f"scales file '{path}' does not parse ({detail})") from None
    if isinstance(data, dict) and set(data) == {"scales"}:
        data = data["scales"]
    if not isinstance(data, list):
        raise SweepError(f"scales file '{path}' must hold a list of scales, or a mapping with one key 'scales' "
                         f"holding that list; got {type(data).__name__}")
    if not data:
        raise SweepError(f"scales file '{path}' lists no scales")
    return [scale_from_entry(entry, f"scales file '{path}', scale {n}", defaults) for n, entry in enumerate(data, 1)]


def with_baseline(scales):
    """The baseline is one of the runs: added first, with the CPUs of one worker, when the list has none."""
    if any(scale.kind == "baseline" for scale in scales):
        return list(scales)
    first = scales[0]
    baseline = Scale(workers=0, epochs=first.epochs, batch_size=first.batch_size,
                     cpus_per_worker=first.cpus_per_worker)
    return [baseline] + list(scales)


def check_scales(scales, cluster_cpus, scaling="weak"):
    """Duplicate scales would share a run id; a scale larger than the cluster would wait for CPUs forever; a
    global batch that the workers cannot split evenly would fail in every attempt. (--scaling: the table checks.)"""
    seen = set()
    for scale in scales:
        if scaling == "strong" and scale.kind == "ray" and scale.batch_size % scale.workers:
            raise SweepError(f"scale '{scale.describe()}': strong scaling splits the global batch "
                             f"{scale.batch_size} among {scale.workers} workers, which needs a multiple of "
                             f"{scale.workers} (set BATCH_SIZE or the scale's batch_size)")
        if scale in seen:
            raise SweepError(f"the scale list holds the same scale twice ({scale.describe()}); use --repeat to "
                             f"run a scale more than once")
        seen.add(scale)
        if cluster_cpus is not None and scale.cpus > cluster_cpus:
            raise SweepError(f"scale '{scale.describe()}' asks for {scale.cpus} CPUs, more than the cluster has "
                             f"({cluster_cpus}, --cluster-cpus)")


def short_hash(document):
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:6]


def scale_hash(scale, scaling, hashed):
    return short_hash({"scale": asdict(scale), "scaling": scaling, "settings": hashed})


def derive_experiment_name(scales, scaling, hashed):
    """Same settings, same name: running the same command again resumes instead of starting over."""
    workers = "-".join(str(scale.workers) for scale in scales if scale.kind == "ray") or "0"
    digest = short_hash([scale_hash(scale, scaling, hashed) for scale in scales])
    return f"sweep-w{workers}-{scaling}-{digest}"


def check_experiment_name(name):
    if not EXPERIMENT_NAME.match(name) or name.endswith(".old"):
        raise SweepError(f"--experiment must be 1-80 letters, digits, '.', '_' or '-', starting with a letter or "
                         f"digit and not ending in .old, got '{name}'")
    return name


def build_plan(scales, scaling, hashed, experiment, repeat):
    """The workflow's runs, in repeat-major order: the first pass gives a whole scaling curve before any scale is
    repeated."""
    from training.sweep.workflow import RunSpec

    runs = []
    for repeat_index in range(1, repeat + 1):
        for index, scale in enumerate(scales):
            digest = scale_hash(scale, scaling, hashed)
            runs.append(RunSpec(run_id=f"{experiment}-{index:02d}-{digest}-r{repeat_index}", index=index,
                                repeat=repeat_index, kind=scale.kind, cpus=scale.cpus, config_hash=digest,
                                **asdict(scale)))
    return runs
