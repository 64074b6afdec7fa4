"""The comparison: baseline against Ray, as comparison.json, comparison.md, training_time.png and
training_curves.png in the results folder, and a side-by-side summary on stdout.

    python -m training.compare --results-dir results

Two speedups, never confused:
- speedup / efficiency (scale-out): the baseline ran with ONE Ray worker's CPU share. speedup = T(baseline) /
  T(Ray), efficiency = speedup / workers: what adding workers buys, the usual definition of scaling efficiency.
- equal_resources_speedup: the baseline ran in one process with ALL the CPUs the Ray workers had together.
  It answers whether Ray's N processes beat TensorFlow's own threads on the same hardware.
Both are computed by scaling_metrics.py, the kit's one definition of them, on training time and on the steady
epoch alike.
"""

import glob
import os
import re
import textwrap

from training.core import atomic_files
from training.core import settings
from training.core.scaling_metrics import efficiency, ratio, speedup, steady_images_per_second
from training.core.settings import fail

BASELINE_FILE = "baseline_results.json"
EQUAL_RESOURCES_FILE = "baseline_equal_resources_results.json"
RAY_PATTERN = re.compile(r"ray_results_(\d+)workers\.json$")
COMPARISON_VERSION = 1
# Settings that must match for times to be comparable at all.
MUST_MATCH = settings.MUST_MATCH + ("per_worker_batch_size",)
# The spans each side pays once per run, whatever its length (both results carry them under fixed_costs).
FIXED_COSTS = {
    "command_start_to_fit_seconds": "start-up, command start to model.fit: imports, data, Ray, model",
    "first_epoch_excess_seconds": "tracing and warm-up, first epoch over a steady one: tf.function tracing",
    "after_fit_seconds": "after training, test set and shutdown: results, Ray's worker-group shutdown",
}


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
        "epochs": config["epochs"],
        "steps_per_epoch": config.get("steps_per_epoch"),
        "steady_state_images_per_second": steady_images_per_second(result),
        "fixed_costs": {key: (result.get("fixed_costs") or {}).get(key) for key in FIXED_COSTS},
        "num_parameters": result.get("num_parameters"),
        "accuracy_meaningful": result["accuracy_meaningful"],
        "restarts": result.get("fault_tolerance", {}).get("restarts", 0),
    }


def compare(baseline, ray_result, equal_resources=None):
    """The comparison block; pure arithmetic on the results documents."""
    b, r = summary(baseline), summary(ray_result)
    workers = r["num_workers"]
    fit_speedup = speedup(b["training_time_seconds"], r["training_time_seconds"])
    steady_speedup = speedup(b["steady_state_epoch_seconds"], r["steady_state_epoch_seconds"])
    block = {
        "num_workers": workers,
        "baseline_cpus": b["cpus_used"],
        "ray_cpus": r["cpus_used"],
        # 1. What Ray buys: throughput once running (median epoch after the first, epochs of equal work).
        "steady_state_speedup": steady_speedup,
        "steady_state_efficiency": efficiency(steady_speedup, workers),
        "equal_resources_steady_state_speedup": None,
        # 2. What it costs: seconds paid once per run on each side.
        "fixed_costs": {"baseline": b["fixed_costs"], "ray": r["fixed_costs"]},
        # 3. End to end, and model.fit as a whole (steady epochs plus the first epoch's tracing).
        "end_to_end_speedup": speedup(b["wall_time_seconds"], r["wall_time_seconds"]),
        "break_even_epochs": break_even_epochs(b, r),
        "speedup": fit_speedup,
        "efficiency": efficiency(fit_speedup, workers),
        "throughput_ratio": ratio(r["images_per_second"], b["images_per_second"]),
        "accuracy_delta": (r["test_accuracy"] - b["test_accuracy"]
                           if r["test_accuracy"] is not None and b["test_accuracy"] is not None else None),
        "accuracy_meaningful": b["accuracy_meaningful"] and r["accuracy_meaningful"],
        "equal_resources_speedup": None,
        "equal_resources_baseline_cpus": None,
        "definitions": {
            "steady_state_speedup": "steady epoch time of the baseline on one worker's CPUs / Ray's (median "
                                    "epoch after the first): training throughput once running",
            "steady_state_efficiency": "steady_state_speedup / num_workers (1.0 = perfect scaling)",
            "equal_resources_steady_state_speedup": "the same, against the baseline with all the Ray "
                                                    "workers' CPUs in one process",
            "fixed_costs": FIXED_COSTS,
            "end_to_end_speedup": "T(whole baseline command) / T(whole Ray command), start-up included "
                                  "(the local Ray cluster's own start is not: a RayCluster is already up)",
            "break_even_epochs": "epochs of this size after which Ray's end-to-end time would beat the "
                                 "baseline's: the extra fixed seconds over the seconds saved per epoch",
            "speedup": "T(baseline on one worker's CPUs) / T(Ray): training time, model.fit only",
            "efficiency": "speedup / num_workers (1.0 = perfect scaling)",
            "equal_resources_speedup": "T(baseline with all the Ray workers' CPUs in one process) / T(Ray)",
        },
        "same_optimization": same_optimization(b, r),
        "warnings": [],
    }
    if equal_resources is not None:
        e = summary(equal_resources)
        block["equal_resources_steady_state_speedup"] = speedup(e["steady_state_epoch_seconds"],
                                                                r["steady_state_epoch_seconds"])
        block["equal_resources_speedup"] = speedup(e["training_time_seconds"], r["training_time_seconds"])
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
    block["notes"] = explain(b, r, block)
    return block


def same_optimization(b, r):
    """True when both sides took the same optimizer steps of the same global batch at the same rate: then
    their accuracies differ only by data order and per-worker batch statistics, not by the recipe."""
    return (b["steps_per_epoch"] is not None and b["global_batch_size"] == r["global_batch_size"]
            and b["steps_per_epoch"] == r["steps_per_epoch"]
            and b["epochs"] == r["epochs"] and b["learning_rate"] == r["learning_rate"])


def _fixed_total(side):
    # A first epoch measured faster than a steady one is noise on a shared machine, not a negative cost.
    values = [max(0.0, v) for v in side["fixed_costs"].values() if v is not None]
    return sum(values) if values else None


def break_even_epochs(b, r):
    """Epochs after which Ray's extra fixed seconds are paid back by its faster steady epochs; None when Ray's
    steady epoch is not faster (it never pays back) or a figure is missing."""
    b_fixed, r_fixed = _fixed_total(b), _fixed_total(r)
    b_epoch, r_epoch = b["steady_state_epoch_seconds"], r["steady_state_epoch_seconds"]
    if None in (b_fixed, r_fixed, b_epoch, r_epoch) or r_epoch >= b_epoch:
        return None
    return max(0.0, (r_fixed - b_fixed) / (b_epoch - r_epoch))


def explain(b, r, block):
    """Sentences that say why the figures are what they are, from the figures themselves."""
    notes = []
    workers, cpus = r["num_workers"], r["cpus_used"]
    if b["accuracy_meaningful"] and r["accuracy_meaningful"]:
        if block["same_optimization"]:
            notes.append(f"Both sides took the same {b['steps_per_epoch'] * b['epochs']} optimizer steps of a "
                         f"global batch of {b['global_batch_size']} at learning rate {b['learning_rate']:g} "
                         f"(Ray: {workers} workers x {r['per_worker_batch_size']}), so the accuracies compare.")
        else:
            notes.append(f"The sides took different steps (baseline {b['steps_per_epoch']} x "
                         f"{b['global_batch_size']} images per epoch, Ray {r['steps_per_epoch']} x "
                         f"{r['global_batch_size']}) at learning rates {b['learning_rate']:g} and "
                         f"{r['learning_rate']:g}: part of any accuracy gap is the recipe, not Ray.")
    eff = block["steady_state_efficiency"]
    if eff is not None and eff < 0.95 and workers > 1:
        grad_mb = (r["num_parameters"] or 0) * 4 / 1e6
        notes.append(f"Steady efficiency {eff:.2f} < 1: the {workers} workers share the machine with Ray's own "
                     f"processes, and every step averages {grad_mb:.0f} MB of gradients between them.")
    b_fixed, r_fixed = _fixed_total(b), _fixed_total(r)
    if b_fixed is not None and r_fixed is not None and r_fixed > b_fixed:
        notes.append(f"Ray pays {r_fixed - b_fixed:.0f} s more once per run (its worker group is {workers} "
                     f"fresh Python processes, each importing TensorFlow, plus Ray Train's controller).")
    if block["end_to_end_speedup"] is not None and block["end_to_end_speedup"] < 1:
        even = block["break_even_epochs"]
        slower = (None not in (b["steady_state_epoch_seconds"], r["steady_state_epoch_seconds"])
                  and r["steady_state_epoch_seconds"] >= b["steady_state_epoch_seconds"])
        notes.append("End to end the baseline wins on a run this short"
                     + (f"; at this epoch size Ray would catch up after about {even:.0f} epochs." if even is not None
                        else "; Ray's steady epoch is not faster, so it would not catch up." if slower else "."))
    if block["equal_resources_steady_state_speedup"] is not None and block["equal_resources_steady_state_speedup"] < 1:
        notes.append(f"At equal resources ({cpus} CPUs) one TensorFlow process beats {workers} Ray workers on one "
                     f"machine: Ray's gain is reaching CPUs that one process cannot, on other nodes.")
    return notes


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
              f"- **Steady state** (median epoch after the first): speedup "
              f"{_fmt(c['steady_state_speedup'], '.2f', 'x')}, efficiency {_fmt(c['steady_state_efficiency'], '.2f')}; "
              f"equal resources {_fmt(c['equal_resources_steady_state_speedup'], '.2f', 'x')}.",
              "- **Fixed costs** (s, once per run; baseline / Ray): " + "; ".join(
                  f"{label.split(':')[0]} {_fmt(c['fixed_costs']['baseline'].get(key), '.1f')} / "
                  f"{_fmt(c['fixed_costs']['ray'].get(key), '.1f')}" for key, label in FIXED_COSTS.items()) + ".",
              f"- **Speedup (scale-out)**: {_fmt(c['speedup'], '.2f', 'x')} = T(baseline, {c['baseline_cpus']} CPU) / "
              f"T(Ray, {c['num_workers']} workers, {c['ray_cpus']} CPUs); **efficiency** "
              f"{_fmt(c['efficiency'], '.2f')}.",
              f"- **Equal-resources speedup**: {_fmt(c['equal_resources_speedup'], '.2f', 'x')} = "
              f"T(baseline, {c['equal_resources_baseline_cpus'] or 'n/a'} CPUs) / T(Ray, {c['ray_cpus']} CPUs).",
              f"- Steady-state epoch speedup {_fmt(c['steady_state_speedup'], '.2f', 'x')}; end to end (start-up "
              f"included) {_fmt(c['end_to_end_speedup'], '.2f', 'x')}; accuracy delta (Ray - baseline) "
              f"{_fmt(c['accuracy_delta'], '+.4f')}."]
    lines += [f"- WARNING: {w}" for w in c["warnings"]]
    lines += ["", "Why:"] + [f"- {note}" for note in c.get("notes", [])] if c.get("notes") else []
    return "\n".join(lines) + "\n"


def _runs(doc):
    """(label, summary) of each run in the document, in the order the outputs show them."""
    c = doc["comparison"]
    runs = [(f"baseline, {doc['baseline']['cpus_used']} CPU", doc["baseline"])]
    if doc.get("baseline_equal_resources"):
        runs.append((f"baseline, {doc['baseline_equal_resources']['cpus_used']} CPUs", doc["baseline_equal_resources"]))
    runs.append((f"Ray, {c['num_workers']} workers", doc["ray_distributed"]))
    return runs


def _title_subject(doc):
    r = doc["ray_distributed"]
    return f"{r['dataset']}, {r['epochs']} epochs, Ray with {r['num_workers']} workers"


def plot(doc, histories, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _runs(doc)
    labels = [name.replace(", ", "\n", 1) for name, _ in runs]
    parts = [("start-up", "command_start_to_fit_seconds", "#bbbbbb"), ("model.fit", None, "#1f77b4"),
             ("after training", "after_fit_seconds", "#ff7f0e")]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bottoms = [0.0] * len(runs)
    for part, key, color in parts:
        values = [(run["training_time_seconds"] if key is None else (run["fixed_costs"].get(key) or 0.0))
                  for _, run in runs]
        ax.bar(labels, values, bottom=bottoms, color=color, label=part)
        bottoms = [b + v for b, v in zip(bottoms, values)]
    for i, (_, run) in enumerate(runs):
        ax.text(i, bottoms[i], f"{bottoms[i]:.0f}s", ha="center", va="bottom")
    ax.set_ylabel("seconds")
    ax.set_ylim(0, max(bottoms) * 1.15 if max(bottoms) else 1)
    ax.set_title(f"Where each run's time goes ({_title_subject(doc)})", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, os.path.join(folder, "training_time.png"))
    save_figure(curves_figure(doc, histories), os.path.join(folder, "training_curves.png"))


def save_figure(fig, path):
    import matplotlib.pyplot as plt

    with atomic_files.replacing(path) as temp:
        fig.savefig(temp, dpi=100)
    plt.close(fig)


def curves_figure(doc, histories):
    """Loss and accuracy per epoch of every run: one colour per run, training solid with dots, validation
    dashed with open squares, whole-number epochs, the legend below the plots."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colors = {"baseline": "#555555", "baseline (equal CPUs)": "#2ca02c", "ray": "#1f77b4"}
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.8))
    for name, history in histories.items():
        epochs = [row["epoch"] for row in history]
        color = colors.get(name, None)
        for column, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
            ax.plot(epochs, [row[column] for row in history], "-o", color=color, label=f"{name}, train")
            val = [row.get(f"val_{column}") for row in history]
            if any(v is not None for v in val):
                ax.plot(epochs, val, "--s", color=color, mfc="white", label=f"{name}, validation")
    loss_ax.set_title("Loss per epoch")
    loss_ax.set_ylabel("loss")
    acc_ax.set_title("Accuracy per epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_ylim(0, 1.02)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, names = loss_ax.get_legend_handles_labels()
    # Below the plots, where it covers no curve.
    fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), fontsize=8, frameon=False)
    fig.suptitle(f"Training curves: {_title_subject(doc)} (solid: training, dashed: validation)", fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    return fig


def print_summary(doc):
    c = doc["comparison"]
    runs = _runs(doc)
    width = 24 + 18 * len(runs)
    rows = [
        ("CPUs used", lambda r: f"{r['cpus_used']}"),
        ("Steady epoch (s)", lambda r: _fmt(r["steady_state_epoch_seconds"], ".2f")),
        ("Images/s, steady", lambda r: _fmt(r["steady_state_images_per_second"], ".1f")),
        ("Training time, fit (s)", lambda r: f"{r['training_time_seconds']:.1f}"),
        ("Whole command (s)", lambda r: _fmt(r["wall_time_seconds"], ".1f")),
        ("Test accuracy", lambda r: _fmt(r["test_accuracy"], ".4f")),
    ]
    print("=" * width)
    print(f"Baseline vs Ray Train: {_title_subject(doc)}")
    print(f"{'':24}" + "".join(f"{name:>18}" for name, _ in runs))
    for label, cell in rows:
        print(f"{label:24}" + "".join(f"{cell(run):>18}" for _, run in runs))
    print("-" * width)
    print("1. Steady state (training throughput once running: median epoch after the first)")
    print(f"   Speedup {_fmt(c['steady_state_speedup'], '.2f', 'x')}, efficiency "
          f"{_fmt(c['steady_state_efficiency'], '.2f')}  (vs the baseline on {c['baseline_cpus']} CPU = one "
          f"worker's share)")
    if c["equal_resources_steady_state_speedup"] is not None:
        print(f"   Equal-resources speedup {c['equal_resources_steady_state_speedup']:.2f}x  (vs the baseline on "
              f"{c['equal_resources_baseline_cpus']} CPUs = all of Ray's)")
    print(f"{'2. Fixed costs, paid once per run (s)':59}{'baseline':>8}{'Ray':>8}")
    for key, label in FIXED_COSTS.items():
        print(f"   {label.split(':')[0]:56}{_fmt(c['fixed_costs']['baseline'].get(key), '.1f'):>8}"
              f"{_fmt(c['fixed_costs']['ray'].get(key), '.1f'):>8}")
    b, r = doc["baseline"], doc["ray_distributed"]
    print(f"3. End to end (whole command, start-up included): {_fmt(b['wall_time_seconds'], '.0f')} s vs "
          f"{_fmt(r['wall_time_seconds'], '.0f')} s, speedup {_fmt(c['end_to_end_speedup'], '.2f', 'x')}")
    equal = (f"; equal-resources {c['equal_resources_speedup']:.2f}x"
             if c["equal_resources_speedup"] is not None else "")
    print(f"   Training time alone (model.fit, tracing included): speedup {_fmt(c['speedup'], '.2f', 'x')}, "
          f"efficiency {_fmt(c['efficiency'], '.2f')}{equal}")
    if c.get("notes"):
        print("Why the figures are what they are:")
    for note in c.get("notes", []):
        print(textwrap.fill(note, width=width, initial_indent="- ", subsequent_indent="  "))
    for warning in c["warnings"]:
        print(f"WARNING: {warning}")
    print("=" * width)


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
    from training.core.results import ResultsError, load_results

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


def main(argv=None):
    args = settings.parse("compare", "Compare baseline and Ray results; write tables and plots.", argv)
    doc, histories = build(args.results_dir, args.num_workers)
    atomic_files.write_json(os.path.join(args.results_dir, "comparison.json"), doc)
    atomic_files.write_text(os.path.join(args.results_dir, "comparison.md"), markdown(doc))
    plot(doc, histories, args.results_dir)
    print_summary(doc)
    print(f"Wrote comparison.json, comparison.md, training_time.png, training_curves.png in {args.results_dir}")


if __name__ == "__main__":
    settings.run_program(main, kept="nothing written")
