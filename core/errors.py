"""Errors a user can fix: their message says what is wrong and where."""


class UserError(ValueError):
    """Bad input from a person or a file; shown as-is, never as a stack trace."""
