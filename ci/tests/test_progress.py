"""Long steps print a heartbeat with the elapsed time."""
import time

import pytest

from gptool.progress import heartbeat


def test_a_long_step_beats_and_a_short_one_does_not(capsys: pytest.CaptureFixture[str]) -> None:
    with heartbeat('make bzImage', every=0.1):
        time.sleep(0.35)
    beats = capsys.readouterr().out.splitlines()
    assert len(beats) >= 2
    assert all(b.startswith('make bzImage: still running, ') and b.endswith(' s') for b in beats)
    with heartbeat('quick', every=5):
        pass
    assert capsys.readouterr().out == ''
