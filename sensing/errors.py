"""Typed errors: every user-facing failure is one of these, with a one-line message.

The CLI maps them to exit codes (see :mod:`sensing.cli`); anything else is a bug.
"""


class GlassdepthError(Exception):
    """Base class of all errors that describe a problem with the user's input or setup."""


class InputError(GlassdepthError):
    """A file is missing or unreadable, or images do not fit together."""


class CalibrationError(GlassdepthError):
    """A calibration file is missing, malformed or physically impossible."""


class ConfigError(GlassdepthError):
    """A configuration file or option is malformed or out of range."""


class ShapeError(GlassdepthError, ValueError):
    """An array has the wrong shape or dtype at a public boundary."""


class StageError(GlassdepthError):
    """A pipeline stage cannot produce a usable result from this input (e.g. a black view)."""
