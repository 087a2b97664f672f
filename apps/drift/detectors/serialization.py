"""JSON-able encoding of numpy arrays inside a baseline's state.

An array is stored as ``{"__ndarray__": <base64 of little-endian bytes>, "dtype": "<f4",
"shape": [...]}``: about 1.33 bytes per byte, several times smaller and much faster to parse
than lists of floats, and still valid JSON for a ``JSONField``.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt

_ALLOWED = {"<f2", "<f4", "<f8", "<i4", "<i8", "|b1"}


def encode_array(array: npt.NDArray[Any]) -> dict[str, Any]:
    little = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False)
    dtype = little.dtype.str
    if dtype not in _ALLOWED:
        raise ValueError(f"cannot encode dtype {dtype}")
    return {
        "__ndarray__": base64.b64encode(little.tobytes()).decode("ascii"),
        "dtype": dtype,
        "shape": list(little.shape),
    }


def decode_array(encoded: dict[str, Any]) -> npt.NDArray[Any]:
    dtype = str(encoded["dtype"])
    if dtype not in _ALLOWED:
        raise ValueError(f"cannot decode dtype {dtype}")
    raw = base64.b64decode(encoded["__ndarray__"])
    shape = tuple(int(side) for side in encoded["shape"])
    return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
