"""python -m training.sweep run|status [flags]: scaling sweeps as a Temporal workflow.

    python -m training.sweep run --sweep 1,2 --repeat 3       # baseline + Ray 1 and 2 workers, 3 times each
    python -m training.sweep run --scales scales.yaml          # scale configs from a YAML or JSON file
    python -m training.sweep status --experiment NAME          # the table, from the workflow (also: run --status)

The same command resumes the experiment's workflow (sweep-<experiment>); --fresh starts over. Results:
RESULTS_DIR/experiments/<name>/. Exit codes: 0 every run succeeded, 1 a run failed for good (or another sweep
runs the experiment), 2 bad input, 3 the Temporal CLI is missing, 4 the server cannot be reached, 130 interrupted.
"""

import asyncio
import os
import sys

from training.core import settings
from training.sweep import EXIT_INTERRUPTED, SweepError, scales


def parse_args(argv):
    # A global batch (--quick's) is split among the workers: strong scaling, unless SCALING says otherwise.
    overlay = {"SCALING": "strong"} if os.environ.get("BATCH_SIZE_MODE") == "global" else None
    parser = settings.parser_for("sweep", __doc__.split("\n")[0], overlay, prog="python -m training.sweep")
    parser.add_argument("command", nargs="?", default="run", choices=("run", "status"), help="run (default) or status")
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
    args.command = "status" if args.status else args.command
    return args


def make_plan(args):
    """The workflow's input: the runs of the scales, with what the activities and the report need."""
    from training.core.tf_env import available_cpus
    from training.sweep import workflow

    if bool(args.sweep) == bool(args.scales):
        raise SweepError("give either --sweep (worker counts, such as 1,2,3) or --scales FILE")
    defaults = scales.default_scale_values(os.environ)
    listed = scales.with_baseline(scales.load_scales_file(args.scales, defaults) if args.scales else
                                  scales.scales_from_workers(scales.parse_worker_list(args.sweep), defaults))
    cpus = args.cluster_cpus or (available_cpus() if args.target == "local" else None)
    scales.check_scales(listed, cpus, args.scaling)
    hashed = scales.hashed_settings_from(os.environ)
    name = scales.check_experiment_name(args.experiment or scales.derive_experiment_name(listed, args.scaling,
                                                                                         hashed))
    extra = {}
    if os.environ.get("KIT_SWEEP_HEARTBEAT_TIMEOUT_S"):  # the tests' short timeouts; not a user setting
        extra = {"heartbeat_timeout_s": int(os.environ["KIT_SWEEP_HEARTBEAT_TIMEOUT_S"]), "retry_interval_s": 0.5}
    # Absolute: the trainers run from the repository root, the sweep from wherever the user is.
    folder = os.path.join(os.path.abspath(args.results_dir), "experiments", name)
    return workflow.SweepPlan(experiment=name, experiment_dir=folder, scaling=args.scaling, target=args.target,
                              runs=scales.build_plan(listed, args.scaling, hashed, name, args.repeat),
                              settings=hashed, max_attempts=args.max_attempts, run_timeout_s=args.run_timeout or 0,
                              target_accuracy=args.target_accuracy, stop_at_target=args.stop_at_target, **extra)


def latest_experiment(args):
    """The experiment whose folder changed last, for --status without a name."""
    base = os.path.join(os.path.abspath(args.results_dir), "experiments")
    names = [name for name in os.listdir(base) if not name.endswith(".old")] if os.path.isdir(base) else []
    if not names:
        raise SweepError(f"no sweep has run in {base}; start one with --sweep 1,2 or --scales FILE")
    return max(names, key=lambda name: os.path.getmtime(os.path.join(base, name)))


def main(argv=None, build_command=None):
    """`build_command` replaces the activity's command builder (a fast stand-in trainer in the tests)."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.stdout.reconfigure(line_buffering=True)  # the console (and a test) reads each line as it comes
    embedded = cluster = None
    try:
        from training import launch
        from training.sweep import activities, driver, server

        name = None
        if args.command == "status":
            name = args.experiment or (None if args.sweep or args.scales else latest_experiment(args))
        plan = None if name else make_plan(args)
        if args.temporal_address:
            os.environ["TEMPORAL_ADDRESS"] = args.temporal_address  # where the SDK's connection settings look
            address = web_ui = None
            where = f"Temporal server TEMPORAL_ADDRESS={args.temporal_address}"
        else:
            embedded = server.EmbeddedServer(args.results_dir, ui=args.temporal_ui).open()
            address, web_ui = embedded.address, embedded.ui_address
            where = f"embedded Temporal server {address} (database {embedded.record.get('db')})"
        if args.command == "status":
            async def show():
                print(await driver.status(await server.connect(address), name or plan.experiment))
                return 0

            return asyncio.run(show())
        ray_runs = [run for run in plan.runs if run.kind == "ray"]
        if args.target == "local" and ray_runs and not build_command:
            # One cluster for the sweep, shaped for its largest scale; a smaller run takes some of its nodes.
            cluster = launch.LocalCluster(max(run.workers for run in ray_runs),
                                          max(run.cpus_per_worker for run in ray_runs))
        work = activities.Activities(build_command=build_command or activities.run_command,
                                     cluster=cluster.ensure if cluster else None)
        print(f"[sweep] experiment {plan.experiment}: {len(plan.runs)} run(s), {plan.scaling} scaling, target "
              f"{plan.target}; folder {driver.shown(plan.experiment_dir)}; {where}; workflow "
              f"{driver.workflow_id(plan.experiment)}")

        async def sweep():
            return await driver.run(await server.connect(address), plan, work, fresh=args.fresh, web_ui=web_ui)

        return driver.run_until_done(sweep)
    except SweepError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if cluster:
            cluster.stop()
        if embedded:
            embedded.close()


def exit_now(code):
    """Exits without the interpreter's teardown, once main() has stopped what it started: the Temporal SDK's
    Rust threads can abort a finalizing interpreter ("PyGILState_Release", temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
