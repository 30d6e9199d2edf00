"""Boot the patched kernel in QEMU and run the grouped_pages kselftests in it.

The kernel is built from the prepared tree with a bootable fragment plus the chosen
configs/ fragment; the test binary is linked statically and packed with busybox into an
initramfs whose init runs it and reboots. The console is kept; its TAP is parsed on the
host. A panic, oops, hang or missing result is a failure with the console log kept.
"""
import gzip
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import kconfig
from .errors import HarnessError
from .fsutil import publish_dir, write_atomic, write_json_atomic
from .kunit_run import (KERNEL_REPORT, base_meta, cached_compiler, check_choice, repo_commit,
                        result_name)
from .tree import Tree

# What the kernel needs to boot an initramfs on QEMU's serial console and run the tests.
BOOT_FRAGMENT = """\
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_DEVTMPFS=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_PRINTK=y
CONFIG_FUTEX=y
CONFIG_SMP=y
CONFIG_DEBUG_FS=y
CONFIG_DEBUG_KERNEL=y
CONFIG_PANIC_ON_OOPS=y
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_GROUPED_PAGES=y
CONFIG_GROUPED_PAGES_TEST=y
CONFIG_PKS_PG_TABLES=y
"""

INIT_SCRIPT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
echo GP-SELFTESTS-BEGIN
/gp_stress
echo "GP-SELFTESTS-EXIT $?"
reboot -f
"""

# The selftests provoke no warning, so here a WARNING is a problem too.
KERNEL_PROBLEM = re.compile(KERNEL_REPORT.pattern + r'|WARNING:')
TAP_RESULT = re.compile(r'^(not ok|ok) (\d+) (\S+)(.*)$')
TAP_PLAN = re.compile(r'^1\.\.(\d+)$', re.MULTILINE)


@dataclass
class SelftestRequest:
    repo: Path
    tree: Tree
    work: Path
    config: str
    jobs: int
    qemu_cpu: str
    smp: int
    memory_mb: int
    timeout: int
    results: Path
    cmdline: str = ''
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def build_dir(self) -> Path:
        return self.work / 'build' / self.tree.base.key / f'x86_64-selftests-{self.config}'


def _make(req: SelftestRequest, *targets: str, log: Path) -> None:
    compiler = cached_compiler()
    cmd = ['make', '-C', str(req.tree.path), f'O={req.build_dir}', 'ARCH=x86_64',
           f'-j{req.jobs}', f'CC={compiler}', f'HOSTCC={compiler}', *targets]
    with log.open('a') as out:
        out.write('$ ' + ' '.join(cmd) + '\n')
        out.flush()
        if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
            raise HarnessError(f'selftest kernel build failed (make {" ".join(targets)}): '
                               f'{first_error(log.read_text(errors="replace"))} (log: {log})')


def first_error(output: str) -> str:
    """The line that says what went wrong in compiler or make output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if re.search(r'\berror:|\*\*\* .*Error \d+', line, re.IGNORECASE):
            return line
    return lines[-1] if lines else 'no output'


def build_kernel(req: SelftestRequest, log: Path) -> Path:
    """Configure (only when the fragment changed) and build bzImage."""
    fragment = BOOT_FRAGMENT + check_choice(req.repo, 'x86_64', req.config).path.read_text()
    req.build_dir.mkdir(parents=True, exist_ok=True)
    stamp = req.build_dir / '.gp-fragment'
    if not (req.build_dir / '.config').is_file() or \
            (stamp.read_text() if stamp.is_file() else None) != fragment:
        write_atomic(req.build_dir / '.config', fragment.encode())
        _make(req, 'olddefconfig', log=log)
        wanted = kconfig.parse_config(fragment)
        dotconfig = kconfig.parse_config((req.build_dir / '.config').read_text())
        wrong = kconfig.mismatches(wanted, dotconfig, req.tree.path, 'x86_64')
        if wrong:
            raise HarnessError('selftest config options did not land: ' + '; '.join(
                f'{m.option}={m.wanted} is {m.got}: {m.reason}' for m in wrong), 2)
        write_atomic(stamp, fragment.encode())
    _make(req, 'bzImage', log=log)
    return req.build_dir / 'arch/x86/boot/bzImage'


def build_initramfs(req: SelftestRequest) -> Path:
    """busybox, the static test binary and an init that runs it, as a gzipped cpio."""
    source = req.tree.path / 'tools/testing/selftests/grouped_pages/gp_stress.c'
    out_dir = req.build_dir / 'selftests'
    out_dir.mkdir(exist_ok=True)
    binary = out_dir / 'gp_stress'
    proc = subprocess.run(['gcc', '-Wall', '-O2', '-pthread', '-static',
                           '-idirafter', str(req.tree.path / 'include/uapi'),
                           str(source), '-o', str(binary)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f'cannot build {source.name}: {first_error(proc.stderr)}')
    busybox = Path('/bin/busybox')
    if not busybox.is_file():
        raise HarnessError('/bin/busybox missing: run `make deps` (busybox-static)', 2)
    with tempfile.TemporaryDirectory(prefix='gp-initramfs-') as tmp:
        root = Path(tmp)
        for sub in ('bin', 'proc', 'sys', 'dev', 'tmp'):
            (root / sub).mkdir()
        # The kernel opens /dev/console for init before devtmpfs is mounted.
        try:
            os.mknod(root / 'dev/console', 0o600 | stat.S_IFCHR, os.makedev(5, 1))
        except PermissionError as err:
            raise HarnessError('the initramfs needs a /dev/console device node, and creating '
                               'one needs root: run `make selftests` as root') from err
        shutil.copy2(busybox, root / 'bin/busybox')
        shutil.copy2(binary, root / 'gp_stress')
        (root / 'init').write_text(INIT_SCRIPT)
        (root / 'init').chmod(0o755)
        files = subprocess.run(['find', '.', '-print0'], cwd=root, capture_output=True,
                               check=True).stdout
        packed = subprocess.run(['cpio', '--null', '-o', '-H', 'newc', '--quiet'], cwd=root,
                                input=files, capture_output=True)
        if packed.returncode != 0:
            raise HarnessError('cpio could not pack the initramfs: ' +
                               first_error(packed.stderr.decode(errors='replace')))
        cpio = packed.stdout
    image = out_dir / 'initramfs.cpio.gz'
    write_atomic(image, gzip.compress(cpio, compresslevel=1))
    return image


def qemu_command(req: SelftestRequest, kernel: Path, initramfs: Path) -> list[str]:
    append = 'console=ttyS0 panic=-1 oops=panic loglevel=5 ' + req.cmdline
    return ['qemu-system-x86_64', '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
            '-cpu', req.qemu_cpu, '-smp', str(req.smp), '-m', str(req.memory_mb),
            '-kernel', str(kernel), '-initrd', str(initramfs), '-append', append.strip()]


def boot(cmd: list[str], timeout: int) -> tuple[str, bool]:
    """Run QEMU; return the console and whether it hit the hard timeout."""
    print('$ ' + ' '.join(cmd), flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    timed_out = False
    os.set_blocking(proc.stdout.fileno(), False)
    pending = b''
    while True:
        chunk = proc.stdout.read()
        if chunk:
            pending += chunk
            *complete, pending = pending.split(b'\n')
            for raw in complete:
                line = raw.decode(errors='replace').rstrip('\r')
                lines.append(line)
                print(line, flush=True)
        if proc.poll() is not None and not chunk:
            break
        if time.monotonic() > deadline:
            timed_out = True
            proc.kill()
            proc.wait()
            break
        time.sleep(0.05)
    if pending:
        lines.append(pending.decode(errors='replace'))
    return '\n'.join(lines) + '\n', timed_out


@dataclass
class Verdict:
    passed: int
    failed: int
    skipped: int
    problems: list[str]


def judge(console: str, timed_out: bool, timeout: int) -> Verdict:
    """Results from the console: TAP lines, plus any sign the kernel went wrong."""
    passed = failed = skipped = 0
    problems = []
    for line in console.splitlines():
        match = TAP_RESULT.match(line.strip())
        if not match:
            continue
        if match.group(1) == 'not ok':
            failed += 1
        elif '# SKIP' in match.group(4):
            skipped += 1
            problems.append(f'skipped: {match.group(3)}{match.group(4)}')
        else:
            passed += 1
    for line in console.splitlines():
        if KERNEL_PROBLEM.search(line):
            problems.append(f'kernel: {line.strip()}')
            break
    if timed_out:
        problems.append(f'hang: no end within {timeout} s')
    exit_line = re.search(r'GP-SELFTESTS-EXIT (\d+)', console)
    if not exit_line:
        problems.append('the tests did not finish (crash, panic or hang before the end)')
    elif exit_line.group(1) != '0' and not failed:
        problems.append(f'gp_stress exited with {exit_line.group(1)}')
    results = passed + failed + skipped
    if results == 0:
        problems.append('no test result in the console')
    plan = TAP_PLAN.search(console)
    if not plan:
        problems.append('no TAP plan (1..N) in the console')
    elif int(plan.group(1)) != results:
        problems.append(f'{results} test results for a plan of {plan.group(1)}')
    return Verdict(passed, failed, skipped, problems)


def store(req: SelftestRequest, console: str, meta: dict[str, object]) -> Path:
    def fill(staging: Path) -> None:
        (staging / 'console.log').write_text(console)
        config = req.build_dir / '.config'
        if config.is_file():
            shutil.copyfile(config, staging / 'config')
        write_json_atomic(staging / 'meta.json', meta)
    return publish_dir(req.results / 'selftests', result_name('x86_64', req.config, meta), fill)


def run(req: SelftestRequest) -> int:
    req.build_dir.mkdir(parents=True, exist_ok=True)
    log = req.build_dir / 'build.log'
    log.write_text('')
    started = time.time()
    print(f'selftests: building the kernel in {req.build_dir} (log: {log})', flush=True)
    kernel = build_kernel(req, log)
    initramfs = build_initramfs(req)
    cmd = qemu_command(req, kernel, initramfs)
    console, timed_out = boot(cmd, req.timeout)
    verdict = judge(console, timed_out, req.timeout)
    meta: dict[str, object] = {
        **repo_commit(req.repo),
        'base': base_meta(req.tree),
        'arch': 'x86_64', 'config': req.config, 'qemu': cmd, 'timed_out': timed_out,
        'passed': verdict.passed, 'failed': verdict.failed, 'skipped': verdict.skipped,
        'problems': verdict.problems, 'duration_s': round(time.time() - started, 1),
    }
    stored = store(req, console, meta)
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
