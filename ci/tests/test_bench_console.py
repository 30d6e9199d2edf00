"""How a bench boot's console becomes a result, on a real console of `make bench
BENCH_WORKLOAD=quick` (ci/tests/data/bench-quick-console.log), and how it is refused."""
from pathlib import Path

from gptool import bench, benchstore

CONSOLE = (Path(__file__).parent / 'data/bench-quick-console.log').read_text()


def test_a_real_console_gives_every_metric_with_its_samples() -> None:
    parsed = bench.parse_console(CONSOLE)
    assert parsed.errors == [] and parsed.exit_status == 0
    assert bench.judge(parsed, CONSOLE, False, 60) == []
    splits = parsed.metrics['frag.ro.n1024.grouped.level2_splits']
    assert splits['deterministic'] is True and splits['direction'] == 'lower'
    assert splits['samples'] == [0]
    assert len(parsed.metrics['fastpath.cpus1.ratio']['samples']) == 3
    assert parsed.info['protections'] == 'ro np pkey'
    # Snapshots stay in the console only.
    assert 'snapshot' not in parsed.info


def test_every_metric_fits_the_store_schema() -> None:
    parsed = bench.parse_console(CONSOLE)
    for name, metric in parsed.metrics.items():
        result_metric = {name: metric}
        # validate() checks metrics inside a whole result; build the smallest one.
        result = {
            'schema': 1, 'kind': 'bench', 'commit': 'a' * 40, 'dirty': False,
            'base': {'version': '6.12.117', 'key': 'k'}, 'config': 'default',
            'config_sha256': 'b' * 64, 'arch': 'x86_64',
            'qemu': {'cpu': 'max', 'smp': 2, 'memory_mb': 2048, 'command': ['qemu']},
            'mode': 'tcg', 'tools': {'gcc': '12', 'qemu': '7.2', 'ccache': '4'},
            'date': '2026-11-26T18:52:29Z', 'duration_s': 1.0, 'cmdline': '',
            'metrics': result_metric,
        }
        benchstore.validate(result)


def test_a_kernel_that_died_half_way_is_a_failure() -> None:
    cut = CONSOLE[:CONSOLE.index('GP-BENCH-METRIC {"name": "fastpath')]
    died = cut + 'Kernel panic - not syncing: Fatal exception\n'
    problems = bench.judge(bench.parse_console(died), died, False, 60)
    assert any('Kernel panic' in p for p in problems)
    assert any('did not finish' in p for p in problems)


def test_a_hang_and_a_failed_step_are_failures() -> None:
    cut = CONSOLE[:CONSOLE.index('GP-BENCH-EXIT')]
    assert any('hang' in p for p in bench.judge(bench.parse_console(cut), cut, True, 60))
    failed = CONSOLE.replace('GP-BENCH-EXIT 0', 'GP-BENCH-ERROR hold: Cannot allocate memory\n'
                             'GP-BENCH-EXIT 1')
    problems = bench.judge(bench.parse_console(failed), failed, False, 60)
    assert 'gp_bench exited with 1' in problems
    assert 'gp_bench: hold: Cannot allocate memory' in problems


def test_a_metric_line_cut_by_kernel_output_is_an_error_not_dropped() -> None:
    line = next(line for line in CONSOLE.splitlines() if 'fastpath.cpus1.ratio' in line)
    garbled = CONSOLE.replace(line, line[:60] + '\n[   12.3] random: crng init done\n' + line[60:])
    problems = bench.judge(bench.parse_console(garbled), garbled, False, 60)
    assert any('garbled metric line' in p for p in problems)


def test_bad_requests_name_what_is_valid(tmp_path: Path) -> None:
    import pytest
    from gptool import qemu
    from gptool.errors import HarnessError

    def request(**changes: object) -> bench.BenchRequest:
        fields: dict[str, object] = dict(
            repo=tmp_path, tree=None, work=tmp_path, config='default', jobs=1,
            machine=qemu.Machine('max', 2, 2048, 'tcg'), runs=1, workload='full', cmdline='',
            timeout=600, results=tmp_path)
        fields.update(changes)
        return bench.BenchRequest(**fields)  # type: ignore[arg-type]
    with pytest.raises(HarnessError, match="unknown BENCH_MODE='fast': valid are tcg, icount"):
        bench.check_request(request(machine=qemu.Machine('max', 2, 2048, 'fast')))
    with pytest.raises(HarnessError, match='valid are full, quick, pgtables'):
        bench.check_request(request(workload='long'))
    with pytest.raises(HarnessError, match='MEMORY >= 1024'):
        bench.check_request(request(machine=qemu.Machine('max', 2, 512, 'tcg')))
    with pytest.raises(HarnessError, match='may not set gp.run='):
        bench.check_request(request(cmdline='gp.run=selftests'))
