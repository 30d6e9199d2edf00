"""Command line: python3 -m gptool {tree,kunit} ..."""
import argparse
import os
import sys
from pathlib import Path

from . import kunit_run, selftest_run, tree
from .errors import HarnessError


def default_work() -> Path:
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return Path(cache) / 'grouped-pages'


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='gptool', description=__doc__)
    parser.add_argument('--repo', type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument('--work', type=Path, default=Path(os.environ.get('GP_WORK') or default_work()),
                        help='trees and build directories (outside the repo)')
    parser.add_argument('--kernel-src', default=os.environ.get('KERNEL_SRC') or None,
                        help='a kernel git tree to use as the base instead of the Debian tarball')
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
    st.add_argument('--results', type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        if args.command == 'kunit':
            kunit_run.check_choice(args.repo, args.arch, args.config)
        elif args.command == 'selftests':
            kunit_run.check_choice(args.repo, 'x86_64', args.config)
            if args.smp < 1 or args.memory < 256 or args.timeout < 30:
                raise HarnessError('selftests need --smp >= 1, --memory >= 256 (MiB) and '
                                   '--timeout >= 30 (s)', 2)
        prepared = tree.prepare(args.repo, args.work, args.kernel_src)
        if args.command == 'tree':
            print(prepared.path)
            return 0
        if args.command == 'selftests':
            return selftest_run.run(selftest_run.SelftestRequest(
                repo=args.repo, tree=prepared, work=args.work, config=args.config,
                jobs=args.jobs, qemu_cpu=args.qemu_cpu, smp=args.smp, memory_mb=args.memory,
                timeout=args.timeout, results=args.results or args.repo / 'results',
                cmdline=args.cmdline))
        extra = args.kunit_args[1:] if args.kunit_args[:1] == ['--'] else args.kunit_args
        return kunit_run.run(kunit_run.RunRequest(
            repo=args.repo, tree=prepared, work=args.work, arch=args.arch, config=args.config,
            jobs=args.jobs, qemu_cpu=args.qemu_cpu, timeout=args.timeout,
            results=args.results or args.repo / 'results', extra_args=extra))
    except HarnessError as err:
        print(f'error: {err}', file=sys.stderr)
        return err.status


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
