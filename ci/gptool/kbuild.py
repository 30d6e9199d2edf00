"""Build what the verbs boot: the configuration choice, a bootable x86_64 kernel for
QEMU, and an initramfs with busybox and our test and bench programs.

The QEMU kernel of one configuration is shared by `make selftests` and `make bench`:
the same bzImage and the same initramfs, whose init reads `gp.run=` on the kernel
command line to choose what to run."""
import gzip
import os
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import kconfig
from .errors import INFRASTRUCTURE, UNTESTABLE, HarnessError
from .fsutil import write_atomic
from .progress import heartbeat
from .qemu import TCG_THREADS
from .tree import Tree

ARCHES = ('um', 'x86_64', 'i386')

# What the kernel needs to boot an initramfs on QEMU's serial console; the options the
# tests themselves need are the kselftest's own `config` file (selftest_config()).
BOOT_FRAGMENT = """\
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_DEVTMPFS=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_PRINTK=y
CONFIG_FUTEX=y
CONFIG_SMP=y
CONFIG_DEBUG_KERNEL=y
CONFIG_PANIC_ON_OOPS=y
"""


def selftest_config(repo: Path) -> str:
    """selftests/grouped_pages/config: what the kselftests need, as kselftest has it."""
    return (repo / 'selftests' / 'grouped_pages' / 'config').read_text()


# Where the kselftest install of selftests/grouped_pages/ goes in the initramfs.
KSELFTEST_DIR = 'kselftest'

# kselftest's runner times a test out with coreutils' `timeout --foreground N`, which
# it looks for in /usr/bin. busybox's timeout has no --foreground and exits 143, not
# the 124 the runner takes for a timeout: translate, so settings' timeout= works.
TIMEOUT_SHIM = """\
#!/bin/busybox sh
[ "$1" = --foreground ] && shift
seconds=$1
shift
/bin/busybox timeout "$seconds" "$@"
status=$?
[ $status -eq 143 ] && status=124
exit $status
"""

INIT_SCRIPT = """\
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t debugfs debugfs /sys/kernel/debug
mount -t devtmpfs devtmpfs /dev
# devtmpfs has no /dev/stdout: kselftest's runner writes the tests' TAP there.
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
exec </dev/console >/dev/console 2>&1
# kmemleak rows: forget what boot left suspect, then report what the tests left.
kmemleak_clear() {
	[ -w /sys/kernel/debug/kmemleak ] || return 0
	# Only reported suspects are cleared, and none younger than 5 s is reported.
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	echo clear > /sys/kernel/debug/kmemleak
}
kmemleak_report() {
	[ -w /sys/kernel/debug/kmemleak ] || return 0
	# No object younger than 5 s is reported; a second scan settles what moved.
	sleep 6
	# A disabled kmemleak (kmemleak=off, or out of its pool) refuses to scan:
	# then the row must not claim a scan.
	echo scan > /sys/kernel/debug/kmemleak &&
		echo scan > /sys/kernel/debug/kmemleak &&
		echo GP-KMEMLEAK-SCANNED
	cat /sys/kernel/debug/kmemleak
}
run=selftests
args=
for word in $(cat /proc/cmdline); do
	case "$word" in
	gp.run=*) run=${word#gp.run=} ;;
	gp.args=*) args=$(echo "${word#gp.args=}" | tr ':' ' ') ;;
	gp.soak=*) soak=${word#gp.soak=} ;;
	esac
done
# The grouped-pages suite's soak case runs only when asked for (make faults SOAK_SECONDS=N).
module_args() {
	case "$1" in
	*/grouped_pages_kunit.ko) [ -n "${soak:-}" ] && echo "soak_seconds=$soak" ;;
	esac
}
case "$run" in
kunit-modules)
	# Each test module runs its suites when loaded; KTAP goes to the console.
	kmemleak_clear
	echo GP-KUNIT-BEGIN
	for module in /modules/*.ko; do
		insmod "$module" || echo "GP-KUNIT-INSMOD-FAILED $module"
	done
	echo GP-KUNIT-END
	kmemleak_report
	;;
faults)
	# gp.args: debugfs knobs (fail_page_alloc/probability=10 ...) set for the tests only.
	echo GP-FAULTS-BEGIN
	for knob in $args; do
		echo "${knob#*=}" > "/sys/kernel/debug/${knob%%=*}" || echo "GP-FAULTS-BAD-KNOB $knob"
	done
	# In a child: init must outlive whatever the failures do to the tests' processes.
	(
		echo GP-KUNIT-BEGIN
		# Loading maps the module: its page tables may be made to fail too.
		for module in /modules/*.ko; do
			tries=0
			# shellcheck disable=SC2046
			until insmod "$module" $(module_args "$module"); do
				tries=$((tries + 1))
				if [ $tries -ge 5 ]; then
					echo "GP-KUNIT-INSMOD-FAILED $module"
					break
				fi
			done
		done
		echo GP-KUNIT-END
		cd /kselftest && ./run_kselftest.sh
		echo "GP-SELFTESTS-EXIT $?"
	)
	# Retry: failures may still hit the writes that turn them off.
	for attr in fail_page_alloc failslab; do
		[ -w /sys/kernel/debug/$attr/probability ] || continue
		tries=0
		until echo 0 > /sys/kernel/debug/$attr/probability; do
			tries=$((tries + 1))
			[ $tries -ge 100 ] && echo "GP-FAULTS-BAD-KNOB $attr/probability=0" && break
		done
	done
	echo GP-FAULTS-END
	for attr in fail_page_alloc failslab; do
		echo "GP-FAULTS-LEFT $attr $(cat /sys/kernel/debug/$attr/times)"
	done
	for stats in /sys/kernel/debug/grouped_pages/*/stats; do
		echo "GP-CACHE ${stats%/stats}: $(grep pages_in_use "$stats")"
	done
	;;
mm)
	# The upstream mm subset (make mm-selftests): set up as run_vmtests.sh does, then
	# each test in turn with its exit status after it.
	echo 1 > /proc/sys/vm/overcommit_memory
	echo 128 > /proc/sys/vm/nr_hugepages
	mkdir -p /etc
	echo 'root:x:0:0:root:/:/bin/sh' > /etc/passwd
	cd /mm
	echo GP-MM-BEGIN
	while read -r name command; do
		echo "GP-MM-RUN $name"
		timeout 600 sh -c "$command" < /dev/null
		echo "GP-MM-RESULT $name $?"
	done < /mm/tests
	echo GP-MM-END
	status=/sys/kernel/debug/pks_pgtables
	if [ -r $status/status ]; then
		grep -E '^(mode|enforcing|pk_faults|write_windows) ' $status/status |
			sed 's/^/GP-MM-STATUS /'
		echo "GP-MM-STATUS walk_untagged $(grep '^untagged ' $status/walk | cut -d' ' -f2)"
	fi
	;;
bench)
	echo GP-BENCH-RUN
	/kselftest/grouped_pages/gp_bench $args
	status=$?
	# Let deferred frees (RCU, vfree work) run: a report they cause belongs to this run.
	echo 3 > /proc/sys/vm/drop_caches
	sleep 2
	echo "GP-BENCH-EXIT $status"
	;;
*)
	kmemleak_clear
	echo GP-SELFTESTS-BEGIN
	# kselftest's runner, as a kselftest user runs it: it applies settings' timeout.
	cd /kselftest
	KSELFTEST_GP_STRESS_ARGS="$args" ./run_kselftest.sh
	echo "GP-SELFTESTS-EXIT $?"
	kmemleak_report
	;;
esac
reboot -f
"""


@dataclass(frozen=True)
class ConfigFragment:
    name: str
    path: Path
    arches: tuple[str, ...]
    # '# kunit: modules': the KUnit suites are modules loaded in the QEMU initramfs.
    kunit_as_modules: bool = False
    # '# selftests may skip: NAME...': tests that skip by design with this fragment.
    selftests_may_skip: tuple[str, ...] = ()
    # '# boot: ARG...': kernel command-line arguments every boot of this row gets
    # (kunit.py's --kernel_args, the initramfs kernels' command line).
    boot_args: tuple[str, ...] = ()
    # '# tcg threads: single': QEMU runs every vCPU in one thread (qemu.TCG_THREADS).
    tcg_threads: str = 'multi'


def config_fragments(repo: Path) -> dict[str, ConfigFragment]:
    """configs/NAME.config; a '# arches: a b' line limits where a fragment makes sense."""
    fragments = {}
    for path in sorted((repo / 'configs').glob('*.config')):
        text = path.read_text()
        match = re.search(r'^# arches:\s*(.+)$', text, re.M)
        arches = tuple(match.group(1).split()) if match else ARCHES
        modules = re.search(r'^# kunit:\s*modules\s*$', text, re.M) is not None
        may_skip = re.search(r'^# selftests may skip:\s*(.+)$', text, re.M)
        boot = re.search(r'^# boot:\s*(.+)$', text, re.M)
        threads = re.search(r'^# tcg threads:\s*(\S+)\s*$', text, re.M)
        if threads and threads.group(1) not in TCG_THREADS:
            raise HarnessError(f'{path}: "# tcg threads: {threads.group(1)}": valid are '
                               f'{", ".join(TCG_THREADS)}', 2)
        fragments[path.stem] = ConfigFragment(path.stem, path, arches, modules,
                                              tuple(may_skip.group(1).split()) if may_skip else (),
                                              tuple(boot.group(1).split()) if boot else (),
                                              threads.group(1) if threads else 'multi')
    return fragments


def check_choice(repo: Path, arch: str, config: str) -> ConfigFragment:
    if arch not in ARCHES:
        raise HarnessError(f'unknown ARCH={arch!r}: valid are {", ".join(ARCHES)}', 2)
    fragments = config_fragments(repo)
    if config not in fragments:
        raise HarnessError(f'unknown CONFIG={config!r}: valid are {", ".join(fragments)} '
                           '(files in configs/)', 2, UNTESTABLE)
    fragment = fragments[config]
    if arch not in fragment.arches:
        raise HarnessError(f'CONFIG={config} is for ARCH={" or ".join(fragment.arches)}, not {arch}',
                           2, UNTESTABLE)
    return fragment


def cached_compiler() -> str:
    """gcc behind ccache when ccache is installed."""
    ccache = shutil.which('ccache')
    return f'{ccache} gcc' if ccache else 'gcc'


# The environment variables ccache hashes as the compiler's locale.
CACHE_LOCALE = ('LANG', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES')


def cache_env(tree: Path, build_dir: Path, work: Path) -> dict[str, str]:
    """The environment of a kernel build whose ccache entries serve any GP_WORK path, on
    any host (make matrix HOSTS=..., a shared remote cache).

    ccache rewrites the paths below GP_WORK relative to the build directory, and leaves
    the working directory out of the hash. The compiler then sees the source as
    ../../../trees/<base>/linux/mm/x.c, which the kernel's own -fmacro-prefix-map (the
    absolute tree path) does not strip: __FILE__ would change, and with it UML's expected
    boot WARN and every report. A second -fmacro-prefix-map strips the relative path too,
    so __FILE__ stays mm/x.c. ccache does not hash the value of a prefix map.

    ccache hashes the locale (LANG, LC_ALL, LC_CTYPE, LC_MESSAGES: the compiler's
    messages depend on it), which differs between a login here (LANG=C.UTF-8) and an ssh
    session on a host (often unset): builds run in C.UTF-8 everywhere.
    """
    relative = os.path.relpath(tree.resolve(), build_dir.resolve())
    flags = ' '.join(filter(None, (os.environ.get('KCPPFLAGS', ''),
                                   f'-fmacro-prefix-map={relative}/=')))
    return {**os.environ, 'CCACHE_BASEDIR': str(work.resolve()), 'CCACHE_NOHASHDIR': '1',
            'KCPPFLAGS': flags, **{var: 'C.UTF-8' for var in CACHE_LOCALE}}


def first_error(output: str) -> str:
    """The line that says what went wrong in compiler or make output."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if re.search(r'\berror:|\*\*\* .*Error \d+', line, re.IGNORECASE):
            return line
    return lines[-1] if lines else 'no output'


@dataclass(frozen=True)
class QemuKernel:
    """The x86_64 kernel of one configuration that the QEMU verbs boot."""
    repo: Path
    tree: Tree
    work: Path
    config: str
    jobs: int

    @property
    def build_dir(self) -> Path:
        return self.work / 'build' / self.tree.base.key / f'x86_64-selftests-{self.config}'

    @property
    def log(self) -> Path:
        return self.build_dir / 'build.log'


@dataclass
class QemuRunRequest:
    """What a verb that boots one configuration's QEMU kernel is asked for."""
    repo: Path
    tree: Tree
    work: Path
    config: str
    jobs: int
    qemu_cpu: str
    smp: int
    memory_mb: int
    timeout: int
    results: Path

    @property
    def kernel(self) -> QemuKernel:
        return QemuKernel(self.repo, self.tree, self.work, self.config, self.jobs)


def run_logged(kernel: QemuKernel, cmd: list[str]) -> int:
    """Run @cmd with its output, after the command line, appended to the build log."""
    with kernel.log.open('a') as out:
        out.write('$ ' + ' '.join(cmd) + '\n')
        out.flush()
        return subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                              env=cache_env(kernel.tree.path, kernel.build_dir,
                                            kernel.work)).returncode


def _make(kernel: QemuKernel, *targets: str) -> None:
    compiler = cached_compiler()
    cmd = ['make', '-C', str(kernel.tree.path), f'O={kernel.build_dir}', 'ARCH=x86_64',
           f'-j{kernel.jobs}', f'CC={compiler}', f'HOSTCC={compiler}', *targets]
    with heartbeat(f'make {" ".join(targets)}'):
        status = run_logged(kernel, cmd)
    if status != 0:
        raise HarnessError(f'kernel build failed (make {" ".join(targets)}): '
                           f'{first_error(kernel.log.read_text(errors="replace"))} '
                           f'(log: {kernel.log})', kind=UNTESTABLE)


def build_kernel(kernel: QemuKernel) -> Path:
    """Configure (only when the fragment changed) and build bzImage; return its path."""
    fragment = (BOOT_FRAGMENT + selftest_config(kernel.repo)
                + check_choice(kernel.repo, 'x86_64', kernel.config).path.read_text())
    kernel.build_dir.mkdir(parents=True, exist_ok=True)
    stamp = kernel.build_dir / '.gp-fragment'
    if not (kernel.build_dir / '.config').is_file() or \
            (stamp.read_text() if stamp.is_file() else None) != fragment:
        write_atomic(kernel.build_dir / '.config', fragment.encode())
        _make(kernel, 'olddefconfig')
        wanted = kconfig.parse_config(fragment)
        dotconfig = kconfig.parse_config((kernel.build_dir / '.config').read_text())
        wrong = kconfig.mismatches(wanted, dotconfig, kernel.tree.path, 'x86_64')
        if wrong:
            raise HarnessError('config options did not land: ' + '; '.join(
                f'{m.option}={m.wanted} is {m.got}: {m.reason}' for m in wrong), 2, UNTESTABLE)
        write_atomic(stamp, fragment.encode())
    _make(kernel, 'bzImage')
    if modules_enabled(kernel):
        _make(kernel, 'modules')
    return kernel.build_dir / 'arch/x86/boot/bzImage'


def modules_enabled(kernel: QemuKernel) -> bool:
    config = kernel.build_dir / '.config'
    return config.is_file() and kconfig.parse_config(config.read_text()).get('CONFIG_MODULES') == 'y'


def built_modules(kernel: QemuKernel) -> list[Path]:
    """The KUnit test modules (*_kunit.ko) a kernel built: what the initramfs loads.

    Other modules the configuration happens to build (drivers for hardware QEMU lacks)
    are left out: loading them would fail for reasons that are not ours.
    """
    return sorted(kernel.build_dir.glob('**/*_kunit.ko')) if modules_enabled(kernel) else []


def install_headers(kernel: QemuKernel) -> Path:
    """`make headers`: the kernel's uapi headers in the build directory, for userspace
    built against this kernel rather than the host's (older) ones."""
    _make(kernel, 'headers')
    headers = kernel.build_dir / 'usr/include'
    if not (headers / 'linux').is_dir():
        raise HarnessError(f'make headers left no {headers}/linux (log: {kernel.log})',
                           kind=UNTESTABLE)
    return headers


def build_kselftests(kernel: QemuKernel) -> Path:
    """Build and install selftests/grouped_pages the kselftest way; return the install.

    `make headers` exports our uapi headers into the build directory, then the
    kselftest build (`make -C tools/testing/selftests TARGETS=grouped_pages install`)
    builds gp_stress and gp_bench statically with them and installs them with
    run_kselftest.sh, the runner and the settings file.
    """
    if not (kernel.tree.path / 'tools/testing/selftests/grouped_pages/Makefile').is_file():
        raise HarnessError('this revision has no tools/testing/selftests/grouped_pages/Makefile',
                           kind=UNTESTABLE)
    install_headers(kernel)
    install = kernel.build_dir / 'kselftest_install'
    shutil.rmtree(install, ignore_errors=True)
    compiler = cached_compiler()
    cmd = ['make', '-C', str(kernel.tree.path / 'tools/testing/selftests'),
           f'O={kernel.build_dir}', 'TARGETS=grouped_pages', f'CC={compiler}',
           'LDFLAGS=-static', f'KSFT_INSTALL_PATH={install}', 'install']
    status = run_logged(kernel, cmd)
    missing = [name for name in ('run_kselftest.sh', 'grouped_pages/gp_stress',
                                 'grouped_pages/gp_bench', 'grouped_pages/settings')
               if not (install / name).is_file()]
    if status != 0 or missing:
        raise HarnessError(f'the kselftest build of grouped_pages failed: '
                           f'{first_error(kernel.log.read_text(errors="replace")) if status else "missing " + ", ".join(missing)} '
                           f'(log: {kernel.log})', kind=UNTESTABLE)
    return install


def build_initramfs(kernel: QemuKernel, extra: dict[str, Path] | None = None,
                    name: str = 'initramfs.cpio.gz') -> Path:
    """busybox, the kselftest install and an init that runs what gp.run= names, as a gzipped cpio.

    @extra: more directories, by their path in the initramfs (the mm selftests).
    """
    kselftests = build_kselftests(kernel)
    busybox = Path('/bin/busybox')
    if not busybox.is_file():
        raise HarnessError('/bin/busybox missing: run `make deps` (busybox-static)',
                           kind=INFRASTRUCTURE)
    with tempfile.TemporaryDirectory(prefix='gp-initramfs-') as tmp:
        root = Path(tmp)
        for sub in ('bin', 'proc', 'sys', 'dev', 'tmp', 'usr/bin'):
            (root / sub).mkdir(parents=True)
        # The kernel opens /dev/console for init before devtmpfs is mounted.
        try:
            os.mknod(root / 'dev/console', 0o600 | stat.S_IFCHR, os.makedev(5, 1))
        except PermissionError as err:
            raise HarnessError('the initramfs needs a /dev/console device node, and creating '
                               'one needs root: run it as root', kind=INFRASTRUCTURE) from err
        shutil.copy2(busybox, root / 'bin/busybox')
        shutil.copytree(kselftests, root / KSELFTEST_DIR, symlinks=True)
        (root / 'usr/bin/timeout').write_text(TIMEOUT_SHIM)
        (root / 'usr/bin/timeout').chmod(0o755)
        modules = built_modules(kernel)
        if modules:
            (root / 'modules').mkdir()
            for module in modules:
                shutil.copy2(module, root / 'modules' / module.name)
        for where, directory in (extra or {}).items():
            shutil.copytree(directory, root / where, symlinks=True)
        (root / 'init').write_text(INIT_SCRIPT)
        (root / 'init').chmod(0o755)
        files = subprocess.run(['find', '.', '-print0'], cwd=root, capture_output=True,
                               check=True).stdout
        packed = subprocess.run(['cpio', '--null', '-o', '-H', 'newc', '--quiet'], cwd=root,
                                input=files, capture_output=True)
        if packed.returncode != 0:
            raise HarnessError('cpio could not pack the initramfs: ' +
                               first_error(packed.stderr.decode(errors='replace')),
                               kind=INFRASTRUCTURE)
        cpio = packed.stdout
    image = kernel.build_dir / 'selftests' / name
    write_atomic(image, gzip.compress(cpio, compresslevel=1))
    return image
