"""Errors a user can act on.

Every error raised for bad input or a missing resource is a `SmartfocusError` whose message is one
line that names the thing and says how to fix it; the CLI prints it and exits 2, the server returns it
as a 4xx JSON body. Anything else is a bug and may surface as a traceback.
"""


class SmartfocusError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class MediaError(SmartfocusError):
    """A video or frame folder that cannot be read, or an output that cannot be written."""


class ModelError(SmartfocusError):
    """Model weights that cannot be found, read or downloaded."""


class SelectionError(SmartfocusError):
    """A click or focus request that does not pick anything usable."""
