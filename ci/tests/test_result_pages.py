"""The pages a person opens: compare's report.html and trend's index.html, made by the
verbs from synthetic stored results (metrics of a real quick-workload console, via
power_sim), read as HTML here and rendered in headless Chromium (slow)."""
import datetime
import html.parser
import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import power_sim
from chromium import Chromium
from conftest import SCREENSHOTS
from gptool import benchstore, compare_report, htmlpage, stats, trend_page
from gptool.__main__ import main
from gptool.fsutil import publish_dir

# B's changes against A: one of each verdict.
REGRESSED = 'frag.ro.n1024.grouped.level2_splits'  # exact: 0 -> 3
IMPROVED = 'frag.ro.n1024.grouped.regions_2m'  # exact: 2 -> 1
INCONCLUSIVE = 'fastpath.cpus2.ratio'  # x1.5, 4 runs a side: not over the table
# A directory name a page must escape: it is A's spec, in the compare page's title.
ODD_DIR = 'side <i>A& "q"'
# A few plots of every kind: the headline ones are not first by name in frag / ro.
FEW = ['fastpath.cpus2.ratio', REGRESSED, IMPROVED, 'frag.ro.n1024.grouped.hold_ns_per_page',
       'frag.pkey.n1024.baseline.tlb_flushes_per_1000_pages', 'protect.ro.block_ns_per_page']
# The browser's: a plot of each workload and the longest names there are.
MANY = ['fastpath.*', 'frag.ro.*', 'frag.pkey.n1024.baseline.*', 'protect.pkey.*', 'pgtable.*',
        'age.*']


@dataclass
class Pages:
    results: Path
    report: Path  # the compare's directory
    trend: Path  # the trend's directory


def make_pages(tmp: Path, metrics: list[str]) -> Pages:
    """Runs of A and B in tcg (B with REGRESSED, IMPROVED and INCONCLUSIVE changed),
    compared; then a few icount runs of A (no compare of that setup) and the trend of all."""
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
            for root in (tmp / (ODD_DIR if side == 'a' else 'side B'), results):
                benchstore.save(root, result, {'console.log': b'booted\n'})
    for run in range(2):
        some = {name: metric for name, metric in power_sim.one_run(rng, base, 'icount', None, 1.0)
                .items() if name.startswith('fastpath.') or name == REGRESSED}
        benchstore.save(results, power_sim.result('a' * 40, 'icount', some), {})
    assert main(['--repo', str(tmp), '--work', str(tmp / 'work'), 'compare',
                 '--a', str(tmp / ODD_DIR / 'bench'), '--b', str(tmp / 'side B' / 'bench'),
                 '--results', str(results)]) == 1
    assert main(['--repo', str(tmp), 'trend', '--results', str(results),
                 *[arg for metric in metrics for arg in ('--metric', metric)]]) == 0
    report, = (results / 'compare').iterdir()
    trend, = (results / 'trend').iterdir()
    return Pages(results, report, trend)


@pytest.fixture(scope='module')
def pages(tmp_path_factory: pytest.TempPathFactory) -> Pages:
    return make_pages(tmp_path_factory.mktemp('pages'), FEW)


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


def figures(doc: Element) -> list[tuple[str, str, Element]]:
    """(setup, section, figure) of every plot, in page order."""
    found = []
    setup = section = ''
    for element in doc.all('body')[0].children:
        if isinstance(element, str):
            continue
        if element.tag == 'h2':
            setup = element.text()
        elif element.tag == 'h3':
            section = element.text()
        elif element.tag == 'figure':
            found.append((setup, section, element))
    return found


def test_trend_index_groups_the_plots_headlines_first_with_the_last_verdicts(pages: Pages) -> None:
    report = json.loads((pages.report / 'report.json').read_text())
    doc = read(pages.trend / 'index.html')
    plots = figures(doc)
    tcg = 'default, tcg, x86_64, -cpu max, smp 2, 2048 MiB, quick'
    icount = 'default, icount, x86_64, -cpu max, smp 2, 2048 MiB, quick'
    assert [(setup, section, figure.all('h4')[0].text().replace('headline', '').strip())
            for setup, section, figure in plots if setup == tcg] == [
        (tcg, 'fastpath', 'fastpath.cpus2.ratio'),
        (tcg, 'frag / ro', REGRESSED),  # a headline metric: first in its section
        (tcg, 'frag / ro', 'frag.ro.n1024.grouped.hold_ns_per_page'),
        (tcg, 'frag / ro', IMPROVED),
        (tcg, 'frag / pkey', 'frag.pkey.n1024.baseline.tlb_flushes_per_1000_pages'),
        (tcg, 'protect / ro', 'protect.ro.block_ns_per_page')]
    assert [setup for setup, _, _ in plots][::len(plots) - 1] == [tcg, icount]  # compared first
    for setup, _, figure in plots:
        img, = figure.all('img')
        size = htmlpage.png_size(pages.trend / img.attrs['src'])
        assert (int(img.attrs['width']), int(img.attrs['height'])) == size
        metric = img.attrs['alt'].split()[0]
        caption, = figure.all('figcaption')
        assert setup in caption.text()  # the setup, whole, under the plot
        asides = figure.all('aside')
        if setup == icount:  # no compare of that setup: no verdict
            assert not asides
            continue
        # Beside the plot: the compare's verdict, its reason and where it came from.
        verdict = report['metrics'][metric]['verdict']
        assert verdict in asides[0].text() and report['metrics'][metric]['reason'] in asides[0].text()
        link = asides[0].all('a')[0].attrs['href']
        assert link == f'../../compare/{pages.report.name}/report.html#{metric}'
        assert (pages.trend / link.split('#')[0]).resolve() == pages.report / 'report.html'
    text = doc.text()
    assert f'the last compare of this setup, {pages.report.name}' in text
    assert 'No compare of this setup' in text


def write_report(root: Path, name: str, date: str, **b: Any) -> Path:
    side = {'spec': name, 'commits': ['b' * 40], 'arch': 'x86_64', 'config': 'default',
            'mode': 'tcg', 'qemu': {'cpu': 'max', 'smp': 2, 'memory_mb': 2048}, 'cmdline': '',
            **b}
    row = {field: 0 for field in compare_report.ROW_FIELDS} | {'unit': 'x', 'verdict': '~',
                                                           'why': 'no change', 'reason': 'r'}
    report = {'kind': 'compare', 'date': date, 'rule': {'alpha': 0.05}, 'a': side, 'b': side,
              'metrics': {'m': row}}
    (root / name).mkdir(parents=True)
    (root / name / 'report.json').write_text(json.dumps(report))
    return root / name


def test_the_verdicts_are_of_the_newest_compare_of_the_setup(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / 'compare'
    write_report(root, 'old', '2026-01-01T00:00:00Z')
    write_report(root, 'new', '2026-01-02T00:00:00Z')
    write_report(root, 'newest-icount', '2026-01-03T00:00:00Z', mode='icount')
    write_report(root, 'newest-full', '2026-01-03T00:00:00Z', workload='full')
    older = write_report(root, 'newest-older-harness', '2026-01-04T00:00:00Z')
    report = json.loads((older / 'report.json').read_text())
    del report['metrics']['m']['why']
    (older / 'report.json').write_text(json.dumps(report))
    (root / '.partial-x').mkdir()  # a compare being written
    reports = trend_page.compare_reports(root)
    assert 'no verdicts of ' + str(older) in capsys.readouterr().out
    result = power_sim.result('b' * 40, 'tcg', {})  # quick
    found = trend_page.last_compare(reports, result, tmp_path / 'trend' / 'now')
    assert found and found.name == 'new' and found.link == '../../compare/new/report.md'
    found = trend_page.last_compare(reports, {**result, 'mode': 'icount'}, tmp_path)
    assert found and found.name == 'newest-icount'
    qemu64 = {**result, 'qemu': {**result['qemu'], 'cpu': 'qemu64'}}
    assert trend_page.last_compare(reports, qemu64, tmp_path) is None


# ---------------------------------------------------------------- in a browser

# What a person would see cut off: an image that did not load, a heading, caption or
# cell whose text is wider than its box, anything beyond the right edge of the window.
CHECK = """(() => {
  const width = document.documentElement.clientWidth;
  const show = el => `${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 60)}"`;
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
    .map(i => i.getAttribute('src'));
  const clipped = [], beyond = [];
  for (const el of document.body.querySelectorAll('*')) {
    const display = getComputedStyle(el).display;
    if (!['inline', 'contents', 'table-row', 'table-row-group'].includes(display)
        && (el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1))
      clipped.push(`${show(el)}: ${el.scrollWidth}x${el.scrollHeight} in ` +
                   `${el.clientWidth}x${el.clientHeight}`);
    if (el.getBoundingClientRect().right > width + 1) beyond.push(show(el));
  }
  return {images: document.images.length, broken, clipped, beyond,
          figures: document.querySelectorAll('figure').length,
          page: [document.documentElement.scrollWidth, width]};
})()"""


def keep(shots: list[Path]) -> Path:
    """A new directory of GP_WORK/page-screenshots holding @shots: pytest's own tmp keeps
    the last three runs only, and nested runs (gitlab-ci-local's pytest job) count."""
    work = Path(os.environ.get('GP_WORK') or Path.home() / '.cache/grouped-pages')
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')

    def fill(staging: Path) -> None:
        for shot in shots:
            shutil.copy2(shot, staging)
    return publish_dir(work / 'page-screenshots', stamp, fill)


@pytest.mark.slow
def test_both_pages_render_whole_in_headless_chromium(tmp_path: Path) -> None:
    made = make_pages(tmp_path, MANY)
    shots = []
    plots = len(list(made.trend.glob('*.png')))
    assert plots > 40
    with Chromium() as browser:
        # The check sees what it is for: a missing image, a cut heading, a wide table.
        bad = tmp_path / 'bad.html'
        bad.write_text(htmlpage.page('bad', [
            '<img src="missing.png">', '<h4 style="width: 5em; overflow: hidden; white-space: nowrap">'
            'frag.pkey.n1024.baseline.tlb_flushes_per_1000_pages</h4>',
            f'<table><tr><td>{"x" * 400}</td></tr></table>']))
        seen = browser.open(bad.as_uri()).evaluate(CHECK)
        assert seen['broken'] == ['missing.png'] and seen['clipped'][0].startswith('h4 "frag.')
        assert seen['beyond'] and seen['page'][0] > seen['page'][1]
        for page, images in ((made.trend / 'index.html', plots), (made.report / 'report.html', 0)):
            for width in (1280, 1024):  # desktop widths
                tab = browser.open(page.as_uri(), width=width)
                seen = tab.evaluate(CHECK)
                assert seen['broken'] == [] and seen['clipped'] == [] and seen['beyond'] == [], \
                    seen
                assert seen['page'][0] <= seen['page'][1], f'{page} scrolls sideways: {seen}'
                assert seen['images'] == seen['figures'] == images, seen
                assert all(url.startswith('file://') for url in tab.requests()), tab.requests()
                shot = tmp_path / f'{page.stem}-{width}.png'
                tab.screenshot(shot)
                assert htmlpage.png_size(shot)[0] == width
                shots.append(shot)
    kept = keep([shot for shot in shots if shot.stem.endswith('-1280')])
    SCREENSHOTS.extend(sorted(kept.iterdir()))
