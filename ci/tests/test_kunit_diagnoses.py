"""The one-line diagnoses of a failed KUnit run, on what the real kunit.py prints.

kunit.py's own test_data logs go through `kunit.py parse`, and a kunitconfig conflict
through `kunit.py config`: the diagnosis must name what happened, not "tests failed".
"""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from gptool import kunit_run


def request(tmp_path: Path) -> kunit_run.RunRequest:
    return kunit_run.RunRequest(repo=REPO, tree=None, work=tmp_path, arch='x86_64',  # type: ignore[arg-type]
                                config='default', jobs=1, qemu_cpu='max', timeout=300,
                                results=tmp_path)


def run_kunit_tool(kunit_tool: Path, *args: str) -> tuple[str, int]:
    proc = subprocess.run([sys.executable, str(kunit_tool / 'kunit.py'), *args],
                          capture_output=True, text=True, check=False)
    return proc.stdout + proc.stderr, proc.returncode


@pytest.mark.parametrize('log, diagnosis', [
    ('test_is_test_passed-no_tests_run_no_header', 'the kernel printed no KTAP'),
    ('test_insufficient_memory', 'the kernel printed no KTAP'),
    ('test_is_test_passed-no_tests_run_with_header', 'ran no test'),
    ('test_kernel_panic_interrupt', 'the kernel crashed'),
    ('test_is_test_passed-failure', 'tests failed'),
])
def test_diagnosis_of_kunit_tool_logs(kunit_tool: Path, tmp_path: Path, log: str,
                                      diagnosis: str) -> None:
    output, status = run_kunit_tool(kunit_tool, 'parse', str(kunit_tool / 'test_data' / f'{log}.log'))
    assert status != 0, output
    assert diagnosis in kunit_run.diagnose(request(tmp_path), output, status)


def test_a_passing_log_is_not_diagnosed_as_anything(kunit_tool: Path) -> None:
    output, status = run_kunit_tool(kunit_tool, 'parse',
                                    str(kunit_tool / 'test_data' / 'test_is_test_passed-all_passed.log'))
    assert status == 0, output


def test_kunitconfig_conflict_is_named_not_a_traceback(kunit_tool: Path, tmp_path: Path) -> None:
    first, second = tmp_path / 'a.kunitconfig', tmp_path / 'b.kunitconfig'
    first.write_text('CONFIG_KUNIT=y\nCONFIG_GROUPED_PAGES=y\n')
    second.write_text('CONFIG_KUNIT=y\n# CONFIG_GROUPED_PAGES is not set\n')
    output, status = run_kunit_tool(kunit_tool, 'config', f'--build_dir={tmp_path / "build"}',
                                    f'--kunitconfig={first}', f'--kunitconfig={second}')
    assert status != 0 and 'Traceback' in output
    diagnosis = kunit_run.diagnose(request(tmp_path), output, status)
    assert diagnosis.startswith('the kunitconfig fragments disagree')
    assert 'CONFIG_GROUPED_PAGES=y' in diagnosis
    assert '# CONFIG_GROUPED_PAGES is not set' in diagnosis


def test_build_output_that_says_bug_or_oops_is_a_build_failure(tmp_path: Path) -> None:
    """The compiler quotes source lines: "BUG:" there is no crash, and the commit is untestable."""
    output = ('[12:00:00] Building KUnit Kernel ...\n'
              "mm/grouped_pages.c:42:9: error: implicit declaration of 'oops' (pr_err(\"BUG: x\"))\n"
              'ERROR:root:make: *** [Makefile:224: __sub-make] Error 2\n')
    diagnosis = kunit_run.diagnose(request(tmp_path), output, 1)
    assert diagnosis == 'kernel build failed for ARCH=x86_64 CONFIG=default'
    assert kunit_run.diagnosis_kind(diagnosis) == 'untestable'


def test_a_kunit_py_traceback_is_the_harness_not_failed_tests(tmp_path: Path) -> None:
    output = ('[12:00:00] Starting KUnit Kernel (1/1)...\n'
              'Traceback (most recent call last):\n'
              '  File "tools/testing/kunit/kunit.py", line 640, in <module>\n'
              '    main(sys.argv[1:])\n'
              "KeyError: 'suite'\n")
    diagnosis = kunit_run.diagnose(request(tmp_path), output, 1)
    assert diagnosis == "kunit.py failed with a traceback: KeyError: 'suite'"
    assert kunit_run.diagnosis_kind(diagnosis) == 'infrastructure'
