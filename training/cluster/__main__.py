"""The cluster's shape from bash (scripts/lib/k8s.sh `k8s::plan`), run with the system python3 from anywhere the
repository root is on PYTHONPATH:

    python3 -m training.cluster profile [--profile P]        the sizes of a profile, as key=value lines
    python3 -m training.cluster render --profile P --image IMG --cluster-name N k8s/ray-cluster.yaml
    python3 -m training.cluster fit --profile P --nodes 2 --node-cpus 4 --node-memory-mib 8192 \\
        --host-cpus 8 --host-memory-mib 16000               does the RayCluster fit these nodes?
    python3 -m training.cluster defaults --profile P --nodes 2 --host-cpus 4 --host-memory-mib 7836
                                                            MINIKUBE_CPUS MINIKUBE_MEMORY, then why
    python3 -m training.cluster table                       the docs' fit table
    python3 -m training.cluster pending NS/POD NODES.json PODS.json    what a Pending pod is short of
    python3 -m training.cluster head-argv [--profile P] [NAME=VALUE...]   the head pod's Ray run, NUL-separated
    python3 -m training.cluster pod-defaults [--profile P] NAME...       the head run's values bash leaves unset
    python3 -m training.cluster rayjob [--profile P]        a profile's RayJob, with this environment's settings
    python3 -m training.cluster generate [--check]          rewrite (or check) every file made from the profiles

--profile defaults to CLUSTER_PROFILE, and that to the `default` profile. Exit codes: 0 fits (or nothing to
report), 1 does not fit or (generate --check) a file is stale, 2 bad input (one line `error: ...`).
"""

import argparse
import json
import os
import sys

from training.cluster import generated, head_run, manifests, pending, profiles, sizing
from training.cluster.quantities import PlanError
from training.core import settings

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _OneLineErrors(argparse.ArgumentParser):
    """Bad input is one line `error: ...` and exit 2, as everywhere in the kit, not argparse's usage block."""

    def error(self, message):
        settings.fail(message)


def _parser():
    parser = _OneLineErrors(prog="python3 -m training.cluster", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("profile", "head-argv", "pod-defaults", "rayjob"):
        p = sub.add_parser(name)
        p.add_argument("--profile", default=None, help="default: CLUSTER_PROFILE, else the default profile")
        if name in ("head-argv", "pod-defaults"):
            p.add_argument("values", nargs="*", help="head-argv: NAME=VALUE settings; pod-defaults: NAMEs")
    p = sub.add_parser("render")
    p.add_argument("--profile", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--cluster-name", required=True)
    p.add_argument("manifest")
    p = sub.add_parser("fit")
    p.add_argument("--profile", required=True)
    for flag in ("--nodes", "--node-cpus", "--node-memory-mib", "--host-cpus", "--host-memory-mib"):
        p.add_argument(flag, type=int, required=True)
    p = sub.add_parser("defaults")
    p.add_argument("--profile", required=True)
    for flag in ("--nodes", "--host-cpus", "--host-memory-mib"):
        p.add_argument(flag, type=int, required=True)
    sub.add_parser("table")
    p = sub.add_parser("pending")
    p.add_argument("pod", help="NAMESPACE/NAME")
    p.add_argument("nodes_json")
    p.add_argument("pods_json")
    p = sub.add_parser("generate")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale file")
    p.add_argument("--root", default=REPO_ROOT, help="the checkout (default: this one)")
    return parser


def _generate(args):
    if args.check:
        stale = generated.stale(args.root)
        for path in stale:
            print(f"stale: {path} (run: python3 -m training.cluster generate)", file=sys.stderr)
        return 1 if stale else 0
    for path in generated.write(args.root):
        print(f"wrote {path}")
    return 0


def _pending(args):
    try:
        with open(args.nodes_json, encoding="utf-8") as f:
            nodes_doc = json.load(f)
        with open(args.pods_json, encoding="utf-8") as f:
            pods_doc = json.load(f)
        print("\n".join(pending.pending(args.pod, nodes_doc, pods_doc)))
    except (ValueError, KeyError) as err:  # a diagnosis that cannot be computed must not hide the others
        print(f"(cannot compute what is short: {err})")
    return 0


def run(args):
    # Only the commands about one profile read CLUSTER_PROFILE: a stray value must not break `table` or `generate`.
    if hasattr(args, "profile"):
        profile = profiles.check(args.profile) if args.profile else profiles.chosen()
    if args.command == "profile":
        print("\n".join(f"{key}={value}" for key, value in profiles.summary(profile).items()))
    elif args.command == "render":
        with open(args.manifest, encoding="utf-8") as f:
            sys.stdout.write(manifests.render_cluster(f.read(), profile, args.image, args.cluster_name))
    elif args.command == "fit":
        ok, lines = sizing.fit(profile, args.nodes, args.node_cpus, args.node_memory_mib, args.host_cpus,
                               args.host_memory_mib)
        print("\n".join(lines))
        return 0 if ok else 1
    elif args.command == "defaults":
        cpus, mib, lines = sizing.node_defaults(profile, args.nodes, args.host_cpus, args.host_memory_mib)
        print(f"{cpus} {mib}")
        print("\n".join(lines))
    elif args.command == "table":
        print(sizing.fit_table())
    elif args.command == "pending":
        return _pending(args)
    elif args.command == "head-argv":
        given = dict(value.split("=", 1) for value in args.values if "=" in value)
        sys.stdout.write("".join(f"{word}\0" for word in head_run.argv(profile, given)))
    elif args.command == "pod-defaults":
        print("\n".join(head_run.unset_defaults(profile, args.values)))
    elif args.command == "rayjob":
        sys.stdout.write(manifests.rayjob(profile))
    else:
        return _generate(args)
    return 0


def main(argv):
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except (PlanError, settings.SettingsError) as err:
        settings.fail(str(err))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
