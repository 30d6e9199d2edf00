"""Boot a kernel in QEMU (TCG), keep every console line, and judge the console.

A hang is a hard timeout; a panic, oops, BUG, lockdep or KASAN report, or a WARN is
a problem the caller turns into a failure, with the console kept."""
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import INFRASTRUCTURE, HarnessError

# Reports that mean the kernel went wrong even when every test passed.
KERNEL_REPORT = re.compile(r'BUG:|Oops|Kernel panic|possible circular locking|inconsistent lock state'
                           r'|possible recursive locking|suspicious RCU usage|UBSAN:|KASAN:'
                           r'|general protection fault|WARNING: (?!CPU:)'
                           r'|unreferenced object 0x|kmemleak: \d+ new suspected memory leaks')
# Outside KUnit nothing provokes a warning on purpose: every WARNING is a problem.
KERNEL_PROBLEM = re.compile(KERNEL_REPORT.pattern + r'|WARNING:')

# Deterministic timing: one instruction is 2^ICOUNT_SHIFT ns of virtual time, and idle
# time is not skipped in real time, so a figure depends on the code, not the host.
ICOUNT_ARGS = ('-icount', 'shift=0,sleep=off')
MODES = ('tcg', 'icount')
# 'multi': a host thread per vCPU (QEMU's default). 'single': all vCPUs in one
# thread, round robin. QEMU 7.2's multi-threaded TCG lets a vCPU go on running code
# another vCPU has rewritten and synchronised with IPIs: a kernel with jump labels
# then oopses on "int3" at a static-key flip (text_poke_bp()'s breakpoint, hit after
# the patch finished), with PKS page tables on or off. Configs with CONFIG_JUMP_LABEL
# ask for 'single' ('# tcg threads: single').
TCG_THREADS = ('multi', 'single')


@dataclass(frozen=True)
class Machine:
    """The emulated machine a result was measured on."""
    cpu: str
    smp: int
    memory_mb: int
    mode: str = 'tcg'
    tcg_threads: str = 'multi'


def command(machine: Machine, kernel: Path, initramfs: Path, cmdline: str) -> list[str]:
    append = 'console=ttyS0 panic=-1 oops=panic loglevel=5 ' + cmdline
    cmd = ['qemu-system-x86_64', '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
           '-cpu', machine.cpu, '-smp', str(machine.smp), '-m', str(machine.memory_mb),
           '-kernel', str(kernel), '-initrd', str(initramfs), '-append', append.strip()]
    if machine.tcg_threads == 'single':
        cmd += ['-accel', 'tcg,thread=single']
    if machine.mode == 'icount':
        cmd += ICOUNT_ARGS
    return cmd


def boot(cmd: list[str], timeout: int, echo: bool = True) -> tuple[str, bool]:
    """Run QEMU; return the console and whether it hit the hard timeout."""
    print('$ ' + ' '.join(cmd), flush=True)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    except OSError as err:
        raise HarnessError(f'QEMU did not start: {cmd[0]}: {err.strerror} (run `make deps`)',
                           kind=INFRASTRUCTURE) from err
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
                if echo:
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
    console = '\n'.join(lines) + '\n'
    refusal = re.search(r'^(qemu-system-\S+: .*)$', console, re.M)
    if not timed_out and proc.returncode != 0 and refusal and 'Linux version' not in console:
        # QEMU refused to run (bad option, missing file): nothing was tested.
        raise HarnessError(f'QEMU did not start: {refusal.group(1)}', kind=INFRASTRUCTURE)
    return console, timed_out


# Words of the guest command line the initramfs's init reads: the harness sets them.
INIT_WORDS = ('gp.run=', 'gp.args=')


def refuse_init_words(cmdline: str, what: str, instead: str) -> None:
    """A user's extra command line (@what) may not choose what init runs; @instead says how."""
    taken = [word for word in cmdline.split() if word.startswith(INIT_WORDS)]
    if taken:
        raise HarnessError(f'{what} may not set gp.run= or gp.args= (has {" ".join(taken)}): '
                           f'{instead}', 2)


def kernel_problem(console: str) -> str | None:
    """The first console line that reports a kernel bug or a warning."""
    for line in console.splitlines():
        if KERNEL_PROBLEM.search(line):
            return line.strip()
    return None


def kmemleak_not_scanned(dotconfig: str, console: str) -> str | None:
    """Why a kmemleak kernel's run proves nothing about leaks, if it does not: the
    initramfs scans after the tests and says so (GP-KMEMLEAK-SCANNED)."""
    if 'CONFIG_DEBUG_KMEMLEAK=y' not in dotconfig.splitlines() or 'GP-KMEMLEAK-SCANNED' in console:
        return None
    return 'kmemleak is built in but never scanned after the tests (kmemleak off or disabled?)'


# A WARN is one too, except those the suites provoke on purpose, known by their
# message (printed just before the WARNING line on x86, just after it on UML), and
# the one UML prints at every boot under kunit.py, which has no virtio PCI device.
WARNING = re.compile(r'WARNING: CPU: \d+ PID: \d+ at ')
# KUnit test caches are named after their case: a bad free in any other cache is real.
PROVOKED_WARNING = re.compile(
    r'grouped_pages: (gp_test_\w+: (refusing to free pfn|not destroyed, \d+ pages in use)'
    r'|gp_test_destroy_after_failed_reset_frees_the_rest: \d+ pages in \d+ blocks could not be reset)')
UML_BOOT_WARNING = re.compile(r' at arch/um/drivers/virt-pci\.c:')


def kernel_report(raw_log: str) -> str | None:
    """The first line of a KUnit run's kernel log that reports a kernel bug or a WARN the
    suites did not provoke on purpose."""
    lines = raw_log.splitlines()
    for i, line in enumerate(lines):
        if KERNEL_REPORT.search(line):
            return line.strip()
        if WARNING.search(line) and not UML_BOOT_WARNING.search(line) and \
                not any(PROVOKED_WARNING.search(near) for near in lines[max(i - 1, 0):i + 2]):
            message = lines[i - 1].strip() if i else ''
            return line.strip() + (f' ({message})' if message and 'cut here' not in message else '')
    return None
