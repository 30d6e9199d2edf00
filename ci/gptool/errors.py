"""The one error type the harness reports to users as a single line."""

# What went wrong, for callers that must tell a failing revision from one that could
# not be tested (a bisect step skips those) and from a broken machine (it aborts).
FAILURE = 'failure'                # what was tested went wrong
UNTESTABLE = 'untestable'          # this revision cannot be tested: tree, patch, build, config
INFRASTRUCTURE = 'infrastructure'  # the machine: a tool missing, QEMU not starting, disk full
USAGE = 'usage'                    # the request itself is wrong
KINDS = (FAILURE, UNTESTABLE, INFRASTRUCTURE, USAGE)
PASSED = 'passed'

# The exit status of a command that sums up many runs (make matrix), by the worst kind
# among them: one table, to be reconciled with the verbs' own statuses. A build that
# fails (UNTESTABLE) is the code under test failing, as far as the matrix is concerned.
EXIT_STATUS = {PASSED: 0, FAILURE: 1, UNTESTABLE: 1, USAGE: 2, INFRASTRUCTURE: 3}


class HarnessError(Exception):
    """A user-facing failure: printed as one line, exit status 2 (bad input) or 1."""

    def __init__(self, message: str, status: int = 1, kind: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind or (USAGE if status == 2 else FAILURE)
