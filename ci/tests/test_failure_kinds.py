"""Failures carry a kind, so a bisect step can tell a bad revision from one it cannot
test and from a broken machine: checked on real QEMU and real harness runs."""
import json
from pathlib import Path

import pytest

from gptool import errors, kunit_run, qemu
from gptool.__main__ import main
from gptool.errors import HarnessError


def test_qemu_that_does_not_start_is_the_machine_not_the_kernel(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match='QEMU did not start: qemu-system-x86_64: ') as err:
        qemu.boot(['qemu-system-x86_64', '-nodefaults', '-no-such-option'], 30, echo=False)
    assert err.value.kind == errors.INFRASTRUCTURE
    with pytest.raises(HarnessError, match='QEMU did not start') as err:
        qemu.boot([str(tmp_path / 'no-qemu-here')], 30, echo=False)
    assert err.value.kind == errors.INFRASTRUCTURE


@pytest.mark.parametrize('diagnosis, kind', [
    ('kernel build failed for ARCH=um CONFIG=default', errors.UNTESTABLE),
    ('kunitconfig options did not land: CONFIG_X=y is n', errors.UNTESTABLE),
    ('the kunitconfig fragments disagree: ...', errors.UNTESTABLE),
    ('QEMU did not start: qemu-system-x86_64: -cpu nonsense: unable to find CPU model', errors.INFRASTRUCTURE),
    ('disk full: "No space left on device" while building or running', errors.INFRASTRUCTURE),
    ('kunit.py rejected its arguments: unrecognized arguments', errors.USAGE),
    ('the kernel crashed (panic/oops/BUG, or tests cut short): console log kept', errors.FAILURE),
    ('the kernel did not finish within 600 s (hang?): console log kept', errors.FAILURE),
])
def test_kunit_diagnoses_have_a_kind(diagnosis: str, kind: str) -> None:
    assert kunit_run.diagnosis_kind(diagnosis) == kind


def test_usage_errors_default_to_the_usage_kind() -> None:
    assert HarnessError('bad', 2).kind == errors.USAGE
    assert HarnessError('failed').kind == errors.FAILURE
    assert HarnessError('no build', 1, errors.UNTESTABLE).kind == errors.UNTESTABLE


def test_outcome_file_says_how_a_run_ended(tmp_path: Path) -> None:
    outcome = tmp_path / 'outcome.json'
    status = main(['--outcome', str(outcome), '--work', str(tmp_path / 'work'),
                   'kunit', '--config', 'nonesuch'])
    assert status == 2
    written = json.loads(outcome.read_text())
    # An unknown config at some commit is untestable there, not a usage error of the bisect.
    assert written['kind'] == errors.UNTESTABLE and written['status'] == 2
    assert "unknown CONFIG='nonesuch'" in written['message']
