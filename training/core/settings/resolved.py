"""One run's settings, resolved once: every setting its program takes, parsed, and the values derived from them
(rules.derived). The trainers read it, the results' `config` is written from it (record), and it travels to Ray's
workers as a plain dict (to_dict / from_dict), so a new setting is a row in the table, the code that uses it and
a test: nothing lists the settings a second time."""

from training.core.settings import rules
from training.core.settings.table import BY_NAME, model_options, of_program


class ResolvedRun:
    """Attributes by a setting's lower-case name (`run.batch_size`), or a derived value's (`run.global_batch`;
    `run.learning_rate` is the rate the run trains at, `run.base_learning_rate` the LEARNING_RATE given)."""

    def __init__(self, program, values, derived=None):
        self.__dict__.update(program=program, values=dict(values),
                             derived=dict(rules.derived(program, values.get) if derived is None else derived))

    @classmethod
    def from_args(cls, program, args):
        """From a namespace parsed by args.parse (flag dests), or a dict of the same names."""
        names = args if isinstance(args, dict) else vars(args)
        values = {s.name: names.get(s.dest(program)) for s in of_program(program)}
        return cls(program, values)

    def __getattr__(self, name):
        if name in self.__dict__.get("derived", {}):
            return self.derived[name]
        if name.upper() in self.__dict__.get("values", {}):
            return self.values[name.upper()]
        raise AttributeError(f"{type(self).__name__} of {self.__dict__.get('program')} has no setting {name!r}")

    def __setattr__(self, name, value):
        raise AttributeError("a resolved run does not change; use replace()")

    def __eq__(self, other):
        return type(other) is type(self) and other.to_dict() == self.to_dict()

    def replace(self, **changes):
        """A copy with some settings changed (by lower-case name), the derived values computed again."""
        unknown = [name for name in changes if name.upper() not in self.values]
        if unknown:
            raise AttributeError(f"{unknown[0]!r} is not a setting of {self.program}")
        return type(self)(self.program, {**self.values, **{k.upper(): v for k, v in changes.items()}})

    @property
    def base_learning_rate(self):
        return self.values["LEARNING_RATE"]

    @property
    def model_options(self):
        """build_model's keyword arguments: the table's model hyper-parameters."""
        return model_options({name.lower(): value for name, value in self.values.items()})

    def to_dict(self):
        return {"program": self.program, "values": self.values, "derived": self.derived}

    @classmethod
    def from_dict(cls, document):
        return cls(document["program"], document["values"], document["derived"])

    def record(self):
        """The settings part of the results' `config`: every recorded setting by its lower-case name (values
        JSON can hold), and the derived batches and rate under the names the results schema gives them."""
        entry = {name.lower(): _plain(value) for name, value in self.values.items() if BY_NAME[name].recorded}
        entry.update(global_batch_size=self.global_batch, per_worker_batch_size=self.per_worker_batch,
                     learning_rate=self.learning_rate, base_learning_rate=self.base_learning_rate,
                     model_options=self.model_options)
        return entry


def _plain(value):
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
