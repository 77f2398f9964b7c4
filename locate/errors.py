"""Exceptions of the positioning core.

One root, :class:`LocateError`; option problems raise :class:`InvalidParameterError`, which
names the offending parameter (like scipy.optimize's option checks) so a caller can report it
without parsing the message. Per-row problems (too few anchors heard, an ill-conditioned
geometry) are never exceptions: solvers report them in a status array.
"""

from __future__ import annotations

__all__ = ["LocateError", "InvalidParameterError", "NotFittedError"]


class LocateError(Exception):
    """Root of every exception raised by :mod:`locate`."""


class InvalidParameterError(LocateError, ValueError):
    """An option or input array is unusable; raised before any work is done.

    Attributes
    ----------
    parameter : str
        Name of the offending parameter as the caller spelled it, e.g. ``"rssi_dbm"`` or
        ``"model.sigma_db"``.
    reason : str
        Short human-readable explanation.
    """

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f"{parameter}: {reason}")


class NotFittedError(LocateError, AttributeError):
    """A fitted model was used before :meth:`fit` was called."""
