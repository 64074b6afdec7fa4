"""How long a run's console stays silent: runs a command with its stdout and stderr on one pipe (as a CI log or
`| cat` gets them), stamps each line as it arrives, and reports, for every training phase of the baseline and
of Ray (from a trainer's first `[baseline]` / `[ray Nw]` line to its `done:` line), the longest wait between two
lines. Exits 1 when a phase waited longer than --max-gap seconds (issue 23: a user must be able to tell a slow run
from a hung one), or the command failed, or a phase never reached its `done:` line; 2 on bad input.

    .venv/bin/python -m benchmarks.console_gaps [--max-gap 20] [--log FILE] -- scripts/run-benchmark.sh --local

The command's lines pass through to standard output; the last line is the report as JSON.
"""

import argparse
import json
import re
import subprocess
import sys
import time

# A trainer's own lines: `[baseline] ...`, `[ray 2w] ...` (training/baseline_training.py, training/ray_training.py).
TRAINER_LINE = re.compile(r"^\[(baseline|ray \d+w)\] ")


def phases(stamped):
    """[(seconds, line)] -> one entry per training phase: its label, span, line count and its longest silence."""
    found, current = [], None
    for stamp, line in stamped:
        match = TRAINER_LINE.match(line)
        if current is None and match:
            current = {"label": match.group(1), "start": stamp, "stamps": [stamp], "last_line": line}
        elif current is not None:
            current["stamps"].append(stamp)
            if match and match.group(1) == current["label"] and "] done:" in line:
                found.append(_close(current, stamp))
                current = None
    if current is not None:
        found.append(_close(current, current["stamps"][-1], finished=False))
    return found


def _close(phase, end, finished=True):
    stamps = phase["stamps"]
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:])]
    return {"label": phase["label"], "seconds": round(end - phase["start"], 1), "lines": len(stamps),
            "max_gap_seconds": round(max(gaps, default=0.0), 1), "finished": finished}


def run(command, log=None):
    """Runs `command`; returns (exit code, [(seconds since start, line)])."""
    started, stamped = time.monotonic(), []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          errors="replace") as proc:
        for line in proc.stdout:
            stamp = time.monotonic() - started
            stamped.append((stamp, line.rstrip("\n")))
            sys.stdout.write(line)
            sys.stdout.flush()
            if log is not None:
                log.write(f"{stamp:9.2f}  {line}")
    return proc.returncode, stamped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-gap", type=float, default=20.0, help="longest silence allowed in a phase, seconds")
    parser.add_argument("--log", help="also write every line with its time stamp here")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    log = open(args.log, "w", encoding="utf-8") if args.log else None
    try:
        code, stamped = run(command, log)
    finally:
        if log is not None:
            log.close()
    found = phases(stamped)
    worst = max((p["max_gap_seconds"] for p in found), default=None)
    ok = code == 0 and bool(found) and all(p["finished"] for p in found) and worst <= args.max_gap
    print(json.dumps({"exit_code": code, "max_gap_allowed": args.max_gap, "worst_gap_seconds": worst,
                      "phases": found, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
