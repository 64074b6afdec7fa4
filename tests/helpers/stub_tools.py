"""Running the Kubernetes scripts against stub kubectl, helm, minikube and docker (tests/k8s/stubs/).

A StubWorld is a fresh folder (with a space in its name, to flush out quoting bugs) holding a bin/ of stubs that
comes first on a PATH of system folders only, so a real kubectl or helm can never be reached. Tests add rules
("when kubectl is called with arguments matching this glob, print this and exit with that") and then read back
every call the script made. The canned answers of tests/helpers/canned_answers.py give a stub the real tool's
words; when the real kubectl is there (tests/helpers/real_kubectl.py), `run()` fails the test for any kubectl
command line it rejects, while the scripts see only the stubs.
"""

import shutil
import subprocess
from pathlib import Path

from tests.helpers.canned_answers import (canned_helm_status_missing, canned_kubectl_jsonpath_on_empty_list,
                                          canned_kubectl_object_missing, canned_minikube_profile_list_json,
                                          canned_minikube_status)
from tests.helpers.real_kubectl import (REAL_KUBECTL, REPO_ROOT, SYSTEM_PATH, UNREACHABLE_SERVER,
                                        session_folders, assert_real_kubectl_accepted, classify_real_kubectl,
                                        refresh_discovery_cache)

STUB_DIR = REPO_ROOT / "tests" / "k8s" / "stubs"
TOOLS = ("kubectl", "helm", "minikube", "docker")


def real_tool_visible(tool):
    """True when a real `tool` sits in the system folders, where a missing-tool test could find it."""
    return shutil.which(tool, path=SYSTEM_PATH) is not None


# --- escaping for the rules file -----------------------------------------------------------------------------

def _escape(text):
    """Text for one rules-file field: printf %b gives it back byte for byte; `=` keeps an empty field a field."""
    return "=" + text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def _rule_line(rule):
    """A rule as a rules-file line. Rules are tuples (tool, glob, code, stdout[, stderr[, raw]]): stdout gets a
    final newline unless raw or empty (as the stubs always did), stderr is printed as given."""
    tool, glob, code, stdout, *rest = rule
    stderr = rest[0] if rest else ""
    raw = rest[1] if len(rest) > 1 else False
    if stdout and not raw:
        stdout += "\n"
    return "\t".join([tool, glob, str(code), _escape(stdout), _escape(stderr)]) + "\n"


def _unescape_log(word):
    """An argument as stub-common.sh logged it (\\\\, \\t, \\n) back to itself."""
    out, i = [], 0
    while i < len(word):
        if word[i] == "\\" and i + 1 < len(word):
            out.append({"\\": "\\", "t": "\t", "n": "\n"}.get(word[i + 1], "\\" + word[i + 1]))
            i += 2
        else:
            out.append(word[i])
            i += 1
    return "".join(out)


class StubWorld:
    def __init__(self, tmp_path, tools=TOOLS, real_kubectl=True):
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
        # The real kubectl's verdicts are shared by every world of this test session (the same command line gets
        # the same verdict); this world's list of the command lines it issued is its own.
        self.real_kubectl = REAL_KUBECTL if real_kubectl and "kubectl" in tools else None
        self.real_used = self.root / "real kubectl commands"
        self.check_real_kubectl = self.real_kubectl is not None

    def on(self, tool, glob, exit_code=0, stdout="", stderr="", raw=False):
        """Adds a rule; rules added first win. stdout gets a final newline unless raw; stderr is printed as is."""
        self.rules.append((tool, glob, str(exit_code), stdout, stderr, raw))
        return self

    # --- canned answers (see the canned_* functions for the source of each) ---

    def minikube_profile(self, state, name="raybench", nodes=2, minikube_version="1.38.1"):
        """minikube answers `status` (text, --format {{.Field}}, -o json) and `profile list -o json` as the real
        minikube does for a profile that is `state`: missing, stopped, running, or apiserver-stopped."""
        json_globs = ("*status*-o json*", "*status*-o=json*", "*status*-ojson*", "*status*--output json*",
                      "*status*--output=json*")
        code, out = canned_minikube_status(state, name, nodes, output="json")
        for glob in json_globs:
            self.on("minikube", glob, code, out, raw=True)
        for field in ("Host", "Kubelet", "APIServer", "Kubeconfig", "Name"):
            code, out = canned_minikube_status(state, name, nodes, field=field)
            if state == "missing":
                code, out = canned_minikube_status(state, name, nodes)
            self.on("minikube", f"*status*{{{{.{field}}}}}*", code, out, raw=True)
        code, out = canned_minikube_status(state, name, nodes)
        self.on("minikube", "*status*", code, out, raw=True)
        code, out = canned_minikube_profile_list_json(state, name, nodes, minikube_version)
        for glob in ("*profile list*-o json*", "*profile list*-o=json*", "*profile list*-ojson*",
                     "*profile list*--output json*", "*profile list*--output=json*"):
            self.on("minikube", glob, code, out, raw=True)
        return self

    def helm_release_missing(self, release="kuberay-operator"):
        """`helm status RELEASE` (any flags) fails as helm does for a release that is not installed."""
        code, out, err = canned_helm_status_missing()
        self.on("helm", f"*status {release}*", code, out, err, raw=True)
        self.on("helm", f"*status*{release}", code, out, err, raw=True)
        return self

    def kubectl_object_missing(self, resource, name, glob=None):
        """`kubectl get RESOURCE NAME` fails with NotFound. `resource` is the plural the server names in the message
        ("secrets", "rayclusters.ray.io"); glob defaults to a get of it, singular or plural, by that name."""
        code, out, err = canned_kubectl_object_missing(resource, name)
        stem = resource.split(".")[0].removesuffix("s")
        self.on("kubectl", glob or f"*get {stem}* {name}*", code, out, err, raw=True)
        return self

    def kubectl_list_empty(self, glob, template):
        """`kubectl get ... -o jsonpath=TEMPLATE` (calls matching glob) on a list with no items."""
        code, out, err = canned_kubectl_jsonpath_on_empty_list(template)
        self.on("kubectl", glob, code, out, err, raw=True)
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
        if self.real_kubectl:
            verdicts, home = session_folders()
            env.update({"STUB_REAL_KUBECTL": str(self.real_kubectl), "STUB_REAL_DIR": str(verdicts),
                        "STUB_REAL_HOME": str(home), "STUB_REAL_USED": str(self.real_used),
                        "STUB_REAL_SERVER": UNREACHABLE_SERVER})
        env.update({k: str(v) for k, v in settings.items()})
        return env

    def run(self, argv, timeout=120, **settings):
        self.rules_file.write_text("".join(_rule_line(rule) for rule in self.rules))
        if self.real_kubectl:
            refresh_discovery_cache(session_folders()[1])
        result = subprocess.run(argv, cwd=REPO_ROOT, env=self.env(**settings), capture_output=True, text=True,
                                timeout=timeout)
        if self.check_real_kubectl:
            assert_real_kubectl_accepted(self)
        return result

    def run_script(self, script, *args, **settings):
        return self.run([str(REPO_ROOT / script), *args], **settings)

    def run_bash(self, code, *args, **settings):
        return self.run(["bash", "-c", code, "bash", *args], **settings)

    def calls(self, tool=None):
        """Every recorded call as [tool, arg, ...], in order; only `tool`'s when given."""
        if not self.log.exists():
            return []
        lines = self.log.read_text().splitlines()
        calls = [[_unescape_log(word) for word in line.split("\t")] for line in lines]
        return [c for c in calls if tool is None or c[0] == tool]

    def called_with(self, tool, *words):
        """The calls of `tool` whose arguments contain all of `words` (in any position)."""
        return [c for c in self.calls(tool) if all(w in c[1:] for w in words)]

    def stdin_text(self):
        path = Path(f"{self.log}.stdin")
        return path.read_text() if path.exists() else ""

    def real_kubectl_verdicts(self):
        """[(argv, exit code, stderr, verdict)] for every distinct kubectl command line the scripts issued."""
        verdicts = []
        if not self.real_used.exists():
            return verdicts
        for stem in sorted(set(self.real_used.read_text().splitlines())):
            rc_file = Path(f"{stem}.rc")
            argv = [a for a in Path(f"{stem}.args").read_bytes().decode().split("\0") if a != ""]
            code = int(rc_file.read_text().strip())
            stderr = Path(f"{stem}.err").read_text(errors="replace")
            verdicts.append((argv, code, stderr, classify_real_kubectl(code, stderr)))
        return verdicts


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
