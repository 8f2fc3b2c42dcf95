"""Named objects of a spec (activation, initializer, optimizer) and the strict base model every spec model uses."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from trainyard.core.spec.vocabulary import ACTIVATIONS, ALIASES, INITIALIZERS, OPTIMIZERS, fill, named


def names_schema(what: str, names) -> dict:
    """The JSON schema of a name from the vocabulary `names`: its canonical names, then the aliases accepted for
    them (matched without regard to case)."""
    names = list(names)
    aliases = sorted(alias for alias, name in ALIASES.items() if name in names and alias not in names)
    return {"type": "string", "enum": names + aliases,
            "description": f"{what}: one of the canonical names or an alias of one (any case)"}


class _Strict(BaseModel):
    # Strict: "units": "2" or "epochs": true are mistakes, not numbers. NaN or infinity in a
    # spec is never meaningful and would not survive a JSON round trip. A field's docstring is its
    # description in the JSON schema (and so in the OpenAPI document).
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, strict=True,
                              use_attribute_docstrings=True)


class _Named(_Strict):
    """A named object that may also be given as its bare name; the JSON schema says both.

    A subclass names its vocabulary table (`name → parameter defaults`, the engine's signatures) and kind; the
    name is normalised and every parameter filled from the table before validation (step 0 of
    core/spec/defaults.py).
    """

    _table: ClassVar[dict[str, dict[str, Any]]]
    _kind: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        value = named(value)
        return fill(value, cls._table, cls._kind) if isinstance(value, dict) else value

    @model_serializer
    def _serialise(self) -> str | dict:
        return {"name": self.name, **{k: getattr(self, k) for k in self._table[self.name]}}

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        kind = cls.__name__.lower()
        what = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"
        model = handler(core_schema)
        handler.resolve_ref_schema(model)["properties"]["name"] = names_schema(what, cls._table)
        return {"anyOf": [{**names_schema(what, cls._table), "description": f"{what} name (parameters default)"},
                          model]}


# --- named objects -----------------------------------------------------------------------

class Activation(_Named):
    """An activation: `"relu"` or `{"name": "leaky_relu", "alpha": 0.2}`; stored as a string when parameterless."""

    _table = ACTIVATIONS
    _kind = "activation"

    name: str
    alpha: float | None = Field(None, ge=0)
    """leaky_relu only: the slope below zero (default 0.01)."""

    @model_serializer
    def _serialise(self) -> str | dict:
        return self.name if self.alpha is None else {"name": self.name, "alpha": self.alpha}


class Initializer(_Named):
    """A weight initializer with every parameter filled: `{"name": "normal", "mean": 0.0, "stddev": 0.05}`."""

    _table = INITIALIZERS
    _kind = "initializer"

    name: str
    value: float | None = None
    """constant only: the value (default 0)."""
    mean: float | None = None
    """normal only: the mean (default 0)."""
    stddev: float | None = Field(None, gt=0)
    """normal only: the standard deviation (default 0.05)."""
    minval: float | None = None
    """uniform only: the lower bound (default -0.05)."""
    maxval: float | None = None
    """uniform only: the upper bound (default 0.05)."""

    @model_validator(mode="after")
    def _check(self) -> "Initializer":
        if self.minval is not None and self.maxval is not None:
            if self.minval >= self.maxval:
                raise ValueError("minval must be < maxval")
            if not math.isfinite(self.maxval - self.minval):  # numpy's uniform raises OverflowError on it
                raise ValueError("maxval - minval overflows (it must be a finite number for numpy to draw from)")
        return self


class Optimizer(_Named):
    """An optimizer with every parameter filled, e.g. `{"name": "adam", "learning_rate": 0.001, ...}`."""

    _table = OPTIMIZERS
    _kind = "optimizer"

    name: str
    # Ranges on the fields, so an error names the parameter (`training.optimizer.momentum`).
    learning_rate: float | None = Field(None, gt=0)
    """The step size (GET /catalog: optimizers has each optimizer's default)."""
    momentum: float | None = Field(None, ge=0, lt=1)
    """sgd, rmsprop: momentum."""
    nesterov: bool | None = None
    """sgd: Nesterov momentum."""
    beta_1: float | None = Field(None, ge=0, lt=1)
    """adam: decay of the first-moment estimate."""
    beta_2: float | None = Field(None, ge=0, lt=1)
    """adam: decay of the second-moment estimate."""
    epsilon: float | None = Field(None, gt=0)
    """adam, rmsprop: added to the denominator for numerical stability."""
    rho: float | None = Field(None, ge=0, lt=1)
    """rmsprop: decay of the moving average of squared gradients."""


class Regularizer(_Strict):
    """Per-layer weight penalties added to the loss: `l1 * sum|w| + l2 * sum w²` (Keras's `L1L2`)."""

    l1: float = Field(0.0, ge=0)
    """Weight of the sum of absolute weights."""
    l2: float = Field(0.0, ge=0)
    """Weight of the sum of squared weights."""
