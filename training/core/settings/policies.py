"""The CHECKPOINT_POLICY setting's values: every, never, interval:K, adaptive. Its type lives with the settings so
that they parse it without importing the checkpoint controller (training/checkpointing/checkpoint_policy.py)."""

from dataclasses import dataclass

from training.core.settings.errors import SettingsError

POLICY_KINDS = ("every", "never", "interval", "adaptive")
POLICY_FORMS = "every, never, interval:K (K a positive integer), adaptive"


class PolicyError(SettingsError):
    """A CHECKPOINT_POLICY value that is not one of the allowed forms (a SettingsError: one line, names it)."""


@dataclass(frozen=True)
class CheckpointPolicy:
    kind: str
    interval: int = 0  # epochs between checkpoints, for kind "interval" only

    def __str__(self):
        return f"interval:{self.interval}" if self.kind == "interval" else self.kind


def parse_policy(text):
    """`every`, `never`, `interval:K` or `adaptive` to a CheckpointPolicy; PolicyError (one line) otherwise."""
    value = str(text).strip().lower()
    if value in ("every", "never", "adaptive"):
        return CheckpointPolicy(value)
    kind, sep, count = value.partition(":")
    count = count.strip()
    if kind.strip() == "interval" and sep and count.isdigit() and int(count) >= 1:
        return CheckpointPolicy("interval", int(count))
    raise PolicyError(f"CHECKPOINT_POLICY must be one of {POLICY_FORMS}, got {str(text)!r}")
