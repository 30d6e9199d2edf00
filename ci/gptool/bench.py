"""`make bench`: boot the QEMU kernel with gp_bench and store what it measured.

The kernel and initramfs are those `make selftests` boots (one build per config); the
init runs /gp_bench when the command line says `gp.run=bench`. gp_bench prints one
`GP-BENCH-METRIC {json}` line per metric with all its samples; this verb checks the
run (no hang, no kernel report, every step done), adds the provenance and stores one
result per boot under results/bench/ (schema: benchstore). A run that fails keeps its
console under results/bench-failed/ and stores no result, so nothing half-measured is
ever compared.

`--build-only --artifacts DIR` builds and copies the kernel, initramfs and build
provenance into DIR; `--artifacts DIR` alone boots what DIR holds. `make compare` uses
the two to build each revision once and then boot them interleaved.
"""
import datetime
import json
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import benchstore, kbuild, metricnames, provenance, qemu
from .errors import HarnessError
from .fsutil import publish_dir, write_json_atomic
from .revisions import HARNESS_CI
from .tree import Tree

METRIC_LINE = re.compile(r'^GP-BENCH-METRIC (\{.*\})\s*$')
INFO_LINE = re.compile(r'^GP-BENCH-INFO (\w+) (.*)$')
ERROR_LINE = re.compile(r'^GP-BENCH-ERROR (.*)$')
EXIT_LINE = re.compile(r'^GP-BENCH-EXIT (\d+)\s*$')

# What gp_bench runs in each boot of one run. On 6.12 a 2M mapping split by the
# baseline never comes back, so every protection gets a fresh boot: otherwise the
# second protection's baseline would find the direct map already split (0 splits) and
# its grouped cache would get blocks the first baseline had split. The smoke run for
# `make test` is one small boot.
WORKLOADS = {
    'full': [['--prots=ro'],
             ['--prots=np', '--skip-fastpath', '--skip-pgtables'],
             ['--prots=pkey', '--skip-fastpath', '--skip-pgtables']],
    'quick': [['--rounds=3', '--iterations=2000', '--sizes=1024', '--age-pages=8192',
               '--forks=10']],
    # What PKS page tables cost: compare runs with pks_pgtables= or nopkstables on BENCH_CMDLINE.
    'pgtables': [['--only-pgtables']],
}
ARTIFACT_FILES = ('bzImage', 'initramfs.cpio.gz', 'config', 'build.json')


@dataclass
class BenchRequest:
    repo: Path
    tree: Tree | None
    work: Path
    config: str
    jobs: int
    machine: qemu.Machine
    runs: int
    workload: str
    cmdline: str
    timeout: int
    results: Path
    artifacts: Path | None = None
    build_only: bool = False


def check_request(req: BenchRequest) -> None:
    if req.machine.mode not in qemu.MODES:
        raise HarnessError(f'unknown BENCH_MODE={req.machine.mode!r}: valid are '
                           f'{", ".join(qemu.MODES)}', 2)
    if req.workload not in WORKLOADS:
        raise HarnessError(f'unknown BENCH_WORKLOAD={req.workload!r}: valid are '
                           f'{", ".join(WORKLOADS)}', 2)
    if req.runs < 1 or req.machine.smp < 1 or req.machine.memory_mb < 1024 or req.timeout < 60:
        raise HarnessError('bench needs RUNS >= 1, SMP >= 1, MEMORY >= 1024 (MiB: the '
                           'workloads hold 256M at once) and a timeout >= 60 s', 2)
    if req.build_only and req.artifacts is None:
        raise HarnessError('--build-only needs --artifacts DIR to put the build in', 2)
    qemu.refuse_init_words(req.cmdline, 'BENCH_CMDLINE', 'the bench sets them')


def build(req: BenchRequest) -> dict[str, Path]:
    """Kernel, initramfs and .config of this configuration, plus their provenance."""
    assert req.tree is not None
    kernel = kbuild.QemuKernel(req.repo, req.tree, req.work, req.config, req.jobs)
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    kernel.log.write_text('')
    print(f'bench: building the kernel in {kernel.build_dir} (log: {kernel.log})', flush=True)
    image = kbuild.build_kernel(kernel)
    initramfs = kbuild.build_initramfs(kernel)
    dotconfig = kernel.build_dir / '.config'
    build_info = {
        **provenance.repo_commit(req.repo),
        'base': provenance.base_meta(req.tree),
        'config': req.config,
        'config_sha256': provenance.config_sha256(dotconfig),
        'tools': provenance.tool_versions(),
        'built': provenance.iso_date(),
    }
    write_json_atomic(kernel.build_dir / 'build.json', build_info)
    return {'bzImage': image, 'initramfs.cpio.gz': initramfs, 'config': dotconfig,
            'build.json': kernel.build_dir / 'build.json'}


def save_artifacts(built: dict[str, Path], dest: Path) -> None:
    """Copy a build aside, so that later builds of other revisions do not replace it."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ARTIFACT_FILES:
        tmp = dest / f'.{name}.tmp'
        shutil.copyfile(built[name], tmp)
        tmp.replace(dest / name)


def load_artifacts(dest: Path) -> dict[str, Path]:
    missing = [name for name in ARTIFACT_FILES if not (dest / name).is_file()]
    if missing:
        raise HarnessError(f'{dest} holds no complete bench build (missing: {", ".join(missing)}): '
                           'make it with --build-only --artifacts', 2)
    return {name: dest / name for name in ARTIFACT_FILES}


@dataclass
class Parsed:
    metrics: dict[str, dict[str, Any]]
    info: dict[str, str]
    errors: list[str]
    exit_status: int | None


def parse_console(console: str) -> Parsed:
    """gp_bench's lines from the console; a metric line that is not valid JSON is an error
    (the kernel may have printed into it), never silently dropped."""
    metrics: dict[str, dict[str, Any]] = {}
    info: dict[str, str] = {}
    errors: list[str] = []
    exit_status = None
    for line in console.splitlines():
        line = line.strip()
        if line.startswith('GP-BENCH-METRIC'):
            match = METRIC_LINE.match(line)
            try:
                metric = json.loads(match.group(1)) if match else None
            except json.JSONDecodeError:
                metric = None
            if not isinstance(metric, dict) or not isinstance(metric.get('name'), str):
                errors.append(f'garbled metric line: {line[:120]}')
                continue
            name = metric.pop('name')
            if name in metrics:
                errors.append(f'metric {name} printed twice')
            metrics[name] = metric
        elif match := INFO_LINE.match(line):
            if match.group(1) != 'snapshot':
                info[match.group(1)] = match.group(2)
        elif match := ERROR_LINE.match(line):
            errors.append(match.group(1))
        elif match := EXIT_LINE.match(line):
            exit_status = int(match.group(1))
    return Parsed(metrics, info, errors, exit_status)


def judge(parsed: Parsed, console: str, timed_out: bool, timeout: int) -> list[str]:
    """Why this run cannot be kept as a result; empty when it can."""
    problems = []
    if timed_out:
        problems.append(f'hang: no end within {timeout} s')
    problem = qemu.kernel_problem(console)
    if problem:
        problems.append(f'kernel: {problem}')
    if parsed.exit_status is None:
        problems.append('gp_bench did not finish (crash, panic or hang before the end)')
    elif parsed.exit_status != 0:
        problems.append(f'gp_bench exited with {parsed.exit_status}')
    problems += [f'gp_bench: {error}' for error in parsed.errors]
    if not parsed.metrics:
        problems.append('no metric in the console')
    return problems


def merge(boots: list[Parsed]) -> Parsed:
    """One run's boots as one: a metric measured in several boots (the aging) gets one
    sample per boot."""
    merged = Parsed({}, {}, [], 0)
    for parsed in boots:
        for name, metric in parsed.metrics.items():
            if name in merged.metrics:
                merged.metrics[name]['samples'] = merged.metrics[name]['samples'] + metric['samples']
            else:
                merged.metrics[name] = dict(metric)
        for key, value in parsed.info.items():
            merged.info[key] = f'{merged.info[key]}; {value}' if key in merged.info else value
        merged.errors += parsed.errors
    return merged


def boot_once(req: BenchRequest, artifacts: dict[str, Path], index: int) -> Path:
    """One run (a boot per protection), one result directory, or a failure with the
    console kept."""
    build_info = json.loads(artifacts['build.json'].read_text())
    started = time.time()
    consoles, parsed_boots, problems, commands = [], [], [], []
    boots = WORKLOADS[req.workload]
    for number, args in enumerate(boots, 1):
        # The kernel has THP for the selftests; khugepaged would raise min_free_kbytes
        # and take the memory the fallback scenario leaves free. The user's
        # BENCH_CMDLINE comes last and may turn it back on.
        cmdline = ' '.join(filter(None, ['gp.run=bench', f'gp.args={":".join(args)}',
                                         'transparent_hugepage=never',
                                         *kbuild.check_choice(req.repo, 'x86_64',
                                                              req.config).boot_args,
                                         req.cmdline]))
        cmd = qemu.command(req.machine, artifacts['bzImage'], artifacts['initramfs.cpio.gz'],
                           cmdline)
        commands.append(cmd)
        print(f'bench: run {index + 1}/{req.runs}, boot {number}/{len(boots)} '
              f'({req.machine.mode}, {req.workload}: {" ".join(args)}), '
              f'{int(time.time() - started)} s so far', flush=True)
        console, timed_out = qemu.boot(cmd, req.timeout)
        consoles.append(f'=== gp_bench boot {number}/{len(boots)}: {" ".join(cmd)}\n{console}')
        parsed = parse_console(console)
        parsed_boots.append(parsed)
        problems += [f'boot {number}: {p}' for p in judge(parsed, console, timed_out, req.timeout)]
        if problems:
            break
    console = ''.join(consoles)
    parsed = merge(parsed_boots)
    result: dict[str, Any] = {
        'schema': benchstore.SCHEMA_VERSION, 'kind': 'bench',
        'commit': build_info['commit'], 'dirty': build_info['dirty'],
        'diff_sha256': build_info.get('diff_sha256', ''),
        'base': build_info['base'], 'config': build_info['config'],
        'config_sha256': build_info['config_sha256'], 'arch': 'x86_64',
        'qemu': {'cpu': req.machine.cpu, 'smp': req.machine.smp,
                 'memory_mb': req.machine.memory_mb, 'command': commands[0]},
        'boots': [' '.join(args) for args in boots],
        'mode': req.machine.mode, 'tools': build_info['tools'],
        # What the timing depends on besides the code, and the harness that ran it (when
        # compare runs another revision, this checkout's).
        'host': provenance.host(),
        'harness': provenance.repo_commit(HARNESS_CI.parent),
        # When the run started, as the schema says.
        'date': provenance.iso_date(datetime.datetime.fromtimestamp(started, datetime.timezone.utc)),
        'duration_s': round(time.time() - started, 1),
        'cmdline': req.cmdline, 'workload': req.workload, 'info': parsed.info,
        'metrics': parsed.metrics,
    }
    files = {'console.log': console.encode(), 'config': artifacts['config'].read_bytes()}
    if problems:
        def fill(staging: Path) -> None:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            write_json_atomic(staging / 'meta.json', {**result, 'problems': problems})
        kept = publish_dir(req.results / 'bench-failed', provenance.result_name(
            'x86_64', req.config, result, req.machine.mode), fill)
        raise HarnessError(f'bench run {index + 1}: {"; ".join(problems)} '
                           f'(console log: {kept / "console.log"})')
    return benchstore.save(req.results, result, files)


def summary(result_dirs: list[Path]) -> str:
    """The headline figures: grouped against baseline, medians over the runs."""
    samples: dict[str, list[float]] = {}
    for path in result_dirs:
        for name, metric in benchstore.load(path)['metrics'].items():
            samples.setdefault(name, []).extend(metric['samples'])
    rows = ['workload                 metric                       grouped     baseline']
    for name in sorted(samples):
        match = metricnames.HEADLINE.match(name)
        if not match or match.group(3) != 'grouped':
            continue
        other = name.replace('.grouped.', '.baseline.')
        if other in samples:
            rows.append(f'{match.group(1):>4} {match.group(2):>7} pages     '
                        f'{match.group(4):<28} {statistics.median(samples[name]):>8.6g} '
                        f'{statistics.median(samples[other]):>12.6g}')
    for name in sorted(samples):
        if metricnames.FASTPATH_RATIO.match(name):
            rows.append(f'{name:<45} median {statistics.median(samples[name]):.3f} '
                        '(grouped / alloc_page)')
    return '\n'.join(rows)


def run(req: BenchRequest) -> int:
    check_request(req)
    if req.artifacts is not None and not req.build_only:
        artifacts = load_artifacts(req.artifacts)
    else:
        artifacts = build(req)
        if req.build_only:
            assert req.artifacts is not None
            save_artifacts(artifacts, req.artifacts)
            print(f'bench build: {req.artifacts}')
            return 0
    stored = []
    for index in range(req.runs):
        path = boot_once(req, artifacts, index)
        stored.append(path)
        print(f'bench: run {index + 1} stored in {path}', flush=True)
    print(summary(stored))
    for path in stored:
        print(f'bench result: {path}')
    print(f'bench x86_64/{req.config} ({req.machine.mode}, {req.workload}): '
          f'{len(stored)} runs stored under {req.results / "bench"}', file=sys.stderr)
    return 0
