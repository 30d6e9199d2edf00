"""How a QEMU console becomes a verdict: TAP results, kernel problems, hangs."""
import json
from pathlib import Path

import pytest

from conftest import REPO
from gptool import selftest_run, tree
from gptool.errors import HarnessError
from gptool.kbuild import first_error
from gptool.selftest_run import judge

GOOD = """\
[    1.0] Run /init as init process
GP-SELFTESTS-BEGIN
TAP version 13
1..2
# Starting 2 tests from 1 test cases.
#  RUN           gp.bad_requests_are_refused ...
#            OK  gp.bad_requests_are_refused
ok 1 gp.bad_requests_are_refused
#  RUN           gp.shrinker_races ...
#            OK  gp.shrinker_races
ok 2 gp.shrinker_races
# PASSED: 2 / 2 tests passed.
GP-SELFTESTS-EXIT 0
"""


def test_all_passed() -> None:
    verdict = judge(GOOD, False, 60)
    assert (verdict.passed, verdict.failed, verdict.skipped, verdict.problems) == (2, 0, 0, [])


def test_failed_test_counts() -> None:
    console = GOOD.replace('ok 2 gp.shrinker_races', 'not ok 2 gp.shrinker_races')
    console = console.replace('EXIT 0', 'EXIT 1')
    verdict = judge(console, False, 60)
    assert (verdict.passed, verdict.failed) == (1, 1)


def test_panic_before_the_end_is_a_failure() -> None:
    console = GOOD.split('ok 2')[0] + '[   9.9] Kernel panic - not syncing: Fatal exception\n'
    verdict = judge(console, False, 60)
    assert any('Kernel panic' in p for p in verdict.problems)
    assert any('did not finish' in p for p in verdict.problems)


def test_warning_in_the_log_is_a_failure_even_if_tests_pass() -> None:
    console = GOOD.replace('GP-SELFTESTS-EXIT', 'WARNING: CPU: 0 PID: 1 at mm/grouped_pages.c:1\nGP-SELFTESTS-EXIT')
    assert judge(console, False, 60).problems


def test_hang_is_a_failure() -> None:
    verdict = judge(GOOD.split('ok 2')[0], True, 60)
    assert any('hang' in p for p in verdict.problems)


def test_skip_is_reported_not_passed() -> None:
    console = GOOD.replace('ok 2 gp.shrinker_races', 'ok 2 gp.shrinker_races # SKIP no debugfs')
    verdict = judge(console, False, 60)
    assert verdict.skipped == 1 and verdict.passed == 1 and verdict.problems


def test_empty_console_is_a_failure() -> None:
    assert judge('', False, 60).problems


def test_missing_result_is_a_failure_even_with_the_exit_marker() -> None:
    console = GOOD.replace('ok 2 gp.shrinker_races\n', '')
    verdict = judge(console, False, 60)
    assert verdict.passed == 1
    assert '1 test results for a plan of 2' in verdict.problems


def test_missing_plan_is_a_failure() -> None:
    assert 'no TAP plan (1..N) in the console' in judge(GOOD.replace('1..2\n', ''), False, 60).problems


def test_first_error_names_the_failing_line() -> None:
    output = ('CC lib/error-inject.o\nmm/x.c:3:1: error: expected ;\n'
              'make: *** [x] Error 1\n')
    assert first_error(output) == 'mm/x.c:3:1: error: expected ;'
    assert first_error('') == 'no output'


def test_a_kernel_that_does_not_build_keeps_its_log_with_the_results(tmp_path: Path) -> None:
    # A real make on a directory that holds no kernel: it fails at once.
    not_a_kernel = tmp_path / 'linux'
    not_a_kernel.mkdir()
    base = tree.Base(key='not-a-kernel', version='6.12.0', origin={'kind': 'tarball', 'path': 'x'})
    req = selftest_run.SelftestRequest(
        repo=REPO, tree=tree.Tree(not_a_kernel, base), work=tmp_path / 'work', config='default',
        jobs=1, qemu_cpu='max', smp=1, memory_mb=256, timeout=60, results=tmp_path / 'results')
    with pytest.raises(HarnessError, match=r'kernel build failed .*build log kept: .*build\.log'):
        selftest_run.run(req)
    (stored,) = (tmp_path / 'results' / 'selftests').iterdir()
    assert 'No rule to make target' in (stored / 'build.log').read_text() or \
        'olddefconfig' in (stored / 'build.log').read_text()
    meta = json.loads((stored / 'meta.json').read_text())
    assert meta['build_failed'].startswith('kernel build failed')
    assert meta['config'] == 'default'


def selection(tmp_path: Path, tests: list[str], cmdline: str = '') -> selftest_run.SelftestRequest:
    """A request on a tree holding only our gp_stress.c: enough to check a selection."""
    source = tmp_path / selftest_run.STRESS_SOURCE
    source.parent.mkdir(parents=True)
    source.write_text((REPO / 'selftests/grouped_pages/gp_stress.c').read_text())
    prepared = tree.Tree(tmp_path, tree.Base(key='k', version='6.12', origin={}))
    return selftest_run.SelftestRequest(
        repo=REPO, tree=prepared, work=tmp_path, config='default', jobs=1, qemu_cpu='max',
        smp=2, memory_mb=1024, timeout=60, results=tmp_path / 'results', cmdline=cmdline,
        tests=tests)


def test_selected_tests_go_to_gp_stress(tmp_path: Path) -> None:
    req = selection(tmp_path, ['refill_splits_nothing', 'shrinker_races'], 'nokaslr')
    selftest_run.check_request(req)
    assert selftest_run.guest_cmdline(req) == \
        'gp.run=selftests gp.args=-t:refill_splits_nothing:-t:shrinker_races nokaslr'
    assert 'gp.args' not in selftest_run.guest_cmdline(selection(tmp_path / 'all', []))


def test_unknown_test_is_refused_with_the_valid_names(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r'no selftest named nonesuch: valid are .*'
                       r'memory_pressure.*refill_splits_nothing') as err:
        selftest_run.check_request(selection(tmp_path, ['nonesuch']))
    assert err.value.status == 2


def test_cmdline_may_not_choose_the_run(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match='may not set gp.run= or gp.args='):
        selftest_run.check_request(selection(tmp_path, [], 'gp.args=-t:x'))


def test_a_skip_the_config_expects_is_no_problem() -> None:
    console = GOOD.replace('ok 2 gp.shrinker_races', 'ok 2 gp.shrinker_races # SKIP no PKS')
    assert judge(console, False, 60).problems == ['skipped: gp.shrinker_races # SKIP no PKS']
    verdict = judge(console, False, 60, may_skip=('shrinker_races',))
    assert verdict.problems == [] and verdict.skipped == 1 and verdict.passed == 1
    # Another test's skip still fails the run.
    assert judge(console, False, 60, may_skip=('memory_pressure',)).problems


def test_no_pks_config_names_its_expected_skips() -> None:
    from gptool import kbuild
    fragment = kbuild.config_fragments(REPO)['no-pks']
    known = selftest_run.TEST_DEFINITION.findall(
        (REPO / 'selftests/grouped_pages/gp_stress.c').read_text())
    assert fragment.selftests_may_skip == ('pks_pgtables', 'pks_pgtables_memcg_accounting',
                                           'pks_pgtable_writers', 'walk_counts_deposited_tables')
    assert set(fragment.selftests_may_skip) <= set(known)


# The same run through kselftest's runner (run_kselftest.sh), as the initramfs runs it.
THROUGH_RUNNER = """\
[    1.0] Run /init as init process
GP-SELFTESTS-BEGIN
TAP version 13
1..1
# timeout set to 600
# selftests: grouped_pages: gp_stress
# TAP version 13
# 1..2
# # Starting 2 tests from 1 test cases.
# #  RUN           gp.bad_requests_are_refused ...
# #            OK  gp.bad_requests_are_refused
# ok 1 gp.bad_requests_are_refused
# #  RUN           gp.shrinker_races ...
# #            OK  gp.shrinker_races
# ok 2 gp.shrinker_races
# # PASSED: 2 / 2 tests passed.
# # Totals: pass:2 fail:0 xfail:0 xpass:0 skip:0 error:0
ok 1 selftests: grouped_pages: gp_stress
GP-SELFTESTS-EXIT 0
"""


def test_through_the_runner_the_tests_are_read_not_the_runner_line() -> None:
    verdict = judge(THROUGH_RUNNER, False, 60)
    assert (verdict.passed, verdict.failed, verdict.skipped, verdict.problems) == (2, 0, 0, [])


def test_the_settings_timeout_is_a_failure_named_as_such() -> None:
    console = THROUGH_RUNNER.split('# ok 2')[0] + \
        'not ok 1 selftests: grouped_pages: gp_stress # TIMEOUT 600 seconds\nGP-SELFTESTS-EXIT 0\n'
    problems = judge(console, False, 60).problems
    assert any('stopped by kselftest: TIMEOUT 600 seconds' in p for p in problems)
    assert '1 test results for a plan of 2' in problems


def test_a_runner_that_never_reports_gp_stress_did_not_finish() -> None:
    console = THROUGH_RUNNER.replace('ok 1 selftests: grouped_pages: gp_stress\n', '')
    assert 'the tests did not finish (crash, panic or hang before the end)' in \
        judge(console, False, 60).problems


def test_through_the_runner_a_failed_case_is_counted_once() -> None:
    console = THROUGH_RUNNER.replace('# ok 2 gp.shrinker_races', '# not ok 2 gp.shrinker_races') \
        .replace('ok 1 selftests:', 'not ok 1 selftests:')
    verdict = judge(console, False, 60)
    assert (verdict.passed, verdict.failed, verdict.problems) == (1, 1, [])


@pytest.mark.parametrize('command, status', [(['1', 'sleep', '5'], 124),
                                             (['5', 'sh', '-c', 'exit 3'], 3),
                                             (['5', 'true'], 0)])
def test_the_initramfs_timeout_behaves_as_kselftest_expects(command: list[str], status: int,
                                                            tmp_path: Path) -> None:
    """The runner calls `timeout --foreground N cmd` and takes 124 for a timeout."""
    import subprocess
    from gptool import kbuild
    shim = tmp_path / 'timeout'
    shim.write_text(kbuild.TIMEOUT_SHIM)
    shim.chmod(0o755)
    assert subprocess.run([str(shim), '--foreground', *command]).returncode == status


def test_a_kmemleak_report_fails_the_run() -> None:
    leak = GOOD.replace('GP-SELFTESTS-EXIT 0\n', 'GP-SELFTESTS-EXIT 0\nGP-KMEMLEAK-SCANNED\n'
                        'unreferenced object 0xffff888004a1c000 (size 64):\n'
                        '  comm "gp_stress", pid 71, jiffies 4294912345\n')
    assert any('unreferenced object 0xffff888004a1c000' in p for p in judge(leak, False, 60).problems)


def test_a_kmemleak_kernel_must_have_scanned() -> None:
    from gptool import qemu
    config = 'CONFIG_DEBUG_KMEMLEAK=y\n'
    assert 'never scanned' in str(qemu.kmemleak_not_scanned(config, GOOD))
    assert qemu.kmemleak_not_scanned(config, GOOD + 'GP-KMEMLEAK-SCANNED\n') is None
    assert qemu.kmemleak_not_scanned('# CONFIG_DEBUG_KMEMLEAK is not set\n', GOOD) is None


def test_only_whole_init_words_are_refused(tmp_path: Path) -> None:
    from gptool import qemu
    qemu.refuse_init_words('nokaslr xgp.run=1 foo=gp.args=', 'x', 'y')
    with pytest.raises(HarnessError, match=r'has gp.run=bench\)'):
        qemu.refuse_init_words('nokaslr gp.run=bench', 'BENCH_CMDLINE', 'the bench sets them')
