"""GP_WORK is held by one tree-building run at a time; an unusable GP_WORK is one clear line."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from gptool import fsutil
from gptool.errors import HarnessError

HOLD = '''
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from gptool import fsutil
with fsutil.work_lock(Path(sys.argv[1]), "holder"):
    print("held", flush=True)
    time.sleep(2)
'''


def test_a_second_run_waits_and_says_for_whom(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen([sys.executable, '-c', HOLD, str(tmp_path), str(REPO / 'ci')],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == 'held'
    start = time.monotonic()
    with fsutil.work_lock(tmp_path, 'second'):
        waited = time.monotonic() - start
    holder.wait()
    # The holder keeps it for 2 s after saying so.
    assert waited > 1.0, 'got the lock while the holder still had it'
    assert f'second: waiting for {tmp_path}, in use by pid {holder.pid} (holder)' in \
        capsys.readouterr().err


def test_the_lock_is_free_again_after_a_run(tmp_path: Path) -> None:
    with fsutil.work_lock(tmp_path, 'first'):
        pass
    with fsutil.work_lock(tmp_path, 'second'):
        assert 'second' in (tmp_path / 'lock').read_text()


def test_an_unusable_gp_work_is_one_clear_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / 'file'
    not_a_dir.write_text('')
    with pytest.raises(HarnessError, match=r'GP_WORK=.*file/work is not usable .*writable directory'):
        with fsutil.work_lock(not_a_dir / 'work', 'run'):
            pass


def test_gptool_reports_an_unusable_gp_work_without_a_traceback(tmp_path: Path) -> None:
    not_a_dir = tmp_path / 'file'
    not_a_dir.write_text('')
    proc = subprocess.run([sys.executable, '-m', 'gptool', '--work', str(not_a_dir / 'work'),
                           'tree'], cwd=REPO / 'ci', capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.startswith('error: GP_WORK=')
