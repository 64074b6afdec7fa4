"""The sweep's fair account, from the workflow's result (exported to experiment.json by driver.py) and the
validated results of the runs that succeeded: report.json, report.md and scaling.png in the experiment's folder.
Every ratio names the two runs it divides (DEFINITIONS), only runs with the same epochs, batch setting and GPUs
are divided, and the ratios themselves are scaling_metrics.py's, the kit's one definition of them.
"""

import json
import os

from training.core import atomic_files
from training.core import results as results_schema
from training.core.scaling_metrics import efficiency, overhead, speedup, speedup_range, spread
from training.sweep import SweepError, scales

EXPORT_FILE = "experiment.json"
SCALE_FIELDS = ("workers", "epochs", "batch_size", "cpus_per_worker", "gpus_per_worker")

REPORT_VERSION = 1
DEFINITIONS = {
    "T": "median training time over a scale's repeats (model.fit; process and Ray start-up excluded)",
    "total_speedup": "T(baseline with one worker's CPUs) / T(Ray, N workers)",
    "efficiency": "total_speedup / (CPUs of the Ray run / CPUs of the baseline)",
    "equal_resources_speedup": "T(baseline with as many CPUs as the Ray run) / T(Ray run)",
    "ray_overhead": "T(Ray, 1 worker) / T(baseline with the same CPUs); above 1 means Ray is slower",
    "parallel_speedup": "T(Ray, 1 worker) / T(Ray, N workers), same CPUs per worker",
    "parallel_efficiency": "parallel_speedup / N",
    "ranges": "[min, max] of a ratio over the repeats: slowest/fastest to fastest/slowest",
}
SCALING_TEXT = {
    "strong": "strong scaling: the global batch is fixed and the N workers split it, so every run takes the same "
              "optimizer steps per epoch and the same learning rate",
    "weak": "weak scaling: the per-worker batch is fixed, so the global batch grows N-fold, each worker takes "
            "1/N of the steps per epoch, and the learning rate follows LR_SCALING (see the table)",
}


def time_to_accuracy(history, target):
    """Training seconds until the first epoch whose val_accuracy reached `target`; None if none did."""
    elapsed = 0.0
    for row in history:
        elapsed += row["seconds"]
        if row.get("val_accuracy") is not None and row["val_accuracy"] >= target:
            return elapsed
    return None


def read_experiment(folder):
    """(the workflow's summary, {run_id: results document}) from the export and the runs' results files."""
    path = os.path.join(folder, EXPORT_FILE)
    try:
        with open(path) as handle:
            summary = json.load(handle)
    except (OSError, ValueError) as err:
        raise SweepError(f"no finished sweep to report in {folder} ({err.__class__.__name__}: {err}); run the "
                         f"sweep first", code=1) from None
    documents = {}
    for record in summary["records"]:
        if record["state"] == "succeeded":
            run_id = record["run"]["run_id"]
            documents[run_id] = results_schema.load_results(os.path.join(folder, record["result"]["results"]))
    return summary, documents


def scale_rows(records, documents, target_accuracy):
    """One row per scale (the repeats of a scale share its index), with medians and spreads."""
    rows = {}
    for record in records:
        run = record["run"]
        row = rows.setdefault(run["index"], {
            "index": run["index"], "kind": run["kind"], "config_hash": run["config_hash"],
            "scale": {key: run[key] for key in SCALE_FIELDS}, "cpus": run["cpus"], "runs": [],
            "planned_repeats": 0})
        row["planned_repeats"] += 1
        if run["run_id"] in documents:
            row["runs"].append(documents[run["run_id"]])
        else:
            row.setdefault("missing", []).append({"run_id": run["run_id"], "state": record["state"],
                                                  "error": record.get("error")})
    out = []
    for index in sorted(rows):
        row = rows[index]
        docs = row.pop("runs")
        row.update({
            "workers": row["scale"]["workers"], "cpus_per_worker": row["scale"]["cpus_per_worker"],
            "repeats_done": len(docs),
            "run_ids": [doc["run_id"] for doc in docs],
            "training_time_seconds": spread([doc["training_time_seconds"] for doc in docs]),
            "wall_time_seconds": spread([doc.get("wall_time_seconds") for doc in docs]),
            "steady_state_epoch_seconds": spread([doc.get("steady_state_epoch_seconds") for doc in docs]),
            "images_per_second": spread([doc["images_per_second"] for doc in docs]),
            "test_accuracy": spread([doc["test_accuracy"] for doc in docs]),
            "cpus_used": sorted({doc["environment"]["cpus_used"] for doc in docs}),
            **{key: docs[0]["config"][key] if docs else None
               for key in ("global_batch_size", "per_worker_batch_size", "learning_rate")},
            "accuracy_meaningful": all(doc["accuracy_meaningful"] for doc in docs) if docs else None,
            "epoch_seconds": [[row_["seconds"] for row_ in doc["history"]] for doc in docs],
        })
        if target_accuracy is not None:
            reached = [time_to_accuracy(doc["history"], target_accuracy) for doc in docs]
            row["time_to_target_seconds"] = spread(reached)
            row["time_to_target_reached"] = f"{sum(r is not None for r in reached)}/{len(docs)}"
        out.append(row)
    return out


def comparable(a, b):
    keys = ("epochs", "batch_size", "gpus_per_worker")
    return all(a["scale"][k] == b["scale"][k] for k in keys)


def find(rows, like, **want):
    """The first row with a result that matches `want` and trains comparably to `like`."""
    for row in rows:
        if row["repeats_done"] and comparable(row, like) and all(row[k] == v for k, v in want.items()):
            return row
    return None


def median_of(row):
    return row["training_time_seconds"]["median"] if row else None


def add_ratios(rows):
    """Fills each Ray row's speedups in place; a ratio without a comparable reference stays None and says so."""
    baselines = [row for row in rows if row["kind"] == "baseline"]
    notes = []
    for row in rows:
        if row["kind"] != "ray" or not row["repeats_done"]:
            continue
        t = row["training_time_seconds"]
        base = find(baselines, row, cpus=row["cpus_per_worker"])
        equal = find(baselines, row, cpus=row["cpus"])
        one = find(rows, row, kind="ray", workers=1, cpus_per_worker=row["cpus_per_worker"])
        row.update(baseline_index=base and base["index"], total_speedup=speedup(median_of(base), t["median"]),
                   total_speedup_range=base and speedup_range(base["training_time_seconds"], t),
                   equal_resources_baseline_index=equal and equal["index"],
                   equal_resources_speedup=speedup(median_of(equal), t["median"]),
                   ray1_index=one and one["index"], parallel_speedup=speedup(median_of(one), t["median"]),
                   parallel_speedup_range=one and speedup_range(one["training_time_seconds"], t))
        row["efficiency"] = efficiency(row["total_speedup"], base and row["cpus"] / base["cpus"])
        row["parallel_efficiency"] = efficiency(row["parallel_speedup"], row["workers"])
        if row["workers"] == 1:
            row["ray_overhead"] = overhead(t["median"], median_of(equal))
        if not base:
            notes.append(f"scale {row['index']} ({row['workers']} workers): no comparable baseline with "
                         f"{row['cpus_per_worker']} CPU(s), so no total speedup")
    return notes


def build_report(folder, target_accuracy=None):
    summary, documents = read_experiment(folder)
    if target_accuracy is None:
        target_accuracy = summary.get("target_accuracy")
    scaling = summary.get("scaling", "weak")
    rows = scale_rows(summary["records"], documents, target_accuracy)
    notes = add_ratios(rows)
    overhead = [row for row in rows if row["kind"] == "ray" and row["workers"] == 1 and row.get("ray_overhead")]
    warnings = list(notes)
    for row in rows:
        for miss in row.get("missing", []):
            warnings.append(f"run {miss['run_id']} is {miss['state']}"
                            + (f" ({miss['error']})" if miss["error"] else "") + ": its scale has fewer repeats")
        if row["repeats_done"] and row["cpus_used"] != [row["cpus"]]:
            warnings.append(f"scale {row['index']} planned {row['cpus']} CPUs but its results say "
                            f"{row['cpus_used']}")
        if row["accuracy_meaningful"] is False:
            warnings.append(f"scale {row['index']} trained on synthetic data: its accuracy is chance")
    hosts = sorted({doc["environment"]["hostname"] for doc in documents.values()})
    return {
        "report_version": REPORT_VERSION,
        "experiment": os.path.basename(os.path.abspath(folder)),
        "scaling": scaling,
        "scaling_statement": SCALING_TEXT.get(scaling, scaling),
        "workflow_id": summary.get("workflow_id"),
        "target": summary.get("target"),
        "settings": summary.get("settings", {}),
        "target_accuracy": target_accuracy,
        "stopped": summary.get("stopped"),
        "runs_planned": len(summary["records"]),
        "runs_succeeded": len(documents),
        "hosts": hosts,
        "scales": rows,
        "ray_overhead": [{"index": row["index"], "cpus": row["cpus"], "ratio": row["ray_overhead"],
                          "baseline_index": row["equal_resources_baseline_index"]} for row in overhead],
        "definitions": DEFINITIONS,
        "warnings": warnings,
    }


def _fmt(value, spec="", suffix=""):
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def _span(s, spec=".1f", suffix="s"):
    if s["n"] < 2:  # n 0: median None, "n/a"
        return _fmt(s["median"], spec, suffix)
    return f"{s['median']:{spec}}{suffix} ({s['min']:{spec}}-{s['max']:{spec}})"


def describe(row):
    return scales.describe(row["kind"], row["workers"], row["cpus_per_worker"], row["cpus"])


def markdown(doc):
    target = doc["target_accuracy"]
    lines = [f"# Scaling sweep `{doc['experiment']}`", "",
             f"{doc['runs_succeeded']} of {doc['runs_planned']} planned runs succeeded; target "
             f"{doc['target'] or 'n/a'}; hosts {', '.join(doc['hosts']) or 'n/a'}.", "",
             f"**Scaling mode**: {doc['scaling_statement']}.", "",
             "| scale | CPUs | repeats | training time (median, min-max) | steady epoch | images/s | "
             "global batch | learning rate | total speedup | efficiency | parallel speedup | parallel eff. | "
             "test acc" + (f" | time to val acc {target}" if target is not None else "") + " |",
             "|" + "---|" * (13 + (target is not None))]
    for row in doc["scales"]:
        cells = [describe(row), str(row["cpus"]), f"{row['repeats_done']}/{row['planned_repeats']}",
                 _span(row["training_time_seconds"]), _span(row["steady_state_epoch_seconds"], ".2f"),
                 _span(row["images_per_second"], ".0f", ""), _fmt(row["global_batch_size"]),
                 _fmt(row["learning_rate"], ".5g"), _fmt(row.get("total_speedup"), ".2f", "x"),
                 _fmt(row.get("efficiency"), ".2f"), _fmt(row.get("parallel_speedup"), ".2f", "x"),
                 _fmt(row.get("parallel_efficiency"), ".2f"), _span(row["test_accuracy"], ".4f", "")]
        if target is not None:
            reached = row.get("time_to_target_seconds")
            cells.append(f"{_span(reached)} ({row.get('time_to_target_reached', '0/0')} reached)"
                         if reached and reached["n"] else f"not reached ({row.get('time_to_target_reached', '0/0')})")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for item in doc["ray_overhead"]:
        lines.append(f"- **Ray overhead at equal resources** ({item['cpus']} CPU{'s' if item['cpus'] != 1 else ''}): "
                     f"T(Ray, 1 worker) / T(baseline) = {item['ratio']:.2f} "
                     f"({'Ray slower' if item['ratio'] > 1 else 'Ray not slower'}).")
    if not doc["ray_overhead"]:
        lines.append("- Ray overhead at equal resources: n/a (needs a 1-worker Ray scale and a baseline with its "
                     "CPUs).")
    for row in doc["scales"]:
        if row.get("equal_resources_speedup") is not None and row["workers"] > 1:
            lines.append(f"- Equal-resources speedup, {describe(row)}: {row['equal_resources_speedup']:.2f}x against "
                         f"a baseline with all {row['cpus']} CPUs in one process.")
    lines += ["", "Definitions:"] + [f"- `{k}`: {v}" for k, v in doc["definitions"].items()]
    if doc["warnings"]:
        lines += [""] + [f"- WARNING: {w}" for w in doc["warnings"]]
    return "\n".join(lines) + "\n"


def plot(doc, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ray_rows = [row for row in doc["scales"] if row["kind"] == "ray" and row["repeats_done"]]
    fig, (speed_ax, epoch_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    workers = sorted({row["workers"] for row in ray_rows} | {1})
    speed_ax.plot(workers, workers, "k--", label="ideal (speedup = workers)")
    for key, label, marker in (("total_speedup", "total: T(baseline) / T(N)", "o"),
                               ("parallel_speedup", "parallel: T(Ray 1) / T(Ray N)", "s")):
        points = [(row["workers"], row[key], row[f"{key}_range"]) for row in ray_rows if row.get(key) is not None]
        if not points:
            continue
        xs, ys, ranges = zip(*points)
        errors = [[y - r[0] for y, r in zip(ys, ranges)], [r[1] - y for y, r in zip(ys, ranges)]]
        speed_ax.errorbar(xs, ys, yerr=errors, marker=marker, capsize=4, label=label)
    speed_ax.set(xlabel="Ray workers", ylabel="speedup", xticks=workers, ylim=(0, None),
                 title=f"Speedup ({doc['scaling']} scaling; bars: min-max over repeats)")
    speed_ax.legend(fontsize=8)
    for row in doc["scales"]:
        for repeat, seconds in enumerate(row["epoch_seconds"], 1):
            suffix = f" #{repeat}" if len(row["epoch_seconds"]) > 1 else ""
            epoch_ax.plot(range(1, len(seconds) + 1), seconds, marker="o", label=describe(row) + suffix)
    epoch_ax.set(xlabel="epoch", ylabel="seconds", title="Epoch time per run (the first carries warm-up)")
    epoch_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(folder, target_accuracy=None):
    """Writes report.json, report.md and scaling.png; returns their paths ([] while no run has succeeded)."""
    doc = build_report(folder, target_accuracy)
    if not doc["runs_succeeded"]:
        return []
    png = os.path.join(folder, "scaling.png")
    with atomic_files.replacing(png) as temp:
        plot(doc, temp)
    return [atomic_files.write_json(os.path.join(folder, "report.json"), doc),
            atomic_files.write_text(os.path.join(folder, "report.md"), markdown(doc)), png]
