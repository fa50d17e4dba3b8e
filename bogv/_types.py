"""Type aliases shared across modules."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt

Vectors: TypeAlias = npt.NDArray[np.float32]
"""A float32 ``(n, d)`` array of L2-normalised descriptors, one row per image."""
