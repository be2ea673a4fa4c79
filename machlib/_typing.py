"""Array type aliases for jaxtyping annotations."""

from typing import Union

import jax
import numpy as np

#: A JAX or a numpy array (for functions and containers that accept either).
AnyArray = Union[jax.Array, np.ndarray]

