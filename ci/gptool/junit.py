"""JUnit XML for CI: GitLab shows each case of a run (`artifacts: reports: junit`).

kunit.py 6.12 writes no JUnit; it is made here from its JSON, and for the selftests
from the TAP on the console. A run that ended badly without any case failing (a
crash, a hang, a WARN the harness caught) gets one more case that fails with why,
so the report never looks green when the run was not.
"""
import xml.etree.ElementTree as ET
from typing import Any

from . import ktap


def _case(suite: ET.Element, classname: str, name: str, status: str, message: str = '') -> None:
    case = ET.SubElement(suite, 'testcase', classname=classname, name=name)
    if status == 'FAIL':
        ET.SubElement(case, 'failure', message=message or 'failed')
    elif status == 'ERROR':
        ET.SubElement(case, 'error', message=message or 'crashed')
    elif status == 'SKIP':
        ET.SubElement(case, 'skipped', message=message)


def _finish(root: ET.Element) -> str:
    for suite in root.iter('testsuite'):
        cases = suite.findall('testcase')
        suite.set('tests', str(len(cases)))
        suite.set('failures', str(sum(1 for c in cases if c.find('failure') is not None)))
        suite.set('errors', str(sum(1 for c in cases if c.find('error') is not None)))
        suite.set('skipped', str(sum(1 for c in cases if c.find('skipped') is not None)))
    ET.indent(root)
    return ET.tostring(root, encoding='unicode', xml_declaration=True) + '\n'


def kunit_cases(group: dict[str, Any], prefix: str) -> list[tuple[str, str, str]]:
    """(suite path, case, status) of every leaf case; parameters are cases of their own."""
    name = f'{prefix}.{group.get("name")}' if prefix else str(group.get('name') or '')
    cases = [(name, str(case.get('name')), str(case.get('status')))
             for case in group.get('test_cases', [])]
    for sub in group.get('sub_groups', []):
        cases += kunit_cases(sub, name)
    return cases


def from_kunit(data: dict[str, Any], run: str, problem: str | None) -> str:
    """@data: kunit.py's JSON (None-safe); @run: e.g. 'kunit x86_64/default'."""
    root = ET.Element('testsuites', name=run)
    suites: dict[str, ET.Element] = {}
    failed = False
    for path, case, status in kunit_cases(data, ''):
        failed |= status in ('FAIL', 'ERROR')
        # The top group is kunit.py's own ("KUnit Test Group"): suites start below it.
        suite_name = path.split('.', 1)[1] if '.' in path else path
        if suite_name not in suites:
            suites[suite_name] = ET.SubElement(root, 'testsuite', name=suite_name)
        _case(suites[suite_name], suite_name, case, status)
    if problem and not failed:
        _case(ET.SubElement(root, 'testsuite', name='harness'), 'harness', run, 'ERROR', problem)
    return _finish(root)


def from_tap(console: str, run: str, problem: str | None) -> str:
    """The kselftest TAP of a console; @problem: why the run failed beyond its cases."""
    root = ET.Element('testsuites', name=run)
    suite = ET.SubElement(root, 'testsuite', name='grouped_pages')
    cases = ktap.parse(console).cases
    for case in cases:
        _case(suite, 'grouped_pages', case.name, case.status, case.detail)
    if problem and not any(case.status == 'FAIL' for case in cases):
        _case(ET.SubElement(root, 'testsuite', name='harness'), 'harness', run, 'ERROR', problem)
    return _finish(root)


def from_verdicts(run: str, suite_name: str, verdicts: list[tuple[str, str | None]]) -> str:
    """One case per (name, problem): a problem fails the case, None passes it."""
    root = ET.Element('testsuites', name=run)
    suite = ET.SubElement(root, 'testsuite', name=suite_name)
    for name, problem in verdicts:
        _case(suite, suite_name, name, 'FAIL' if problem else 'PASS', problem or '')
    return _finish(root)
