"""The pages a person opens: compare's report.html, made by the verb from synthetic stored
results (metrics of a real quick-workload console, via power_sim), read as HTML here."""
import html.parser
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import power_sim
from gptool import benchstore, htmlpage, stats
from gptool.__main__ import main

# B's changes against A: one of each verdict.
REGRESSED = 'frag.ro.n1024.grouped.level2_splits'  # exact: 0 -> 3
IMPROVED = 'frag.ro.n1024.grouped.regions_2m'  # exact: 2 -> 1
INCONCLUSIVE = 'fastpath.cpus2.ratio'  # x1.5, 4 runs a side: not over the table
# A directory name a page must escape: it is A's spec, in the compare page's title.
ODD_DIR = 'side <i>A& "q"'


@dataclass
class Pages:
    results: Path
    report: Path  # the compare's directory


def make_pages(tmp: Path) -> Pages:
    """Runs of A and B in tcg (B with REGRESSED, IMPROVED and INCONCLUSIVE changed), compared."""
    rng = random.Random(7)
    base = power_sim.real_metrics()
    results = tmp / 'results'
    for side, commit in (('a', 'a' * 40), ('b', 'b' * 40)):
        for run in range(4):
            metrics_run = power_sim.one_run(rng, base, 'tcg', None, 1.0)
            if side == 'b':
                metrics_run[INCONCLUSIVE]['samples'] = [
                    s * 1.5 for s in metrics_run[INCONCLUSIVE]['samples']]
                metrics_run[REGRESSED]['samples'] = [3]
                metrics_run[IMPROVED]['samples'] = [1]
            result = power_sim.result(commit, 'tcg', metrics_run)
            result['date'] = f'2026-01-0{1 + (side == "b")}T00:0{run}:00Z'
            benchstore.save(tmp / (ODD_DIR if side == 'a' else 'side B'), result,
                            {'console.log': b'booted\n'})
    assert main(['--repo', str(tmp), '--work', str(tmp / 'work'), 'compare',
                 '--a', str(tmp / ODD_DIR / 'bench'), '--b', str(tmp / 'side B' / 'bench'),
                 '--results', str(results)]) == 1
    report, = (results / 'compare').iterdir()
    return Pages(results, report)


@pytest.fixture(scope='module')
def pages(tmp_path_factory: pytest.TempPathFactory) -> Pages:
    return make_pages(tmp_path_factory.mktemp('pages'))


# ---------------------------------------------------------------- the HTML, read back

VOID = {'meta', 'img', 'br', 'wbr', 'link', 'hr', 'input'}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list['Element | str'] = field(default_factory=list)

    def text(self) -> str:
        return ''.join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str) -> list['Element']:
        found = []
        for child in self.children:
            if isinstance(child, Element):
                found += ([child] if child.tag == tag else []) + child.all(tag)
        return found


class Tree(html.parser.HTMLParser):
    """The document as Elements; fails on a closing tag that closes nothing open."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element('document', {})
        self.open = [self.root]
        self.feed(text)
        self.close()
        assert self.open == [self.root], f'never closed: {[e.tag for e in self.open[1:]]}'

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or '' for k, v in attrs})
        self.open[-1].children.append(element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert self.open[-1].tag == tag, f'</{tag}> closes <{self.open[-1].tag}>'
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def read(path: Path) -> Element:
    text = path.read_text()
    # Static: nothing runs, nothing is fetched.
    assert '<script' not in text and not re.search(r'(src|href)="(https?:)?//', text)
    return Tree(text).root


def test_report_html_lists_regressions_first_with_every_reason(pages: Pages) -> None:
    report = json.loads((pages.report / 'report.json').read_text())
    doc = read(pages.report / 'report.html')
    title, = doc.all('h1')
    # The spec comes back as it was: escaped in the page, not markup.
    assert title.text() == f'compare: {pages.report.parent.parent.parent / ODD_DIR}/bench vs ' \
        f'{pages.report.parent.parent.parent / "side B"}/bench'
    assert '<i>A&' not in (pages.report / 'report.html').read_text()
    rows = [row.all('td') for row in doc.all('tr') if row.all('td')]
    names = [cells[0].text() for cells in rows]
    assert sorted(names) == sorted(report['metrics'])
    verdicts = [report['metrics'][name]['verdict'] for name in names]
    assert verdicts[:3] == ['regression', 'inconclusive', 'improvement']
    assert names[:3] == [REGRESSED, INCONCLUSIVE, IMPROVED] and set(verdicts[3:]) == {'~'}
    for cells in rows:  # the reason of each, "~" included, whole
        assert cells[-1].text() == report['metrics'][cells[0].text()]['reason']
    assert any(set('<>&') & set(row['reason']) for row in report['metrics'].values())
    assert set(htmlpage.VERDICT_ORDER) == set(stats.VERDICTS)  # no verdict left out
