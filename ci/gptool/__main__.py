"""Command line: python3 -m gptool {tree,kunit,selftests,bench,compare,trend,bisect,...} ..."""
import argparse
import errno
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from . import (bench, bisect, checks, compare, faults, fsutil, kbuild, kcidb, kunit_run,
               matrix_plan, matrix_report, matrix_row, mm_selftests, qemu, selftest_run, tree,
               trend)
from .errors import (FAILED, FAILURE, HARNESS_FAILED, INCONCLUSIVE, INFRASTRUCTURE, MEANING,
                     UNTESTABLE, USAGE, USAGE_ERROR, HarnessError)

# How a run that returned (rather than raised) ended, for the --outcome file.
KIND_OF_STATUS = {FAILED: FAILURE, USAGE_ERROR: USAGE, INCONCLUSIVE: 'inconclusive',
                  HARNESS_FAILED: INFRASTRUCTURE}


def default_work() -> Path:
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return Path(cache) / 'grouped-pages'


class Parser(argparse.ArgumentParser):
    """A bad argument is a HarnessError like any other usage error, so that it gets the
    same exit status and, for bisect-step, git bisect run's abort rather than "bad"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise HarnessError(f'{self.prog}: {message}', USAGE_ERROR)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog='gptool', description=__doc__)
    parser.add_argument('--repo', type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument('--work', type=Path, default=Path(os.environ.get('GP_WORK') or default_work()),
                        help='trees and build directories (outside the repo)')
    parser.add_argument('--kernel-src', default=os.environ.get('KERNEL_SRC') or None,
                        help='a kernel git tree to use as the base instead of the Debian tarball')
    parser.add_argument('--outcome', type=Path,
                        default=Path(os.environ['GP_OUTCOME']) if os.environ.get('GP_OUTCOME')
                        else None,
                        help='write {status, kind, message} of the run to this JSON file '
                        '(default: $GP_OUTCOME, which make matrix sets for each row)')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('tree', help='prepare the source tree and print its path')
    run = sub.add_parser('kunit', help='run our KUnit suites with kunit.py')
    run.add_argument('--arch', default='um')
    run.add_argument('--config', default='default')
    run.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    run.add_argument('--qemu-cpu', default='max')
    run.add_argument('--timeout', type=int, default=600, help='seconds for the kernel to run the tests')
    run.add_argument('--results', type=Path, default=None)
    run.add_argument('kunit_args', nargs=argparse.REMAINDER,
                     help='after --: passed to kunit.py run unchanged')
    st = sub.add_parser('selftests', help='boot the patched kernel in QEMU and run the kselftests')
    st.add_argument('--config', default='default')
    st.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    st.add_argument('--qemu-cpu', default='max')
    st.add_argument('--smp', type=int, default=2)
    st.add_argument('--memory', type=int, default=1024, help='guest memory in MiB')
    st.add_argument('--timeout', type=int, default=900, help='seconds before the guest counts as hung')
    st.add_argument('--cmdline', default='', help='extra kernel command line')
    st.add_argument('--test', action='append', default=[], metavar='NAME',
                    help='run only this test of gp_stress (repeatable); all when absent')
    st.add_argument('--results', type=Path, default=None)
    mm = sub.add_parser('mm-selftests', help="a subset of the kernel's mm selftests, PKS page "
                        'tables enforcing and off (nopkstables), compared')
    mm.add_argument('--config', default='default')
    mm.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    mm.add_argument('--qemu-cpu', default='max')
    mm.add_argument('--smp', type=int, default=2)
    mm.add_argument('--memory', type=int, default=2048, help='guest memory in MiB')
    mm.add_argument('--timeout', type=int, default=1800, help='seconds before a boot counts as hung')
    mm.add_argument('--results', type=Path, default=None)
    fi = sub.add_parser('faults', help='the fault-injection sweep over the KUnit suite and the '
                        'selftests (configs/fault-injection.config)')
    fi.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    fi.add_argument('--qemu-cpu', default='max')
    fi.add_argument('--smp', type=int, default=2)
    fi.add_argument('--memory', type=int, default=1024, help='guest memory in MiB')
    fi.add_argument('--timeout', type=int, default=900, help='seconds before a boot counts as hung')
    fi.add_argument('--setting', action='append', default=[], metavar='NAME',
                    help='only this setting of the sweep (repeatable): ' +
                    ', '.join(s.name for s in faults.SWEEP))
    fi.add_argument('--soak-seconds', type=int, default=0,
                    help="also run the KUnit suite's soak case this long under each setting")
    fi.add_argument('--results', type=Path, default=None)
    bn = sub.add_parser('bench', help='boot the QEMU kernel with gp_bench and store its metrics')
    bn.add_argument('--config', default='default')
    bn.add_argument('--jobs', type=int, default=os.cpu_count() or 1)
    bn.add_argument('--qemu-cpu', default='max')
    bn.add_argument('--smp', type=int, default=2)
    bn.add_argument('--memory', type=int, default=2048, help='guest memory in MiB')
    bn.add_argument('--mode', default='tcg', help='tcg, or icount for deterministic timing')
    bn.add_argument('--runs', type=int, default=1, help='boots, one result each')
    bn.add_argument('--workload', default='full', help='full, or quick (a smoke run)')
    bn.add_argument('--cmdline', default='', help='extra kernel command line, e.g. nopkstables')
    bn.add_argument('--timeout', type=int, default=1800, help='seconds before a boot counts as hung')
    bn.add_argument('--results', type=Path, default=None)
    bn.add_argument('--artifacts', type=Path, default=None,
                    help='with --build-only: where to put the build; alone: boot that build')
    bn.add_argument('--build-only', action='store_true')
    cmp = sub.add_parser('compare', help='compare the bench results of two revisions or result sets')
    cmp.add_argument('--a', required=True, metavar='SPEC',
                     help='before: a results directory, or a git revision to build and bench')
    cmp.add_argument('--b', required=True, metavar='SPEC', help='after: as --a')
    cmp.add_argument('--runs', type=int, default=compare.DEFAULT_RUNS,
                     help='bench runs per revision side')
    cmp.add_argument('--alpha', type=float, default=0.05, help='significance level')
    cmp.add_argument('--min-effect', type=float, default=5.0, metavar='PCT',
                     help='smallest change in %% called real, for metrics that set none')
    cmp.add_argument('--config', default='default')
    cmp.add_argument('--mode', default='tcg', choices=compare.MODES)
    cmp.add_argument('--qemu-cpu', default='max')
    cmp.add_argument('--smp', type=int, default=2)
    cmp.add_argument('--memory', type=int, default=2048, help='guest memory in MiB')
    cmp.add_argument('--workload', default='full', help='the bench workload: full or quick')
    cmp.add_argument('--cmdline', default='', help='extra kernel command line of the runs')
    cmp.add_argument('--force', action='store_true', help='compare sides that differ in setup')
    cmp.add_argument('--results', type=Path, default=None)
    tr = sub.add_parser('trend', help='plot the stored bench results over the commit history')
    tr.add_argument('--results', type=Path, default=None)
    tr.add_argument('--metric', action='extend', nargs='+', default=[], metavar='GLOB',
                    help='only the metrics matching these shell patterns')
    bs = sub.add_parser('bisect', help='the first commit where a check goes bad (git bisect run)')
    bs.add_argument('--good', required=True, metavar='REV')
    bs.add_argument('--bad', required=True, metavar='REV')
    bs.add_argument('--check', required=True, help=checks.FORMS)
    bs.add_argument('--repeat', type=int, default=1, help='runs per step (flaky checks)')
    bs.add_argument('--on', default='overlay', help='overlay (our commits) or base (KERNEL_SRC)')
    bs.add_argument('--arch', default='um', help='kunit checks')
    bs.add_argument('--config', default='default')
    bs.add_argument('--qemu-cpu', default='max')
    bs.add_argument('--smp', type=int, default=2)
    bs.add_argument('--memory', type=int, default=1024, help='selftest guest memory in MiB')
    bs.add_argument('--bench-memory', type=int, default=2048, help='bench guest memory in MiB')
    bs.add_argument('--bench-mode', default='tcg')
    bs.add_argument('--bench-workload', default='quick')
    bs.add_argument('--kunit-timeout', type=int, default=600)
    bs.add_argument('--selftest-timeout', type=int, default=900)
    bs.add_argument('--results', type=Path, default=None)
    bst = sub.add_parser('bisect-step', help='one bisect step (run by git bisect run and '
                         'reproduce.sh): exit 0 good, 1 bad, 125 skip, 128 abort')
    bst.add_argument('--plan', type=Path, required=True)
    bst.add_argument('--commit', default=None, help='test this commit, not the worktree HEAD')
    bst.add_argument('--label', default=None)
    bst.add_argument('--out', type=Path, default=None,
                     help='where a plan without a bisect directory records its steps')
    mt = sub.add_parser('matrix-table', help="the table make matrix ends with, from its rows' "
                        'records and logs; exits with the status of the worst row')
    mt.add_argument('--joblog', type=Path, required=True)
    mt.add_argument('--logs', type=Path, required=True)
    mt.add_argument('--matrix', type=Path, default=None,
                    help='the rows that ran (default: ci/matrix)')
    kc = sub.add_parser('kcidb', help="a commit's KUnit, selftest, bench and matrix results as "
                        'KCIDB JSON (results/kcidb/)')
    kc.add_argument('--commit', default='HEAD', help='a git revision')
    kc.add_argument('--origin', default=kcidb.ORIGIN, help='the KCIDB origin: [a-z0-9_]+')
    kc.add_argument('--results', type=Path, default=None)
    mr = sub.add_parser('matrix-row', help='one row of make matrix: its log and its record '
                        '(<out>/<row>.json); exit 0 when it reached a verdict')
    mr.add_argument('--out', type=Path, required=True)
    mr.add_argument('--host', required=True, help='the name the table shows for where it ran')
    mr.add_argument('--keep-results', action='store_true',
                    help="move the row's result directories into <out>/<row>/")
    mr.add_argument('arch')
    mr.add_argument('config')
    mr.add_argument('cpu')
    mp = sub.add_parser('matrix-plan', help='the expected wall time of the matrix on N hosts, '
                        'from ci/matrix-times.json and the job logs in results/')
    mp.add_argument('--hosts', default='1,4,8,24',
                    help='numbers of hosts (comma-separated), or a GNU parallel sshloginfile')
    mp.add_argument('--cores', type=int, default=2, help='cores of each host')
    mp.add_argument('--stored-only', action='store_true',
                    help='from ci/matrix-times.json alone, not the job logs in results/')
    mp.add_argument('--order', action='store_true',
                    help='instead: read rows ("ARCH CONFIG CPU") on stdin, print them longest '
                    'first')
    return parser.parse_args(argv)


def bisect_request(args: argparse.Namespace) -> bisect.BisectRequest:
    return bisect.BisectRequest(
        repo=args.repo, work=args.work, good=args.good, bad=args.bad, check=args.check,
        repeat=args.repeat, on=args.on, kernel_src=args.kernel_src,
        results=args.results or args.repo / 'results',
        setup=checks.Setup(arch=args.arch, config=args.config, qemu_cpu=args.qemu_cpu,
                           smp=args.smp, memory_mb=args.memory, bench_memory_mb=args.bench_memory,
                           bench_mode=args.bench_mode, bench_workload=args.bench_workload,
                           kunit_timeout=args.kunit_timeout,
                           selftest_timeout=args.selftest_timeout))


def bench_request(args: argparse.Namespace) -> bench.BenchRequest:
    fragment = kbuild.check_choice(args.repo, 'x86_64', args.config)
    return bench.BenchRequest(
        repo=args.repo, tree=None, work=args.work, config=args.config, jobs=args.jobs,
        machine=qemu.Machine(cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory,
                             mode=args.mode, tcg_threads=fragment.tcg_threads),
        runs=args.runs, workload=args.workload, cmdline=args.cmdline,
        timeout=args.timeout, results=args.results or args.repo / 'results',
        artifacts=args.artifacts, build_only=args.build_only)


def kunit_extra(args: argparse.Namespace) -> list[str]:
    return args.kunit_args[1:] if args.kunit_args[:1] == ['--'] else args.kunit_args


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse a bad request at once, before waiting for GP_WORK's lock."""
    if args.command == 'kunit':
        kbuild.check_choice(args.repo, args.arch, args.config)
        kunit_run.effective_timeout(args.timeout, kunit_extra(args))
    elif args.command in ('selftests', 'mm-selftests'):
        kbuild.check_choice(args.repo, 'x86_64', args.config)
    if args.command == 'selftests' and (args.smp < 1 or args.memory < 256 or args.timeout < 30):
        raise HarnessError('selftests need --smp >= 1, --memory >= 256 (MiB) and '
                           '--timeout >= 30 (s)', USAGE_ERROR)
    if args.command == 'mm-selftests' and (args.smp < 1 or args.memory < 1024 or
                                           args.timeout < 60):
        raise HarnessError('mm-selftests need --smp >= 1, --memory >= 1024 (MiB: 256 of '
                           'them are huge pages) and --timeout >= 60 (s)', USAGE_ERROR)
    if args.command == 'faults':
        faults.chosen(args.setting)
        if args.soak_seconds < 0:
            raise HarnessError(f'--soak-seconds must be 0 (no soak) or more, not '
                               f'{args.soak_seconds}', USAGE_ERROR)
    if args.command == 'bench':
        bench.check_request(bench_request(args))


def run_on_tree(args: argparse.Namespace) -> int:
    """The commands that prepare and build the shared kernel tree: one at a time per
    GP_WORK, their arguments checked already (check_arguments)."""
    if args.command == 'bench':
        request = bench_request(args)
        if args.artifacts is None or args.build_only:
            request.tree = tree.prepare(args.repo, args.work, args.kernel_src)
        return bench.run(request)
    prepared = tree.prepare(args.repo, args.work, args.kernel_src)
    if args.command == 'tree':
        print(prepared.path)
        return 0
    results = args.results or args.repo / 'results'
    if args.command == 'faults':
        return faults.run(faults.FaultsRequest(
            repo=args.repo, tree=prepared, work=args.work, config=faults.CONFIG, jobs=args.jobs,
            qemu_cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory, timeout=args.timeout,
            results=results, settings=args.setting, soak_seconds=args.soak_seconds))
    if args.command == 'mm-selftests':
        return mm_selftests.run(mm_selftests.MmRequest(
            repo=args.repo, tree=prepared, work=args.work, config=args.config, jobs=args.jobs,
            qemu_cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory, timeout=args.timeout,
            results=results))
    if args.command == 'selftests':
        return selftest_run.run(selftest_run.SelftestRequest(
            repo=args.repo, tree=prepared, work=args.work, config=args.config,
            jobs=args.jobs, qemu_cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory,
            timeout=args.timeout, results=results, cmdline=args.cmdline, tests=args.test))
    extra = kunit_extra(args)
    return kunit_run.run(kunit_run.RunRequest(
        repo=args.repo, tree=prepared, work=args.work, arch=args.arch, config=args.config,
        jobs=args.jobs, qemu_cpu=args.qemu_cpu,
        timeout=kunit_run.effective_timeout(args.timeout, extra), results=results,
        extra_args=extra))


def write_outcome(path: Path | None, status: int, kind: str, message: str) -> None:
    """For a caller that must know why a run failed (a bisect step), not only that it did."""
    if path is not None:
        fsutil.write_json_atomic(path, {'status': status, 'kind': kind, 'message': message})


def main(argv: list[str]) -> int:
    """Run a verb; its exit status is one of errors.MEANING's, whatever goes wrong."""
    # git bisect run reads every status from 1 to 127 but 125 as "bad": a step that
    # did not judge the commit must say skip or abort, whatever went wrong.
    step_protocol = 'bisect-step' in argv
    outcome: Path | None = None
    command = 'gptool'
    raised = True
    try:
        args = parse(argv)
        outcome, command = args.outcome, f'gptool {args.command}'
        status = dispatch(args)
        raised = False
        kind, message = ('passed', '') if status == 0 else \
            (KIND_OF_STATUS.get(status, INFRASTRUCTURE), f'{command} exited with status {status}')
    except HarnessError as err:
        status, kind, message = err.status, err.kind, str(err)
    except Exception as err:  # noqa: BLE001 (a fault nobody foresaw is the harness's)
        traceback.print_exc()
        status, kind = HARNESS_FAILED, INFRASTRUCTURE
        message = f'disk full: {err}' if isinstance(err, OSError) and err.errno == errno.ENOSPC \
            else f'the harness failed: {type(err).__name__}: {err}'
    if raised:
        print(f'error: {message}', file=sys.stderr)
        if step_protocol:  # whatever it was, it is no verdict on the commit
            status = bisect.EXIT[checks.SKIP if kind == UNTESTABLE else checks.ABORT]
    try:
        write_outcome(outcome, status, kind, message)
    except OSError as err:
        print(f'error: cannot write the outcome file {outcome}: {err}', file=sys.stderr)
        status = bisect.EXIT[checks.ABORT] if step_protocol else HARNESS_FAILED
    if status and not step_protocol:
        print(f'{command}: exit {status} ({MEANING.get(status, "unknown")})', file=sys.stderr)
    return status


def dispatch(args: argparse.Namespace) -> int:
    if args.command == 'bisect':
        return bisect.run(bisect_request(args))
    if args.command == 'bisect-step':
        return bisect.step(args.plan, args.commit, args.label, repo=args.repo, work=args.work,
                           out=args.out)
    if args.command == 'compare':
        return compare.run(compare.CompareRequest(
            repo=args.repo, work=args.work, a=args.a, b=args.b, runs=args.runs,
            alpha=args.alpha, min_effect=args.min_effect, config=args.config, mode=args.mode,
            qemu_cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory,
            results=args.results or args.repo / 'results', force=args.force,
            workload=args.workload, cmdline=args.cmdline))
    if args.command == 'matrix-table':
        text, status = matrix_report.table(args.matrix or args.repo / 'ci' / 'matrix',
                                           args.joblog, args.logs)
        print(text)
        return status
    if args.command == 'kcidb':
        return kcidb.run(args.repo, args.results or args.repo / 'results', args.commit,
                         args.origin)
    if args.command == 'matrix-row':
        return matrix_row.run(matrix_row.RowRequest(
            repo=args.repo, work=args.work, out=args.out.resolve(), arch=args.arch,
            config=args.config, cpu=args.cpu, host=args.host, keep_results=args.keep_results))
    if args.command == 'matrix-plan':
        estimates = matrix_plan.estimates(args.repo, joblogs=not args.stored_only)
        if args.order:
            print('\n'.join(matrix_plan.order(sys.stdin.read().splitlines(), estimates)))
            return 0
        print(matrix_plan.plan_text(estimates, matrix_plan.host_counts(args.hosts),
                                    args.cores, matrix_plan.overheads(args.repo)))
        return 0
    if args.command == 'trend':
        return trend.run(trend.TrendRequest(repo=args.repo, results=args.results or
                                            args.repo / 'results', metrics=args.metric))
    check_arguments(args)
    with fsutil.work_lock(args.work, f'gptool {args.command}'):
        return run_on_tree(args)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
