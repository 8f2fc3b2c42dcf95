"""Named objects of a spec (activation, initializer, optimizer) and the strict base model every spec model uses."""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from core.spec.vocabulary import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, fill, named

class _Strict(BaseModel):
    # Strict: "units": "2" or "epochs": true are mistakes, not numbers. NaN or infinity in a
    # spec is never meaningful and would not survive a JSON round trip.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False, strict=True)


class _Named(_Strict):
    """A named object that may also be given as its bare name; the JSON schema says both.

    A subclass names its vocabulary table (`name → parameter defaults`) and kind; the name is
    normalised and every parameter filled from the table before validation.
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
        return {"anyOf": [{"type": "string", "description": f"a {cls.__name__.lower()} name (parameters default)"},
                          handler(core_schema)]}


# --- named objects -----------------------------------------------------------------------

class Activation(_Named):
    """An activation: `"relu"` or `{"name": "leaky_relu", "alpha": 0.2}`; stored as a string when parameterless."""

    _table = ACTIVATIONS
    _kind = "activation"

    name: str
    alpha: float | None = Field(None, ge=0)

    @model_serializer
    def _serialise(self) -> str | dict:
        return self.name if self.alpha is None else {"name": self.name, "alpha": self.alpha}


class Initializer(_Named):
    """A weight initializer with every parameter filled: `{"name": "normal", "mean": 0.0, "stddev": 0.05}`."""

    _table = INITIALIZERS
    _kind = "initializer"

    name: str
    value: float | None = None
    mean: float | None = None
    stddev: float | None = Field(None, gt=0)
    minval: float | None = None
    maxval: float | None = None

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
    momentum: float | None = Field(None, ge=0, lt=1)
    nesterov: bool | None = None
    beta_1: float | None = Field(None, ge=0, lt=1)
    beta_2: float | None = Field(None, ge=0, lt=1)
    epsilon: float | None = Field(None, gt=0)
    rho: float | None = Field(None, ge=0, lt=1)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_given(cls, value: Any, handler: Any) -> "Optimizer":
        """Keep `model_fields_set` to the parameters the user gave (a backend fills its own defaults for the rest)."""
        optimizer = handler(value)
        if isinstance(value, (str, dict)):
            given = set(value) if isinstance(value, dict) else set()
            optimizer.__pydantic_fields_set__ = ({"name"} | given) & set(cls.model_fields)
        return optimizer


class Regularizer(_Strict):
    """Per-layer weight penalties added to the loss: `l1 * sum|w| + l2 * sum w²` (Keras's `L1L2`)."""

    l1: float = Field(0.0, ge=0)
    l2: float = Field(0.0, ge=0)
