"""Canonical JSON: the one serialisation that is hashed (ledger records) or signed (the metadata claim).

``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)``; numpy scalars
are written as the Python numbers they hold. NaN and infinities are refused (``ValueError``): JSON has no such
values, and a hash over text other readers cannot parse back proves nothing. Encode the text as UTF-8 to get
the bytes that are hashed or signed.

A payload id (an int of PAYLOAD_BITS bits) is written in those documents, and everywhere it is shown, by
:func:`payload_hex`.
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


def payload_hex(payload: int) -> str:
    """A payload id as it is signed, stored and reported (claim, XMP, ledger, verify, trace): lowercase hex,
    zero-padded to the digits of PAYLOAD_BITS (10)."""
    # imported here, not at the top: presets use this module and must not load numpy
    from pipeline.models import PAYLOAD_BITS

    return f"{int(payload):0{(PAYLOAD_BITS + 3) // 4}x}"
