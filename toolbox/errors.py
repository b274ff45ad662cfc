"""Errors meant for the user: the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """Wrong usage or bad input that the user can fix; printed as one line, never a traceback."""


EXIT_INTERRUPTED = 143  # 128 + SIGTERM, as for a process killed by it


class Interrupted(Exception):
    """A job stopped on request (SIGTERM) after saving its state; the same command resumes it (exit 143)."""
