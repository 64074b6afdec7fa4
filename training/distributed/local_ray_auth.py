"""Token authentication for a Ray cluster the kit starts on this machine.

Ray 2.60 turns token auth on for a local cluster by itself and keeps the token in ~/.ray/auth_token; a later
`ray start --head` then turns it on as well, and any node or driver without the token fails with
InvalidAuthToken. The kit never relies on that implicit state: every cluster it starts sets the mode
explicitly, with a fresh token in a private file that only this run's processes are given.
"""

import os
import secrets
import tempfile


def enable_token_auth(folder=None):
    """Sets RAY_AUTH_MODE=token and a fresh RAY_AUTH_TOKEN_PATH for this process and the ones it starts.
    Keeps a token the caller already provided (a cluster started by scripts/lib/local_cluster.sh)."""
    os.environ["RAY_AUTH_MODE"] = "token"
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ.get("RAY_AUTH_TOKEN_PATH")
    folder = folder or tempfile.mkdtemp(prefix="kit-ray-auth-")
    path = os.path.join(folder, "auth_token")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    os.environ["RAY_AUTH_TOKEN_PATH"] = path
    return path
