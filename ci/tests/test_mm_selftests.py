"""make mm-selftests: how the two boots of the upstream mm subset are read and judged."""
import subprocess
from pathlib import Path

import pytest

from gptool import kbuild, mm_selftests, tree

TESTS = (mm_selftests.MmTest('mremap_test', './mremap_test'),
         mm_selftests.MmTest('cow', './cow'),
         mm_selftests.MmTest('hugepage-mmap', './hugepage-mmap'))


def console(results: dict[str, int], status: str = 'enforcing 1\npk_faults 0\nwalk_untagged 0',
            end: bool = True, extra: str = '') -> str:
    lines = ['[    1.0] Run /init as init process', 'GP-MM-BEGIN']
    for name, code in results.items():
        lines += [f'GP-MM-RUN {name}', f'output of {name}', f'GP-MM-RESULT {name} {code}']
    lines += [extra] if extra else []
    if end:
        lines.append('GP-MM-END')
        lines += [f'GP-MM-STATUS {line}' for line in status.splitlines() if line]
    return '\n'.join(lines) + '\n'


def boots(on: dict[str, int], off: dict[str, int], **kwargs: object) -> list[str]:
    enforcing = mm_selftests.parse_boot(console(on, **kwargs), False, TESTS)  # type: ignore[arg-type]
    nopks = mm_selftests.parse_boot(console(off, status=''), False, TESTS)
    return mm_selftests.judge(enforcing, nopks)


def test_the_same_results_both_ways_pass() -> None:
    same = {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 4}
    assert boots(same, same) == []


def test_a_test_that_fails_only_enforcing_fails_the_run() -> None:
    problems = boots({'mremap_test': 0, 'cow': 1, 'hugepage-mmap': 0},
                     {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 0})
    assert problems == ['cow: pass with nopkstables, fail (1) enforcing']


def test_a_test_that_fails_both_ways_is_not_held_against_the_run() -> None:
    results = {'mremap_test': 0, 'cow': 1, 'hugepage-mmap': 0}
    assert boots(results, results) == []


def test_a_timeout_is_named_and_a_skip_that_passes_enforcing_is_no_regression() -> None:
    problems = boots({'mremap_test': 124, 'cow': 0, 'hugepage-mmap': 0},
                     {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 4})
    assert problems == ['mremap_test: pass with nopkstables, timed out enforcing']


def test_a_run_where_nothing_passed_or_a_result_is_missing_proves_nothing() -> None:
    skipped = {'mremap_test': 4, 'cow': 4, 'hugepage-mmap': 4}
    assert boots(skipped, skipped) == ['no test passed with nopkstables: the run proves nothing']
    missing = mm_selftests.parse_boot(console({'mremap_test': 0, 'cow': 0}, status=''), False,
                                      TESTS)
    ok = mm_selftests.parse_boot(console({'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 0}),
                                 False, TESTS)
    assert mm_selftests.judge(ok, missing) == [
        'hugepage-mmap: no result with nopkstables, pass enforcing']


def test_a_skip_that_becomes_a_failure_counts() -> None:
    problems = boots({'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 1},
                     {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 4})
    assert problems == ['hugepage-mmap: skip with nopkstables, fail (1) enforcing']


def test_pk_faults_and_untagged_tables_fail_the_run() -> None:
    same = {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 0}
    problems = boots(same, same, status='enforcing 1\npk_faults 2\nwalk_untagged 3')
    assert problems == ['enforcing: pk_faults 2, not 0',
                        'enforcing: the walk after the tests found 3 untagged tables, not 0']


def test_a_boot_that_is_not_enforcing_proves_nothing() -> None:
    same = {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 0}
    problems = boots(same, same, status='')
    assert any('not enforcing' in problem for problem in problems)
    assert 'enforcing: pk_faults None, not 0' in problems


def test_an_oops_or_a_stop_before_the_end_is_a_failure_with_the_test_it_stopped_in() -> None:
    oops = console({'mremap_test': 0}, end=False,
                   extra='GP-MM-RUN cow\nOops: write to page table at copy_pte_range')
    boot = mm_selftests.parse_boot(oops, False, TESTS)
    assert boot.results == {'mremap_test': 0, 'cow': None, 'hugepage-mmap': None}
    assert boot.problem == 'kernel report: Oops: write to page table at copy_pte_range'
    stopped = mm_selftests.parse_boot(console({'mremap_test': 0}, end=False), False, TESTS)
    assert stopped.problem is not None and 'stopped before the last test' in stopped.problem
    hung = mm_selftests.parse_boot(console({'mremap_test': 0}, end=False), True, TESTS)
    assert hung.problem == 'the guest hung (timed out)'
    ok = {'mremap_test': 0, 'cow': 0, 'hugepage-mmap': 0}
    problems = mm_selftests.judge(boot, mm_selftests.parse_boot(console(ok, status=''), False,
                                                                TESTS))
    assert problems[0] == 'enforcing: kernel report: Oops: write to page table at copy_pte_range'
    assert 'cow: pass with nopkstables, no result enforcing' in problems


def test_the_initramfs_init_runs_the_mm_list_and_reports_pks_counters() -> None:
    init = kbuild.INIT_SCRIPT
    assert 'mm)' in init and '< /mm/tests' in init
    assert 'GP-MM-RESULT $name $?' in init
    assert 'GP-MM-STATUS walk_untagged' in init


@pytest.mark.slow
def test_every_test_of_the_subset_and_its_helpers_exist_in_6_12(tmp_path: Path) -> None:
    names = [test.source_file for test in mm_selftests.SUBSET]
    assert len(names) == len(set(names))
    assert names[-1] == 'protection_keys.c'
    assert all(test.command.startswith(f'./{test.name}') for test in mm_selftests.SUBSET)
    top = 'linux-source-6.12/' + mm_selftests.MM_DIR
    wanted = [f'{top}/{name}' for name in (*names, *mm_selftests.HELPERS)]
    subprocess.run(['tar', '-x', '-f', str(tree.DEFAULT_TARBALL), '-C', str(tmp_path), *wanted],
                   check=True)
    assert all((tmp_path / path).is_file() for path in wanted)


def test_junit_fails_the_test_a_problem_names_and_the_run_for_the_rest() -> None:
    import xml.etree.ElementTree as ET
    xml = mm_selftests.junit_xml('mm-selftests x86_64/default', ['mremap_test', 'cow'],
                                 ['cow: pass with nopkstables, fail (1) enforcing',
                                  'enforcing: pk_faults 2, not 0'])
    cases = {case.get('name'): case for case in ET.fromstring(xml).iter('testcase')}
    assert cases['mremap_test'].find('failure') is None
    failure = cases['cow'].find('failure')
    assert failure is not None and 'fail (1) enforcing' in (failure.get('message') or '')
    run = cases['pks page tables and kernel'].find('failure')
    assert run is not None and run.get('message') == 'enforcing: pk_faults 2, not 0'
    clean = ET.fromstring(mm_selftests.junit_xml('r', ['cow'], []))
    assert all(case.find('failure') is None for case in clean.iter('testcase'))
