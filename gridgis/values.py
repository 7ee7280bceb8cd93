"""Reading values written by people: one boolean parser for imports, settings, both stores'
attribute filters and the API."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Texts read as true / false by :func:`parse_bool` (case-insensitive, trimmed). One list
#: for imports, settings, both stores' attribute filters and the API.
TRUE_TEXTS = frozenset({"1", "true", "yes", "y", "t", "on", "是"})
FALSE_TEXTS = frozenset({"0", "false", "no", "n", "f", "off", "否"})


def parse_bool(v: object) -> object:
    """``True``/``False`` for a boolean written any accepted way, ``pd.NA`` for blank or
    unreadable values (:data:`TRUE_TEXTS`, :data:`FALSE_TEXTS`; numbers by truth)."""
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return pd.NA
    if isinstance(v, str):
        text = v.strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
        return pd.NA  # blank or neither: reported by validate
    return bool(v)
