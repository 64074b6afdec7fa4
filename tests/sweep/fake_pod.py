"""The trainer a pod would run, for the cluster-target sweep test: called with the arguments of the `kubectl exec`
that runs a trainer in a pod (`... -- sh -c SCRIPT PIDFILE timeout N python -m training.X --flag value...`), it
runs tests/helpers/sweep.py's stand-in trainer for the same run and leaves the results file in STUB_CP_DIR, where
the stub kubectl's `cp` finds it (what the pod's /tmp/kit holds after a real run). A Ray run keeps a mark in
STUB_CP_DIR/store/ for its checkpoints and, as ray_training.check_storage does, refuses (exit 2) a run id that has
them there unless it is given --resume.

    python -m tests.sweep.fake_pod KUBECTL_ARGS...
"""

import os
import sys
from urllib.parse import quote

from tests.helpers import sweep


def trainer_flags(argv):
    """The trainer's flags, {--flag: value}; a switch (--resume) maps to True."""
    words = argv[argv.index("python") + 3:]  # past `python -m training.X`
    flags = {}
    for i, word in enumerate(words):
        if word.startswith("--"):
            following = words[i + 1] if i + 1 < len(words) else "--"
            flags[word] = True if following.startswith("--") else following
    return flags


def main(argv):
    flags = trainer_flags(argv)
    workers = int(flags.get("--num-workers", 0))
    cpus = int(flags["--threads"]) if workers == 0 else workers * int(flags["--cpus-per-worker"])
    output = os.path.join(os.environ["STUB_CP_DIR"], os.path.basename(flags["--output"]))
    if workers:
        store = os.path.join(os.environ["STUB_CP_DIR"], "store", quote(flags["--storage-path"], safe=""),
                             flags["--run-id"])
        if os.path.exists(store) and "--resume" not in flags:
            print(f"error: RUN_ID '{flags['--run-id']}' already has checkpoints in {store}", file=sys.stderr)
            return 2
        os.makedirs(store, exist_ok=True)
    return sweep.trainer(["--run-id", flags["--run-id"], "--output", output, "--workers", str(workers),
                          "--cpus", str(cpus), "--epochs", flags["--epochs"], "--batch", flags["--batch-size"]])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
