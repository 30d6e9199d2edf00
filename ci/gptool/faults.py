"""`make faults`: the fault-injection sweep over the KUnit suite and the selftests.

One kernel (configs/fault-injection.config: FAULT_INJECTION, FAIL_PAGE_ALLOC, FAILSLAB,
the KUnit suite as a module) boots once per setting of the sweep. After boot the
initramfs turns the setting's failures on through debugfs, loads the KUnit module
(its suites run while loading), runs the kselftests, turns the failures off and
prints what is left in every grouped page cache.

Failures are injected only into allocations made with mm/grouped_pages.c's code on
the stack (fault-injection's require-start/require-end stack filter, on the code's
address range read from the build, with KASLR off). Injected everywhere, they kill
busybox's init within seconds, and the suites' own allocations fail instead of the
allocator's: the first sweep showed both.

Cases and tests may fail when their allocations do: that is what injection does, and
those failures are counted, not judged. A setting fails on a crash, a hang, a kernel
report other than the suites' provoked WARNs, or pages left in use in any cache but
the page-table caches (whose pages are live page tables) once the tests are over.
"""
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import junit, kbuild, ktap, provenance, qemu
from .errors import HarnessError
from .fsutil import publish_dir, write_json_atomic

CONFIG = 'fault-injection'
# Every injected failure counts down from here: the sweep reports how many it made.
TIMES = 1_000_000
# Caches whose pages stay in use by design: they hold the live page tables.
PAGE_TABLE_CACHES = ('pks_pgtables', 'pks_direct_map')
KUNIT_RESULT = re.compile(r'^\s*(not ok|ok) \d+ ((?:gp|pks)_test_\w+)(.*)$', re.M)
LEFT = re.compile(r'^GP-FAULTS-LEFT (\S+) (-?\d+)$', re.M)
CACHE = re.compile(r'^GP-CACHE /sys/kernel/debug/grouped_pages/(\S+): pages_in_use (\d+)$', re.M)


@dataclass(frozen=True)
class Setting:
    """One point of the sweep: which allocations fail, how often."""
    name: str
    page_alloc_percent: int = 0
    slab_percent: int = 0
    # Only every Nth allocation may fail (fault-injection's interval).
    interval: int = 1

    def knobs(self, text: tuple[int, int] = (0, 0)) -> list[str]:
        """debugfs writes, in order: the probability last, so failures start last;
        @text: the code whose allocations may fail ([start, end) addresses)."""
        knobs = []
        for attr, percent, extra in (('fail_page_alloc', self.page_alloc_percent,
                                      ['min-order=0', 'ignore-gfp-highmem=N']),
                                     ('failslab', self.slab_percent, [])):
            if percent:
                knobs += [f'{attr}/{knob}' for knob in
                          ['verbose=0', f'times={TIMES}', f'interval={self.interval}',
                           'ignore-gfp-wait=N', *extra, 'stacktrace-depth=32',
                           f'require-start={text[0]:#x}', f'require-end={text[1]:#x}',
                           f'probability={percent}']]
        return knobs


def allocator_text(build_dir: Path) -> tuple[int, int]:
    """[start, end) of mm/grouped_pages.c's code in the kernel built in @build_dir, booted
    with nokaslr: the .o's .text, placed where System.map puts one of its functions."""
    obj = build_dir / 'mm/grouped_pages.o'
    anchor = 'grouped_pages_cache_create'
    try:
        sections = subprocess.run(['readelf', '-SW', str(obj)], capture_output=True, text=True,
                                  check=True).stdout
        symbols = subprocess.run(['nm', str(obj)], capture_output=True, text=True,
                                 check=True).stdout
        system_map = (build_dir / 'System.map').read_text()
    except (OSError, subprocess.CalledProcessError) as err:
        raise HarnessError(f'cannot read where the allocator code lies in {build_dir}: {err}')
    size = re.search(r'\] \.text\s+PROGBITS\s+\S+\s+\S+\s+([0-9a-f]+)', sections)
    offset = re.search(rf'^([0-9a-f]+) T {anchor}$', symbols, re.M)
    address = re.search(rf'^([0-9a-f]+) T {anchor}$', system_map, re.M)
    if not (size and offset and address):
        raise HarnessError(f'cannot find {anchor} or the .text of {obj} (is it built in?)')
    start = int(address.group(1), 16) - int(offset.group(1), 16)
    return start, start + int(size.group(1), 16)


SWEEP = (
    Setting('page-alloc-1pct', page_alloc_percent=1),
    Setting('page-alloc-10pct', page_alloc_percent=10),
    Setting('page-alloc-every-50th', page_alloc_percent=100, interval=50),
    Setting('slab-1pct', slab_percent=1),
    Setting('slab-10pct', slab_percent=10),
    Setting('both-5pct', page_alloc_percent=5, slab_percent=5),
)


@dataclass
class FaultsRequest(kbuild.QemuRunRequest):
    """A sweep; its config is CONFIG, the one fragment that injects faults."""
    settings: list[str] = field(default_factory=list)
    # The KUnit suite's soak case, for this long under each setting's failures (0: skipped).
    soak_seconds: int = 0


@dataclass
class Outcome:
    setting: str
    injected: dict[str, int]
    kunit: tuple[int, int]
    selftests: tuple[int, int]
    caches_left: dict[str, int]
    problems: list[str]


def chosen(names: list[str]) -> list[Setting]:
    known = {setting.name: setting for setting in SWEEP}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise HarnessError(f'no fault-injection setting named {", ".join(unknown)}: valid are '
                           f'{", ".join(known)}', 2)
    return [known[name] for name in names] if names else list(SWEEP)


def judge(setting: Setting, console: str, timed_out: bool, timeout: int) -> Outcome:
    """What one boot of the sweep covered, and what went wrong in it."""
    problems = []
    if report := qemu.kernel_report(console):
        problems.append(f'kernel: {report}')
    if timed_out:
        problems.append(f'hang: no end within {timeout} s')
    if 'GP-FAULTS-END' not in console:
        problems.append('the sweep step did not finish (crash, panic or hang before the end)')
    bad_knobs = re.findall(r'^GP-FAULTS-BAD-KNOB (\S+)', console, re.M)
    if bad_knobs:
        problems.append(f'could not set {", ".join(bad_knobs)} (is the fault-injection kernel built?)')
    injected = {attr: TIMES - int(left) for attr, left in LEFT.findall(console)
                if int(left) >= 0 and any(k.startswith(attr + '/') for k in setting.knobs())}
    if 'GP-FAULTS-END' in console and not any(injected.values()):
        problems.append('no failure was injected: the sweep tested nothing')
    kunit = KUNIT_RESULT.findall(console)
    tap = ktap.parse(console.partition('GP-KUNIT-END')[2])
    # The tests ran to their end, whatever their results: otherwise nothing was covered.
    if insmod_failed := re.findall(r'^GP-KUNIT-INSMOD-FAILED (\S+)', console, re.M):
        problems.append(f'the KUnit module did not load: {", ".join(insmod_failed)}')
    elif 'GP-FAULTS-END' in console and not kunit:
        problems.append('no KUnit case reported a result')
    if 'GP-FAULTS-END' in console:
        if tap.runner_status is None:
            problems.append('kselftest never reported on gp_stress')
        if tap.plan is None or tap.plan != len(tap.cases):
            problems.append(f'{len(tap.cases)} selftest results for a plan of {tap.plan}')
    caches = {name: int(in_use) for name, in_use in CACHE.findall(console)}
    left = {name: in_use for name, in_use in caches.items()
            if in_use and name not in PAGE_TABLE_CACHES}
    if left:
        problems.append('pages left in use after the tests: ' +
                        ', '.join(f'{name} {in_use}' for name, in_use in sorted(left.items())))
    if 'GP-FAULTS-END' in console and not caches:
        problems.append('no grouped page cache listed after the tests')
    return Outcome(
        setting=setting.name, injected=injected,
        kunit=(sum(1 for status, _, rest in kunit if status == 'ok' and '# SKIP' not in rest),
               sum(1 for status, _, _ in kunit if status == 'not ok')),
        selftests=(sum(1 for case in tap.cases if case.status == 'PASS'),
                   sum(1 for case in tap.cases if case.status == 'FAIL')),
        caches_left=left, problems=problems)


def table(outcomes: list[Outcome]) -> str:
    rows = [('setting', 'page fails', 'slab fails', 'kunit ok/fail', 'selftests ok/fail',
             'verdict')]
    for out in outcomes:
        rows.append((out.setting, str(out.injected.get('fail_page_alloc', '-')),
                     str(out.injected.get('failslab', '-')), f'{out.kunit[0]}/{out.kunit[1]}',
                     f'{out.selftests[0]}/{out.selftests[1]}',
                     'PASS' if not out.problems else 'FAIL: ' + '; '.join(out.problems)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return '\n'.join('  '.join(cell.ljust(width) for cell, width in zip(row, widths)) +
                     '  ' + row[-1] for row in rows)


def run(req: FaultsRequest) -> int:
    settings = chosen(req.settings)
    kernel = req.kernel
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    kernel.log.write_text('')
    print(f'faults: building the fault-injection kernel in {kernel.build_dir} '
          f'(log: {kernel.log})', flush=True)
    started = time.time()
    image = kbuild.build_kernel(kernel)
    if not kbuild.built_modules(kernel):
        raise HarnessError(f'configs/{CONFIG}.config built no KUnit module: '
                           'the sweep needs CONFIG_GROUPED_PAGES_KUNIT_TEST=m')
    initramfs = kbuild.build_initramfs(kernel)
    text = allocator_text(kernel.build_dir)
    print(f'faults: failures only with mm/grouped_pages.c ({text[0]:#x}-{text[1]:#x}) '
          'on the stack', flush=True)
    machine = qemu.Machine(cpu=req.qemu_cpu, smp=req.smp, memory_mb=req.memory_mb)
    outcomes, consoles, commands = [], {}, {}
    for number, setting in enumerate(settings, 1):
        print(f'faults: setting {number}/{len(settings)}: {setting.name}', flush=True)
        # nokaslr: the code's addresses are those of System.map.
        soak = f' gp.soak={req.soak_seconds}' if req.soak_seconds else ''
        cmd = qemu.command(machine, image, initramfs,
                           'gp.run=faults gp.args=' + ':'.join(setting.knobs(text)) +
                           soak + ' nokaslr numa=fake=2 loglevel=7 printk.time=0')
        console, timed_out = qemu.boot(cmd, req.timeout + req.soak_seconds, echo=False)
        outcomes.append(judge(setting, console, timed_out, req.timeout))
        consoles[setting.name] = console
        commands[setting.name] = cmd
        print(table(outcomes[-1:]).splitlines()[-1], flush=True)
    meta = {
        **provenance.repo_commit(req.repo), 'base': provenance.base_meta(req.tree),
        'arch': 'x86_64', 'config': CONFIG,
        'config_sha256': provenance.config_sha256(kernel.build_dir / '.config'),
        'tools': provenance.tool_versions(), 'date': provenance.iso_date(),
        'duration_s': round(time.time() - started, 1), 'qemu': commands,
        'outcomes': [vars(out) for out in outcomes],
    }

    def fill(staging: Path) -> None:
        for name, console in consoles.items():
            (staging / f'{name}.console.log').write_text(console)
        (staging / 'sweep.txt').write_text(table(outcomes) + '\n')
        (staging / 'junit.xml').write_text(junit.from_verdicts(
            f'faults x86_64/{CONFIG}', 'faults',
            [(out.setting, '; '.join(out.problems) or None) for out in outcomes]))
        (staging / 'config').write_text((kernel.build_dir / '.config').read_text())
        write_json_atomic(staging / 'meta.json', meta)
    stored = publish_dir(req.results / 'faults',
                         provenance.result_name('x86_64', CONFIG, meta), fill)
    print(table(outcomes))
    print(f'faults results: {stored}')
    failed = [out.setting for out in outcomes if out.problems]
    if failed:
        print(f'error: faults: {len(failed)} of {len(outcomes)} settings failed: '
              f'{", ".join(failed)} (consoles: {stored})', flush=True)
        return 1
    return 0
