"""Running the Kubernetes scripts against stub kubectl, helm, minikube and docker (tests/k8s_stubs/).

A StubWorld is a fresh folder (with a space in its name, to flush out quoting bugs) holding a bin/ of stubs that
comes first on a PATH of system folders only, so a real kubectl or helm can never be reached. Tests add rules
("when kubectl is called with arguments matching this glob, print this and exit with that") and then read back
every call the script made.
"""

import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
STUB_DIR = REPO_ROOT / "tests" / "k8s_stubs"
TOOLS = ("kubectl", "helm", "minikube", "docker")
SYSTEM_PATH = "/usr/bin:/bin"


def real_tool_visible(tool):
    """True when a real `tool` sits in the system folders, where a missing-tool test could find it."""
    return shutil.which(tool, path=SYSTEM_PATH) is not None


class StubWorld:
    def __init__(self, tmp_path, tools=TOOLS):
        self.root = Path(tmp_path) / "stub world"
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True)
        for tool in tools:
            (self.bin / tool).symlink_to(STUB_DIR / tool)
        self.log = self.root / "calls.log"
        self.rules_file = self.root / "rules.tsv"
        self.cp_dir = self.root / "pod files"
        self.cp_dir.mkdir()
        self.home = self.root / "home"
        self.home.mkdir()
        self.rules = []

    def on(self, tool, glob, exit_code=0, stdout=""):
        """Adds a rule; rules added first win. stdout may use \\n."""
        self.rules.append((tool, glob, str(exit_code), stdout.replace("\n", "\\n")))
        return self

    def pod_file(self, name, text):
        """A file `kubectl cp` will find in any pod."""
        (self.cp_dir / name).write_text(text)

    def env(self, **settings):
        env = {
            "PATH": f"{self.bin}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "STUB_LOG": str(self.log),
            "STUB_RULES": str(self.rules_file),
            "STUB_CP_DIR": str(self.cp_dir),
        }
        env.update({k: str(v) for k, v in settings.items()})
        return env

    def run(self, argv, timeout=120, **settings):
        self.rules_file.write_text("".join("\t".join(rule) + "\n" for rule in self.rules))
        return subprocess.run(argv, cwd=REPO_ROOT, env=self.env(**settings), capture_output=True, text=True,
                              timeout=timeout)

    def run_script(self, script, *args, **settings):
        return self.run([str(REPO_ROOT / script), *args], **settings)

    def run_bash(self, code, *args, **settings):
        return self.run(["bash", "-c", code, "bash", *args], **settings)

    def calls(self, tool=None):
        """Every recorded call as [tool, arg, ...], in order; only `tool`'s when given."""
        if not self.log.exists():
            return []
        calls = [line.split("\t") for line in self.log.read_text().splitlines()]
        return [c for c in calls if tool is None or c[0] == tool]

    def called_with(self, tool, *words):
        """The calls of `tool` whose arguments contain all of `words` (in any position)."""
        return [c for c in self.calls(tool) if all(w in c[1:] for w in words)]

    def stdin_text(self):
        path = Path(f"{self.log}.stdin")
        return path.read_text() if path.exists() else ""


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def assert_one_line_error(result, code, *fragments):
    """The kit's bad-input contract: exit `code`, exactly one `error:` line naming the problem, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.stderr
    return errors[0]


