"""JUnit XML from real kunit.py JSON (made by kunit.py parse from its own test logs) and
from selftest TAP: every case is there, and a run that failed never reads green."""
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from gptool import junit
from test_selftest_verdict import GOOD, THROUGH_RUNNER


def kunit_json(kunit_tool: Path, log: str, tmp_path: Path) -> dict:
    out = tmp_path / 'kunit.json'
    subprocess.run([sys.executable, str(kunit_tool / 'kunit.py'), 'parse', f'--json={out}',
                    str(kunit_tool / 'test_data' / log)], capture_output=True, check=False)
    return json.loads(out.read_text())


def counts(xml: str) -> dict[str, int]:
    root = ET.fromstring(xml)
    total = {'tests': 0, 'failures': 0, 'errors': 0, 'skipped': 0}
    for suite in root.iter('testsuite'):
        for key in total:
            total[key] += int(suite.get(key, '0'))
    return total


def test_kunit_failures_and_skips_become_junit(kunit_tool: Path, tmp_path: Path) -> None:
    failed = kunit_json(kunit_tool, 'test_is_test_passed-failure.log', tmp_path)
    xml = junit.from_kunit(failed, 'kunit um/default', 'kunit.py exited with status 1')
    got = counts(xml)
    assert got['failures'] >= 1 and got['tests'] > got['failures']
    # Failing cases say so themselves: no extra harness case.
    assert ET.fromstring(xml).find(".//testsuite[@name='harness']") is None
    skipped = kunit_json(kunit_tool, 'test_skip_tests.log', tmp_path)
    got = counts(junit.from_kunit(skipped, 'kunit um/default', None))
    assert got['skipped'] >= 1 and got['failures'] == 0 and got['errors'] == 0


def test_a_crash_without_failing_cases_is_an_error(kunit_tool: Path, tmp_path: Path) -> None:
    passed = kunit_json(kunit_tool, 'test_is_test_passed-all_passed.log', tmp_path)
    assert counts(junit.from_kunit(passed, 'kunit', None))['errors'] == 0
    xml = junit.from_kunit(passed, 'kunit x86_64/kasan', 'the kernel reported "KASAN: ..."')
    harness = ET.fromstring(xml).find(".//testsuite[@name='harness']/testcase/error")
    assert harness is not None and 'KASAN' in harness.get('message', '')


def test_selftest_tap_becomes_junit() -> None:
    xml = junit.from_tap(GOOD, 'selftests x86_64/default', None)
    assert counts(xml) == {'tests': 2, 'failures': 0, 'errors': 0, 'skipped': 0}
    failed = GOOD.replace('ok 2 gp.shrinker_races', 'not ok 2 gp.shrinker_races')
    assert counts(junit.from_tap(failed, 'selftests', '1 tests failed'))['failures'] == 1
    died = GOOD.split('ok 2')[0] + 'Kernel panic - not syncing: Fatal exception\n'
    got = counts(junit.from_tap(died, 'selftests', 'kernel: Kernel panic'))
    assert got == {'tests': 2, 'failures': 0, 'errors': 1, 'skipped': 0}


def test_selftest_tap_through_the_runner_becomes_the_same_junit() -> None:
    xml = junit.from_tap(THROUGH_RUNNER, 'selftests x86_64/default', None)
    assert counts(xml) == {'tests': 2, 'failures': 0, 'errors': 0, 'skipped': 0}
    assert [c.get('name') for c in ET.fromstring(xml).iter('testcase')] == \
        ['gp.bad_requests_are_refused', 'gp.shrinker_races']
