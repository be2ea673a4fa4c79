"""Exceptions raised by machlib."""

__all__ = ["MachlibError", "InputError", "NoFaceError", "WeightsMissingError"]


class MachlibError(Exception):
    """Base class of machlib's own errors."""


class InputError(MachlibError, ValueError):
    """The user's input (an image, a mesh, a flag) cannot be used; the message says why.

    The CLI prints the message on one line and exits with status 2.
    """


class NoFaceError(InputError):
    """No face (or, in strict mode, more than one face) was found in the image."""


class WeightsMissingError(MachlibError, FileNotFoundError):
    """A feature needs model weights that the user has not supplied; the message says how."""
