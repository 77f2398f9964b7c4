"""MallSense positioning core: pure numpy/scipy, arrays in, arrays out, no I/O.

>>> from locate import PathLoss, multilaterate, crlb, Fix
"""

from .bounds import crlb, fisher_information
from .errors import InvalidParameterError, LocateError, NotFittedError
from .multilat import Fix, multilaterate
from .pathloss import PathLoss

__all__ = [
    "PathLoss",
    "multilaterate",
    "crlb",
    "fisher_information",
    "Fix",
    "LocateError",
    "InvalidParameterError",
    "NotFittedError",
]
