"""kbuild.cache_env: the real ccache and gcc, two GP_WORKs at different paths laid out as
the harness lays them out (trees/<base>/linux, build/<base>/<arch>-<config>), compiling
as kbuild does (from the build directory, with the kernel's own -fmacro-prefix-map of
the absolute tree path) and in another locale: the second build is a cache hit, and
__FILE__ is mm/x.c in both, as without ccache (UML's expected-WARN filter matches on it)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gptool import kbuild

SOURCE = '#include "x.h"\nconst char *file = __FILE__;\nconst char *header = HEADER_FILE;\n'


def build(work: Path, ccache_dir: Path) -> tuple[bytes, dict[str, int]]:
    tree = work / 'trees' / 'base' / 'linux'
    (tree / 'mm').mkdir(parents=True)
    (tree / 'include').mkdir()
    (tree / 'mm' / 'x.c').write_text(SOURCE)
    (tree / 'include' / 'x.h').write_text('#define HEADER_FILE __FILE__\nextern int x;\n')
    build_dir = work / 'build' / 'base' / 'um-default'
    build_dir.mkdir(parents=True)
    env = {**kbuild.cache_env(tree, build_dir, work), 'CCACHE_DIR': str(ccache_dir)}
    subprocess.run(['ccache', 'gcc', f'-fmacro-prefix-map={tree}/=',
                    *env['KCPPFLAGS'].split(), f'-I{tree}/include', '-c', f'{tree}/mm/x.c',
                    '-o', 'x.o'], cwd=build_dir, env=env, check=True)
    stats = subprocess.run(['ccache', '--print-stats'], capture_output=True, text=True,
                           env=env, check=True).stdout
    counts = {k: int(v) for k, v in (line.split('\t') for line in stats.splitlines())}
    return (build_dir / 'x.o').read_bytes(), counts


@pytest.mark.skipif(not shutil.which('ccache'), reason='ccache missing: make deps')
def test_a_build_at_another_path_hits_and_keeps_file_names(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('KCPPFLAGS', raising=False)
    ccache_dir = tmp_path / 'ccache'
    # A login here, then an ssh session on a host: another locale, which ccache hashes.
    monkeypatch.setenv('LANG', 'C.UTF-8')
    first, before = build(tmp_path / 'a' / 'gp-work', ccache_dir)
    monkeypatch.delenv('LANG')
    monkeypatch.setenv('LC_MESSAGES', 'en_US.UTF-8')
    second, after = build(tmp_path / 'host-two' / 'cache' / 'grouped-pages', ccache_dir)
    assert before['cache_miss'] == 1
    hits = after['direct_cache_hit'] + after['preprocessed_cache_hit']
    assert hits == 1 and after['cache_miss'] == 1
    for obj in (first, second):
        assert b'mm/x.c\0' in obj and b'../' not in obj and str(tmp_path).encode() not in obj


def test_cache_env_keeps_the_callers_kcppflags(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('KCPPFLAGS', '-DMINE')
    env = kbuild.cache_env(tmp_path / 'w/trees/b/linux', tmp_path / 'w/build/b/x86_64-kasan',
                           tmp_path / 'w')
    assert env['KCPPFLAGS'] == '-DMINE -fmacro-prefix-map=../../../trees/b/linux/='
    assert env['CCACHE_BASEDIR'] == str((tmp_path / 'w').resolve())
    assert env['CCACHE_NOHASHDIR'] == '1' and env['PATH'] == os.environ['PATH']
