"""The kselftest TAP of a QEMU console, read in one place for verdicts and JUnit.

gp_stress prints TAP. Run by kselftest's runner (run_kselftest.sh, as the initramfs
does), its lines come indented one level ("# ok 1 gp.x") and the runner adds its own
line for the program ("ok 1 selftests: grouped_pages: gp_stress", or "not ok ... #
TIMEOUT 600 seconds" when the settings file's timeout ran out). Consoles of gp_stress
run directly (older revisions, bisect steps) carry the bare TAP; both are read.
"""
import re
from dataclasses import dataclass

RESULT = re.compile(r'^(not ok|ok) \d+ (\S+)(.*)$')
PLAN = re.compile(r'^1\.\.(\d+)$')
RUNNER_HEADER = re.compile(r'^# selftests: grouped_pages: gp_stress$', re.M)
RUNNER_RESULT = re.compile(r'^(not ok|ok) \d+ selftests: grouped_pages: gp_stress(.*)$')


@dataclass(frozen=True)
class Case:
    name: str
    status: str  # PASS, FAIL or SKIP
    detail: str  # the SKIP reason, or what followed a failing result


@dataclass
class Output:
    cases: list[Case]
    plan: int | None
    # The runner's line for gp_stress: None when gp_stress ran directly, or when the
    # runner never got to print it (crash, hang).
    runner_status: str | None = None
    runner_detail: str = ''
    through_runner: bool = False


def _case(match: re.Match[str]) -> Case:
    rest = match.group(3)
    if match.group(1) == 'not ok':
        return Case(match.group(2), 'FAIL', rest.strip(' #'))
    if '# SKIP' in rest:
        return Case(match.group(2), 'SKIP', rest.split('# SKIP', 1)[1].strip())
    return Case(match.group(2), 'PASS', '')


def parse(console: str) -> Output:
    """gp_stress's cases and plan, and the runner's verdict on it if it ran under the runner."""
    through_runner = RUNNER_HEADER.search(console) is not None
    out = Output(cases=[], plan=None, through_runner=through_runner)
    for raw in console.splitlines():
        line = raw.strip()
        if through_runner:
            runner = RUNNER_RESULT.match(line)
            if runner:
                out.runner_status = 'PASS' if runner.group(1) == 'ok' else 'FAIL'
                out.runner_detail = runner.group(2).strip(' #')
                continue
            if not line.startswith('# '):
                continue
            line = line[2:]
        if result := RESULT.match(line):
            out.cases.append(_case(result))
        elif (plan := PLAN.match(line)) and out.plan is None:
            out.plan = int(plan.group(1))
    return out
