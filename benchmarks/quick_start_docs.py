"""The quick start's measured figures, written into the docs' marked blocks (scripts/measure-quick-start.sh runs
the quick runs and then this).

A block is the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`; only that text is replaced, so the
prose around it stays the authors'. Every figure comes from the runs in --work: RUN.stdout / RUN.stderr (the
console), RUN.time (start and end, Unix seconds) and RUN/comparison.json (what the run published).
"""

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

from training.core import atomic_files

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONSOLE_LIB = os.path.join(REPO_ROOT, "scripts", "lib", "console.sh")
# (doc, block) pairs: every block each doc holds.
BLOCKS = [
    ("README.md", "quick-start-sample"),
    ("GETTING_STARTED.md", "quick-start-figures"),
    (os.path.join("docs", "EXERCISE.md"), "quick-start-console"),
    (os.path.join("docs", "EXERCISE.md"), "quick-start-comparison"),
    ("BENCHMARKS.md", "quick-start-table"),
]
# The comparison.json fields the workshop reads line by line.
COMPARISON_FIELDS = ("num_workers", "baseline_cpus", "ray_cpus", "steady_state_speedup", "steady_state_efficiency",
                     "equal_resources_steady_state_speedup", "fixed_costs", "end_to_end_speedup",
                     "break_even_epochs", "speedup", "efficiency", "equal_resources_speedup", "accuracy_delta",
                     "same_optimization")


def chatter_lines(text):
    """How many lines of `text` are library start-up chatter, by scripts/lib/console.sh's own filter (the one list
    of its shapes)."""
    kept = subprocess.run(["bash", "-c", f'source "{CONSOLE_LIB}" && console::noise_filter'], input=text,
                          capture_output=True, text=True, check=True).stdout
    return len(text.splitlines()) - len(kept.splitlines())


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            model = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo") as handle:
            kib = int(next(line.split()[1] for line in handle if line.startswith("MemTotal")))
        memory = f", {kib / 2 ** 20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = ""
    return f"{model} ({len(os.sched_getaffinity(0))} CPUs{memory})"


def read_run(work, index):
    name = f"run{index}"
    stdout = open(os.path.join(work, f"{name}.stdout")).read()
    stderr = open(os.path.join(work, f"{name}.stderr")).read()
    started, ended = (float(v) for v in open(os.path.join(work, f"{name}.time")).read().split())
    with open(os.path.join(work, name, "comparison.json")) as handle:
        doc = json.load(handle)
    # Paths as a normal run shows them: RESULTS_DIR is results/.
    shown = stdout.replace(os.path.join(work, name), "results")
    c = doc["comparison"]
    return {
        "comparison": {k: c.get(k) for k in COMPARISON_FIELDS},
        "index": index,
        "wall_seconds": ended - started,
        "stdout": shown,
        "console_lines": len(stdout.splitlines()) + len(stderr.splitlines()),
        "stderr_lines": len(stderr.splitlines()),
        "chatter_lines": chatter_lines(stdout + stderr),
        "steady_state_speedup": c["steady_state_speedup"],
        "steady_state_efficiency": c["steady_state_efficiency"],
        "equal_resources_steady_state_speedup": c["equal_resources_steady_state_speedup"],
        "speedup": c["speedup"],
        "end_to_end_speedup": c["end_to_end_speedup"],
        "baseline_accuracy": doc["baseline"]["test_accuracy"],
        "ray_accuracy": doc["ray_distributed"]["test_accuracy"],
        "baseline_start": c["fixed_costs"]["baseline"]["command_start_to_fit_seconds"],
        "ray_start": c["fixed_costs"]["ray"]["command_start_to_fit_seconds"],
        # Ray's start-up over the baseline's, in the same run (issue 24's target: at most 2).
        "start_ratio": ratio(c["fixed_costs"]["ray"]["command_start_to_fit_seconds"],
                             c["fixed_costs"]["baseline"]["command_start_to_fit_seconds"]),
    }


def ratio(numerator, denominator):
    return numerator / denominator if numerator is not None and denominator else None


def target(runs, key, met):
    """'met' or 'not met' for the median of a per-run figure, 'n/a' where no run has it."""
    values = [r[key] for r in runs if r[key] is not None]
    return ("met" if met(statistics.median(values)) else "not met") if values else "n/a"


def fmt(value, spec):
    return "n/a" if value is None else f"{value:{spec}}"


def minutes(seconds):
    whole = int(round(seconds))
    return f"{whole // 60} min {whole % 60:02d} s"


def spread(runs, key, spec):
    values = [r[key] for r in runs if r[key] is not None]
    if not values:
        return "n/a"
    return (f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}}, n={len(values)})")


def median_run(runs):
    ordered = sorted(runs, key=lambda r: r["wall_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def summary_block(stdout):
    """The comparison's summary: from the first rule of '=' to the last."""
    lines = stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=" * 20)]
    return "\n".join(lines[rules[0]:rules[-1] + 1]) if len(rules) >= 2 else stdout.rstrip()


def source_line(runs, where, today):
    return (f"Measured on {where}, {today}, by `scripts/measure-quick-start.sh` (the median of {len(runs)} "
            f"consecutive runs by wall time; rerun it to regenerate this block)")


def render(runs, where, today, settings_note):
    pick = median_run(runs)
    source = source_line(runs, where, today) + settings_note
    readme = (f"{source}: {minutes(pick['wall_seconds'])} in all.\n\n```\n{summary_block(pick['stdout'])}\n```")
    figures = (f"{source}: the quick run took {minutes(pick['wall_seconds'])} and printed a steady-state speedup "
               f"of {pick['steady_state_speedup']:.2f}x (efficiency {pick['steady_state_efficiency']:.2f}), "
               f"test accuracy {pick['baseline_accuracy']:.4f} (baseline) and {pick['ray_accuracy']:.4f} (Ray); "
               f"yours will differ.")
    console = (f"{source}: {minutes(pick['wall_seconds'])} in all, {pick['console_lines']} lines on the terminal "
               f"(paths under `RESULTS_DIR` are shown as `results/`).\n\n```\n{pick['stdout'].rstrip()}\n```")
    rows = ["| Run | Wall time | Steady speedup | Steady efficiency | Equal-resources (steady) | End to end | "
            "Baseline accuracy | Ray accuracy | Ray start-up (s) | Console lines (chatter) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        rows.append(f"| {r['index']} | {minutes(r['wall_seconds'])} | {fmt(r['steady_state_speedup'], '.2f')}x | "
                    f"{fmt(r['steady_state_efficiency'], '.2f')} | "
                    f"{fmt(r['equal_resources_steady_state_speedup'], '.2f')}x | "
                    f"{fmt(r['end_to_end_speedup'], '.2f')}x | "
                    f"{fmt(r['baseline_accuracy'], '.4f')} | {fmt(r['ray_accuracy'], '.4f')} | "
                    f"{fmt(r['ray_start'], '.1f')} | {r['console_lines']} ({r['chatter_lines']}) |")
    walls = [r["wall_seconds"] for r in runs]
    table = "\n".join([
        f"{source}.", "",
        *rows, "",
        f"- Wall time: median {minutes(statistics.median(walls))} ({minutes(min(walls))} - {minutes(max(walls))}); "
        f"target at most 3 min: {'met' if statistics.median(walls) <= 180 else 'not met'}.",
        f"- Steady-state speedup {spread(runs, 'steady_state_speedup', '.2f')}; efficiency "
        f"{spread(runs, 'steady_state_efficiency', '.2f')}; training-time speedup {spread(runs, 'speedup', '.2f')}; "
        f"end to end {spread(runs, 'end_to_end_speedup', '.2f')}.",
        f"- Test accuracy: baseline {spread(runs, 'baseline_accuracy', '.4f')}, "
        f"Ray {spread(runs, 'ray_accuracy', '.4f')}; "
        f"largest gap {max(abs(r['baseline_accuracy'] - r['ray_accuracy']) for r in runs) * 100:.1f} points.",
        f"- Start-up to model.fit: baseline {spread(runs, 'baseline_start', '.1f')} s, "
        f"Ray {spread(runs, 'ray_start', '.1f')} s; Ray's over the baseline's, per run: "
        f"{spread(runs, 'start_ratio', '.2f')}.",
        f"- Targets (medians of the per-run ratios): Ray's start-up at most 2x the baseline's: "
        f"{target(runs, 'start_ratio', lambda v: v <= 2)}; end to end at least 0.85x: "
        f"{target(runs, 'end_to_end_speedup', lambda v: v >= 0.85)}.",
    ])
    comparison = (f"{source}: the `comparison` block of the run above, in part.\n\n```json\n"
                  f"{json.dumps(pick['comparison'], indent=2)}\n```")
    return {"quick-start-sample": readme, "quick-start-figures": figures, "quick-start-console": console,
            "quick-start-table": table, "quick-start-comparison": comparison}


def replace_block(text, name, body):
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise KeyError(f"no {begin} ... {end} block")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


def settings_note(environ):
    given = [f"{k}={environ[k]}" for k in ("EPOCHS", "BATCH_SIZE", "BATCH_SIZE_MODE", "LEARNING_RATE", "DATASET",
                                           "TRAIN_SAMPLES", "NUM_WORKERS", "CPUS_PER_WORKER") if environ.get(k)]
    return f", with {' '.join(given)} set" if given else ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", required=True, help="folder holding runN.stdout/.stderr/.time and runN/")
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--no-docs", action="store_true", help="print the figures, change no file")
    parser.add_argument("--root", default=REPO_ROOT, help="the checkout whose docs to rewrite")
    args = parser.parse_args(argv)
    runs = [read_run(args.work, i) for i in range(1, args.runs + 1)]
    blocks = render(runs, machine(), time.strftime("%Y-%m-%d", time.gmtime()), settings_note(os.environ))
    print(blocks["quick-start-table"])
    if args.no_docs:
        return
    for doc, name in BLOCKS:
        path = os.path.join(args.root, doc)
        with open(path) as handle:
            text = handle.read()
        try:
            text = replace_block(text, name, blocks[name])
        except KeyError as err:
            sys.exit(f"error: {doc}: {err}")
        atomic_files.write_text(path, text)
        print(f"rewrote the {name} block of {doc}")


if __name__ == "__main__":
    main()
