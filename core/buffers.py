"""Reusable work arrays, so a training step allocates nothing once the first batch has run."""

from __future__ import annotations

import numpy as np


class Buffers:
    """Named scratch arrays, reused while the requested shape and dtype stay the same.

    A training epoch asks for two shapes at most (the batch and the last, shorter
    batch), so a few entries per name suffice; inference on other sizes only adds more.
    """

    _LIMIT = 16

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised array for `name` of this shape and dtype (the same one as last time if it fits)."""
        key = (name, shape, dtype)  # as given: a training step asks ~15 times, so no normalising first
        array = self._arrays.get(key)
        if array is None:
            if len(self._arrays) >= self._LIMIT:
                self._arrays.clear()  # e.g. predictions on many sizes: don't hold them all
            array = self._arrays[key] = np.empty(shape, dtype=dtype)
        return array
