"""Name → class registries resolved in one place (as Keras's `activations.get`)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A `name → class` table for one kind of object, with aliases.

    `resolve("relu")` or `resolve({"name": "leaky_relu", "alpha": 0.2})` builds an
    instance; an unknown name raises `KeyError` listing the valid names.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *aliases: str):
        def decorate(cls: type[T]) -> type[T]:
            self._classes[name] = cls
            for alias in aliases:
                self._aliases[alias] = name
            return cls

        return decorate

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases; KeyError if unknown."""
        key = self._aliases.get(name, name)
        if key not in self._classes:
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return key

    def names(self) -> list[str]:
        return sorted(self._classes)

    def get(self, name: str) -> type[T]:
        return self._classes[self.canonical(name)]

    def resolve(self, config: str | dict[str, Any]) -> T:
        if isinstance(config, str):
            return self.get(config)()
        params = dict(config)
        return self.get(params.pop("name"))(**params)
