"""Run the kernel's own kunit.py on a prepared tree and keep what it produced.

kunit.py does the work; this module only chooses its arguments (build dir, kunitconfigs,
ccache, QEMU CPU), keeps its JSON and raw KTAP log under results/ with the commit, base
and config they belong to, and turns its failures into one line that says what broke.
"""
import json
import re
import shlex
import shutil
import subprocess
import sys
import argparse
import dataclasses
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import junit, kbuild, kconfig, provenance, qemu
from .errors import FAILURE, INFRASTRUCTURE, UNTESTABLE, USAGE, HarnessError
from .fsutil import publish_dir, write_json_atomic
from .kbuild import cache_env, cached_compiler, check_choice
from .progress import heartbeat
from .provenance import base_meta, repo_commit, result_name
from .qemu import kernel_report
from .tree import Tree

KCONFIG_MISMATCH = 'Not all Kconfig options selected in kunitconfig were in the generated .config'
SUMMARY = re.compile(r'Testing complete\. Ran (\d+) tests: (.*)$')
# Self-tests the kernel runs at boot when their option is on, and the line that says
# they passed (a failure is a WARN, which kernel_report() catches).
BOOT_SELFTESTS = (('CONFIG_CPA_DEBUG', 'the x86 CPA self-test', re.compile(r'CPA self-test:\n(.*\n){0,40}?.*ok\.$', re.M)),)


def boot_selftests_not_passed(config: str, raw_log: str) -> list[str]:
    """The boot self-tests the .config turns on whose passing line is not in the log."""
    options = kconfig.parse_config(config)
    return [f'{what} ({option})' for option, what, passed in BOOT_SELFTESTS
            if options.get(option) == 'y' and not passed.search(raw_log)]


def effective_timeout(timeout: int, extra_args: list[str]) -> int:
    """The timeout kunit.py will use: a --timeout among the extra arguments wins (the last one)."""
    for i, arg in enumerate(extra_args):
        value = arg.split('=', 1)[1] if arg.startswith('--timeout=') else \
            extra_args[i + 1] if arg == '--timeout' and i + 1 < len(extra_args) else None
        if value is not None:
            if not value.isdigit() or int(value) < 1:
                raise HarnessError(f'--timeout {value!r} in KUNIT_ARGS: give whole seconds, '
                                   'e.g. KUNIT_TIMEOUT=900', kind=USAGE)
            timeout = int(value)
    return timeout


def first_kernel_report(boots: list[str]) -> str | None:
    """kernel_report() of the first boot that has one, naming the boot when there were more:
    with --run_isolated a WARN in an early suite's boot fails the run as much as the last."""
    for number, log in enumerate(boots, 1):
        if report := kernel_report(log):
            return report + (f' (boot {number} of {len(boots)})' if len(boots) > 1 else '')
    return None


@dataclass
class RunRequest:
    repo: Path
    tree: Tree
    work: Path
    arch: str
    config: str
    jobs: int
    qemu_cpu: str
    timeout: int
    results: Path
    extra_args: list[str] = field(default_factory=list)

    @property
    def build_dir(self) -> Path:
        return self.work / 'build' / self.tree.base.key / f'{self.arch}-{self.config}'


def kunitconfig_paths(req: RunRequest) -> list[Path]:
    """The suites for every arch, those for this arch only, then the configuration's fragment."""
    paths = [req.repo / 'kunit' / '.kunitconfig']
    arch_only = req.repo / 'kunit' / f'{req.arch}.kunitconfig'
    if arch_only.is_file():
        paths.append(arch_only)
    return paths + [check_choice(req.repo, req.arch, req.config).path]


QUIET_BOOT_ARGS = ('i8042.nokbd', 'i8042.noaux', 'tsc=unstable')


def kunit_command(req: RunRequest) -> list[str]:
    compiler = cached_compiler()
    fragment = check_choice(req.repo, req.arch, req.config)
    cmd = [sys.executable, 'tools/testing/kunit/kunit.py', 'run',
           f'--build_dir={req.build_dir}', f'--arch={req.arch}', f'--jobs={req.jobs}',
           f'--timeout={req.timeout}', f'--json={req.build_dir / "kunit.json"}',
           f'--make_options=CC={compiler}', f'--make_options=HOSTCC={compiler}']
    cmd += [f'--kunitconfig={path}' for path in kunitconfig_paths(req)]
    if req.arch != 'um':
        cmd.append(f'--qemu_args=-cpu {req.qemu_cpu} -smp 2')
        if fragment.tcg_threads == 'single':
            cmd.append('--qemu_args=-accel tcg,thread=single')
        # Messages printed from other contexts while the tests run can split a KTAP
        # header ("KTAP version 1" / "# Subtest:") and make kunit.py report a crash:
        # no PS/2 devices to probe, and no delayed TSC recalibration.
        cmd += [f'--kernel_args={arg}' for arg in QUIET_BOOT_ARGS]
    if req.arch == 'x86_64':
        # Two emulated nodes (CONFIG_NUMA_EMU in kunit/x86_64.kunitconfig).
        cmd.append('--kernel_args=numa=fake=2')
    cmd += [f'--kernel_args={arg}' for arg in fragment.boot_args]
    return cmd + req.extra_args


def merged_kunitconfig(req: RunRequest) -> dict[str, str]:
    merged: dict[str, str] = {}
    for path in kunitconfig_paths(req):
        merged.update(kconfig.parse_config(path.read_text()))
    return merged


def diagnose(req: RunRequest, output: str, status: int) -> str:
    """One line naming why kunit.py failed, for the cases users keep asking about."""
    if 'No space left on device' in output:
        return f'disk full: "No space left on device" while building or running (GP_WORK={req.work})'
    if rejected := re.search(r'^kunit\.py: error: (.*)$', output, re.M):
        return f'kunit.py rejected its arguments: {rejected.group(1)} (see kunit.py run --help)'
    if conflict := re.search(r'ConfigError: (Multiple values specified for \d+ options in '
                             r'kunitconfig):?\n((?:.*\n?){1,20})', output):
        options = re.findall(r'^\s*(CONFIG_\w+=\S+|# CONFIG_\w+ is not set)', conflict.group(2), re.M)
        return (f'the kunitconfig fragments disagree: {conflict.group(1)}'
                f'{": " + ", ".join(options) if options else ""} '
                f'(kunit/.kunitconfig, kunit/{req.arch}.kunitconfig, configs/{req.config}.config)')
    if KCONFIG_MISMATCH in output:
        dotconfig = kconfig.parse_config((req.build_dir / '.config').read_text())
        wrong = kconfig.mismatches(merged_kunitconfig(req), dotconfig, req.tree.path, req.arch)
        details = '; '.join(f'{m.option}={m.wanted} is {m.got} in .config: {m.reason}' for m in wrong)
        return f'kunitconfig options did not land: {details or "(kunit.py named none)"}'
    # Before the crash patterns: compiler output may say "BUG:" or "oops" too.
    if re.search(r'^\[.*\] Building KUnit Kernel|ERROR:root:', output, re.M) and \
            'Starting KUnit Kernel' not in output:
        return f'kernel build failed for ARCH={req.arch} CONFIG={req.config}'
    if traceback := re.search(r'^Traceback \(most recent call last\):\n(?:.*\n)*?(\w[\w.]*: .*)$',
                              output, re.M):
        return f'kunit.py failed with a traceback: {traceback.group(1)}'
    if re.search(r'timed out after \d+', output):
        return f'the kernel did not finish within {req.timeout} s (hang?): console log kept'
    if 'Kernel panic' in output or re.search(r'\boops\b|BUG:|\[CRASHED\]', output):
        return 'the kernel crashed (panic/oops/BUG, or tests cut short): console log kept'
    qemu_error = re.search(r'^(qemu-system-\S+: .*)$', output, re.M)
    if qemu_error and 'Linux version' not in output:
        return f'QEMU did not start: {qemu_error.group(1)}'
    if re.search(r'could not find any ktap output|no ktap output', output, re.I):
        return 'the kernel printed no KTAP: it did not boot or crashed early'
    if re.search(r'\b0 tests run!|Ran 0 tests', output):
        return 'ran no test (filters too narrow, or the suite is not built)'
    return f'kunit.py exited with status {status}: tests failed'


def diagnosis_kind(diagnosis: str) -> str:
    """Whether a diagnosis says the revision failed, could not be tested, or the machine broke."""
    if diagnosis.startswith(('kernel build failed', 'kunitconfig options did not land',
                             'the kunitconfig fragments disagree')):
        return UNTESTABLE
    if diagnosis.startswith(('QEMU did not start', 'disk full', 'kunit.py failed with a traceback')):
        return INFRASTRUCTURE
    if diagnosis.startswith('kunit.py rejected its arguments'):
        return USAGE
    return FAILURE


def store_results(req: RunRequest, console: str, meta: dict[str, object], boots: list[str],
                  results: dict[str, object], problem: str | None = None,
                  listing: str | None = None) -> Path:
    """console.log, ktap.log (one file per boot when there were more), kunit.json,
    junit.xml, config and meta.json of this run, in a new directory; @problem: why the
    run failed, if it did."""
    def fill(staging: Path) -> None:
        (staging / 'console.log').write_text(console)
        if len(boots) == 1:
            (staging / 'ktap.log').write_text(boots[0])
        for number, log in enumerate(boots if len(boots) > 1 else [], 1):
            (staging / f'ktap-boot{number:02d}.log').write_text(log)
        if listing is not None:
            (staging / 'ktap-list.log').write_text(listing)
        if results:
            (staging / 'kunit.json').write_text(json.dumps(results, indent=1) + '\n')
        # olddefconfig leaves an unchanged .config alone, so its mtime says nothing:
        # the build directory's .config is the one this run built with.
        config = req.build_dir / '.config'
        if config.is_file():
            shutil.copyfile(config, staging / 'config')
        (staging / 'junit.xml').write_text(junit.from_kunit(
            results, f'kunit {req.arch}/{req.config}', problem or
            (None if meta.get('summary') else 'no KUnit summary: the run did not finish')))
        write_json_atomic(staging / 'meta.json', meta)
    return publish_dir(req.results / 'kunit', result_name(req.arch, req.config, meta,
                                                          *cpu_suffix(req)), fill)


def summed_counts(lines: list[str]) -> dict[str, int] | None:
    """The counts of every "Testing complete. Ran N tests: ..." line (one per boot with
    --run_isolated), added up; None when there is none."""
    summaries = [m for m in map(SUMMARY.search, lines) if m]
    if not summaries:
        return None
    counts = {'ran': 0, 'passed': 0, 'failed': 0, 'crashed': 0, 'skipped': 0, 'errors': 0}
    for summary in summaries:
        counts['ran'] += int(summary.group(1))
        for what, number in re.findall(r'(passed|failed|crashed|skipped|errors): (\d+)',
                                       summary.group(2)):
            counts[what] += int(number)
    return counts


def merged_results(chunks: list[str]) -> dict[str, object]:
    """kunit.py's JSON of each boot as one: the suites of every boot under one top group."""
    merged: dict[str, object] = {}
    groups: list[object] = []
    cases: list[object] = []
    for chunk in chunks:
        try:
            data = json.loads(chunk)
        except ValueError:
            continue
        merged = merged or {k: v for k, v in data.items() if k not in ('sub_groups', 'test_cases')}
        groups += data.get('sub_groups', [])
        cases += data.get('test_cases', [])
    if merged:
        merged.update(sub_groups=groups, test_cases=cases)
    return merged


def print_counts(req: RunRequest, stored: Path, counts: dict[str, int], how: str = '') -> None:
    """The run's last two lines: where its results are, and what passed; none ran is an error."""
    if counts['ran'] == 0:
        raise HarnessError(f'kunit ARCH={req.arch} CONFIG={req.config}: ran no test '
                           f'(filters too narrow, or the suite is not built) (results: {stored})')
    print(f'kunit results: {stored}')
    print(f'kunit {req.arch}/{req.config}{how}: {counts["passed"]} passed, '
          f'{counts["failed"] + counts["crashed"]} failed, {counts["skipped"]} skipped')


def cpu_suffix(req: RunRequest) -> tuple[str, ...]:
    """Rows that differ only in QEMU's CPU build one kernel: their results must not look alike."""
    return () if req.arch == 'um' or req.qemu_cpu == 'max' else (req.qemu_cpu,)


def run_as_modules(req: RunRequest) -> int:
    """Build the suites as modules, load them in the QEMU initramfs, judge with kunit.py parse."""
    started = time.time()
    kernel = kbuild.QemuKernel(req.repo, req.tree, req.work, req.config, req.jobs)
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    kernel.log.write_text('')
    print(f'kunit: building the kernel and its test modules in {kernel.build_dir} '
          f'(log: {kernel.log})', flush=True)
    image = kbuild.build_kernel(kernel)
    modules = kbuild.built_modules(kernel)
    if not modules:
        raise HarnessError(f'kunit CONFIG={req.config}: the kernel built no test module '
                           f'(is the suite =m in configs/{req.config}.config?)', kind=UNTESTABLE)
    initramfs = kbuild.build_initramfs(kernel)
    fragment = check_choice(req.repo, req.arch, req.config)
    machine = qemu.Machine(cpu=req.qemu_cpu, smp=2, memory_mb=1024,
                           tcg_threads=fragment.tcg_threads)
    # KUnit prints its KTAP at KERN_INFO: let it reach the console, without timestamps.
    cmd = qemu.command(machine, image, initramfs,
                       'gp.run=kunit-modules numa=fake=2 loglevel=7 printk.time=0 ' +
                       ' '.join(QUIET_BOOT_ARGS + fragment.boot_args))
    console, timed_out = qemu.boot(cmd, req.timeout)
    req.build_dir.mkdir(parents=True, exist_ok=True)
    (req.build_dir / 'test.log').write_text(console)
    (req.build_dir / 'kunit.json').unlink(missing_ok=True)
    # Only what the modules printed: the boot's own (empty) KTAP would be parsed first.
    loaded = console.partition('GP-KUNIT-BEGIN\n')[2]
    parsed = subprocess.run([sys.executable, 'tools/testing/kunit/kunit.py', 'parse',
                             f'--json={req.build_dir / "kunit.json"}'],
                            cwd=req.tree.path, input=loaded, capture_output=True, text=True)
    sys.stdout.write(parsed.stdout)
    counts = summed_counts(parsed.stdout.splitlines())
    summaries = [m.group(0) for m in map(SUMMARY.search, parsed.stdout.splitlines()) if m]
    report = kernel_report(console)
    insmod_failed = re.findall(r'^GP-KUNIT-INSMOD-FAILED (\S+)', console, re.M)
    meta: dict[str, object] = {
        **repo_commit(req.repo), 'base': base_meta(req.tree),
        'arch': req.arch, 'config': req.config, 'qemu_cpu': req.qemu_cpu,
        'config_sha256': provenance.config_sha256(kernel.build_dir / '.config'),
        'tools': provenance.tool_versions(), 'date': provenance.iso_date(),
        'command': cmd, 'modules': [m.name for m in modules], 'exit_status': parsed.returncode,
        'started_epoch': started, 'duration_s': round(time.time() - started, 1),
        'summary': '; '.join(summaries) or None, 'kernel_report': report,
        'timed_out': timed_out, 'insmod_failed': insmod_failed,
    }
    shutil.copyfile(kernel.build_dir / '.config', req.build_dir / '.config')
    # The first reason the run failed, if any, and its kind: stored (JUnit), then raised.
    failure: tuple[str, str] | None = None
    if timed_out:
        failure = (f'the kernel did not finish within {req.timeout} s (hang?): console log kept',
                   FAILURE)
    elif report:
        failure = (f'the kernel reported "{report}"', FAILURE)
    elif insmod_failed:
        failure = (f'insmod failed for {", ".join(insmod_failed)}', FAILURE)
    elif 'GP-KUNIT-END' not in console:
        failure = ('the initramfs never finished loading the modules', FAILURE)
    elif unscanned := qemu.kmemleak_not_scanned(
            (kernel.build_dir / '.config').read_text(errors='replace'), console):
        failure = (unscanned, FAILURE)
    elif parsed.returncode != 0 or counts is None:
        diagnosis = diagnose(req, parsed.stdout, parsed.returncode)
        failure = (diagnosis, diagnosis_kind(diagnosis))
    try:
        results = json.loads((req.build_dir / 'kunit.json').read_text())
    except (OSError, ValueError):
        results = {}
    stored = store_results(req, console, meta, [console], results,
                           failure[0] if failure else None)
    if failure:
        raise HarnessError(f'kunit ARCH={req.arch} CONFIG={req.config}: {failure[0]} '
                           f'(results: {stored})', kind=failure[1])
    assert counts is not None
    print_counts(req, stored, counts, ' (modules)')
    return 0


@dataclass
class Execution:
    """What kunit.py did: its output, worst exit status, and every boot's log and JSON."""
    commands: list[list[str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    status: int = 0
    boots: list[str] = field(default_factory=list)
    # With --run_isolated: the boot that listed the tests (kunit.action=list), apart.
    listing: str | None = None
    json_chunks: list[str] = field(default_factory=list)


def _kunit_py(req: RunRequest, cmd: list[str], done: Execution) -> None:
    """Run one kunit.py command, echo its output, and keep the boot it left behind."""
    print('$ ' + shlex.join(cmd), flush=True)
    # Files an earlier command left are not this one's.
    for name in ('test.log', 'kunit.json'):
        (req.build_dir / name).unlink(missing_ok=True)
    proc = subprocess.Popen(cmd, cwd=req.tree.path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**cache_env(req.tree.path, req.build_dir, req.work),
                                 'PYTHONUNBUFFERED': '1'})
    assert proc.stdout is not None
    # kunit.py is silent while it builds: minutes on a cold tree.
    with heartbeat('kunit.py', every=60):
        for line in proc.stdout:
            sys.stdout.write(line)
            done.lines.append(line)
        done.status = max(done.status, proc.wait())
    done.commands.append(cmd)
    for name, kept in (('test.log', done.boots), ('kunit.json', done.json_chunks)):
        if (req.build_dir / name).is_file():
            kept.append((req.build_dir / name).read_text(errors='replace'))


def kunit_py_options(req: RunRequest) -> argparse.Namespace:
    """KUNIT_ARGS read by the tree's own kunit.py argument parser."""
    path = req.tree.path / 'tools/testing/kunit/kunit.py'
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location('gp_tree_kunit', path)
        assert spec is not None and spec.loader is not None
        kunit = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(kunit)
    finally:
        sys.path.remove(str(path.parent))
    parser = argparse.ArgumentParser(prog='KUNIT_ARGS', exit_on_error=False)
    for add in (kunit.add_common_opts, kunit.add_build_opts, kunit.add_exec_opts,
                kunit.add_parse_opts):
        add(parser)
    try:
        return parser.parse_args(req.extra_args)
    except (argparse.ArgumentError, SystemExit) as err:
        raise HarnessError(f'KUNIT_ARGS={shlex.join(req.extra_args)!r}: kunit.py would refuse '
                           f'them ({err}); see kunit.py run --help', 2, USAGE) from err


def isolated_globs(tests: list[str], mode: str, user_glob: str) -> list[str]:
    """One glob per boot, as kunit.py's --run_isolated makes them."""
    if mode == 'test':
        return tests
    suites = list(dict.fromkeys(test.split('.', 1)[0] for test in tests))
    if '.' in user_glob:
        return [f'{suite}.{user_glob.split(".", 2)[1]}' for suite in suites]
    return suites


def execute_isolated(req: RunRequest, mode: str, user_glob: str) -> Execution:
    """--run_isolated done here, boot by boot, so that no boot's log or results are lost
    (kunit.py rewrites test.log and its JSON at every boot): kunit.py run --list_tests
    builds and lists, then one kunit.py exec per suite or test."""
    rest = list(req.extra_args)
    for i, arg in enumerate(rest):
        if arg == '--run_isolated':
            del rest[i:i + 2]
            break
        if arg.startswith('--run_isolated='):
            del rest[i]
            break
    if user_glob:
        del rest[len(rest) - 1 - rest[::-1].index(user_glob)]
    done = Execution()
    base = kunit_command(dataclasses.replace(req, extra_args=[]))
    _kunit_py(req, base + rest + ([user_glob] if user_glob else []) + ['--list_tests'], done)
    done.listing = done.boots.pop() if done.boots else None
    tests = [line.strip() for line in done.lines
             if re.fullmatch(r'[^\s.]+\.[^\s.]+', line.strip())]
    if done.status != 0 or not tests:
        return done
    exec_base = [arg if arg != 'run' else 'exec' for arg in base if not arg.startswith('--jobs=')]
    globs = isolated_globs(tests, mode, user_glob)
    for number, glob in enumerate(globs, 1):
        print(f'kunit: isolated boot {number}/{len(globs)}: {glob}', flush=True)
        _kunit_py(req, exec_base + rest + [glob], done)
    return done


def run(req: RunRequest) -> int:
    if check_choice(req.repo, req.arch, req.config).kunit_as_modules:
        return run_as_modules(req)
    req.build_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    isolation = kunit_py_options(req) if any(
        arg.startswith('--run_isolated') for arg in req.extra_args) else None
    if isolation is not None and isolation.run_isolated:
        done = execute_isolated(req, isolation.run_isolated, isolation.filter_glob)
    else:
        done = Execution()
        _kunit_py(req, kunit_command(req), done)
    lines, status, boots = done.lines, done.status, done.boots
    results = merged_results(done.json_chunks)
    console = ''.join(lines)
    counts = summed_counts(lines)
    summaries = [m.group(0) for m in map(SUMMARY.search, lines) if m]
    meta: dict[str, object] = {
        **repo_commit(req.repo),
        'base': base_meta(req.tree),
        'arch': req.arch, 'config': req.config, 'qemu_cpu': req.qemu_cpu if req.arch != 'um' else None,
        'config_sha256': provenance.config_sha256(req.build_dir / '.config')
        if (req.build_dir / '.config').is_file() else None,
        'tools': provenance.tool_versions(), 'date': provenance.iso_date(),
        'command': done.commands[0] if len(done.commands) == 1 else done.commands,
        'exit_status': status, 'started_epoch': started,
        'duration_s': round(time.time() - started, 1),
        'summary': '; '.join(summaries) or None, 'boots': len(boots),
    }
    # The listing boot ran no test, but what it logged counts as much.
    report = first_kernel_report(boots) or (
        f'{listed} (the boot that listed the tests)'
        if done.listing is not None and (listed := kernel_report(done.listing)) else None)
    meta['kernel_report'] = report
    config_path = req.build_dir / '.config'
    missing = sorted({what for log in boots
                      for what in boot_selftests_not_passed(config_path.read_text(errors='replace'), log)}) \
        if config_path.is_file() and boots and report is None and status == 0 else []
    meta['boot_selftests_not_passed'] = missing
    failure: tuple[str, str] | None = None
    if report:
        failure = (f'the kernel reported "{report}"', FAILURE)
    elif missing:
        failure = (f'{", ".join(missing)} did not report passing in the kernel log', FAILURE)
    elif status != 0 or counts is None:
        diagnosis = diagnose(req, console, status)
        failure = (diagnosis, diagnosis_kind(diagnosis))
    stored = store_results(req, console, meta, boots, results, failure[0] if failure else None,
                           listing=done.listing)
    if failure:
        raise HarnessError(f'kunit ARCH={req.arch} CONFIG={req.config}: {failure[0]} '
                           f'(results: {stored})', kind=failure[1])
    assert counts is not None
    print_counts(req, stored, counts, f' ({len(boots)} boots)' if len(boots) > 1 else '')
    return 0
