"""`--status`: the sweep's table, read from the ledger alone; it never takes the lock or changes a file."""

import os

from training.sweep import SweepError, ledger


def describe_scale(planned):
    scale = planned["scale"]
    if planned["kind"] == "baseline":
        return f"baseline {planned['cpus']} CPU"
    return f"ray {scale['workers']}x{scale['cpus_per_worker']} CPU"


def table(folder):
    path = os.path.join(folder, ledger.LEDGER_FILE)
    if not os.path.exists(path):
        raise SweepError(f"no sweep has run as experiment '{os.path.basename(folder)}' (no {path}); start it "
                         f"without --status")
    states, stopped = ledger.replay(ledger.read_ledger(path, repair=False), path)
    holder = ledger.lock_holder(folder)
    header = ("run_id", "scale", "repeat", "state", "attempts", "seconds", "training_s", "last error")
    rows = []
    for state in states.values():
        last = state.attempts[-1] if state.attempts else {}
        training = state.last_event.get("training_time_seconds") if state.state == "succeeded" else None
        state_text = state.state
        if state.state == "running" and not holder:
            state_text = "interrupted"  # no sweep holds the lock: whoever ran it is gone
        rows.append((state.run_id, describe_scale(state.planned), str(state.planned["repeat"]), state_text,
                     str(len(state.attempts)), f"{last['seconds']:.1f}" if last.get("seconds") else "-",
                     f"{training:.1f}" if training is not None else "-",
                     (last.get("error") or "")[:70] if state.state != "succeeded" else ""))
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(len(header))]
    lines = [f"experiment {os.path.basename(folder)}: "
             + (f"a sweep is running (pid {holder})" if holder else "no sweep running")]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header] + rows]
    counts = {}
    for state in states.values():
        counts[state.state] = counts.get(state.state, 0) + 1
    lines.append(", ".join(f"{n} {name}" for name, n in sorted(counts.items())))
    if stopped:
        lines.append(f"stopped early: {stopped['reason']}")
    report = os.path.join(folder, "report.md")
    if os.path.exists(report):
        lines.append(f"report: {report}")
    return "\n".join(lines)


def latest_experiment(root):
    """The experiment whose ledger changed last, for --status without a name."""
    base = os.path.join(root, "experiments")
    candidates = []
    if os.path.isdir(base):
        for name in os.listdir(base):
            path = os.path.join(base, name, ledger.LEDGER_FILE)
            if not name.endswith(".old") and os.path.exists(path):
                candidates.append((os.path.getmtime(path), name))
    if not candidates:
        raise SweepError(f"no sweep has run in {base}; start one with --sweep 1,2 or --scales FILE")
    return max(candidates)[1]
