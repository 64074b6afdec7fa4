"""The types of setting values: each takes the setting's name (and, for choices, the allowed values) and returns a
parser of the value's text that raises SettingsError naming the setting. `parse.allowed` says what is allowed, in
words, for errors, --help and the docs."""

import math
import os

from training.core.settings import cifar_folder, policies
from training.core.settings.errors import SettingsError


def _number(text, kind, fallback):
    try:
        return kind(str(text).strip())
    except ValueError:
        return fallback


def _numeric(setting, kind, fallback, ok, allowed):
    """A parser of numbers of `kind` for which ok(value, text) holds; `allowed` says which, in the error."""
    def parse(text):
        value = _number(text, kind, fallback)
        if not ok(value, str(text).strip()):
            raise SettingsError(f"{setting} must be {allowed}, got '{text}'")
        return value

    parse.allowed = allowed
    return parse


def positive_int(setting):
    return _numeric(setting, int, 0, lambda v, text: v >= 1 and not text.startswith("+"), "a positive integer")


def non_negative_int(setting):
    return _numeric(setting, int, -1, lambda v, _: v >= 0, "a whole number, 0 or more")


def positive_float(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 < v < math.inf, "a positive number")


def non_negative_float(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 <= v < math.inf, "a number, 0 or more")


def accuracy(setting):
    """A share of images classified right: 0 < value <= 1."""
    return _numeric(setting, float, math.nan, lambda v, _: 0 < v <= 1, "a number in (0, 1]")


def fraction(setting):
    return _numeric(setting, float, -1.0, lambda v, _: 0 < v < 1, "a number between 0 and 1 (exclusive)")


def share_below_one(setting):
    """0 <= value < 1: a share of a mean that something may vary by."""
    return _numeric(setting, float, -1.0, lambda v, _: 0 <= v < 1, "at least 0 and below 1")


def one_of(setting, allowed):
    def parse(text):
        if text not in allowed:
            raise SettingsError(f"{setting} must be one of {', '.join(allowed)}, got '{text}'")
        return text

    parse.allowed = ", ".join(allowed)
    return parse


def switch(setting):
    """On/off: 1/true/yes or 0/false/no (empty is off)."""
    def parse(text):
        value = str(text).strip().lower()
        if value in ("1", "true", "yes"):
            return True
        if value in ("", "0", "false", "no"):
            return False
        raise SettingsError(f"{setting} must be 0 or 1, got '{text}' (allowed: 0, 1, true, false, yes, no)")

    parse.allowed = "0 or 1"
    return parse


def text(setting):
    def parse(value):
        return str(value)

    parse.allowed = "text"
    return parse


def data_dir(setting):
    """An empty DATA_DIR means 'use Keras' download cache'; a given one must hold the CIFAR-10 batches."""
    def parse(value):
        if not value:
            return None
        try:
            cifar_folder.locate_batches(value)
        except cifar_folder.CifarFilesError as err:
            raise SettingsError(str(err)) from None
        return os.path.abspath(value)

    parse.allowed = "a cifar-10-batches-py folder or its parent"
    return parse


def checkpoint_policy(setting):
    def parse(value):
        return str(policies.parse_policy(value))

    parse.allowed = "every, never, interval:K, adaptive"
    return parse


def seconds_list(setting):
    def parse(value):
        values = [_number(part, float, math.nan) for part in str(value).split(",") if part.strip()]
        if not values or any(not 0 < v < math.inf for v in values):
            raise SettingsError(f"{setting} must be a comma-separated list of positive seconds, got '{value}'")
        return sorted(set(values))

    parse.allowed = "positive seconds, comma-separated"
    return parse


def policy_list(setting):
    def parse(value):
        try:
            listed = [policies.parse_policy(part.strip()) for part in str(value).split(",") if part.strip()]
        except SettingsError:
            listed = []
        if not listed:
            raise SettingsError(f"{setting} must be a comma-separated list of {policies.POLICY_FORMS}, got '{value}'")
        return list(dict.fromkeys(listed))

    parse.allowed = "policies, comma-separated"
    return parse


def choice(allowed):
    """The kind of a setting with a fixed set of values; the row carries them (`kind.choices`)."""
    def kind(setting):
        return one_of(setting, allowed)

    kind.choices = tuple(allowed)
    return kind
