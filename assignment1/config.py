"""One training run's configuration: each setting declared once, with its default and its check.

The command line, the explorer, the section notebooks and the report runner all
build a :class:`RunConfig`, and nothing else checks these values: a bad one is
refused by :meth:`RunConfig.check` with the same sentence wherever it came from.
The one check that needs the data (that it can spare the validation set and
fill a mini-batch) is :meth:`RunConfig.check_data_size`, called where the
data's size is first known.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from . import model, validate

LOSSES = tuple(model.LOSSES)
NORMALIZATIONS = ("per_feature", "global")
DTYPES = ("float32", "float64")
ENGINES = ("fast", "plain")
SCHEDULES = ("step", "cosine")
_COUNT = validate.integer(low=1)
_EPOCHS = validate.each(_COUNT, "a list of epochs", nonempty=False)


def _milestones(name: str, value) -> tuple[int, ...]:
    if (epochs := _EPOCHS(name, value)) != sorted(set(epochs)):
        raise validate.ParameterError(name, "be strictly increasing", list(value))
    return tuple(epochs)


def _fraction(name: str, value) -> float:
    if (value := validate.non_negative(name, value)) >= 1:
        raise validate.ParameterError(name, "be a fraction from 0 up to (not including) 1", value)
    return value


def _setting(default, check: validate.Check, help: str):
    return field(default=default, metadata={"check": check, "help": help})


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run, with the data and the code.

    ``eta`` is the learning rate of epoch 0. With the ``step`` schedule it is
    multiplied by ``decay_factor`` at each of the ``milestones`` (0-based
    epochs), so ``milestones=(40, 80)`` gives ``eta`` for epochs 0-39, ``eta *
    decay_factor`` for 40-79 and ``eta * decay_factor**2`` from 80 on (no
    milestones: a constant rate); with ``cosine`` it falls to 0 along half a
    cosine over the ``n_epochs``. ``average > 0`` makes the run's weights the mean
    of its end-of-epoch weights over that last fraction of its epochs (Polyak
    averaging); the loss is still that of one linear layer. ``engine`` names the
    training loop: ``fast`` (:mod:`assignment1.sweep`) or ``plain`` (:mod:`assignment1.train`).
    """

    lam: float = _setting(0.1, validate.non_negative, "L2 regularization strength")
    eta: float = _setting(0.001, validate.positive, "learning rate (of the first epoch, with milestones)")
    n_epochs: int = _setting(40, _COUNT, "epochs")
    n_batch: int = _setting(100, _COUNT, "mini-batch size")
    seed: int = _setting(0, validate.integer(low=0), "seed of the initialization, sample order and flips")
    loss: str = _setting("ce", validate.choice(LOSSES),
                         "ce: softmax cross-entropy; mbce: sigmoid multiple binary cross-entropy")
    flip: bool = _setting(False, validate.flag, "mirror each image of a batch with probability 0.5")
    shift: int = _setting(0, validate.integer(low=0, high=8),
                          "move each image of a batch by up to this many pixels each way (0: never)")
    milestones: tuple[int, ...] = _setting((), _milestones, "epochs (0-based) at which eta is multiplied by decay")
    decay_factor: float = _setting(0.1, validate.positive, "factor applied to eta at each milestone")
    schedule: str = _setting("step", validate.choice(SCHEDULES),
                             "step: eta times decay_factor at each milestone; cosine: eta down to 0 along a cosine")
    average: float = _setting(0.0, _fraction, "fraction of the last epochs whose weights are averaged (0: none)")
    val_size: int = _setting(5000, _COUNT, "images held out of training for validation")
    normalize: str = _setting("per_feature", validate.choice(NORMALIZATIONS),
                              "standardize per feature, or by one global mean and std")
    dtype: str = _setting("float32", validate.choice(DTYPES), "training precision")
    init_std: float = _setting(0.1, validate.positive, "std of the N(0, std^2) initialization of W and b")
    evaluate_train: bool = _setting(True, validate.flag, "measure loss, cost and accuracy on the training data after "
                                    "each epoch (False: on the validation data only, as the search's trials)")
    engine: str = _setting("fast", validate.choice(ENGINES),
                           "fast (sweep.py) or plain (train.py, the textbook loop); same results to rounding")

    def __post_init__(self):
        # checked values in one canonical type, so 0 and 0.0 give the same run
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, self.check(f.name, getattr(self, f.name)))

    @classmethod
    def check(cls, name: str, value, setting: str | None = None):
        """``value`` as setting ``setting or name`` accepts it (``decay_eta0`` plays an ``eta``), or
        :class:`~assignment1.validate.ParameterError`."""
        return SETTINGS[setting or name].metadata["check"](name, value)

    def check_data_size(self, n_images: int, names: tuple[str, str] = ("val_size", "n_batch")) -> None:
        """Refuse a validation set or mini-batch that ``n_images`` training images cannot serve.

        ``names`` are what the error calls ``val_size`` and ``n_batch`` (a section's ``big_val_size``).
        """
        validate.integer(1, n_images - 1)(names[0], self.val_size)
        validate.integer(1, n_images - self.val_size)(names[1], self.n_batch)

    def eta_at(self, epoch: int) -> float:
        """The learning rate of ``epoch`` (0-based)."""
        if self.schedule == "cosine":
            return self.eta * (1 + math.cos(math.pi * epoch / self.n_epochs)) / 2
        return self.eta * self.decay_factor ** sum(epoch >= m for m in self.milestones)

    @property
    def first_averaged(self) -> int:
        """The first epoch (0-based) whose end-of-epoch weights the run's weights average (``n_epochs``: none)."""
        return self.n_epochs - round(self.average * self.n_epochs)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @property
    def eta_text(self) -> str:
        """The learning rate as tables show it: a constant, or where it starts and how it falls."""
        if self.schedule == "cosine":
            return f"{self.eta:g}, cosine to 0"
        if not self.milestones:
            return f"{self.eta:g} constant"
        return f"{self.eta:g}, x{self.decay_factor:g} at epochs {', '.join(map(str, self.milestones))}"

    @property
    def label(self) -> str:
        """The setting in a few words: ``lam=0.1, eta=0.001`` (with the loss, flips, schedule and average if any)."""
        varies = self.milestones or self.schedule != "step"
        parts = [f"lam={self.lam:g}", f"eta={self.eta_text if varies else format(self.eta, 'g')}"]
        parts += [self.loss] if self.loss != "ce" else []
        parts += ["flip"] if self.flip else []
        parts += [f"shift {self.shift}"] if self.shift else []
        return ", ".join(parts + ([f"average of the last {self.average:g}"] if self.average else []))

    def setting_id(self) -> str:
        """What identifies the setting: every field but the seed (the runs of one setting share it)."""
        return json.dumps({k: v for k, v in self.to_dict().items() if k != "seed"}, sort_keys=True)


#: Each setting's declaration: its default, check (``metadata["check"]``) and help (``metadata["help"]``).
SETTINGS = {f.name: f for f in dataclasses.fields(RunConfig)}
