"""The fault-injection sweep's judging: what a boot covered and what fails it."""
import pytest

from gptool import faults
from gptool.errors import HarnessError

SETTING = faults.Setting('both-5pct', page_alloc_percent=5, slab_percent=5)

CLEAN = f"""\
GP-FAULTS-BEGIN
GP-KUNIT-BEGIN
    ok 1 gp_test_alloc_free
    not ok 2 gp_test_refill_node
    ok 3 gp_test_kasan_poisons_cached_pages # SKIP needs CONFIG_KASAN_GENERIC
ok 1 grouped_pages
GP-KUNIT-END
TAP version 13
1..1
# selftests: grouped_pages: gp_stress
# TAP version 13
# 1..2
# ok 1 gp.bad_requests_are_refused
# not ok 2 gp.memory_pressure
not ok 1 selftests: grouped_pages: gp_stress # exit=1
GP-SELFTESTS-EXIT 0
GP-FAULTS-END
GP-FAULTS-LEFT fail_page_alloc {faults.TIMES - 120}
GP-FAULTS-LEFT failslab {faults.TIMES - 7}
GP-CACHE /sys/kernel/debug/grouped_pages/pks_pgtables: pages_in_use 311
GP-CACHE /sys/kernel/debug/grouped_pages/test: pages_in_use 0
"""


def test_failing_cases_are_counted_not_judged() -> None:
    out = faults.judge(SETTING, CLEAN, False, 60)
    assert out.problems == []
    assert out.injected == {'fail_page_alloc': 120, 'failslab': 7}
    assert out.kunit == (1, 1)
    assert out.selftests == (1, 1)


def test_pages_left_in_use_fail_the_setting_but_page_tables_do_not() -> None:
    leaked = CLEAN.replace('test: pages_in_use 0', 'test: pages_in_use 3')
    assert faults.judge(SETTING, leaked, False, 60).problems == \
        ['pages left in use after the tests: test 3']


def test_a_kunit_cache_never_destroyed_is_a_leak() -> None:
    left = CLEAN + 'GP-CACHE /sys/kernel/debug/grouped_pages/gp_test_refill_node: pages_in_use 1\n'
    assert 'gp_test_refill_node 1' in faults.judge(SETTING, left, False, 60).problems[0]


@pytest.mark.parametrize('console, expected', [
    (CLEAN.replace('GP-FAULTS-END\n', 'BUG: unable to handle page fault for address: 0\n'),
     'kernel: BUG: unable to handle page fault'),
    (CLEAN.replace('GP-KUNIT-END', 'WARNING: CPU: 0 PID: 1 at mm/grouped_pages.c:9 gp_x+0x1/0x2\n'
                   'GP-KUNIT-END'), 'kernel: WARNING: CPU: 0 PID: 1 at mm/grouped_pages.c:9'),
    (CLEAN.split('GP-FAULTS-END')[0], 'did not finish'),
    (CLEAN.replace('GP-FAULTS-BEGIN', 'GP-FAULTS-BEGIN\nGP-FAULTS-BAD-KNOB failslab/times=1'),
     'could not set failslab/times=1'),
    (CLEAN.replace('GP-KUNIT-END', 'GP-KUNIT-INSMOD-FAILED /modules/grouped_pages_kunit.ko\n'
                   'GP-KUNIT-END'), 'the KUnit module did not load'),
    (CLEAN.replace('    ok 1 gp_test_alloc_free\n    not ok 2 gp_test_refill_node\n'
                   '    ok 3 gp_test_kasan_poisons_cached_pages # SKIP needs CONFIG_KASAN_GENERIC\n',
                   ''), 'no KUnit case reported a result'),
    (CLEAN.replace('not ok 1 selftests: grouped_pages: gp_stress # exit=1\n', ''),
     'kselftest never reported on gp_stress'),
    (CLEAN.replace('# not ok 2 gp.memory_pressure\n', ''), '1 selftest results for a plan of 2'),
])
def test_what_fails_a_setting(console: str, expected: str) -> None:
    assert any(expected in p for p in faults.judge(SETTING, console, False, 60).problems)


def test_a_hang_fails_the_setting() -> None:
    assert 'hang: no end within 60 s' in faults.judge(SETTING, CLEAN, True, 60).problems


def test_a_warn_the_suite_provokes_is_not_a_problem() -> None:
    provoked = CLEAN.replace('GP-KUNIT-END', 'grouped_pages: gp_test_double_free: refusing to free '
                             'pfn 0x1234: not in use\nWARNING: CPU: 0 PID: 1 at mm/grouped_pages.c:9'
                             ' gp_bad_free+0x1/0x2\nGP-KUNIT-END')
    assert faults.judge(SETTING, provoked, False, 60).problems == []


def test_the_knobs_turn_failures_on_last_and_only_what_the_setting_names() -> None:
    knobs = faults.Setting('p', page_alloc_percent=10, interval=3).knobs((0x1000, 0x2000))
    assert knobs[-1] == 'fail_page_alloc/probability=10'
    assert 'fail_page_alloc/require-start=0x1000' in knobs
    assert 'fail_page_alloc/require-end=0x2000' in knobs
    assert 'fail_page_alloc/interval=3' in knobs and 'fail_page_alloc/min-order=0' in knobs
    assert 'fail_page_alloc/ignore-gfp-wait=N' in knobs
    assert not any(k.startswith('failslab/') for k in knobs)
    # gp.args words are split on ':' and spaces in the guest.
    assert not any(':' in k or ' ' in k for s in faults.SWEEP for k in s.knobs())


def test_an_unknown_setting_is_refused_with_the_valid_names() -> None:
    with pytest.raises(HarnessError, match=r'no fault-injection setting named bogus: valid are '
                       r'page-alloc-1pct, .*both-5pct'):
        faults.chosen(['bogus'])
    assert [s.name for s in faults.chosen(['slab-1pct'])] == ['slab-1pct']


def test_a_setting_that_injected_nothing_tested_nothing() -> None:
    none = CLEAN.replace(f'{faults.TIMES - 120}', str(faults.TIMES)) \
        .replace(f'{faults.TIMES - 7}', str(faults.TIMES))
    assert 'no failure was injected: the sweep tested nothing' in \
        faults.judge(SETTING, none, False, 60).problems


def test_each_setting_is_a_junit_case() -> None:
    import xml.etree.ElementTree as ET
    from gptool import junit
    xml = junit.from_verdicts('faults x86_64/fault-injection', 'faults',
                              [('slab-1pct', None), ('both-5pct', 'pages left in use: test 3')])
    cases = ET.fromstring(xml).findall('.//testcase')
    assert [c.get('name') for c in cases] == ['slab-1pct', 'both-5pct']
    failure = cases[1].find('failure')
    assert cases[0].find('failure') is None and failure is not None
    assert failure.get('message') == 'pages left in use: test 3'
