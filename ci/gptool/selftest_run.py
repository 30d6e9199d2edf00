"""Boot the patched kernel in QEMU and run the grouped_pages kselftests in it.

The kernel is built from the prepared tree with a bootable fragment plus the chosen
configs/ fragment; the test binary is linked statically and packed with busybox into an
initramfs whose init runs it and reboots. The console is kept; its TAP is parsed on the
host. A panic, oops, hang or missing result is a failure with the console log kept.
"""
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import junit, kbuild, ktap, provenance, qemu
from .errors import UNTESTABLE, HarnessError
from .fsutil import publish_dir, write_json_atomic

TEST_DEFINITION = re.compile(r'^TEST_F(?:_TIMEOUT)?\(gp, (\w+)', re.MULTILINE)
STRESS_SOURCE = 'tools/testing/selftests/grouped_pages/gp_stress.c'


@dataclass
class SelftestRequest(kbuild.QemuRunRequest):
    cmdline: str = ''
    # Only these tests (gp_stress -t NAME); all of them when empty.
    tests: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    passed: int
    failed: int
    skipped: int
    problems: list[str]


def judge(console: str, timed_out: bool, timeout: int, may_skip: tuple[str, ...] = ()) -> Verdict:
    """Results from the console: TAP lines, plus any sign the kernel went wrong. A skip is
    a problem, unless the config says that test skips by design (@may_skip: names)."""
    tap = ktap.parse(console)
    passed = sum(1 for case in tap.cases if case.status == 'PASS')
    failed = sum(1 for case in tap.cases if case.status == 'FAIL')
    skipped = sum(1 for case in tap.cases if case.status == 'SKIP')
    problems = [f'skipped: {case.name} # SKIP {case.detail}' for case in tap.cases
                if case.status == 'SKIP' and case.name.removeprefix('gp.') not in may_skip]
    problem = qemu.kernel_problem(console)
    if problem:
        problems.append(f'kernel: {problem}')
    if timed_out:
        problems.append(f'hang: no end within {timeout} s')
    exit_line = re.search(r'GP-SELFTESTS-EXIT (\d+)', console)
    if not exit_line or (tap.through_runner and tap.runner_status is None):
        problems.append('the tests did not finish (crash, panic or hang before the end)')
    elif tap.through_runner:
        if 'TIMEOUT' in tap.runner_detail:
            problems.append(f'gp_stress was stopped by kselftest: {tap.runner_detail} '
                            '(selftests/grouped_pages/settings)')
        elif tap.runner_status == 'FAIL' and not failed:
            problems.append(f'kselftest reported gp_stress failed: {tap.runner_detail or "no reason"}')
    elif exit_line.group(1) != '0' and not failed:
        problems.append(f'gp_stress exited with {exit_line.group(1)}')
    results = passed + failed + skipped
    if results == 0:
        problems.append('no test result in the console')
    if tap.plan is None:
        problems.append('no TAP plan (1..N) in the console')
    elif tap.plan != results:
        problems.append(f'{results} test results for a plan of {tap.plan}')
    return Verdict(passed, failed, skipped, problems)


def store(req: SelftestRequest, console: str, meta: dict[str, object],
          build_log: Path | None = None, problem: str | None = None) -> Path:
    def fill(staging: Path) -> None:
        (staging / 'console.log').write_text(console)
        (staging / 'junit.xml').write_text(
            junit.from_tap(console, f'selftests x86_64/{req.config}', problem))
        if build_log is not None and build_log.is_file():
            shutil.copyfile(build_log, staging / 'build.log')
        config = req.kernel.build_dir / '.config'
        if config.is_file():
            shutil.copyfile(config, staging / 'config')
        write_json_atomic(staging / 'meta.json', meta)
    return publish_dir(req.results / 'selftests',
                       provenance.result_name('x86_64', req.config, meta,
                                              *(() if req.qemu_cpu == 'max' else (req.qemu_cpu,))),
                       fill)


def run_meta(req: SelftestRequest, started: float) -> dict[str, object]:
    """What every selftest result records, booted or not."""
    config = req.kernel.build_dir / '.config'
    return {
        **provenance.repo_commit(req.repo),
        'base': provenance.base_meta(req.tree),
        'arch': 'x86_64', 'config': req.config,
        'config_sha256': provenance.config_sha256(config) if config.is_file() else None,
        'tools': provenance.tool_versions(), 'date': provenance.iso_date(),
        'duration_s': round(time.time() - started, 1),
    }


def test_names(tree: Path) -> list[str]:
    """The tests gp_stress defines, from its source in the prepared tree."""
    try:
        return TEST_DEFINITION.findall((tree / STRESS_SOURCE).read_text(errors='replace'))
    except OSError as err:
        raise HarnessError(f'cannot read {tree / STRESS_SOURCE}: {err.strerror}') from err


def check_request(req: SelftestRequest) -> None:
    """Refuse a selection the guest could not honour, before anything is built."""
    qemu.refuse_init_words(req.cmdline, 'the selftests command line',
                           'choose tests with TEST= (--test)')
    if req.tests:
        known = test_names(req.tree.path)
        unknown = [name for name in req.tests if name not in known]
        if unknown:
            raise HarnessError(f'no selftest named {", ".join(unknown)}: valid are '
                               f'{", ".join(known)}', 2, UNTESTABLE)


def guest_cmdline(req: SelftestRequest) -> str:
    words = ['gp.run=selftests']
    if req.tests:
        words.append('gp.args=' + ':'.join(f'-t:{name}' for name in req.tests))
    words += kbuild.check_choice(req.repo, 'x86_64', req.config).boot_args
    return ' '.join(words + ([req.cmdline] if req.cmdline else []))


def run(req: SelftestRequest) -> int:
    check_request(req)
    kernel = req.kernel
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    kernel.log.write_text('')
    started = time.time()
    print(f'selftests: building the kernel in {kernel.build_dir} (log: {kernel.log})', flush=True)
    try:
        image = kbuild.build_kernel(kernel)
        initramfs = kbuild.build_initramfs(kernel)
    except HarnessError as err:
        # Nothing booted, but the failure is a result: keep its log with the others.
        stored = store(req, '', {**run_meta(req, started), 'build_failed': str(err)},
                       build_log=kernel.log, problem=str(err))
        raise HarnessError(f'{err} (build log kept: {stored / "build.log"})', err.status,
                           err.kind) from err
    fragment = kbuild.check_choice(req.repo, 'x86_64', req.config)
    machine = qemu.Machine(cpu=req.qemu_cpu, smp=req.smp, memory_mb=req.memory_mb,
                           tcg_threads=fragment.tcg_threads)
    cmd = qemu.command(machine, image, initramfs, guest_cmdline(req))
    console, timed_out = qemu.boot(cmd, req.timeout)
    verdict = judge(console, timed_out, req.timeout, fragment.selftests_may_skip)
    if unscanned := qemu.kmemleak_not_scanned(
            (kernel.build_dir / '.config').read_text(errors='replace'), console):
        verdict.problems.append(unscanned)
    meta: dict[str, object] = {
        **run_meta(req, started),
        'qemu': cmd, 'timed_out': timed_out,
        'passed': verdict.passed, 'failed': verdict.failed, 'skipped': verdict.skipped,
        'problems': verdict.problems, 'tests': req.tests or 'all',
    }
    stored = store(req, console, meta, problem='; '.join(verdict.problems) or None)
    print(f'selftests results: {stored}')
    failed = verdict.failed + (1 if verdict.problems and not verdict.failed else 0)
    print(f'selftests x86_64/{req.config}: {verdict.passed} passed, {failed} failed, '
          f'{verdict.skipped} skipped')
    if verdict.failed or verdict.problems:
        detail = '; '.join(verdict.problems) or f'{verdict.failed} tests failed'
        print(f'error: selftests: {detail} (console log: {stored / "console.log"})',
              file=sys.stderr)
        return 1
    return 0
