"""Ray's two execution patterns on the kit's data and model: stateless tasks, then a stateful actor that fails.

    python -m training.walkthrough.ray_patterns                          # a private local Ray; about a minute on 2 cores
    python -m training.walkthrough.ray_patterns --ray-address auto       # in the head pod, or with a local cluster running
    FAILURE_MODE=kill EPOCHS=5 python -m training.walkthrough.ray_patterns

1. Tasks: one stateless task loads the data set and puts it in the object store; two more tasks, running side by
   side wherever Ray has a free CPU, take it from there and build the train and test subsets. The driver only
   passes object references around: no image goes through it.
2. Actor: a trainer actor builds the kit's model once and keeps it, with its optimizer state, between
   train_epoch() calls; get_state() and restore_state() move its state through the object store.
3. Failure: in epoch INJECT_FAILURE_EPOCH the actor's process dies (os._exit inside the epoch, or ray.kill from the
   driver). Ray restarts the actor (max_restarts) by running its constructor again, which gives a fresh model;
   the driver, which runs the checkpoint controller, restores its latest checkpoint and goes on from there.
4. Timeline: every task and actor call reports the node, process and times it ran at; the driver prints them.

A recovered run is not a replay of an undisturbed one: the weights and optimizer state are restored exactly,
but dropout's random ops start their sequences afresh in the new process, and on a few hundred images that alone
moves the next epoch's loss a lot (measured: 0.26 or 0.68 from the same state). Compare final accuracies.

The checkpoints live in the object store, owned by the driver: they survive the actor's process but not the loss
of the node holding them. Ray Train runs (ray_training.py) keep theirs in storage every node sees instead.
Settings share their names with the training scripts, with defaults sized for a one-minute demo.
"""

import os
import time

from training.checkpointing.checkpoint_loop import CheckpointLoop
from training.checkpointing.checkpoint_policy import parse_policy
from training.core import settings
from training.core.settings import fail

EXIT_INFRA = 4
ACTOR_MAX_RESTARTS = 2  # the injected failure, and one unplanned one
HOLD_UNTIL_KILLED_SECONDS = 3600
ACTOR_RETURN_SECONDS = 180  # how long a restarted actor may take to come back (TensorFlow import included)

def parse_args(argv=None):
    args = settings.parse("patterns", "Ray tasks and actors on the kit's data and model, with an actor failure and "
                                      "its recovery from a checkpoint.", argv)
    args.policy = parse_policy(args.checkpoint_policy)
    return args


# --- what runs remotely ------------------------------------------------------------------------------------------
# Plain functions and a plain class, made remote in main() once Ray is imported (Ray must see the auth settings
# before its import). Each returns a `span`: where and when it ran, for the timeline.


def span(what, started):
    import ray

    return {"what": what, "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid(), "start": started, "end": time.time()}


def load_data_task(name, data_dir, train_samples, test_samples, seed):
    """Stateless: loads the data set. Its arrays go to the object store as one value; Ray stores numpy arrays
    there so that readers on the same node map them instead of copying."""
    from training.core import data

    started = time.time()
    ds = data.load_dataset(name, data_dir, train_samples, test_samples, seed=seed)
    arrays = {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test}
    return arrays, span(f"task load_data({name})", started)


def build_subset_task(arrays, split, seed):
    """Stateless: one subset, in a seeded order, with its class counts. `arrays` arrives from the object store."""
    import numpy as np

    started = time.time()
    x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    order = np.random.default_rng(seed).permutation(len(y))
    subset = {"x": x[order], "y": y[order], "class_counts": np.bincount(y, minlength=10).tolist()}
    return subset, span(f"task build_subset({split})", started)


class TrainerActor:
    """Stateful: the model and its optimizer live here between calls."""

    def __init__(self, learning_rate, seed):
        import ray

        started = time.time()
        context = ray.get_runtime_context()
        # The thread pools follow the CPUs Ray gave this actor, before anything imports TensorFlow.
        cpus = max(1, int(context.get_assigned_resources().get("CPU", 1)))
        from training.core.tf_env import configure_tensorflow

        self.tf, self.threads = configure_tensorflow(cpus)
        from training.core.model import build_model

        self.model = build_model(learning_rate=learning_rate, seed=seed)
        # Adam's slots exist from the start, so a state taken before the first step has the shape of every later
        # one (and costs what they cost).
        self.model.optimizer.build(self.model.trainable_variables)
        self.epoch, self.history = 0, []
        self.restarted = context.was_current_actor_reconstructed
        self.init_span = span("actor __init__" + (" (restarted)" if self.restarted else ""), started)

    def ready(self):
        return {**self.init_span, "threads": self.threads, "restarted": self.restarted}

    def train_epoch(self, subset, epoch, batch_size, seed, crash_at_step=0, hold_at_step=0):
        from training.core import data

        started = time.time()
        tf = self.tf

        class CrashHalfway(tf.keras.callbacks.Callback):
            def on_train_batch_end(self, step, logs=None):
                if crash_at_step and step + 1 == crash_at_step:
                    os._exit(1)  # a process death, not an exception: nothing in this process gets to clean up
                if hold_at_step and step + 1 == hold_at_step:
                    # Waits here until the driver's ray.kill ends the process, so the kill lands inside this epoch
                    # however fast or slow the machine is (a bounded wait raced with the kill on a loaded machine).
                    time.sleep(HOLD_UNTIL_KILLED_SECONDS)

        dataset = data.make_tf_dataset(subset["x"], subset["y"], batch_size, shuffle_seed=seed + epoch)
        fit = self.model.fit(dataset, epochs=1, verbose=0, callbacks=[CrashHalfway()])
        self.epoch = epoch
        record = {"epoch": epoch, "loss": float(fit.history["loss"][-1]),
                  "accuracy": float(fit.history["accuracy"][-1]), "seconds": time.time() - started}
        self.history.append(record)
        return {**record, "span": span(f"actor train_epoch({epoch})", started)}

    def get_state(self):
        """(state, span): weights, optimizer variables, epoch and history; two returns so that the driver can
        learn when and where it ran without fetching the state itself."""
        from training.checkpointing import checkpoints

        started = time.time()
        state = {"epoch": self.epoch, "history": list(self.history), **checkpoints.model_state(self.model)}
        return state, span(f"actor get_state() after epoch {self.epoch}", started)

    def restore_state(self, state):
        from training.checkpointing import checkpoints

        started = time.time()
        checkpoints.apply(self.model, {**state, "path": "object store"})
        self.epoch, self.history = state["epoch"], list(state["history"])
        return span(f"actor restore_state(epoch {state['epoch']})", started)

    def evaluate(self, subset, batch_size):
        from training.core import data

        started = time.time()
        loss, accuracy = self.model.evaluate(data.make_tf_dataset(subset["x"], subset["y"], batch_size), verbose=0)
        return {"loss": float(loss), "accuracy": float(accuracy), "span": span("actor evaluate(test)", started)}


# --- the driver --------------------------------------------------------------------------------------------------


def start_ray(args):
    from training.distributed.ray_start import start_ray as start

    try:
        # Two CPUs beyond the actor's, so the two subset tasks can run side by side while it starts; they are
        # Ray's scheduling units, and the tasks take well under a second each.
        return start(args.ray_address, args.cpus + 2)
    except Exception as err:  # a wrong address or a cluster without our token: one line, not Ray's traceback
        fail(f"RAY_ADDRESS '{args.ray_address or '(private local Ray)'}': could not start or join Ray "
             f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})", code=EXIT_INFRA)


class Driver:
    def __init__(self, ray, args, started):
        self.ray, self.args, self.started = ray, args, started
        self.timeline, self.epochs, self.recoveries = [], [], []
        self.actor = None  # where the trainer actor runs now: its latest timeline row
        self.latest = None  # the latest checkpoint: epoch, state reference, controller state, commit time

    def log(self, message):
        print(f"[patterns +{time.time() - self.started:5.1f}s] {message}", flush=True)

    def event(self, what, started=None):
        """A driver-side row of the timeline."""
        from ray.util import get_node_ip_address

        now = time.time()
        self.timeline.append({"what": what, "node_id": self.ray.get_runtime_context().get_node_id(),
                              "node_ip": get_node_ip_address(), "pid": os.getpid(),
                              "start": started or now, "end": now})

    def wait_for_actor(self, trainer):
        """The restarted actor's constructor; method calls fail while Ray is still bringing it back."""
        deadline = time.time() + ACTOR_RETURN_SECONDS
        while True:
            try:
                return self.ray.get(trainer.ready.remote(), timeout=ACTOR_RETURN_SECONDS)
            except self.ray.exceptions.ActorUnavailableError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def run_tasks(self, load_data, build_subset):
        args = self.args
        data_ref, load_span = load_data.remote(args.dataset, args.data_dir or None, args.train_samples,
                                               args.test_samples, args.seed)
        # The subset tasks take data_ref itself: Ray starts them once it exists and hands them the stored value.
        train_ref, train_span = build_subset.remote(data_ref, "train", args.seed)
        test_ref, test_span = build_subset.remote(data_ref, "test", args.seed + 1)
        spans = self.ray.get([load_span, train_span, test_span])
        self.timeline.extend(spans)
        train, test = spans[1], spans[2]
        overlap = min(train["end"], test["end"]) - max(train["start"], test["start"])
        # Submitted together, they may still run one after the other: a warm worker that finishes a short task
        # can take the next before Ray has started a second process.
        how = (f"side by side in pids {train['pid']} and {test['pid']}" if overlap > 0 else
               f"one after the other in pid{'s' if train['pid'] != test['pid'] else ''} "
               f"{', '.join(str(p) for p in sorted({train['pid'], test['pid']}))} (too short to overlap)")
        self.log(f"tasks: loaded {args.dataset} in {spans[0]['end'] - spans[0]['start']:.1f}s (pid "
                 f"{spans[0]['pid']}); built the train and test subsets {how}; the driver holds only references")
        return train_ref, test_ref

    def write_checkpoint(self, trainer):
        """The trainer's state into the object store; returns its reference and the seconds the write took."""
        started = time.time()
        state_ref, span_ref = trainer.get_state.options(num_returns=2).remote()
        self.ray.wait([state_ref], fetch_local=False)
        seconds = time.time() - started
        self.timeline.append(self.ray.get(span_ref))
        return state_ref, seconds

    def measure_checkpoint(self, trainer):
        """One save before training, so the controller knows what a checkpoint costs from the first epoch."""
        return self.write_checkpoint(trainer)[1]

    def run_epoch(self, trainer, train_ref, number, inject):
        """One train_epoch() call; with `inject`, the actor dies halfway through it (RayActorError)."""
        ray, args = self.ray, self.args
        halfway = max(1, -(-args.train_samples // args.batch_size) // 2) if inject else 0
        crash_at, hold_at = (halfway, 0) if args.failure_mode == "exit" else (0, halfway)
        result_ref = trainer.train_epoch.remote(train_ref, number, args.batch_size, args.seed, crash_at, hold_at)
        if inject and args.failure_mode == "kill":
            typical = self.epochs[-1]["seconds"] if self.epochs else 5.0
            ray.wait([result_ref], timeout=typical * 0.75)  # the actor holds halfway; this lets it get there
            self.log(f"ray.kill(trainer) halfway through epoch {number}")
            self.event(f"driver ray.kill(trainer) in epoch {number}")
            ray.kill(trainer, no_restart=False)
        return ray.get(result_ref)

    def train(self, trainer, train_ref, checkpoint_seconds):
        """Every epoch, through the checkpoint loop; returns the final controller."""
        args = self.args
        loop = CheckpointLoop.fresh(args.policy, args.epochs, mtbf_seconds=args.mtbf_seconds,
                                    checkpoint_seconds=checkpoint_seconds, budget_fraction=args.checkpoint_budget)
        epoch, injected = 0, False
        while epoch < args.epochs:
            number = epoch + 1
            inject = number == args.inject_failure_epoch and not injected
            attempt_started = time.time()
            try:
                record = self.run_epoch(trainer, train_ref, number, inject)
            except self.ray.exceptions.RayActorError as err:
                injected = injected or inject
                loop, epoch = self.recover(trainer, loop, epoch, number, err, attempt_started, planned=inject)
                continue
            epoch = number
            self.actor = record.pop("span")
            self.timeline.append(self.actor)

            def save(controller_state, epoch=epoch):
                state_ref, seconds = self.write_checkpoint(trainer)
                self.latest = {"epoch": epoch, "state": state_ref, "controller": controller_state, "time": time.time()}
                return seconds

            record.update(loop.end_epoch(epoch, record["seconds"], save).record())
            self.epochs.append(record)
            self.log(f"epoch {epoch}/{args.epochs} loss {record['loss']:.4f} acc {record['accuracy']:.4f} "
                     f"{record['seconds']:.1f}s; checkpoint: {record['checkpoint_reason']}")
        return loop.controller

    def recover(self, trainer, loop, epochs_done, number, err, attempt_started, planned):
        """Waits for Ray to restart the actor, restores the latest checkpoint into it and returns the checkpoint
        loop to go on with and the epochs done that it resumes after."""
        died_at, failed = time.time(), self.actor
        cause = type(err).__name__
        self.log(f"the trainer actor died in epoch {number} ({cause}); waiting for Ray to restart it")
        self.event(f"driver saw the actor die in epoch {number} ({cause})")
        how = ("unplanned" if not planned else
               "os._exit in the actor" if self.args.failure_mode == "exit" else "ray.kill from the driver")
        self.timeline.append({**{k: failed[k] for k in ("node_id", "node_ip", "pid")},
                              "what": f"actor train_epoch({number}): process died ({how})",
                              "start": attempt_started, "end": died_at})
        try:
            back = self.wait_for_actor(trainer)
        except self.ray.exceptions.RayActorError as again:
            fail(f"the trainer actor did not come back after {ACTOR_MAX_RESTARTS} restart(s) "
                 f"({type(again).__name__}); worker logs: /tmp/ray/session_latest/logs", code=EXIT_INFRA)
        self.actor = {k: back[k] for k in ("what", "node_id", "node_ip", "pid", "start", "end")}
        self.timeline.append(self.actor)
        recovery = {"failed_epoch": number, "cause": cause, "planned": planned, "detected_at": died_at - self.started,
                    "failed_pid": failed["pid"], "failed_node_ip": failed["node_ip"],
                    "restarted_pid": back["pid"], "restarted_node_ip": back["node_ip"],
                    "restart_seconds": time.time() - died_at}
        self.recoveries.append(recovery)
        latest = self.latest
        if latest is None:
            # Unlike a restarted Ray Train worker, this driver outlived the failure: the new controller counts it.
            seconds_lost = time.time() - self.started
            recovery.update({"restored_epoch": 0, "epochs_redone": epochs_done, "seconds_lost": seconds_lost})
            self.log(f"no checkpoint yet: the restarted actor (pid {back['pid']}) starts over from epoch 1")
            return loop.start_over(seconds_lost=seconds_lost), 0
        self.timeline.append(self.ray.get(trainer.restore_state.remote(latest["state"])))
        account = {"epochs_redone": epochs_done - latest["epoch"], "seconds_lost": time.time() - latest["time"]}
        recovery.update({"restored_epoch": latest["epoch"], **account})
        self.log(f"recovered: actor restarted as pid {back['pid']} on {back['node_ip']} "
                 f"({recovery['restart_seconds']:.1f}s), restored the epoch-{latest['epoch']} checkpoint from the "
                 f"object store; {recovery['epochs_redone']} finished epoch(s) redone, "
                 f"{account['seconds_lost']:.1f}s lost")
        return CheckpointLoop.resumed(latest["controller"], self.args.epochs, account), latest["epoch"]

    def print_timeline(self):
        rows = sorted(self.timeline, key=lambda r: (r["start"], r["end"]))
        print("\nTimeline (seconds since the driver started; node = IP / first 8 characters of the Ray node id)")
        print(f"{'start':>7} {'end':>7}  {'node':<26} {'pid':>7}  what")
        for row in rows:
            node = f"{row['node_ip']} / {row['node_id'][:8]}"
            print(f"{row['start'] - self.started:7.1f} {row['end'] - self.started:7.1f}  {node:<26} "
                  f"{row['pid']:>7}  {row['what']}")


def main(argv=None):
    started = time.time()
    args = parse_args(argv)
    ray_started = time.time()
    ray = start_ray(args)
    driver = Driver(ray, args, started)
    from training.core import data

    load_data = ray.remote(num_cpus=1, num_returns=2)(load_data_task)
    build_subset = ray.remote(num_cpus=1, num_returns=2)(build_subset_task)
    trainer_class = ray.remote(max_restarts=ACTOR_MAX_RESTARTS)(TrainerActor)
    driver.event("driver ray.init" + (f"(address={args.ray_address})" if args.ray_address else " (private)"),
                 ray_started)

    # The actor starts (TensorFlow import, model build) while the tasks prepare the data.
    trainer = trainer_class.options(num_cpus=args.cpus).remote(args.learning_rate, args.seed)
    try:
        train_ref, test_ref = driver.run_tasks(load_data, build_subset)
    except data.DataError as err:
        fail(str(getattr(err, "cause", err)))
    ready = ray.get(trainer.ready.remote())
    driver.actor = {k: ready[k] for k in ("what", "node_id", "node_ip", "pid", "start", "end")}
    driver.timeline.append(driver.actor)
    driver.log(f"actor: trainer on {ready['node_ip']} pid {ready['pid']}, TensorFlow threads {ready['threads']}")
    checkpoint_seconds = driver.measure_checkpoint(trainer)
    driver.log(f"one checkpoint (get_state into the object store) takes {checkpoint_seconds:.2f}s")

    controller = driver.train(trainer, train_ref, checkpoint_seconds)
    test = ray.get(trainer.evaluate.remote(test_ref, args.batch_size))
    driver.timeline.append(test.pop("span"))
    driver.log(f"test accuracy {test['accuracy']:.4f} on {args.test_samples} images "
               f"(checkpoints {controller.checkpoints}, failures {controller.failures})")
    driver.print_timeline()
    nodes = {(r["node_ip"], r["node_id"]) for r in driver.timeline}
    pids = {r["pid"] for r in driver.timeline}
    print(f"\n{len(driver.timeline)} timeline rows on {len(nodes)} node(s), {len(pids)} process(es); "
          f"{len(driver.recoveries)} actor failure(s) recovered")
    if args.output:
        doc = {"settings": {k: v for k, v in vars(args).items() if k != "policy"}, "epochs": driver.epochs,
               "recoveries": driver.recoveries, "test": test, "controller": controller.state(),
               "timeline": [{**r, "start": r["start"] - driver.started, "end": r["end"] - driver.started}
                            for r in sorted(driver.timeline, key=lambda r: r["start"])]}
        from training.core.atomic_files import write_json

        write_json(args.output, doc)
    ray.shutdown()


if __name__ == "__main__":
    settings.run_program(main, kept="nothing written")
