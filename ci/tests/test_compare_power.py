"""Issue 24's goals for make compare, at its defaults: a lone regression is caught, the
same code is not called regressed, and a change that is significant alone but not over
the table is inconclusive (exit 3). Simulated by power_sim.py on synthetic results made
from a real quick-workload console, and checked again by ci/power-check.py, which
shares none of its code."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

import power_sim
from conftest import REPO
from gptool import benchstore, compare, stats
from gptool.__main__ import main

SEEDS = range(80)
SCENARIO = {scenario.name: scenario for scenario in power_sim.SCENARIOS}


def rates(name: str) -> power_sim.Tally:
    return power_sim.simulate(SCENARIO[name], SEEDS)


def test_a_lone_icount_timing_change_of_10_percent_is_called() -> None:
    tally = rates('icount timing +10%')
    assert tally.pct(tally.called) >= 95


def test_a_lone_within_boot_ratio_change_of_30_percent_under_tcg_is_called() -> None:
    tally = rates('TCG within-boot ratio +30%')
    assert tally.pct(tally.called) >= 80


@pytest.mark.parametrize('name', ['icount, same code', 'TCG, same code'])
def test_the_same_code_is_rarely_called_regressed_or_inconclusive(name: str) -> None:
    tally = rates(name)
    assert tally.pct(tally.regression) <= 5
    assert tally.pct(tally.inconclusive) <= 5


def test_tcg_wall_clock_is_a_verdict_only_beyond_what_the_host_drifts() -> None:
    within = rates('TCG wall-clock timing +30%')
    assert within.pct(within.called) <= 5
    beyond = rates('TCG wall-clock timing x3')
    assert beyond.pct(beyond.called) >= 95


def test_five_runs_a_side_leave_a_lone_change_inconclusive() -> None:
    tally = rates('icount timing +10%, RUNS=5')
    assert tally.called == 0 and tally.pct(tally.inconclusive) >= 95
    # 5 against 5 (p >= 0.0079) passes the control over 6 metrics at most; the default
    # 8 against 8 over the 100 of a quick table, and up to 300.
    assert (compare.runs_needed(6, 0.05), compare.runs_needed(7, 0.05)) == (5, 6)
    assert compare.runs_needed(100, 0.05) <= compare.runs_needed(300, 0.05) == compare.DEFAULT_RUNS
    assert stats.smallest_p(8, 8) == pytest.approx(2 / 12870)


def save_sides(tmp_path: Path, scenario: power_sim.Scenario, seed: int) -> tuple[Path, Path, str | None]:
    a, b, changed = power_sim.sides(scenario, seed)
    for label, results in (('a', a), ('b', b)):
        for result in results:
            benchstore.save(tmp_path / label, result, {'console.log': b''})
    return tmp_path / 'a' / 'bench', tmp_path / 'b' / 'bench', changed


@pytest.mark.parametrize('name, status, verdict, why', [
    ('icount timing +10%', 1, 'regression', 'icount'),
    ('TCG within-boot ratio +30%', 1, 'regression', 'ratio'),
    ('TCG wall-clock timing +30%', 0, '~', 'within host drift|too noisy to tell'),
    ('icount timing +10%, RUNS=5', 3, 'inconclusive', 'not significant over the table'),
    ('TCG, same code', 0, None, None),
])
def test_stored_results_on_disk_give_the_verdict_and_its_exit_status(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, status: int,
        verdict: str | None, why: str | None) -> None:
    a, b, changed = save_sides(tmp_path, SCENARIO[name], seed=1)
    assert main(['--repo', str(tmp_path), '--work', str(tmp_path / 'w'), 'compare', '--a', str(a),
                 '--b', str(b), '--results', str(tmp_path / 'r')]) == status
    captured = capsys.readouterr()
    if changed:
        row = next(line for line in captured.out.splitlines() if line.startswith(changed + ' '))
        assert re.search(rf'\s{re.escape(verdict or "")}\s+({why})$', row), row
    if status:
        assert f'gptool compare: exit {status} (' in captured.err
    if status == 3:
        assert 'compare: no regressions, but 1 inconclusive' in captured.out
        assert 'RUNS=' in captured.out  # how many runs would settle it


def table_rows(text: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for line in text.splitlines() if line.startswith('| ')
            and not line.startswith('| ---')
            for cells in [[c.strip() for c in line.strip('|').split('|')]]}


@pytest.mark.slow
def test_the_independent_check_agrees() -> None:
    check = subprocess.run([sys.executable, str(REPO / 'ci' / 'power-check.py'), '100'],
                           capture_output=True, text=True, check=True).stdout
    theirs = table_rows(check)
    ours = table_rows(power_sim.table(60))
    assert theirs.keys() == ours.keys() and len(ours) == len(power_sim.SCENARIOS) + 1
    for scenario, cells in ours.items():
        if cells[0] == '-' or scenario.startswith('scenario'):
            continue
        mine, other = float(cells[0].rstrip('%')), float(theirs[scenario][0].rstrip('%'))
        assert abs(mine - other) <= 10, (scenario, mine, other)
        for column in (1, 2):  # regression and inconclusive tables: both small, or both not
            assert (float(cells[column].rstrip('%')) > 5) == \
                (float(theirs[scenario][column].rstrip('%')) > 5), (scenario, cells, theirs[scenario])
