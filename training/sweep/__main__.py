"""python -m training.sweep run|status|plan|report [flags]: scaling sweeps that survive crashes.

    python -m training.sweep run --sweep 1,2 --repeat 3       # baseline + Ray 1 and 2 workers, 3 times each
    python -m training.sweep run --scales scales.yaml          # scale configs from a YAML or JSON file
    python -m training.sweep status [--experiment NAME]        # the table from the ledger (also: run --status)
    python -m training.sweep report --experiment NAME          # write the report again from the ledger
    python -m training.sweep plan --sweep 1,2                  # check the input; print what sweep.sh needs

Running the same command again resumes: finished runs are kept, an interrupted run runs again, a failed run
is retried up to --max-attempts. Results: RESULTS_DIR/experiments/<name>/ (ledger.jsonl, runs/, report.*).
Exit codes: 0 every run succeeded, 1 a run failed for good (or another sweep holds the experiment), 2 bad
input, 130 interrupted.
"""

import os
import sys

from training.core import settings
from training.sweep import EXIT_INTERRUPTED, SweepError, commands, ledger, runner, scales, status

COMMANDS = ("run", "status", "plan", "report")


def parse_args(argv):
    parser = settings.parser_for("sweep", __doc__.split("\n")[0], prog="python -m training.sweep")
    parser.add_argument("command", nargs="?", default="run", choices=COMMANDS,
                        help="run (default), status, plan (check and describe, start nothing) or report")
    parser.add_argument("--fresh", action="store_true",
                        help="start over: the experiment's folder is renamed <name>.<time>.old, nothing deleted")
    parser.add_argument("--status", action="store_true", help="same as the status command")
    args = parser.parse_args(argv)
    settings.refuse_conflicts("sweep", args)
    # The runs take the training settings from the environment: a typo there fails now, not in every run.
    errors = settings.validate_environment(("baseline", "ray"))
    if errors:
        settings.fail(errors[0])
    if args.target == "k8s":
        try:  # what the pods cannot take (DATA_DIR) is refused by the builder: now, before any run starts
            settings.trainer_argv("ray", "pod")
        except settings.SettingsError as err:
            settings.fail(str(err))
    if args.status:
        args.command = "status"
    return args


def load_scales(args):
    if args.sweep and args.scales:
        raise SweepError("give either --sweep or --scales, not both")
    defaults = scales.default_scale_values(os.environ)
    if args.scales:
        listed = scales.load_scales_file(args.scales, defaults)
    elif args.sweep:
        listed = scales.scales_from_workers(scales.parse_worker_list(args.sweep), defaults)
    else:
        raise SweepError("--sweep (worker counts, such as 1,2,3) or --scales FILE is required")
    return scales.with_baseline(listed)


def cluster_cpus(args):
    if args.cluster_cpus or args.target != "local":
        return args.cluster_cpus
    from training.core.tf_env import available_cpus

    return available_cpus()


def make_plan(args):
    listed = load_scales(args)
    scales.check_scales(listed, cluster_cpus(args), args.scaling)
    hashed = scales.hashed_settings_from(os.environ)
    name = args.experiment or scales.derive_experiment_name(listed, args.scaling, hashed)
    scales.check_experiment_name(name)
    return scales.build_plan(listed, args.scaling, hashed, name, args.repeat)


def experiment_folder(args, name):
    return runner.experiment_paths(args.results_dir, name)[0]


def refuse_if_running(folder, name):
    holder = ledger.lock_holder(folder)
    if holder:
        raise SweepError(f"experiment '{name}' is already being run by another sweep (pid {holder}); wait for it "
                         f"to end, or watch it with --status", code=1)


def describe_plan(args, plan):
    """key=value lines for scripts/lib/sweep.sh: the local cluster it starts must fit the largest Ray scale."""
    folder = experiment_folder(args, plan.experiment)
    refuse_if_running(folder, plan.experiment)
    done = set()
    path = os.path.join(folder, ledger.LEDGER_FILE)
    if not args.fresh and os.path.exists(path):
        states, _ = ledger.replay(ledger.read_ledger(path, repair=False), path)
        done = {run_id for run_id, s in states.items()
                if s.state == "succeeded" or s.gave_up or s.failures >= args.max_attempts}
    ray = [run for run in plan.runs if run.scale.kind == "ray"]
    left = [run for run in ray if run.run_id not in done]
    print(f"experiment={plan.experiment}")
    print(f"runs={len(plan.runs)}")
    print(f"ray_runs_left={len(left)}")
    print(f"max_workers={max((run.scale.workers for run in ray), default=0)}")
    print(f"max_cpus_per_worker={max((run.scale.cpus_per_worker for run in ray), default=0)}")


def main(argv=None, builders=None):
    """`builders` maps a target to the function that builds a run's command (commands.BUILDERS by default)."""
    argv = sys.argv[1:] if argv is None else argv
    builders = builders or commands.BUILDERS
    args = parse_args(argv)
    try:
        if args.command == "status":
            if args.experiment or args.sweep or args.scales:
                name = args.experiment or make_plan(args).experiment
            else:
                name = status.latest_experiment(args.results_dir)
            print(status.table(experiment_folder(args, name)))
            return 0
        if args.command == "report":
            name = args.experiment or make_plan(args).experiment
            from training.sweep import report

            for path in report.write_report(experiment_folder(args, name), args.target_accuracy):
                print(path)
            return 0
        plan = make_plan(args)
        if args.command == "plan":
            describe_plan(args, plan)
            return 0
        folder = experiment_folder(args, plan.experiment)
        if args.fresh and os.path.exists(folder):
            lock = ledger.SweepLock(folder).acquire()
            try:
                moved = ledger.move_aside(folder)
            finally:
                lock.release()
            print(f"[sweep] --fresh: the earlier experiment is kept as {moved}")
        print(f"[sweep] experiment {plan.experiment}: {len(plan.runs)} run(s), {args.scaling} scaling, "
              f"target {args.target}; folder {folder}", flush=True)
        options = runner.Options(build_command=builders[args.target], max_attempts=args.max_attempts,
                                 target_accuracy=args.target_accuracy, stop_at_target=args.stop_at_target,
                                 run_timeout=args.run_timeout, target=args.target,
                                 echo=lambda line: print(line, flush=True))
        return runner.run_sweep(plan, args.results_dir, options, ["python", "-m", "training.sweep"] + argv)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:  # before the runner took over Ctrl-C: nothing was started
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
