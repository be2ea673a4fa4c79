"""machlib's version (one place: the package, the reports and the files it writes read it here)."""

__version__ = "0.1.0"
