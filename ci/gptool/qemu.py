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
                           r'|general protection fault|WARNING: (?!CPU:)')
# Outside KUnit nothing provokes a warning on purpose: every WARNING is a problem.
KERNEL_PROBLEM = re.compile(KERNEL_REPORT.pattern + r'|WARNING:')

# Deterministic timing: one instruction is 2^ICOUNT_SHIFT ns of virtual time, and idle
# time is not skipped in real time, so a figure depends on the code, not the host.
ICOUNT_ARGS = ('-icount', 'shift=0,sleep=off')
MODES = ('tcg', 'icount')


@dataclass(frozen=True)
class Machine:
    """The emulated machine a result was measured on."""
    cpu: str
    smp: int
    memory_mb: int
    mode: str = 'tcg'


def command(machine: Machine, kernel: Path, initramfs: Path, cmdline: str) -> list[str]:
    append = 'console=ttyS0 panic=-1 oops=panic loglevel=5 ' + cmdline
    cmd = ['qemu-system-x86_64', '-nodefaults', '-nographic', '-no-reboot', '-serial', 'stdio',
           '-cpu', machine.cpu, '-smp', str(machine.smp), '-m', str(machine.memory_mb),
           '-kernel', str(kernel), '-initrd', str(initramfs), '-append', append.strip()]
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


def kernel_problem(console: str) -> str | None:
    """The first console line that reports a kernel bug or a warning."""
    for line in console.splitlines():
        if KERNEL_PROBLEM.search(line):
            return line.strip()
    return None
