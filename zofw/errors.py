"""The two ways a command fails: bad input (exit 2) and a failure during the run (exit 1)."""


class BadInput(Exception):
    """The user's input (recipe, override, file, data) is wrong; the message is one line naming it."""


class RunFailed(Exception):
    """Something broke while running a valid recipe."""
