"""The one error type the harness reports to users as a single line."""


class HarnessError(Exception):
    """A user-facing failure: printed as one line, exit status 2 (bad input) or 1."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
