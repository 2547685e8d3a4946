"""Canonical JSON: the one serialisation that is hashed (ledger records) or signed (the metadata claim).

``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``; numpy scalars
are written as the Python numbers they hold. NaN and infinities are refused (``ValueError``): JSON has no such
values, and a hash over text other readers cannot parse back proves nothing. Encode the text as UTF-8 to get
the bytes that are hashed or signed.
"""

from __future__ import annotations

import json
from typing import Any


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars that stages may leave in dicts (np.float32, np.int64, np.bool_)."""
    if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value``: sorted keys, no spaces, non-ASCII as-is, no NaN/Infinity."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=_plain)
