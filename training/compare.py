"""The comparison: baseline against Ray, as comparison.json, comparison.md, training_time.png and
training_curves.png in the results folder, and a side-by-side summary on stdout.

    python training/compare.py --results-dir results

Two speedups, never confused:
- speedup / efficiency (scale-out): the baseline ran with ONE Ray worker's CPU share. speedup = T(baseline) /
  T(Ray), efficiency = speedup / workers: what adding workers buys, the usual definition of scaling efficiency.
- equal_resources_speedup: the baseline ran in one process with ALL the CPUs the Ray workers had together.
  It answers whether Ray's N processes beat TensorFlow's own threads on the same hardware.
"""

import glob
import json
import os
import re
import sys

import settings
from settings import env, fail

BASELINE_FILE = "baseline_results.json"
EQUAL_RESOURCES_FILE = "baseline_equal_resources_results.json"
RAY_PATTERN = re.compile(r"ray_results_(\d+)workers\.json$")
COMPARISON_VERSION = 1
# Settings that must match for times to be comparable at all.
MUST_MATCH = ("epochs", "dataset", "seed", "per_worker_batch_size")


def summary(result):
    """The fields of one run that the comparison shows."""
    config, environment = result["config"], result["environment"]
    return {
        "run_id": result["run_id"],
        "training_type": result["training_type"],
        "training_time_seconds": result["training_time_seconds"],
        "wall_time_seconds": result.get("wall_time_seconds"),
        "steady_state_epoch_seconds": result.get("steady_state_epoch_seconds"),
        "epochs_completed": result["epochs_completed"],
        "test_accuracy": result["test_accuracy"],
        "test_loss": result["test_loss"],
        "images_per_second": result["images_per_second"],
        "num_workers": config.get("num_workers", 1),
        "cpus_used": environment["cpus_used"],
        "global_batch_size": config["global_batch_size"],
        "per_worker_batch_size": config["per_worker_batch_size"],
        "learning_rate": config["learning_rate"],
        "dataset": config["dataset"],
        "accuracy_meaningful": result["accuracy_meaningful"],
        "restarts": result.get("fault_tolerance", {}).get("restarts", 0),
    }


def ratio(numerator, denominator):
    return numerator / denominator if numerator is not None and denominator else None


def compare(baseline, ray_result, equal_resources=None):
    """The comparison block; pure arithmetic on the results documents."""
    b, r = summary(baseline), summary(ray_result)
    workers = r["num_workers"]
    speedup = ratio(b["training_time_seconds"], r["training_time_seconds"])
    block = {
        "num_workers": workers,
        "baseline_cpus": b["cpus_used"],
        "ray_cpus": r["cpus_used"],
        "speedup": speedup,
        "efficiency": ratio(speedup, workers),
        "steady_state_speedup": ratio(b["steady_state_epoch_seconds"], r["steady_state_epoch_seconds"]),
        "end_to_end_speedup": ratio(b["wall_time_seconds"], r["wall_time_seconds"]),
        "throughput_ratio": ratio(r["images_per_second"], b["images_per_second"]),
        "accuracy_delta": (r["test_accuracy"] - b["test_accuracy"]
                           if r["test_accuracy"] is not None and b["test_accuracy"] is not None else None),
        "accuracy_meaningful": b["accuracy_meaningful"] and r["accuracy_meaningful"],
        "equal_resources_speedup": None,
        "equal_resources_baseline_cpus": None,
        "definitions": {
            "speedup": "T(baseline on one worker's CPUs) / T(Ray): training time, model.fit only",
            "efficiency": "speedup / num_workers (1.0 = perfect scaling)",
            "equal_resources_speedup": "T(baseline with all the Ray workers' CPUs in one process) / T(Ray)",
            "end_to_end_speedup": "the same ratio on whole-command wall time, start-up included",
        },
        "warnings": [],
    }
    if equal_resources is not None:
        e = summary(equal_resources)
        block["equal_resources_speedup"] = ratio(e["training_time_seconds"], r["training_time_seconds"])
        block["equal_resources_baseline_cpus"] = e["cpus_used"]
        if e["cpus_used"] != r["cpus_used"]:
            block["warnings"].append(f"equal-resources baseline used {e['cpus_used']} CPUs but Ray used "
                                     f"{r['cpus_used']}: that ratio is not at equal resources")
    per_worker_cpus = ray_result["config"].get("cpus_per_worker")
    if per_worker_cpus is not None and b["cpus_used"] != per_worker_cpus:
        block["warnings"].append(f"baseline used {b['cpus_used']} CPUs but a Ray worker used {per_worker_cpus}: "
                                 f"the scale-out speedup assumes they are equal")
    must_match = list(MUST_MATCH)
    if ray_result["config"].get("batch_size_mode") == "global":
        # Strong scaling: the workers split the baseline's batch, so the global batches are what must agree.
        must_match[must_match.index("per_worker_batch_size")] = "global_batch_size"
    for key in must_match:
        if baseline["config"].get(key) != ray_result["config"].get(key):
            block["warnings"].append(f"{key} differs: baseline {baseline['config'].get(key)}, "
                                     f"Ray {ray_result['config'].get(key)}")
    if not block["accuracy_meaningful"]:
        block["warnings"].append("synthetic data: accuracies are chance and their difference means nothing")
    if r["restarts"]:
        block["warnings"].append(f"the Ray run restarted {r['restarts']} time(s); its time includes the recovery")
    return block


def _fmt(value, spec, suffix=""):
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def markdown(doc):
    runs = [("Baseline", doc["baseline"]), ("Baseline, equal resources", doc.get("baseline_equal_resources")),
            (f"Ray Train, {doc['comparison']['num_workers']} workers", doc["ray_distributed"])]
    c = doc["comparison"]
    lines = ["# Baseline vs Ray Train", "",
             "| Run | CPUs | Batch (per worker / global) | Training time (s) | Steady epoch (s) | Images/s | "
             "Test accuracy |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name, run in runs:
        if run is None:
            continue
        lines.append(f"| {name} | {run['cpus_used']} | {run['per_worker_batch_size']} / {run['global_batch_size']} | "
                     f"{run['training_time_seconds']:.1f} | {_fmt(run['steady_state_epoch_seconds'], '.2f')} | "
                     f"{run['images_per_second']:.1f} | {_fmt(run['test_accuracy'], '.4f')} |")
    lines += ["",
              f"- **Speedup (scale-out)**: {_fmt(c['speedup'], '.2f', 'x')} = T(baseline, {c['baseline_cpus']} CPU) / "
              f"T(Ray, {c['num_workers']} workers, {c['ray_cpus']} CPUs); **efficiency** "
              f"{_fmt(c['efficiency'], '.2f')}.",
              f"- **Equal-resources speedup**: {_fmt(c['equal_resources_speedup'], '.2f', 'x')} = "
              f"T(baseline, {c['equal_resources_baseline_cpus'] or 'n/a'} CPUs) / T(Ray, {c['ray_cpus']} CPUs).",
              f"- Steady-state epoch speedup {_fmt(c['steady_state_speedup'], '.2f', 'x')}; end to end (start-up "
              f"included) {_fmt(c['end_to_end_speedup'], '.2f', 'x')}; accuracy delta (Ray - baseline) "
              f"{_fmt(c['accuracy_delta'], '+.4f')}."]
    lines += [f"- WARNING: {w}" for w in c["warnings"]]
    return "\n".join(lines) + "\n"


def plot(doc, histories, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    runs = {name: doc[key] for name, key in (("baseline", "baseline"),
                                             ("baseline (equal CPUs)", "baseline_equal_resources"),
                                             ("ray", "ray_distributed")) if doc.get(key)}
    table = pd.DataFrame({"run": [f"{n}\n{r['cpus_used']} CPU" for n, r in runs.items()],
                          "seconds": [r["training_time_seconds"] for r in runs.values()]})
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(table["run"], table["seconds"], color=["#888888", "#bbbbbb", "#1f77b4"][: len(table)])
    ax.set_ylabel("training time (s)")
    ax.set_title("Training time per run (lower is better)")
    for i, value in enumerate(table["seconds"]):
        ax.text(i, value, f"{value:.1f}s", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "training_time.png"), dpi=100)
    plt.close(fig)

    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for name, history in histories.items():
        frame = pd.DataFrame(history)
        for column, ax, style in (("loss", loss_ax, "-"), ("val_loss", loss_ax, "--"),
                                  ("accuracy", acc_ax, "-"), ("val_accuracy", acc_ax, "--")):
            if column in frame and frame[column].notna().any():
                ax.plot(frame["epoch"], frame[column], style, marker="o", label=f"{name} {column}")
    loss_ax.set_title("Loss per epoch")
    acc_ax.set_title("Accuracy per epoch")
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(folder, "training_curves.png"), dpi=100)
    plt.close(fig)


def print_summary(doc):
    c = doc["comparison"]
    b, r = doc["baseline"], doc["ray_distributed"]
    print("=" * 72)
    print(f"{'':28}{'Baseline':>14}{'Ray Train':>14}")
    print(f"{'CPUs used':28}{b['cpus_used']:>14}{r['cpus_used']:>14}")
    print(f"{'Workers':28}{1:>14}{r['num_workers']:>14}")
    print(f"{'Training time (s)':28}{b['training_time_seconds']:>14.1f}{r['training_time_seconds']:>14.1f}")
    print(f"{'Images/s':28}{b['images_per_second']:>14.1f}{r['images_per_second']:>14.1f}")
    print(f"{'Test accuracy':28}{_fmt(b['test_accuracy'], '.4f'):>14}{_fmt(r['test_accuracy'], '.4f'):>14}")
    print("-" * 72)
    print(f"Speedup {_fmt(c['speedup'], '.2f', 'x')}, efficiency {_fmt(c['efficiency'], '.2f')}  "
          f"(baseline on {c['baseline_cpus']} CPU = one worker's share)")
    if c["equal_resources_speedup"] is not None:
        print(f"Equal-resources speedup {c['equal_resources_speedup']:.2f}x  (baseline on "
              f"{c['equal_resources_baseline_cpus']} CPUs = all of Ray's)")
    print("The first asks what adding workers buys; the second whether Ray beats TensorFlow's own threads on the "
          "same CPUs.")
    for warning in c["warnings"]:
        print(f"WARNING: {warning}")
    print("=" * 72)


def find_ray_results(folder, num_workers):
    if num_workers:
        return os.path.join(folder, f"ray_results_{num_workers}workers.json")
    found = sorted(p for p in glob.glob(os.path.join(folder, "ray_results_*workers.json"))
                   if RAY_PATTERN.search(p))
    if len(found) > 1:
        fail(f"NUM_WORKERS must be given: {folder} holds {len(found)} Ray results "
             f"({', '.join(os.path.basename(p) for p in found)})")
    if not found:
        fail(f"no Ray results (ray_results_<N>workers.json) in {folder}; run ray_training.py first")
    return found[0]


def build(folder, num_workers=None):
    from results import ResultsError, load_results

    try:
        baseline = load_results(os.path.join(folder, BASELINE_FILE))
        ray_result = load_results(find_ray_results(folder, num_workers))
        equal_path = os.path.join(folder, EQUAL_RESOURCES_FILE)
        equal = load_results(equal_path) if os.path.exists(equal_path) else None
    except ResultsError as err:
        fail(str(err), code=1)
    doc = {
        "comparison_version": COMPARISON_VERSION,
        "baseline": summary(baseline),
        "baseline_equal_resources": summary(equal) if equal else None,
        "ray_distributed": summary(ray_result),
        "comparison": compare(baseline, ray_result, equal),
    }
    histories = {"baseline": baseline["history"], "ray": ray_result["history"]}
    if equal:
        histories["baseline (equal CPUs)"] = equal["history"]
    return doc, histories


def write_atomic(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv=None):
    parser = settings.KitArgumentParser(description="Compare baseline and Ray results; write tables and plots.")
    parser.add_argument("--results-dir", default=env("RESULTS_DIR"),
                        help="folder holding the results JSON files (env RESULTS_DIR, default %(default)s)")
    parser.add_argument("--num-workers", type=settings.positive_int("NUM_WORKERS"), default=None,
                        help="which ray_results_<N>workers.json to use when there are several")
    args = parser.parse_args(argv)
    doc, histories = build(args.results_dir, args.num_workers)
    write_atomic(os.path.join(args.results_dir, "comparison.json"), json.dumps(doc, indent=2) + "\n")
    write_atomic(os.path.join(args.results_dir, "comparison.md"), markdown(doc))
    plot(doc, histories, args.results_dir)
    print_summary(doc)
    print(f"Wrote comparison.json, comparison.md, training_time.png, training_curves.png in {args.results_dir}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
