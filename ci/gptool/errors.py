"""The one error type the harness reports to users as a single line, and the exit
statuses every verb ends with (the README's "Exit statuses" table)."""

# What went wrong, for callers that must tell a failing revision from one that could
# not be tested (a bisect step skips those) and from a broken machine (it aborts).
FAILURE = 'failure'                # what was tested went wrong
UNTESTABLE = 'untestable'          # this revision cannot be tested: tree, patch, build, config
INFRASTRUCTURE = 'infrastructure'  # the machine or the harness: a tool missing, QEMU not
                                   # starting, disk full, a traceback
USAGE = 'usage'                    # the request itself is wrong
KINDS = (FAILURE, UNTESTABLE, INFRASTRUCTURE, USAGE)
# The kind of a run that passed, where runs are summed up by kind (the matrix, KCIDB).
PASSED_KIND = 'passed'

# Exit statuses, the same for every verb (bisect-step alone speaks git bisect run's
# 0/1/125/128, since git runs it). make exits 2 for any failed recipe: ci/status.sh
# runs a make target and exits with the verb's own status.
PASSED = 0
FAILED = 1         # the code under test failed: tests failed, it crashed, did not build, regressed
USAGE_ERROR = 2    # the request is wrong: bad arguments, unreadable input
INCONCLUSIVE = 3   # no verdict either way: a change that does not survive the
                   # false-discovery control, skipped commits that hide the first bad one
HARNESS_FAILED = 4  # the harness or the machine failed: nothing was learnt of the code
MEANING = {
    PASSED: 'passed',
    FAILED: 'the code under test failed',
    USAGE_ERROR: 'usage error',
    INCONCLUSIVE: 'inconclusive',
    HARNESS_FAILED: 'the harness or the machine failed',
}
STATUS_OF_KIND = {FAILURE: FAILED, UNTESTABLE: FAILED, USAGE: USAGE_ERROR,
                  INFRASTRUCTURE: HARNESS_FAILED}
# The exit status of a command that sums up many runs (make matrix) by the worst kind
# among them. A build that fails (UNTESTABLE) is the code under test failing there.
EXIT_STATUS = {PASSED_KIND: PASSED, **STATUS_OF_KIND}


class HarnessError(Exception):
    """A user-facing failure: printed as one line. Its exit status follows from its kind
    (STATUS_OF_KIND) unless given: an unknown CONFIG is a usage error for the user
    (status 2) but makes a revision untestable for a bisect (kind untestable)."""

    def __init__(self, message: str, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or (USAGE if status == USAGE_ERROR else FAILURE)
        self.status = STATUS_OF_KIND[self.kind] if status is None else status
