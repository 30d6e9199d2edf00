"""A check: the question a bisect step asks of one revision, and how its answer is judged.

Forms of CHECK:
  kunit:<suite.case glob>        only the matching KUnit cases (kunit.py's filter_glob),
                                 with ARCH, CONFIG, QEMU_CPU
  selftest:<name>                one gp_stress test in QEMU (make selftests TEST=<name>)
  bench:<metric><op><threshold>  a bench figure; the condition says when a revision is
                                 BAD, e.g. bench:frag.ro.n1024.grouped.splits>0
  cmd:<shell command>            run in the revision's worktree with bash; its exit status
                                 means what it means to `git bisect run`, except 126 and
                                 127 (bash could not run it): abort

A run ends in one of four verdicts:
  good, bad
  skip   the revision cannot be tested: its tree or a patch does not apply, it does not
         build, a config option did not land, or the case, test or metric does not exist
         there. Never a verdict on the behaviour.
  abort  the machine failed (QEMU did not start, disk full, a tool missing, a request
         the harness refused): no verdict at all, the bisect stops.

A kernel crash, hang, oops or WARN while the checked tests run is bad, never a skip.
REPEAT_RULE says how the runs of one step make one verdict.
"""
import fnmatch
import json
import os
import re
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import errors
from .errors import HarnessError
from .revisions import harness_command, last_error, run_logged

GOOD, BAD, SKIP, ABORT = 'good', 'bad', 'skip', 'abort'
KINDS = ('kunit', 'selftest', 'bench', 'cmd')
OPERATORS = ('>=', '<=', '==', '!=', '>', '<')
FORMS = ('kunit:<suite.case glob> (e.g. kunit:grouped_pages.gp_test_apply_once_per_block), '
         'selftest:<name> (e.g. selftest:refill_splits_nothing), '
         'bench:<metric><op><number> with op one of ' + ' '.join(OPERATORS) +
         ' (e.g. bench:frag.ro.n1024.grouped.splits>0), cmd:<shell command>')
REPEAT_RULE = {
    'kunit': 'bad if any run is bad (a flaky failure is a failure); else skip if any run '
             'skipped; else good. Runs stop at the first bad, skip or abort.',
    'selftest': 'bad if any run is bad (a flaky failure is a failure); else skip if any run '
                'skipped; else good. Runs stop at the first bad, skip or abort.',
    'cmd': 'bad if any run is bad; else skip if any run skipped; else good. Runs stop at '
           'the first bad, skip or abort.',
    'bench': 'the median over the runs of each run\'s value (a timed metric: the median of '
             'its rounds) is compared with the threshold; a run that failed (crash, hang) '
             'makes the step bad, one that could not be tested makes it skip.',
}
# Exit statuses of cmd: checks, as git bisect run reads them; but bash's own 126 and
# 127 say the command could not run at all (git would read them as bad).
CMD_SKIP = 125
CMD_NOT_RUN = {126: 'not executable', 127: 'not found: a tool missing?'}


@dataclass(frozen=True)
class Check:
    kind: str
    target: str          # the glob, test name, metric or command
    op: str = ''         # bench only
    threshold: float = 0.0

    @property
    def spec(self) -> str:
        if self.kind == 'bench':
            return f'bench:{self.target}{self.op}{self.threshold:g}'
        return f'{self.kind}:{self.target}'


def parse(spec: str) -> Check:
    """A CHECK string, or HarnessError(2) naming what is wrong and the valid forms."""
    kind, sep, target = spec.partition(':')
    if not sep or kind not in KINDS:
        raise HarnessError(f'CHECK={spec!r}: unknown form; valid are {FORMS}', 2)
    target = target.strip()
    if not target:
        raise HarnessError(f'CHECK={spec!r}: nothing after "{kind}:"; valid are {FORMS}', 2)
    if kind == 'kunit' and not re.fullmatch(r'[\w*?\[\]-]+(\.[\w*?\[\]-]+)?', target):
        raise HarnessError(f'CHECK={spec!r}: a KUnit check is suite or suite.case, with shell '
                           'wildcards (e.g. kunit:grouped_pages.gp_test_x86_*)', 2)
    if kind == 'selftest' and not re.fullmatch(r'\w+', target):
        raise HarnessError(f'CHECK={spec!r}: a selftest check names one gp_stress test '
                           '(e.g. selftest:refill_splits_nothing)', 2)
    if kind == 'bench':
        match = re.fullmatch(r'([a-z0-9_.]+)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)',
                             target)
        if not match:
            raise HarnessError(f'CHECK={spec!r}: a bench check is <metric><op><number>, the '
                               f'condition under which a revision is bad, with op one of '
                               f'{" ".join(OPERATORS)} (e.g. bench:fastpath.cpus2.ratio>1.3)', 2)
        try:
            threshold = float(match.group(3))
        except ValueError as err:
            raise HarnessError(f'CHECK={spec!r}: {match.group(3)!r} is not a number', 2) from err
        return Check('bench', match.group(1), match.group(2), threshold)
    return Check(kind, target)


def holds(value: float, op: str, threshold: float) -> bool:
    return {'>': value > threshold, '<': value < threshold, '>=': value >= threshold,
            '<=': value <= threshold, '==': value == threshold,
            '!=': value != threshold}[op]


@dataclass(frozen=True)
class Setup:
    """How every run of a check is made: recorded, and replayed by reproduce.sh."""
    arch: str = 'um'
    config: str = 'default'
    qemu_cpu: str = 'max'
    smp: int = 2
    memory_mb: int = 1024
    bench_memory_mb: int = 2048
    bench_mode: str = 'tcg'
    bench_workload: str = 'quick'
    kunit_timeout: int = 600
    selftest_timeout: int = 900
    cmd_timeout: int = 3600


@dataclass
class Run:
    """One run of a check on one revision."""
    verdict: str
    reason: str
    log: str
    duration_s: float
    result_dir: str | None = None
    value: float | None = None


def harness_outcome(path: Path) -> dict[str, Any]:
    try:
        outcome: dict[str, Any] = json.loads(path.read_text())
        return outcome
    except (OSError, ValueError):
        return {'status': None, 'kind': errors.INFRASTRUCTURE,
                'message': 'the harness ended without saying how (killed?)'}


def verdict_of_kind(kind: str) -> str:
    """Only a failure of what was tested is bad; an outcome of any other or no known kind
    is no verdict on the revision."""
    return {errors.FAILURE: BAD, errors.UNTESTABLE: SKIP}.get(kind, ABORT)


def newest_dir(root: Path) -> Path | None:
    dirs = [d for d in root.glob('*/*') if d.is_dir() and not d.name.startswith('.')]
    return max(dirs, key=lambda d: d.stat().st_mtime) if dirs else None


def kunit_cases(group: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(suite.case, status) of every case in kunit.py's JSON; a parameterised case is one
    case whose status is its worst parameter's."""
    for case in group.get('test_cases', []):
        yield f'{group.get("name")}.{case.get("name")}', str(case.get('status'))
    for sub in group.get('sub_groups', []):
        statuses = [status for _, status in kunit_cases(sub)]
        if statuses:
            worst = next((s for s in ('ERROR', 'FAIL', 'PASS', 'SKIP') if s in statuses), 'FAIL')
            yield f'{group.get("name")}.{sub.get("name")}', worst
        yield from kunit_cases(sub)


def judge_kunit(check: Check, outcome: dict[str, Any], result: Path | None) -> tuple[str, str]:
    kind, message = outcome.get('kind'), str(outcome.get('message') or '')
    if kind not in ('passed', errors.FAILURE):
        return verdict_of_kind(str(kind)), message
    cases: list[tuple[str, str]] = []
    if result is not None and (result / 'kunit.json').is_file():
        try:
            cases = [(name, status) for name, status in
                     kunit_cases(json.loads((result / 'kunit.json').read_text()))
                     if fnmatch.fnmatchcase(name, check.target)]
        except ValueError:
            cases = []
    failed = [name for name, status in cases if status in ('FAIL', 'ERROR')]
    if failed:
        return BAD, f'{", ".join(failed)} failed'
    if kind != 'passed':
        if 'ran no test' in message:
            return SKIP, f'no KUnit case matches {check.target} at this revision'
        # Only the matching cases ran: a crash, hang or WARN is theirs.
        return BAD, message
    if not cases:
        return SKIP, f'no KUnit case matches {check.target} at this revision'
    if all(status == 'SKIP' for _, status in cases):
        return SKIP, f'every case matching {check.target} skipped itself'
    return GOOD, f'{len(cases)} matching case{"s" if len(cases) != 1 else ""} passed'


def judge_selftest(check: Check, outcome: dict[str, Any], result: Path | None) -> tuple[str, str]:
    kind, message = outcome.get('kind'), str(outcome.get('message') or '')
    if kind not in ('passed', errors.FAILURE):
        return verdict_of_kind(str(kind)), message
    meta: dict[str, Any] = {}
    if result is not None and (result / 'meta.json').is_file():
        meta = json.loads((result / 'meta.json').read_text())
    if kind == 'passed':
        return GOOD, f'gp.{check.target} passed'
    if meta.get('failed'):
        return BAD, f'gp.{check.target} failed'
    problems = [str(p) for p in meta.get('problems', [])]
    if problems and all(p.startswith('skipped:') for p in problems):
        return SKIP, f'gp.{check.target} skipped itself: {problems[0]}'
    return BAD, '; '.join(problems) or message


def bench_value(check: Check, result: Path) -> float | None:
    data = json.loads((result / 'result.json').read_text())
    metric = data.get('metrics', {}).get(check.target)
    if not isinstance(metric, dict) or not metric.get('samples'):
        return None
    return float(statistics.median(metric['samples']))


def run_once(check: Check, setup: Setup, worktree: Path, work: Path, out: Path,
             kernel_src: Path | None = None) -> Run:
    """One run of @check on our code in @worktree (and the kernel in @kernel_src when the
    kernel base is what varies); its log and results go under @out. A cmd: check runs in
    the tree being bisected: ours, or the kernel's (our overlay is then in GP_OVERLAY)."""
    out.mkdir(parents=True, exist_ok=True)
    log = out / 'run.log'
    started = time.monotonic()
    if check.kind == 'cmd':
        env = {**os.environ, 'GP_WORK': str(work), 'GP_OVERLAY': str(worktree)}
        status, output = run_logged(['bash', '-c', check.target], log, kernel_src or worktree,
                                    env, setup.cmd_timeout)
        took = round(time.monotonic() - started, 1)
        # What the command said, without the line that shows the command.
        text = output.partition('\n')[2] or '(no output)'
        if status == 0:
            return Run(GOOD, 'the command exited with 0', str(log), took)
        if status == CMD_SKIP:
            return Run(SKIP, f'the command exited with {CMD_SKIP}: {last_error(text)}', str(log), took)
        if status in CMD_NOT_RUN:
            return Run(ABORT, f'the command exited with {status} ({CMD_NOT_RUN[status]}): '
                       f'{last_error(text)}', str(log), took)
        if 0 < status < 128:
            return Run(BAD, f'the command exited with {status}: {last_error(text)}', str(log), took)
        return Run(ABORT, f'the command exited with {status} (>127, or killed): '
                   f'{last_error(text)}', str(log), took)
    outcome_file = out / 'outcome.json'
    results = out / 'results'
    prefix = harness_command(worktree, work) + ['--outcome', str(outcome_file)]
    if kernel_src is not None:
        prefix += ['--kernel-src', str(kernel_src)]
    if check.kind == 'kunit':
        cmd = prefix + ['kunit', '--arch', setup.arch, '--config', setup.config,
                        '--qemu-cpu', setup.qemu_cpu, '--timeout', str(setup.kunit_timeout),
                        '--results', str(results), '--', check.target]
    elif check.kind == 'selftest':
        cmd = prefix + ['selftests', '--config', setup.config, '--qemu-cpu', setup.qemu_cpu,
                        '--smp', str(setup.smp), '--memory', str(setup.memory_mb),
                        '--timeout', str(setup.selftest_timeout), '--results', str(results),
                        '--test', check.target]
    else:
        cmd = prefix + ['bench', '--config', setup.config, '--qemu-cpu', setup.qemu_cpu,
                        '--smp', str(setup.smp), '--memory', str(setup.bench_memory_mb),
                        '--mode', setup.bench_mode, '--workload', setup.bench_workload,
                        '--runs', '1', '--results', str(results)]
    run_logged(cmd, log, worktree)
    took = round(time.monotonic() - started, 1)
    outcome = harness_outcome(outcome_file)
    result = newest_dir(results)
    where = str(result) if result else None
    if check.kind == 'kunit':
        verdict, reason = judge_kunit(check, outcome, result)
        return Run(verdict, reason, str(log), took, where)
    if check.kind == 'selftest':
        verdict, reason = judge_selftest(check, outcome, result)
        return Run(verdict, reason, str(log), took, where)
    kind = str(outcome.get('kind'))
    if kind != 'passed':
        verdict = verdict_of_kind(kind)
        return Run(verdict, str(outcome.get('message')), str(log), took, where)
    if result is None or not (result / 'result.json').is_file():
        return Run(ABORT, 'the bench passed but stored no result.json', str(log), took, where)
    value = bench_value(check, result)
    if value is None:
        return Run(SKIP, f'the bench does not measure {check.target} at this revision',
                   str(log), took, where)
    bad = holds(value, check.op, check.threshold)
    return Run(BAD if bad else GOOD, f'{check.target} = {value:g}', str(log), took, where, value)


def finished(check: Check, runs: list[Run]) -> bool:
    """Whether more runs could still change the step's verdict (REPEAT_RULE)."""
    last = runs[-1].verdict
    return last in (SKIP, ABORT) or (check.kind != 'bench' and last == BAD)


def combine(check: Check, runs: list[Run]) -> tuple[str, str]:
    """The step's verdict from its runs, by REPEAT_RULE, and the reason."""
    verdicts = [run.verdict for run in runs]
    for verdict in (ABORT, SKIP) if check.kind == 'bench' else (ABORT,):
        if verdict in verdicts:
            return verdict, next(run.reason for run in runs if run.verdict == verdict)
    if check.kind == 'bench':
        failed = [run for run in runs if run.value is None]
        if failed:
            return BAD, f'a bench run failed: {failed[0].reason}'
        median = statistics.median(run.value for run in runs if run.value is not None)
        verdict = BAD if holds(median, check.op, check.threshold) else GOOD
        values = ', '.join(f'{run.value:g}' for run in runs)
        return verdict, (f'median {check.target} = {median:g} over {len(runs)} run'
                         f'{"s" if len(runs) != 1 else ""} ({values}); bad when '
                         f'{check.op} {check.threshold:g}')
    if BAD in verdicts:
        bad = [i + 1 for i, v in enumerate(verdicts) if v == BAD]
        return BAD, (f'run {bad[0]} of {len(runs)}: ' if len(runs) > 1 else '') + \
            next(run.reason for run in runs if run.verdict == BAD)
    if SKIP in verdicts:
        return SKIP, next(run.reason for run in runs if run.verdict == SKIP)
    return GOOD, runs[-1].reason + (f' ({len(runs)} runs)' if len(runs) > 1 else '')


def as_dict(run: Run) -> dict[str, Any]:
    return asdict(run)
