"""Small file helpers: atomic writes so an interrupted run never leaves half a file,
and the lock that keeps two runs from sharing a kernel tree at once."""
import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import INFRASTRUCTURE, HarnessError


@contextlib.contextmanager
def work_lock(work: Path, what: str) -> Iterator[None]:
    """Hold GP_WORK for one run: its kernel tree, build directories and ccache are shared.

    A second run (another terminal, a planted bug, a matrix with MATRIX_JOBS>1) waits
    and says for whom, instead of re-syncing the tree under a build. The kernel frees
    the lock when its holder exits, however it exits.
    """
    try:
        work.mkdir(parents=True, exist_ok=True)
        lock = open(work / 'lock', 'a+', encoding='utf-8')  # noqa: SIM115 (held for the run)
    except OSError as err:
        raise HarnessError(f'GP_WORK={work} is not usable ({err.strerror}): set GP_WORK to a '
                           'writable directory, e.g. make GP_WORK=/tmp/gp-work ...',
                           kind=INFRASTRUCTURE) from err
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or 'another run'
            print(f'{what}: waiting for {work}, in use by {holder}', file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        lock.truncate()
        lock.write(f'pid {os.getpid()} ({what})\n')
        lock.flush()
        yield


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace path with data in one rename; readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.')
    try:
        with os.fdopen(fd, 'wb') as out:
            out.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json_atomic(path: Path, value: Any) -> None:
    write_atomic(path, (json.dumps(value, indent=2, sort_keys=True) + '\n').encode())


def read_bytes_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def reserve_dir(root: Path, name: str) -> Path:
    """A new, empty directory root/name (name.1, name.2... if taken): never another run's."""
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        final = root / (name if attempt == 0 else f'{name}.{attempt}')
        try:
            final.mkdir()  # reserves the name: fails if another run has it
            return final
        except FileExistsError:
            continue
    raise FileExistsError(f'too many directories named {name} in {root}')


def publish_dir(root: Path, name: str, fill: Callable[[Path], None]) -> Path:
    """A new directory root/name (name.1, name.2... if taken), filled aside by @fill and
    renamed into place, so it is never half-written and never reused or overwritten."""
    final = reserve_dir(root, name)
    staging = Path(tempfile.mkdtemp(dir=root, prefix='.partial-'))
    try:
        fill(staging)
        os.rename(staging, final)  # replaces the empty directory that reserved the name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        final.rmdir()
        raise
    return final
