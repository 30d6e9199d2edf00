"""Revisions of the repo, checked out in worktrees and run by this checkout's harness.

compare and bisect build other commits than the checked-out one. Each gets a detached
worktree under GP_WORK/worktrees (the user's checkout is never touched), and is run by
*this* checkout's harness (`python3 -m gptool --repo <worktree>`): the harness is the
instrument, held fixed, and the worktree is what it measures.
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from .errors import INFRASTRUCTURE, HarnessError

HARNESS_CI = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(['git', '-C', str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        if check:
            raise HarnessError(f'git {" ".join(args)} in {repo} failed: {proc.stderr.strip()}',
                               kind=INFRASTRUCTURE)
        return ''
    return proc.stdout.strip()


def resolve_rev(repo: Path, spec: str, label: str,
                expected: str = 'a git revision') -> str:
    """The commit a revision names, or HarnessError(2) saying @spec is not @expected."""
    sha = '' if spec.startswith('-') or not spec else \
        git(repo, 'rev-parse', '--verify', '--quiet', f'{spec}^{{commit}}', check=False)
    if not re.fullmatch(r'[0-9a-f]{40}', sha):
        raise HarnessError(f'{label}={spec} is not {expected} of {repo}', 2)
    return sha


def ensure_worktree(repo: Path, work: Path, sha: str) -> tuple[Path, bool]:
    """A detached worktree of @repo at @sha under work/worktrees/<sha12>, made or reused
    (reset to @sha if found elsewhere or modified); returns it and whether it was reused."""
    worktree = work / 'worktrees' / sha[:12]
    if worktree.exists():
        top = git(worktree, 'rev-parse', '--show-toplevel', check=False)
        if not top or Path(top).resolve() != worktree.resolve():
            raise HarnessError(f'{worktree} exists but is not a git worktree: remove it and '
                               'run again', 2)
        head = git(worktree, 'rev-parse', 'HEAD', check=False)
        if head != sha or git(worktree, 'status', '--porcelain', '--untracked-files=no', check=False):
            git(worktree, 'checkout', '--quiet', '--detach', '--force', sha)
        return worktree, True
    worktree.parent.mkdir(parents=True, exist_ok=True)
    git(repo, 'worktree', 'prune')
    git(repo, 'worktree', 'add', '--quiet', '--detach', '--force', str(worktree), sha)
    return worktree, False


def harness_command(worktree: Path, work: Path) -> list[str]:
    """This checkout's harness working on @worktree's code (PYTHONPATH from harness_env)."""
    return [sys.executable, '-m', 'gptool', '--repo', str(worktree), '--work', str(work)]


def harness_env() -> dict[str, str]:
    return {**os.environ, 'PYTHONPATH': str(HARNESS_CI), 'PYTHONUNBUFFERED': '1'}


def run_logged(cmd: list[str], log: Path, cwd: Path | None = None,
               env: dict[str, str] | None = None, timeout: int | None = None) -> tuple[int, str]:
    """Run @cmd with its output (stdout and stderr) kept in @log, by default as the harness
    (its environment, from its checkout); (status, output). Past @timeout s the status is -1."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, 'w') as out:
        out.write('$ ' + ' '.join(cmd) + '\n')
        out.flush()
        try:
            status = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                    env=env or harness_env(), cwd=cwd or HARNESS_CI.parent,
                                    timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write(f'\n(killed after {timeout} s)\n')
            status = -1
    return status, log.read_text(errors='replace')


def last_error(output: str) -> str:
    """The line of a failed harness run that says why: its 'error:' line, else its last."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith('error:')]
    return (errors or lines or ['(no output)'])[-1]


class Clock:
    """Progress lines stamped with the time since the verb started."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def say(self, message: str) -> None:
        elapsed = int(self.elapsed())
        print(f'[{self.verb} {elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] '
              f'{message}', flush=True)
