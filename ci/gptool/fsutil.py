"""Small file helpers: atomic writes so an interrupted run never leaves half a file."""
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def publish_dir(root: Path, name: str, fill: Callable[[Path], None]) -> Path:
    """A new directory root/name (name.1, name.2... if taken), filled aside by @fill and
    renamed into place, so it is never half-written and never reused or overwritten."""
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        final = root / (name if attempt == 0 else f'{name}.{attempt}')
        try:
            final.mkdir()  # reserves the name: fails if another run has it
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f'too many directories named {name} in {root}')
    staging = Path(tempfile.mkdtemp(dir=root, prefix='.partial-'))
    try:
        fill(staging)
        os.rename(staging, final)  # replaces the empty directory that reserved the name
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        final.rmdir()
        raise
    return final
