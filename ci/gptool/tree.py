"""Prepare a kernel source tree: pristine base + our overlay files + our patches.

The tree is kept between runs and updated incrementally: a file is rewritten only when
its content must change, so the kernel build after an edit recompiles only what the
edit touched, and preparing twice changes nothing.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import INFRASTRUCTURE, UNTESTABLE, HarnessError
from .fsutil import read_bytes_or_none, write_atomic, write_json_atomic
from .progress import heartbeat

DEFAULT_TARBALL = Path('/usr/src/linux-source-6.12.tar.xz')
STATE_DIR = '.grouped-pages'
# Entries of kunit/ that belong to the harness, not to the kernel tree.
KUNIT_HARNESS_FILES = {'.kunitconfig', 'README.md', 'um.kunitconfig', 'x86_64.kunitconfig',
                       'i386.kunitconfig'}


@dataclass(frozen=True)
class Base:
    """A pristine kernel source: where it came from and which version it is."""
    key: str
    version: str
    origin: dict[str, str]


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from a kernel tree's top Makefile."""
    try:
        text = (tree / 'Makefile').read_text(errors='replace')
    except OSError as err:
        raise HarnessError(f'{tree} is not a kernel tree: cannot read its Makefile ({err.strerror})', 2)
    # [ \t], not \s: an empty EXTRAVERSION must not take the next line's NAME.
    fields = dict(re.findall(r'^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)[ \t]*=[ \t]*(\S*)', text, re.M))
    if not {'VERSION', 'PATCHLEVEL', 'SUBLEVEL'} <= fields.keys():
        raise HarnessError(f'{tree} is not a kernel tree: its Makefile has no VERSION/PATCHLEVEL/SUBLEVEL', 2)
    return f"{fields['VERSION']}.{fields['PATCHLEVEL']}.{fields['SUBLEVEL']}{fields.get('EXTRAVERSION', '')}"


def _git(src: Path, *args: str) -> str:
    proc = subprocess.run(['git', '-C', str(src), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f'git {" ".join(args)} in {src} failed: {proc.stderr.strip()}', 2)
    return proc.stdout.strip()


def describe_git_source(src: Path) -> Base:
    """A user's kernel git tree: its HEAD commit is the base; the tree is only read."""
    if not src.is_dir():
        raise HarnessError(f'KERNEL_SRC={src} does not exist or is not a directory', 2)
    if not (src / 'tools/testing/kunit/kunit.py').is_file() or not (src / 'Kconfig').is_file():
        raise HarnessError(f'KERNEL_SRC={src} is not a kernel tree: no Kconfig or '
                           'tools/testing/kunit/kunit.py (want a Linux source checkout)', 2)
    kernel_version(src)
    if subprocess.run(['git', '-C', str(src), 'rev-parse', '--is-inside-work-tree'],
                      capture_output=True).returncode != 0:
        raise HarnessError(f'KERNEL_SRC={src} is not a git work tree: the base must be a '
                           'commit so that it can be recorded and reproduced', 2)
    commit = _git(src, 'rev-parse', 'HEAD')
    describe = _git(src, 'describe', '--always', '--tags', '--abbrev=12', 'HEAD')
    dirty = bool(_git(src, 'status', '--porcelain', '--untracked-files=no'))
    return Base(key=f'git-{commit[:12]}', version=describe,
                origin={'kind': 'git', 'path': str(src), 'commit': commit,
                        'describe': describe,
                        'note': 'uncommitted changes in KERNEL_SRC were not used' if dirty else ''})


def describe_tarball(tarball: Path) -> Base:
    """The Debian linux-source tarball; keyed by its identity so a new package means a new tree."""
    try:
        st = tarball.stat()
    except FileNotFoundError:
        raise HarnessError(f'kernel source tarball {tarball} not found: run `make deps` (installs '
                           'linux-source-6.12) or set KERNEL_SRC=<kernel git tree>', 2, INFRASTRUCTURE)
    ident = hashlib.sha256(f'{tarball.resolve()}:{st.st_size}:{st.st_mtime_ns}'.encode()).hexdigest()
    package = subprocess.run(['dpkg-query', '-W', '-f=${Package} ${Version}', 'linux-source-6.12'],
                             capture_output=True, text=True).stdout.strip()
    return Base(key=f'tarball-{ident[:12]}', version='',
                origin={'kind': 'tarball', 'path': str(tarball), 'package': package})


def _extract_git(src: Path, commit: str, dest: Path) -> None:
    archive = subprocess.Popen(['git', '-C', str(src), 'archive', '--format=tar', commit],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(['tar', '-x', '-C', str(dest)], stdin=archive.stdout)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise HarnessError(f'could not export {commit} from KERNEL_SRC={src}', kind=INFRASTRUCTURE)


def _extract_tarball(tarball: Path, dest: Path) -> None:
    proc = subprocess.run(['tar', '-x', '-f', str(tarball), '-C', str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f'could not extract {tarball}: {proc.stderr.strip()}', kind=INFRASTRUCTURE)
    tops = [p for p in dest.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise HarnessError(f'{tarball} does not hold one top directory: not a linux-source tarball',
                           kind=INFRASTRUCTURE)
    for entry in tops[0].iterdir():
        entry.rename(dest / entry.name)
    tops[0].rmdir()


def ensure_base(work: Path, base: Base) -> tuple[Path, Base]:
    """Extract the base once into work/trees/KEY/linux; return the tree and the base with its version."""
    root = work / 'trees' / base.key
    tree = root / 'linux'
    info = root / 'base.json'
    if not info.is_file():
        root.mkdir(parents=True, exist_ok=True)
        # What a killed extraction left: a half tree, or a whole one never recorded.
        shutil.rmtree(tree, ignore_errors=True)
        for stale in root.glob('.extract-*'):
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=root, prefix='.extract-'))
        # stderr: stdout of `gptool tree` is the tree's path alone, for `cd "$(make -s tree)"`.
        print(f'tree: extracting {base.origin["path"]} into {tree} (once per base)',
              file=sys.stderr, flush=True)
        try:
            with heartbeat('tree: extracting the base', every=30, stream=sys.stderr):
                if base.origin['kind'] == 'git':
                    _extract_git(Path(base.origin['path']), base.origin['commit'], staging)
                else:
                    _extract_tarball(Path(base.origin['path']), staging)
            staging.rename(tree)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        version = base.version or kernel_version(tree)
        write_json_atomic(info, {'key': base.key, 'version': version, 'origin': base.origin})
    recorded = json.loads(info.read_text())
    # Read again from the tree: trees extracted by older harnesses recorded a misparsed one.
    version = base.version or kernel_version(tree)
    return tree, Base(key=base.key, version=version, origin=recorded['origin'])


# Repo directory, where it lands in the kernel tree, and entries that are not kernel files.
OVERLAYS = (('kernel', '', {'patches'}),
            ('kunit', '', KUNIT_HARNESS_FILES),
            ('selftests', 'tools/testing/selftests/', set()))


def overlay_files(repo: Path) -> dict[str, Path]:
    """Our files by their kernel-tree path: kernel/** (but patches/), kunit/** (but harness
    files) and selftests/** (under tools/testing/selftests/)."""
    files: dict[str, Path] = {}
    for top, prefix, skip in OVERLAYS:
        root = repo / top
        if not root.is_dir():
            continue
        for path in sorted(root.rglob('*')):
            rel = path.relative_to(root)
            if rel.parts[0] in skip or not path.is_file() or '__pycache__' in rel.parts:
                continue
            files[prefix + rel.as_posix()] = path
    return files


def patch_targets(patch: Path) -> list[str]:
    """Files a git-format patch touches, as kernel-tree paths."""
    targets = []
    for line in patch.read_text(errors='replace').splitlines():
        match = re.match(r'^diff --git a/(\S+) b/(\S+)$', line)
        if match:
            targets.append(match.group(2))
    if not targets:
        raise HarnessError(f'{patch.name} is not a git-format patch (no "diff --git" line)', 2)
    return targets


class Tree:
    """A prepared tree and the record of which files we changed in it."""

    def __init__(self, path: Path, base: Base) -> None:
        self.path = path
        self.base = base
        self.state = path / STATE_DIR
        self.manifest_path = self.state / 'manifest.json'
        try:
            self.manifest: dict[str, bool] = json.loads(self.manifest_path.read_text())
        except FileNotFoundError:
            self.manifest = {}

    def pristine(self, rel: str) -> bytes | None:
        """The base's content of rel, or None when the base has no such file."""
        if rel in self.manifest:
            if not self.manifest[rel]:
                return None
            return (self.state / 'orig' / rel).read_bytes()
        return read_bytes_or_none(self.path / rel)

    def remember_original(self, rel: str) -> None:
        """Keep the base's rel before its first change, and say so on disk at once: a sync
        killed after changing rel must not take the changed file for the base next time."""
        if rel in self.manifest:
            return
        original = read_bytes_or_none(self.path / rel)
        if original is not None:
            write_atomic(self.state / 'orig' / rel, original)
        self.manifest[rel] = original is not None
        write_json_atomic(self.manifest_path, self.manifest)

    def desired_files(self, repo: Path) -> dict[str, tuple[bytes, int]]:
        """What every file we manage must hold: overlay files, then patches applied in order."""
        desired = {rel: (path.read_bytes(), 0o755 if os.access(path, os.X_OK) else 0o644)
                   for rel, path in overlay_files(repo).items()}
        patches = sorted((repo / 'kernel' / 'patches').glob('*.patch'))
        if not patches:
            return desired
        with tempfile.TemporaryDirectory(prefix='gp-patch-') as tmp:
            staging = Path(tmp)
            for patch in patches:
                for rel in patch_targets(patch):
                    if (staging / rel).exists():
                        continue
                    content = desired[rel][0] if rel in desired else self.pristine(rel)
                    if content is not None:
                        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                        (staging / rel).write_bytes(content)
                self._apply(patch, staging)
            for path in staging.rglob('*'):
                if path.is_file():
                    rel = path.relative_to(staging).as_posix()
                    mode = desired.get(rel, (b'', 0o644))[1]
                    desired[rel] = (path.read_bytes(), mode)
        return desired

    def _apply(self, patch: Path, staging: Path) -> None:
        proc = subprocess.run(['git', 'apply', '--whitespace=nowarn', str(patch.resolve())],
                              cwd=staging, capture_output=True, text=True,
                              env={**os.environ, 'GIT_CEILING_DIRECTORIES': str(staging.parent)})
        if proc.returncode == 0:
            return
        failed = re.search(r'error: patch failed: (\S+):(\d+)', proc.stderr)
        missing = re.search(r'error: (\S+): (does not exist in index|No such file or directory)', proc.stderr)
        if failed:
            where = f'{failed.group(1)} (hunk at line {failed.group(2)})'
        elif missing:
            where = f'{missing.group(1)} (file not in the base)'
        else:
            where = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'unknown file'
        raise HarnessError(f'patch {patch.name} does not apply to {where} of base {self.base.version}',
                           kind=UNTESTABLE)

    def sync(self, repo: Path) -> list[str]:
        """Bring the tree to the desired state; return the kernel-tree paths that changed."""
        desired = self.desired_files(repo)
        changed = []
        for rel, (content, mode) in sorted(desired.items()):
            target = self.path / rel
            if read_bytes_or_none(target) == content and (target.stat().st_mode & 0o777) == mode:
                continue
            self.remember_original(rel)
            write_atomic(target, content, mode)
            changed.append(rel)
        for rel in sorted(set(self.manifest) - set(desired)):
            target = self.path / rel
            original = self.state / 'orig' / rel
            if self.manifest[rel]:
                write_atomic(target, original.read_bytes())
            else:
                target.unlink(missing_ok=True)
            # Forget rel on disk before its copy goes, for the same reason.
            del self.manifest[rel]
            write_json_atomic(self.manifest_path, self.manifest)
            original.unlink(missing_ok=True)
            changed.append(rel)
        return changed


def resolve_base(kernel_src: str | None, tarball: Path = DEFAULT_TARBALL) -> Base:
    if kernel_src:
        return describe_git_source(Path(kernel_src).expanduser().resolve())
    return describe_tarball(tarball)


def prepare(repo: Path, work: Path, kernel_src: str | None = None,
            tarball: Path = DEFAULT_TARBALL) -> Tree:
    """Pristine base + overlay + patches in work/trees/KEY/linux, changed only where needed."""
    tree_path, base = ensure_base(work, resolve_base(kernel_src, tarball))
    tree = Tree(tree_path, base)
    tree.sync(repo)
    return tree
