"""The kernel's own mm selftests, a subset, with PKS page tables enforcing and off.

`make mm-selftests` builds tests of tools/testing/selftests/mm statically against the
prepared tree's headers, packs them into the selftest initramfs, and boots the same
kernel twice: as configured (PKS page tables write-protected) and with `nopkstables`
(page tables from the page allocator, as upstream). A test that passes (or skips)
with the feature off must pass (or skip) with it on, the enforcing boot must count 0
PK faults, and neither boot may report a kernel problem. A test that fails both ways
fails for reasons that are not ours: it is reported, not held against the run.
"""
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import junit, kbuild, provenance, qemu
from .errors import UNTESTABLE, HarnessError
from .fsutil import publish_dir, write_json_atomic

MM_DIR = 'tools/testing/selftests/mm'
# Helpers most tests link with (vm_util.c needs thp_settings.c).
HELPERS = ('vm_util.c', 'thp_settings.c')
KSFT_SKIP = 4
# What coreutils' and busybox's timeout exit with when they kill the command.
TIMED_OUT = (124, 143)
# The mm Makefile's check_config.sh writes it after probing for liburing: these static
# builds link without it, so the io_uring cases of cow and gup_longterm stay out.
LOCAL_CONFIG_H = '/* No liburing: the io_uring cases are left out. */\n'


@dataclass(frozen=True)
class MmTest:
    name: str
    # The shell command the guest runs in /mm; its exit status is the result.
    command: str
    cflags: tuple[str, ...] = ()
    source: str = ''

    @property
    def source_file(self) -> str:
        return (self.source or self.name) + '.c'


# Page-table writers of every kind: mremap moves tables, mlock/madvise populate,
# mseal and mkdirty rewrite entries, THP and hugetlb make and split huge entries,
# cow forks with every kind of page mapped. protection_keys runs user pkeys (PKRU)
# next to PKS (PKRS), last: it leaves no huge pages reserved.
SUBSET = (
    MmTest('mremap_test', './mremap_test'),
    MmTest('map_fixed_noreplace', './map_fixed_noreplace'),
    MmTest('mlock2-tests', './mlock2-tests'),
    MmTest('mremap_dontunmap', './mremap_dontunmap'),
    MmTest('madv_populate', './madv_populate'),
    MmTest('mseal_test', './mseal_test'),
    MmTest('mkdirty', './mkdirty'),
    MmTest('transhuge-stress', './transhuge-stress -d 20'),
    MmTest('hugepage-mmap', './hugepage-mmap'),
    MmTest('map_hugetlb', './map_hugetlb'),
    MmTest('hugetlb-madvise', './hugetlb-madvise'),
    MmTest('cow', './cow'),
    MmTest('pkey_sighandler_tests', './pkey_sighandler_tests', ('-m64', '-mxsave')),
    # Its forked children outlive the parent: read everything through a pipe, and
    # judge by the line it ends with, as run_vmtests.sh does not (it exits 0 early).
    MmTest('protection_keys', "./protection_keys 2>&1 | cat > /tmp/pkeys.out; "
           "cat /tmp/pkeys.out; grep -q 'done (all tests OK)' /tmp/pkeys.out",
           ('-m64', '-mxsave')),
)

RESULT = re.compile(r'^GP-MM-RESULT (\S+) (\d+)\s*$', re.M)
STATUS = re.compile(r'^GP-MM-STATUS (\w+) (\S+)\s*$', re.M)
BOOTS = (('enforcing', ''), ('off', 'nopkstables'))


MmRequest = kbuild.QemuRunRequest


@dataclass
class Boot:
    """What one boot ran: each test's exit status (None: no result), PKS counters."""
    results: dict[str, int | None]
    status: dict[str, str]
    problem: str | None


def parse_boot(console: str, timed_out: bool, tests: tuple[MmTest, ...] = SUBSET) -> Boot:
    results: dict[str, int | None] = {test.name: None for test in tests}
    for name, code in RESULT.findall(console):
        if name in results:
            results[name] = int(code)
    status = dict(STATUS.findall(console))
    report = next((line.strip() for line in console.splitlines()
                   if qemu.KERNEL_PROBLEM.search(line)), None)
    problem = None
    if report:
        problem = f'kernel report: {report}'
    elif timed_out:
        problem = 'the guest hung (timed out)'
    elif 'GP-MM-END' not in console:
        problem = 'the guest stopped before the last test (see the console log)'
    return Boot(results, status, problem)


def outcome(code: int | None) -> str:
    if code is None:
        return 'no result'
    if code == 0:
        return 'pass'
    if code == KSFT_SKIP:
        return 'skip'
    return 'timed out' if code in TIMED_OUT else f'fail ({code})'


def judge(enforcing: Boot, off: Boot) -> list[str]:
    """What makes the run fail: a test worse enforcing than with the feature off, a test
    that gave no result, a run where nothing passed, PK faults, untagged tables and
    kernel problems. An empty list is a pass."""
    problems = [f'{label}: {boot.problem}' for label, boot in
                (('enforcing', enforcing), ('off', off)) if boot.problem]
    for name, off_code in off.results.items():
        on_code = enforcing.results.get(name)
        if off_code is None or on_code is None:
            problems.append(f'{name}: {outcome(off_code)} with nopkstables, '
                            f'{outcome(on_code)} enforcing')
        elif outcome(off_code) in ('pass', 'skip') and outcome(on_code) not in ('pass', 'skip'):
            problems.append(f'{name}: {outcome(off_code)} with nopkstables, '
                            f'{outcome(on_code)} enforcing')
    if not any(code == 0 for code in off.results.values()):
        problems.append('no test passed with nopkstables: the run proves nothing')
    mode = enforcing.status.get('enforcing')
    if mode != '1':
        problems.append(f'the enforcing boot is not enforcing (status enforcing={mode}): '
                        'PKS page tables are off in this config or on this CPU')
    faults = enforcing.status.get('pk_faults')
    if faults != '0':
        problems.append(f'enforcing: pk_faults {faults}, not 0')
    untagged = enforcing.status.get('walk_untagged')
    if untagged != '0':
        problems.append(f'enforcing: the walk after the tests found {untagged} untagged tables, '
                        'not 0')
    return problems


def build_tests(req: MmRequest) -> Path:
    """Each test of SUBSET, static, against the tree's exported headers."""
    kernel = req.kernel
    src = req.tree.path / MM_DIR
    if not src.is_dir():
        raise HarnessError(f'{src} is missing: this tree has no mm selftests', kind=UNTESTABLE)
    out = kernel.build_dir / 'mm-selftests'
    out.mkdir(parents=True, exist_ok=True)
    headers = kbuild.install_headers(kernel)
    generated = kernel.build_dir / 'mm-selftests-include'
    generated.mkdir(exist_ok=True)
    (generated / 'local_config.h').write_text(LOCAL_CONFIG_H)
    compiler = kbuild.cached_compiler().split()
    for test in SUBSET:
        cmd = [*compiler, '-static', '-O2', '-w', f'-I{src}', f'-I{generated}',
               '-isystem', str(headers),
               '-isystem', str(req.tree.path / 'tools/include/uapi'), *test.cflags,
               '-o', str(out / test.name), str(src / test.source_file),
               *(str(src / helper) for helper in HELPERS), '-lrt', '-lpthread', '-lm']
        if kbuild.run_logged(kernel, cmd) != 0:
            raise HarnessError(f'mm selftest {test.name} did not build: '
                               f'{kbuild.first_error(kernel.log.read_text(errors="replace"))} '
                               f'(log: {kernel.log})', kind=UNTESTABLE)
    (out / 'tests').write_text(''.join(f'{test.name} {test.command}\n' for test in SUBSET))
    return out


def junit_xml(run: str, tests: list[str], problems: list[str]) -> str:
    """A case per test (failed by a problem naming it) and one for the run as a whole."""
    def named(name: str) -> list[str]:
        return [problem for problem in problems if problem.startswith(f'{name}: ')]
    verdicts: list[tuple[str, str | None]] = [(name, '; '.join(named(name)) or None)
                                              for name in tests]
    rest = [problem for problem in problems if not any(problem in named(name) for name in tests)]
    verdicts.append(('pks page tables and kernel', '; '.join(rest) or None))
    return junit.from_verdicts(run, 'mm', verdicts)


def table(enforcing: Boot, off: Boot) -> str:
    rows = [f'{"test":24} {"nopkstables":12} enforcing']
    rows += [f'{name:24} {outcome(code):12} {outcome(enforcing.results.get(name))}'
             for name, code in off.results.items()]
    return '\n'.join(rows)


def run(req: MmRequest) -> int:
    kernel = req.kernel
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    kernel.log.write_text('')
    started = time.time()
    print(f'mm-selftests: building the kernel in {kernel.build_dir} (log: {kernel.log})',
          flush=True)
    image = kbuild.build_kernel(kernel)
    tests = build_tests(req)
    initramfs = kbuild.build_initramfs(kernel, extra={'mm': tests}, name='initramfs-mm.cpio.gz')
    fragment = kbuild.check_choice(req.repo, 'x86_64', req.config)
    machine = qemu.Machine(cpu=req.qemu_cpu, smp=req.smp, memory_mb=req.memory_mb,
                           tcg_threads=fragment.tcg_threads)
    consoles: dict[str, str] = {}
    boots: dict[str, Boot] = {}
    commands: dict[str, list[str]] = {}
    for label, extra in BOOTS:
        cmdline = ' '.join(['gp.run=mm', *fragment.boot_args, *([extra] if extra else [])])
        commands[label] = qemu.command(machine, image, initramfs, cmdline)
        console, timed_out = qemu.boot(commands[label], req.timeout, echo=False)
        consoles[label] = console
        boots[label] = parse_boot(console, timed_out)
        print(f'mm-selftests: {label} boot done', flush=True)
    problems = judge(boots['enforcing'], boots['off'])
    meta: dict[str, object] = {
        **provenance.repo_commit(req.repo),
        'base': provenance.base_meta(req.tree), 'arch': 'x86_64', 'config': req.config,
        'config_sha256': provenance.config_sha256(kernel.build_dir / '.config'),
        'tools': provenance.tool_versions(), 'date': provenance.iso_date(),
        'duration_s': round(time.time() - started, 1), 'qemu': commands,
        'results': {label: boot.results for label, boot in boots.items()},
        'pks_status': boots['enforcing'].status, 'problems': problems,
    }

    def fill(staging: Path) -> None:
        for label, console in consoles.items():
            (staging / f'console-{label}.log').write_text(console)
        (staging / 'summary.txt').write_text(table(boots['enforcing'], boots['off']) + '\n')
        (staging / 'junit.xml').write_text(junit_xml(f'mm-selftests x86_64/{req.config}',
                                                     [test.name for test in SUBSET], problems))
        write_json_atomic(staging / 'meta.json', meta)

    stored = publish_dir(req.results / 'mm-selftests',
                         provenance.result_name('x86_64', req.config, meta), fill)
    print(table(boots['enforcing'], boots['off']))
    print(f'mm-selftests results: {stored}')
    if problems:
        print('error: mm-selftests: ' + '; '.join(problems) +
              f' (console logs: {stored}/console-*.log)', file=sys.stderr)
        return 1
    print(f'mm-selftests x86_64/{req.config}: no test worse enforcing than with nopkstables, '
          f'pk_faults {boots["enforcing"].status.get("pk_faults")}')
    return 0
