"""A heartbeat for long, silent steps, so that a slow one is not taken for a hang."""
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO


@contextlib.contextmanager
def heartbeat(what: str, every: float = 60, stream: TextIO | None = None) -> Iterator[None]:
    """Print "WHAT: still running, N s" to @stream (stdout) every @every seconds until the block ends."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            print(f'{what}: still running, {int(time.monotonic() - started)} s',
                  file=stream or sys.stdout, flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
