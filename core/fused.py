"""Optional numba kernels fusing elementwise passes of a training step; numpy's ufuncs are the fallback.

Each kernel does the same operations in the same order as the numpy path it replaces (no
fastmath, no reordered sums, no exp or log, whose numba and numpy versions may round
differently; +, -, *, / and sqrt are correctly rounded in both), so both paths give
bit-identical weights: tests/core/test_kernels.py trains with and without them. Two kernels
copy numpy's summation order (a bias gradient's column sums, the softmax's row sums), which
that test also holds numpy to. Measured on the MNIST-shaped benchmark (101,770 float32
parameters, batch 128 x 128 ReLU units), hot in cache: Adam's update ~30 µs a step against
~150 µs for its ten numpy passes; bias + ReLU ~2 µs against ~11 µs, ReLU's backward ~2 µs
against ~6 µs, a bias gradient ~1.5 µs against ~6 µs, the softmax's max-shift and row sums
a few µs against ~15 µs. A model uses them all or none (`wanted`, decided by the Network):
small models keep the numpy path, where the kernels save less than importing numba costs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

numba = None  # imported on first need: importing it costs ~0.3 s that small models should not pay
MIN_SIZE = 50_000  # parameters; below this the ufunc path is as fast and nothing is compiled
_kernels: dict[str, Callable] = {}


def _adam(w, g, m, v, alpha, one_minus_beta_1, one_minus_beta_2, epsilon):
    """Keras's Adam step for one flat vector, all in w's dtype (the optimizer passes dtype scalars)."""
    for i in range(w.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * one_minus_beta_1
        vi = v[i] + (gi * gi - v[i]) * one_minus_beta_2
        m[i] = mi
        v[i] = vi
        w[i] -= mi / (np.sqrt(vi) + epsilon) * alpha


def _relu(z, a):
    """a = np.maximum(z, 0): z where z > 0, NaN stays NaN, everything else (-0.0 too) +0.0."""
    zf, af = z.reshape(-1), a.reshape(-1)
    for i in range(zf.size):
        v = zf[i]
        af[i] = v if (v > 0 or np.isnan(v)) else 0


def _bias_relu(z, bias, a):
    """z += bias (row by row), then a = np.maximum(z, 0) as `_relu`, in one pass."""
    n, k = z.shape
    for i in range(n):
        for j in range(k):
            v = z[i, j] + bias[j]
            z[i, j] = v
            a[i, j] = v if (v > 0 or np.isnan(v)) else 0


def _relu_backward(grad, a, dz):
    """dz = grad * (a > 0), the product kept (so -0.0 and NaN come out as numpy's multiply gives them)."""
    gf, af, df = grad.reshape(-1), a.reshape(-1), dz.reshape(-1)
    for i in range(gf.size):
        df[i] = gf[i] * (1 if af[i] > 0 else 0)


def _column_sum(x, out):
    """out = x.sum(axis=0) for a C-contiguous 2-D x of 2 columns or more, in numpy's order then: row 0, then each
    next row added (one column is a contiguous run, which numpy sums pairwise: the caller keeps np.sum there)."""
    n, k = x.shape
    for j in range(k):
        out[j] = x[0, j]
    for i in range(1, n):
        for j in range(k):
            out[j] += x[i, j]


def _shift_by_row_max(z, row_max, shifted):
    """row_max = z.max(axis=1, keepdims=True), shifted = z - row_max (a NaN in a row makes its max NaN)."""
    n, k = z.shape
    for i in range(n):
        m = z[i, 0]
        for j in range(1, k):
            v = z[i, j]
            if v > m or np.isnan(v):
                m = v
            if np.isnan(m):
                break
        row_max[i, 0] = m
        for j in range(k):
            shifted[i, j] = z[i, j] - m


def _normalise_rows(a, total):
    """total = a.sum(axis=1, keepdims=True), then a /= total, for rows of at most 128 (checked by the caller).

    The sum adds in numpy's own order for a contiguous row (its pairwise sum: one by one under 8
    items, else 8 running sums over blocks of 8, combined pairwise, then the tail), which numpy
    2.x uses for every row of up to 128 items; tests/core/test_kernels.py checks it is still so.
    """
    n, k = a.shape
    for i in range(n):
        if k < 8:
            s = a[i, 0]
            for j in range(1, k):
                s += a[i, j]
        else:
            r0, r1, r2, r3 = a[i, 0], a[i, 1], a[i, 2], a[i, 3]
            r4, r5, r6, r7 = a[i, 4], a[i, 5], a[i, 6], a[i, 7]
            j = 8
            while j < k - k % 8:
                r0 += a[i, j]
                r1 += a[i, j + 1]
                r2 += a[i, j + 2]
                r3 += a[i, j + 3]
                r4 += a[i, j + 4]
                r5 += a[i, j + 5]
                r6 += a[i, j + 6]
                r7 += a[i, j + 7]
                j += 8
            s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while j < k:
                s += a[i, j]
                j += 1
        total[i, 0] = s
        for j in range(k):
            a[i, j] /= s


def _scaled_difference(a, y, scale, out):
    """out = (a - y) * scale, the output head's δ, with `scale` in a's dtype."""
    af, yf, of = a.reshape(-1), y.reshape(-1), out.reshape(-1)
    for i in range(af.size):
        of[i] = (af[i] - yf[i]) * scale


def _samples(dtype: np.dtype) -> dict[str, tuple]:
    """Arguments of each kernel's signature, to compile (or load) it before training's clock starts."""
    one, two, scalar = np.zeros(1, dtype), np.zeros((1, 1), dtype), dtype.type(0.5)
    return {"adam": (one, one, one, one, scalar, scalar, scalar, scalar), "relu": (two, two),
            "bias_relu": (two, one, two),
            "relu_backward": (two, two, two), "column_sum": (two, one), "shift_by_row_max": (two, two, two),
            "scaled_difference": (two, two, scalar, two), "normalise_rows": (two, two)}


_SOURCES = {"adam": _adam, "relu": _relu, "bias_relu": _bias_relu, "relu_backward": _relu_backward,
            "column_sum": _column_sum, "shift_by_row_max": _shift_by_row_max, "scaled_difference": _scaled_difference,
            "normalise_rows": _normalise_rows}
MAX_ROW = 128  # `normalise_rows` sums rows of at most this many items (numpy's pairwise block)


def _jit(function: Callable) -> Callable:
    # numpy's error model lets the loop vectorise; the on-disk cache saves the ~0.5 s compile in later
    # processes, but a read-only install has nowhere to put it, so compile in memory there
    try:
        return numba.njit(error_model="numpy", cache=True, nogil=True)(function)
    except RuntimeError:
        return numba.njit(error_model="numpy", nogil=True)(function)


def _numba_available() -> bool:
    global numba
    if numba is None:
        try:  # the optional `fast` extra
            import numba as module
        except ImportError:
            return False
        numba = module
    return True


def wanted(n_params: int) -> bool:
    """Whether a model of `n_params` parameters trains with the kernels (big enough, and numba installed)."""
    return n_params >= MIN_SIZE and _numba_available()


def kernel(name: str, dtype) -> Callable:
    """The compiled kernel `name` (see `_SOURCES`) for arrays of `dtype`; call only once `wanted` said yes."""
    dtype = np.dtype(dtype)
    key = f"{name}-{dtype.name}"
    if key not in _kernels:
        if not _numba_available():
            raise RuntimeError("numba is not installed (the `fast` extra)")
        compiled = _jit(_SOURCES[name])
        compiled(*_samples(dtype)[name])  # compile (or load) before training's clock starts
        _kernels[key] = compiled
    return _kernels[key]


def adam_kernel(w: np.ndarray) -> Callable | None:
    """The fused Adam kernel for this flat parameter vector (compiled or loaded now), or None to use numpy."""
    if w.ndim != 1 or not w.flags.c_contiguous or not wanted(w.size):
        return None
    return kernel("adam", w.dtype)
