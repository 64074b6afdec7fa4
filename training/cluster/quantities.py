"""Kubernetes resource quantities as numbers: CPUs in millicores, memory in MiB."""

import re

MEMORY_UNITS = {"": 1, "m": 10**-3, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
                "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


class PlanError(ValueError):
    """Input this package cannot use (an unknown profile, a quantity Kubernetes would not write); the message is
    the one line bash prints after `error: `."""


def cpu_millis(text):
    """A Kubernetes CPU quantity ("2", "500m", "1.5") in millicores."""
    text = str(text).strip()
    match = re.fullmatch(r"([0-9.]+)(m?)", text)
    if not match:
        raise PlanError(f"not a CPU quantity: '{text}'")
    value = float(match.group(1))
    return int(round(value if match.group(2) else value * 1000))


def memory_mib(text):
    """A Kubernetes memory quantity ("4Gi", "512Mi", "8010000Ki", "2G", bytes) in MiB."""
    text = str(text).strip()
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|Pi|[mkMGTP]?)", text)
    if not match:
        raise PlanError(f"not a memory quantity: '{text}'")
    return float(match.group(1)) * MEMORY_UNITS[match.group(2)] / 2**20
