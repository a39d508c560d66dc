"""Errors a user can fix. The CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Base class: a problem with the user's input, named with the file and the fix."""


class DatasetError(UserError):
    """A dataset file is missing, unreadable, unsafe or inconsistent."""


class CheckpointError(UserError):
    """A checkpoint is missing, unreadable, or does not match the data or the clip."""


class ExtractionError(UserError):
    """A clip or transcript could not be turned into features."""
