"""Kconfig mismatch explanations on real Kconfig files, and result directories."""
from pathlib import Path

import pytest

from conftest import REPO
from gptool import kbuild, kconfig, kunit_run, tree
from gptool.errors import HarnessError


def test_parse_config_reads_set_and_unset() -> None:
    values = kconfig.parse_config('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n')
    assert values == {'CONFIG_A': 'y', 'CONFIG_B': 'n', 'CONFIG_C': '"x"'}


def test_blocked_option_names_its_dependency(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    dotconfig = {'CONFIG_MMU': 'y', 'CONFIG_HIGHMEM': 'y', 'CONFIG_GROUPED_PAGES': 'n'}
    wrong = kconfig.mismatches({'CONFIG_GROUPED_PAGES': 'y', 'CONFIG_MMU': 'y'}, dotconfig,
                               prepared.path)
    assert [m.option for m in wrong] == ['CONFIG_GROUPED_PAGES']
    assert wrong[0].reason == 'depends on MMU && !HIGHMEM [HIGHMEM=y, MMU=y]'


def test_misspelt_option_is_reported(kernel_git: Path, repo_copy: Path, tmp_path: Path) -> None:
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    wrong = kconfig.mismatches({'CONFIG_GROUPED_PAGE': 'y'}, {}, prepared.path)
    assert 'no such Kconfig symbol' in wrong[0].reason


def test_config_fragments_and_arches() -> None:
    fragments = kbuild.config_fragments(REPO)
    assert {'default', 'highmem', 'kasan', 'lockdep'} <= fragments.keys()
    assert fragments['highmem'].arches == ('i386',)
    assert fragments['default'].arches == kbuild.ARCHES


def test_result_directories_are_never_reused(tmp_path: Path) -> None:
    from gptool.fsutil import publish_dir

    def fill(staging: Path) -> None:
        (staging / 'meta.json').write_text('{}')
    first = publish_dir(tmp_path, 'run', fill)
    second = publish_dir(tmp_path, 'run', fill)
    assert (first.name, second.name) == ('run', 'run.1')
    assert (first / 'meta.json').is_file() and (second / 'meta.json').is_file()
    assert not list(tmp_path.glob('.partial-*'))


def test_failed_fill_leaves_nothing_half_written(tmp_path: Path) -> None:
    from gptool.fsutil import publish_dir

    def fill(staging: Path) -> None:
        (staging / 'console.log').write_text('partial')
        raise OSError('disk full')
    try:
        publish_dir(tmp_path, 'run', fill)
    except OSError:
        pass
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_option_inside_an_if_block_names_the_block(real_kernel_files: Path, tmp_path: Path) -> None:
    """MEMCG sits inside 'if CGROUPS' in init/Kconfig: that is the reason it can be off."""
    tree_dir = tmp_path / 'tree'
    (tree_dir / 'init').mkdir(parents=True)
    import subprocess
    subprocess.run(['tar', '-x', '-f', str(tree.DEFAULT_TARBALL), '-C', str(tree_dir),
                    '--strip-components=1', 'linux-source-6.12/init/Kconfig'], check=True)
    wrong = kconfig.mismatches({'CONFIG_MEMCG': 'y'}, {'CONFIG_CGROUPS': 'n'}, tree_dir)
    assert 'depends on CGROUPS [CGROUPS=n]' in wrong[0].reason


def test_gitlab_matrix_matches_local_matrix() -> None:
    """`make matrix` and GitLab CI must run the same rows."""
    import re
    local = {tuple(line.split()) for line in (REPO / 'ci/matrix').read_text().splitlines()
             if line.strip() and not line.startswith('#')}
    ci = (REPO / '.gitlab-ci.yml').read_text()
    gitlab = set(re.findall(r'\{ARCH: (\S+), CONFIG: (\S+), QEMU_CPU: (\S+)\}', ci))
    gitlab |= {('selftests', config, cpu)
               for config, cpu in re.findall(r'\{CONFIG: (\S+), QEMU_CPU: (\S+)\}', ci)}
    assert local == gitlab
    fragments = kbuild.config_fragments(REPO)
    for arch, config, _ in local:
        assert (arch if arch != 'selftests' else 'x86_64') in fragments[config].arches


def test_dependencies_come_from_the_arch_being_built(kernel_git: Path, repo_copy: Path,
                                                    tmp_path: Path) -> None:
    """A symbol defined by several arches is explained by the Kconfig of the one built."""
    prepared = tree.prepare(repo_copy, tmp_path / 'work', str(kernel_git))
    other = prepared.path / 'arch/arm64/Kconfig'
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text('config PKS_PG_TABLES\n\tbool\n\tdepends on ARM64_ONLY_THING\n')
    wrong = kconfig.mismatches({'CONFIG_PKS_PG_TABLES': 'y'}, {'CONFIG_X86_64': 'y'},
                               prepared.path, 'x86_64')
    assert 'ARM64_ONLY_THING' not in wrong[0].reason
    assert 'GROUPED_PAGES' in wrong[0].reason


def test_kernel_reports_fail_a_run_whose_cases_passed() -> None:
    log = ('    ok 3 gp_test_double_free\n'
           'grouped_pages: gp_test_double_free: refusing to free pfn 0x25ff: double free\n'
           'WARNING: CPU: 0 PID: 134 at mm/grouped_pages.c:365 grouped_pages_free+0x16d/0x1b0\n')
    assert kunit_run.kernel_report(log) is None
    lockdep = log + '[   3.1] WARNING: possible circular locking dependency detected\n'
    assert 'possible circular locking' in str(kunit_run.kernel_report(lockdep))
    kasan = log + 'BUG: KASAN: slab-use-after-free in gp_take+0x1/0x2\n'
    assert str(kunit_run.kernel_report(kasan)).startswith('BUG: KASAN')


def test_diagnose_names_hang_crash_and_build_failure(tmp_path: Path) -> None:
    req = kunit_run.RunRequest(repo=REPO, tree=None, work=tmp_path, arch='x86_64',  # type: ignore[arg-type]
                               config='default', jobs=1, qemu_cpu='max', timeout=300,
                               results=tmp_path)
    hang = "[01:00:00] Starting KUnit Kernel (1/1)...\nCommand '['qemu']' timed out after 300 seconds\n"
    assert 'did not finish within 300 s' in kunit_run.diagnose(req, hang, 1)
    panic = '[01:00:00] Starting KUnit Kernel (1/1)...\nKernel panic - not syncing: Fatal exception\n'
    assert 'crashed' in kunit_run.diagnose(req, panic, 1)
    build = '[01:00:00] Building KUnit Kernel ...\nERROR:root:mm/grouped_pages.c:1: error: x\n'
    assert 'kernel build failed' in kunit_run.diagnose(req, build, 1)
    usage = 'kunit.py: error: unrecognized arguments: --filter_glob=x\n'
    assert 'rejected its arguments: unrecognized arguments' in kunit_run.diagnose(req, usage, 2)


def test_only_provoked_warnings_pass() -> None:
    uml = ('------------[ cut here ]------------\n'
           'WARNING: CPU: 0 PID: 1 at arch/um/drivers/virt-pci.c:1005 um_pci_init+0xc7/0xd4\n'
           'WARNING: CPU: 0 PID: 97 at mm/grouped_pages.c:867 grouped_pages_cache_destroy+0x1\n'
           'grouped_pages: gp_test_destroy_busy_refused: not destroyed, 1 pages in use\n')
    assert kunit_run.kernel_report(uml) is None
    leak = ('grouped_pages: gp_test_stress_alloc_free_shrink: 2560 pages in 5 blocks could not'
            ' be reset: kept out of use\n'
            'WARNING: CPU: 1 PID: 180 at mm/grouped_pages.c:815 grouped_pages_cache_destroy+0x16c\n')
    report = str(kunit_run.kernel_report(leak))
    assert report.startswith('WARNING: CPU: 1 PID: 180 at mm/grouped_pages.c:815')
    assert '5 blocks could not be reset' in report
    # Only the case that makes a reset fail on purpose may leave blocks behind.
    provoked = leak.replace('gp_test_stress_alloc_free_shrink',
                            'gp_test_destroy_after_failed_reset_frees_the_rest')
    assert kunit_run.kernel_report(provoked) is None


def test_a_bad_free_outside_the_test_caches_is_real() -> None:
    log = ('grouped_pages: pks_pgtables: refusing to free pfn 0x1234: double free\n'
           'WARNING: CPU: 0 PID: 1 at mm/grouped_pages.c:443 gp_bad_free+0x40/0x50\n')
    assert str(kunit_run.kernel_report(log)).startswith('WARNING: CPU: 0 PID: 1')
    lockdep = 'WARNING: bad unlock balance detected!\n'
    assert kunit_run.kernel_report(lockdep) == 'WARNING: bad unlock balance detected!'


def test_a_warm_run_stores_the_config_kunit_py_did_not_rewrite(tmp_path: Path) -> None:
    import os
    base = tree.Base(key='tarball-test', version='6.12.117', origin={'kind': 'tarball'})
    prepared = tree.Tree(tmp_path / 'linux', base)
    req = kunit_run.RunRequest(repo=REPO, tree=prepared, work=tmp_path / 'work', arch='um',
                               config='default', jobs=1, qemu_cpu='max', timeout=300,
                               results=tmp_path / 'results')
    req.build_dir.mkdir(parents=True)
    (req.build_dir / '.config').write_text('CONFIG_GROUPED_PAGES=y\n')
    (req.build_dir / 'test.log').write_text('an earlier run\n')
    # olddefconfig left both alone: they are older than this run.
    for name in ('.config', 'test.log'):
        os.utime(req.build_dir / name, (1_000_000, 1_000_000))
    # The run booted nothing: the earlier run's log is not this run's.
    stored = kunit_run.store_results(req, 'console\n', {'commit': 'c' * 40,
                                                        'started_epoch': 2_000_000.0}, [], {})
    assert (stored / 'config').read_text() == 'CONFIG_GROUPED_PAGES=y\n'
    assert not (stored / 'ktap.log').exists()


def isolated_request(kunit_tool: Path, tmp_path: Path, args: list[str]) -> kunit_run.RunRequest:
    """A request on a tree that holds the real kunit.py of linux-source-6.12."""
    base = tree.Base(key='t', version='6.12', origin={})
    return kunit_run.RunRequest(repo=REPO, tree=tree.Tree(kunit_tool.parents[2], base),
                                work=tmp_path, arch='um', config='default', jobs=1,
                                qemu_cpu='max', timeout=300, results=tmp_path / 'r',
                                extra_args=args)


def test_kunit_args_are_read_by_kunit_py_s_own_parser(kunit_tool: Path, tmp_path: Path) -> None:
    options = kunit_run.kunit_py_options(isolated_request(
        kunit_tool, tmp_path, ['--run_isolated', 'suite', '--kernel_args=x', 'gp_*.free*']))
    assert (options.run_isolated, options.filter_glob, options.kernel_args) == \
        ('suite', 'gp_*.free*', ['x'])
    with pytest.raises(HarnessError, match=r"KUNIT_ARGS='--run_isolated=each'.*kunit.py would refuse"):
        kunit_run.kunit_py_options(isolated_request(kunit_tool, tmp_path, ['--run_isolated=each']))


def test_one_boot_per_suite_or_test_as_kunit_py_makes_them() -> None:
    tests = ['gp.a', 'gp.b', 'pks.c']
    assert kunit_run.isolated_globs(tests, 'test', '') == tests
    assert kunit_run.isolated_globs(tests, 'suite', '') == ['gp', 'pks']
    assert kunit_run.isolated_globs(tests, 'suite', '*.b*') == ['gp.b*', 'pks.b*']


def test_a_warning_in_any_boot_fails_the_run_and_names_the_boot() -> None:
    quiet = 'KTAP version 1\n1..1\nok 1 gp\n'
    warned = 'WARNING: CPU: 1 PID: 7 at mm/grouped_pages.c:120 gp_free+0x1/0x2\n' + quiet
    assert kunit_run.first_kernel_report([quiet, warned, quiet]) == \
        'WARNING: CPU: 1 PID: 7 at mm/grouped_pages.c:120 gp_free+0x1/0x2 (boot 2 of 3)'
    assert kunit_run.first_kernel_report([warned]) == \
        'WARNING: CPU: 1 PID: 7 at mm/grouped_pages.c:120 gp_free+0x1/0x2'
    assert kunit_run.first_kernel_report([quiet, quiet]) is None


def test_the_counts_of_every_boot_are_added_up() -> None:
    lines = ['[00:00:01] Testing complete. Ran 4 tests: passed: 3, skipped: 1\n',
             '[00:00:09] Testing complete. Ran 2 tests: failed: 1, crashed: 1\n']
    assert kunit_run.summed_counts(lines) == {'ran': 6, 'passed': 3, 'failed': 1, 'crashed': 1,
                                              'skipped': 1, 'errors': 0}
    assert kunit_run.summed_counts(['no summary\n']) is None


def test_the_results_of_every_boot_are_merged() -> None:
    import json
    boot = {'name': 'KUnit Test Group', 'arch': 'um', 'test_cases': [],
            'sub_groups': [{'name': 'suite_a', 'test_cases': [{'name': 'x', 'status': 'PASS'}]}]}
    other = {**boot, 'sub_groups': [{'name': 'suite_b', 'test_cases': [{'name': 'y', 'status': 'FAIL'}]}]}
    merged = kunit_run.merged_results([json.dumps(boot), 'not json', json.dumps(other)])
    assert [g['name'] for g in merged['sub_groups']] == ['suite_a', 'suite_b']
    assert merged['arch'] == 'um'


def test_a_timeout_in_kunit_args_is_the_one_reported() -> None:
    assert kunit_run.effective_timeout(600, ['grouped_pages']) == 600
    assert kunit_run.effective_timeout(600, ['--timeout=60', 'grouped_pages']) == 60
    assert kunit_run.effective_timeout(600, ['--timeout', '90']) == 90
    assert kunit_run.effective_timeout(600, ['--timeout=60', '--timeout=120']) == 120
    with pytest.raises(HarnessError, match='KUNIT_TIMEOUT'):
        kunit_run.effective_timeout(600, ['--timeout=soon'])


def test_a_boot_selftest_that_is_on_must_pass() -> None:
    config = 'CONFIG_CPA_DEBUG=y\n'
    passed = 'CPA self-test:\n 4k 512 large 490 gb 0 x 1[ffff-ffff] miss 0\n' \
             ' 4k 26624 large 440 gb 0 x 1[ffff-ffff] miss 0\n' \
             ' 4k 26624 large 440 gb 0 x 1[ffff-ffff] miss 0\nok.\n'
    assert kunit_run.boot_selftests_not_passed(config, passed) == []
    never_ran = 'KTAP version 1\n1..1\n'
    assert kunit_run.boot_selftests_not_passed(config, never_ran) == \
        ['the x86 CPA self-test (CONFIG_CPA_DEBUG)']
    assert kunit_run.boot_selftests_not_passed('# CONFIG_CPA_DEBUG is not set\n', never_ran) == []


def test_only_the_module_row_loads_its_suites_as_modules() -> None:
    fragments = kbuild.config_fragments(REPO)
    as_modules = {name for name, f in fragments.items() if f.kunit_as_modules}
    # kmemleak scans, and failures are injected, after boot: only a module's suites run then.
    assert as_modules == {'module', 'kmemleak', 'fault-injection'}
    for name in as_modules:
        assert 'CONFIG_GROUPED_PAGES_KUNIT_TEST=m' in fragments[name].path.read_text()


def test_the_initramfs_loads_test_modules_only(tmp_path: Path) -> None:
    base = tree.Base(key='k', version='6.12.0', origin={})
    kernel = kbuild.QemuKernel(REPO, tree.Tree(tmp_path / 'linux', base), tmp_path, 'module', 1)
    kernel.build_dir.mkdir(parents=True)
    (kernel.build_dir / '.config').write_text('CONFIG_MODULES=y\n')
    for name in ('mm/grouped_pages_kunit.ko', 'drivers/char/hw_random/via-rng.ko'):
        (kernel.build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (kernel.build_dir / name).write_text('')
    assert [m.name for m in kbuild.built_modules(kernel)] == ['grouped_pages_kunit.ko']
    (kernel.build_dir / '.config').write_text('# CONFIG_MODULES is not set\n')
    assert kbuild.built_modules(kernel) == []


def test_rows_that_differ_only_in_the_cpu_have_their_own_result_names(tmp_path: Path) -> None:
    def request(arch: str, cpu: str) -> kunit_run.RunRequest:
        return kunit_run.RunRequest(repo=REPO, tree=None, work=tmp_path, arch=arch,  # type: ignore[arg-type]
                                    config='default', jobs=1, qemu_cpu=cpu, timeout=300,
                                    results=tmp_path)
    assert kunit_run.cpu_suffix(request('x86_64', 'max')) == ()
    assert kunit_run.cpu_suffix(request('x86_64', 'qemu64')) == ('qemu64',)
    assert kunit_run.cpu_suffix(request('um', 'qemu64')) == ()


def test_gitlab_ci_gates_merges_and_reports_every_case() -> None:
    """What GitLab needs to gate a merge request, read from the YAML it reads."""
    import yaml
    ci = yaml.safe_load((REPO / '.gitlab-ci.yml').read_text())
    rules = ci['workflow']['rules']
    assert any('merge_request_event' in rule.get('if', '') for rule in rules)
    assert any('CI_DEFAULT_BRANCH' in rule.get('if', '') for rule in rules)
    jobs = {name: job for name, job in ci.items() if isinstance(job, dict) and 'script' in job}
    assert set(jobs) == {'pytest', 'shellcheck', 'checkpatch', 'kunit', 'selftests', 'faults',
                         'mm-selftests', 'compare'}
    for name in ('kunit', 'selftests', 'faults', 'mm-selftests'):
        artifacts = jobs[name]['artifacts']
        assert artifacts['when'] == 'always' and artifacts['expire_in']
        assert artifacts['reports']['junit'] == f'results/{name}/*/junit.xml'
    # The selftests and the sweep wait for the lint jobs only, not for every KUnit row.
    for name in ('selftests', 'faults', 'mm-selftests'):
        assert set(jobs[name]['needs']) == {'pytest', 'shellcheck', 'checkpatch'}
        assert all(jobs[need]['stage'] == 'lint' for need in jobs[name]['needs'])


def test_a_fragment_s_boot_arguments_reach_every_boot(tmp_path: Path) -> None:
    fragments = kbuild.config_fragments(REPO)
    assert fragments['pti'].boot_args == ('pti=on',)
    assert fragments['nopkstables'].boot_args == ('nopkstables',)
    assert fragments['debug-pagealloc'].boot_args == ('debug_pagealloc=on',)
    assert fragments['default'].boot_args == ()
    base = tree.Base(key='t', version='6.12', origin={})
    req = kunit_run.RunRequest(repo=REPO, tree=tree.Tree(tmp_path, base), work=tmp_path,
                               arch='x86_64', config='pti', jobs=1, qemu_cpu='max', timeout=60,
                               results=tmp_path)
    assert '--kernel_args=pti=on' in kunit_run.kunit_command(req)
    from gptool import selftest_run
    st = selftest_run.SelftestRequest(repo=REPO, tree=tree.Tree(tmp_path, base), work=tmp_path,
                                      config='nopkstables', jobs=1, qemu_cpu='max', smp=1,
                                      memory_mb=512, timeout=60, results=tmp_path)
    assert selftest_run.guest_cmdline(st).split() == ['gp.run=selftests', 'nopkstables']


def test_a_jump_label_config_runs_every_vcpu_in_one_tcg_thread(tmp_path: Path) -> None:
    from gptool import qemu
    fragments = kbuild.config_fragments(REPO)
    assert fragments['jumplabel'].tcg_threads == 'single'
    assert all(fragment.tcg_threads == 'multi' for name, fragment in fragments.items()
               if name != 'jumplabel')
    single = qemu.Machine('max', 2, 1024, tcg_threads='single')
    cmd = qemu.command(single, Path('bzImage'), Path('initramfs'), '')
    assert cmd[cmd.index('-accel') + 1] == 'tcg,thread=single'
    assert '-accel' not in qemu.command(qemu.Machine('max', 2, 1024), Path('b'), Path('i'), '')
    base = tree.Base(key='t', version='6.12', origin={})
    req = kunit_run.RunRequest(repo=REPO, tree=tree.Tree(tmp_path, base), work=tmp_path,
                               arch='x86_64', config='jumplabel', jobs=1, qemu_cpu='max',
                               timeout=60, results=tmp_path)
    assert '--qemu_args=-accel tcg,thread=single' in kunit_run.kunit_command(req)


def test_an_unknown_tcg_threads_header_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / 'configs').mkdir()
    (tmp_path / 'configs' / 'odd.config').write_text('# tcg threads: many\nCONFIG_X=y\n')
    with pytest.raises(HarnessError, match='tcg threads: many.*valid are multi, single'):
        kbuild.config_fragments(tmp_path)
