# grouped-pages: the grouped page allocator and its test harness.
# `make help` lists the targets and variables.

ARCH       ?= um
CONFIG     ?= default
QEMU_CPU   ?= max
KUNIT_ARGS ?=
JOBS       ?= $(shell nproc)
# Trees, build directories and the ccache live outside the repo.
GP_WORK    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/grouped-pages
CCACHE_DIR ?= $(GP_WORK)/ccache
KERNEL_SRC ?=

# OUTCOME=<file>: gptool writes there how it ended ({status, kind, message}), since make
# itself exits 2 for any failure; ci/status.sh sets it and exits with that status.
OUTCOME    ?=
PYTHON := /usr/bin/python3
GPTOOL := PYTHONPATH=$(CURDIR)/ci GP_WORK=$(GP_WORK) KERNEL_SRC=$(KERNEL_SRC) \
	CCACHE_DIR=$(CCACHE_DIR) $(PYTHON) -m gptool $(if $(OUTCOME),--outcome='$(OUTCOME)')
# Before $(error ...): a usage error caught by make itself is written to OUTCOME as status 2.
usage = $(if $(OUTCOME),$(shell printf '{"status": 2, "kind": "usage"}\n' > '$(OUTCOME)'))

export CCACHE_DIR

SMP        ?= 2
MEMORY     ?= 1024
# Seconds before a run counts as hung: KUnit's kernel, the selftests' guest.
KUNIT_TIMEOUT    ?= 600
SELFTEST_TIMEOUT ?= 900
# make bench: tcg or icount (deterministic timing), full, quick or pgtables, boots, extra cmdline.
BENCH_MODE     ?= tcg
BENCH_WORKLOAD ?= full
BENCH_MEMORY   ?= 2048
RUNS           ?= 1
BENCH_CMDLINE  ?=
# make mm-selftests: guest memory (256 MiB of it huge pages) and seconds per boot.
MM_MEMORY  ?= 2048
MM_TIMEOUT ?= 1800

.PHONY: help deps tree kunit selftests mm-selftests faults soak bench compare bisect trend matrix matrix-plan cache-server cache-server-stop matrix-hosts-test kcidb cell pytest pytest-fast shellcheck checkpatch test

help:
	@echo 'make kunit     run our KUnit suites with kunit.py (ARCH=um|x86_64|i386, CONFIG=...)'
	@echo 'make test      everything CI runs: pytest, shellcheck, checkpatch, KUnit (um, x86_64 max, isolated and qemu64), selftests, mm-selftests, the three-host matrix test, a bench smoke run and compare'
	@echo 'make selftests boot the patched kernel in QEMU and run the kselftest stress tests (TEST=name...: only those)'
	@echo 'make mm-selftests  a subset of the kernel'"'"'s mm selftests, booted enforcing and with nopkstables:'
	@echo '               no test worse enforcing, 0 PK faults, 0 untagged tables (results/mm-selftests/)'
	@echo 'make faults    the fault-injection sweep: KUnit suite and selftests under injected page and slab'
	@echo '               allocation failures, one boot per setting (SETTING=name...: only those); results/faults/'
	@echo '               (SOAK_SECONDS=N: the soak case too, under each setting)'
	@echo 'make soak      SOAK_SECONDS (300) of every cache operation at once, x86_64 with SMP vCPUs'
	@echo '               (SMP=4 for four; SEED=<n> replays a run)'
	@echo 'make bench     boot the QEMU kernel with gp_bench; results in results/bench/ (BENCH_MODE, BENCH_WORKLOAD, RUNS)'
	@echo 'make compare   A=<rev|results dir> B=<rev|results dir> [RUNS=8]: what changed from A to B'
	@echo '               (results/compare/<time>-<A>-vs-<B>/report.html, regressions first);'
	@echo '               gptool exits 1 on a regression, 3 when a change is inconclusive (make: 2; ci/status.sh keeps them)'
	@echo 'make bisect    GOOD=<rev> BAD=<rev> CHECK=<check> [REPEAT=N] [ON=base KERNEL_SRC=..]:'
	@echo '               the first bad commit and a reproduce.sh (results/bisect/); CHECK is one of'
	@echo '               kunit:<suite.case glob> (with ARCH CONFIG QEMU_CPU), selftest:<name>,'
	@echo '               bench:<metric><op><number> (bad when true, e.g. bench:fastpath.cpus2.ratio>1.3;'
	@echo '               BENCH_WORKLOAD quick unless given), cmd:<shell command> (0 good, 125 skip)'
	@echo 'make trend     plot every stored bench metric over the commit history, with the last'
	@echo '               compare'"'"'s verdicts beside: results/trend/<time>/index.html'
	@echo 'make kcidb     COMMIT=<rev> (HEAD): its KUnit, selftest, bench and matrix results as KernelCI'
	@echo '               KCIDB JSON, checked against its schema (results/kcidb/; KCIDB_ORIGIN)'
	@echo 'make matrix    the CI matrix (ci/matrix: KUnit and selftests rows) with GNU parallel;'
	@echo '               ROWS=<ARCH-CONFIG-CPU...>: only those; HOSTS=<sshloginfile>: on build hosts over ssh'
	@echo 'make matrix-plan  expected wall time of the matrix on HOSTS=<n,n,...|sshloginfile> hosts of CORES cores'
	@echo 'make cell      ROW=<ARCH-CONFIG-CPU>: one matrix row, as the matrix and GitLab run it'
	@echo 'make cache-server  a redis compiler cache for build hosts (CACHE_BIND CACHE_PORT CACHE_MEMORY);'
	@echo '               make cache-server-stop stops it'
	@echo 'make matrix-hosts-test  three sshd hosts in network namespaces and a cache server here,'
	@echo '               a small matrix across them with a host killed mid-row (root)'
	@echo 'make tree      prepare the kernel tree (base + kernel/ + kunit/ + kernel/patches/)'
	@echo 'make deps      install the Debian packages the harness needs'
	@echo 'make checkpatch   scripts/checkpatch.pl --strict on our kernel files'
	@echo 'make pytest       the harness tests (ci/tests), fast ones first'
	@echo 'make pytest-fast  the harness tests not marked slow: under a minute'
	@echo 'make shellcheck   shellcheck on the shell scripts'
	@echo 'variables: ARCH CONFIG QEMU_CPU KUNIT_ARGS SMP MEMORY JOBS GP_WORK CCACHE_DIR KERNEL_SRC'
	@echo '           TEST (selftests) SETTING (faults) ROW (cell) GOOD BAD CHECK REPEAT ON (bisect)'
	@echo '           KUNIT_TIMEOUT (600 s) SELFTEST_TIMEOUT (900 s): when a run counts as hung'
	@echo '           mm-selftests: MM_MEMORY (2048 MiB) MM_TIMEOUT (1800 s per boot)'
	@echo '           bench: BENCH_MODE BENCH_WORKLOAD BENCH_MEMORY BENCH_CMDLINE RUNS'
	@echo '           compare: A B RUNS COMPARE_ARGS (e.g. --force, --alpha 0.01, --min-effect 3)'
	@echo '           matrix: MATRIX_JOBS (1: rows share GP_WORK and wait on its lock) ROWS HOSTS'
	@echo '           CCACHE_REMOTE_STORAGE (passed to the hosts) CORES (matrix-plan)'
	@echo '           OUTCOME: a file where gptool writes its exit status (ci/status.sh TARGET sets it)'
	@echo 'exit statuses (gptool, ci/status.sh): 0 passed, 1 the code under test failed, 2 usage error,'
	@echo '           3 inconclusive, 4 the harness or the machine failed'

deps:
	@bash ci/deps

tree: deps
	@$(GPTOOL) tree

kunit: deps
	@$(GPTOOL) kunit --arch=$(ARCH) --config=$(CONFIG) --jobs=$(JOBS) \
		--qemu-cpu=$(QEMU_CPU) --timeout=$(KUNIT_TIMEOUT) -- $(KUNIT_ARGS)

selftests: deps
	@$(GPTOOL) selftests --config=$(CONFIG) --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) \
		--smp=$(SMP) --memory=$(MEMORY) --timeout=$(SELFTEST_TIMEOUT) \
		$(foreach test,$(TEST),--test=$(test))

mm-selftests: deps
	@$(GPTOOL) mm-selftests --config=$(CONFIG) --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) \
		--smp=$(SMP) --memory=$(MM_MEMORY) --timeout=$(MM_TIMEOUT)

faults: deps
	@$(GPTOOL) faults --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) --smp=$(SMP) --memory=$(MEMORY) \
		--timeout=$(SELFTEST_TIMEOUT) $(foreach setting,$(SETTING),--setting=$(setting)) \
		--soak-seconds=$(if $(filter file,$(origin SOAK_SECONDS)),0,$(SOAK_SECONDS))

# Minutes of every operation of the cache at once (the KUnit case gp_test_soak), x86_64,
# SMP vCPUs; SEED=<n> replays a run (its seed is in the log). Under failures: make faults SOAK_SECONDS=N.
SOAK_SECONDS ?= 300
soak: deps
	@$(GPTOOL) kunit --arch=x86_64 --config=$(CONFIG) --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) \
		--timeout=$$(($(SOAK_SECONDS) + $(KUNIT_TIMEOUT))) -- '--qemu_args=-smp $(SMP)' \
		--kernel_args=grouped_pages_kunit.soak_seconds=$(SOAK_SECONDS) \
		$(if $(SEED),--kernel_args=grouped_pages_kunit.seed=$(SEED)) grouped_pages.gp_test_soak

bench: deps
	@$(GPTOOL) bench --config=$(CONFIG) --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) \
		--smp=$(SMP) --memory=$(BENCH_MEMORY) --mode=$(BENCH_MODE) \
		--workload=$(BENCH_WORKLOAD) --runs=$(RUNS) --cmdline='$(BENCH_CMDLINE)'

# A and B: git revisions (benched RUNS times each, interleaved) or stored results.
# RUNS defaults to 8 here, unless given; COMPARE_ARGS e.g. --force, --alpha 0.01, --min-effect 3.
COMPARE_ARGS ?=
compare: deps
	$(if $(and $(A),$(B)),,$(usage)$(error make compare needs A= and B=, each a git revision (HEAD~1, a tag, \
		a sha) or a bench results directory (results/bench/<run>, results/compare/<report>/A); \
		e.g. make compare A=HEAD~1 B=HEAD))
	@$(GPTOOL) compare --a='$(A)' --b='$(B)' --runs=$(if $(filter file,$(origin RUNS)),8,$(RUNS)) \
		--config=$(CONFIG) --mode=$(BENCH_MODE) --qemu-cpu=$(QEMU_CPU) --smp=$(SMP) \
		--memory=$(BENCH_MEMORY) --workload=$(BENCH_WORKLOAD) --cmdline='$(BENCH_CMDLINE)' \
		$(COMPARE_ARGS)

# GOOD, BAD: revisions; CHECK: see `make help`. CHECK is read from the environment
# (make exports command-line variables) so that any shell quoting in it survives.
REPEAT ?= 1
ON     ?= overlay
bisect: deps
	$(if $(and $(GOOD),$(BAD),$(CHECK)),,$(usage)$(error make bisect needs GOOD=<rev> BAD=<rev> \
		CHECK=<kunit:suite.case-glob | selftest:name | bench:metric>number | cmd:command>, \
		e.g. make bisect GOOD=v1 BAD=HEAD CHECK=kunit:grouped_pages.gp_test_apply_once_per_block))
	@$(GPTOOL) bisect --good='$(GOOD)' --bad='$(BAD)' --check="$$CHECK" \
		--repeat='$(REPEAT)' --on='$(ON)' --arch=$(ARCH) --config=$(CONFIG) \
		--qemu-cpu=$(QEMU_CPU) --smp=$(SMP) --memory=$(MEMORY) --bench-memory=$(BENCH_MEMORY) \
		--bench-mode=$(BENCH_MODE) \
		--bench-workload=$(if $(filter file,$(origin BENCH_WORKLOAD)),quick,$(BENCH_WORKLOAD)) \
		--kunit-timeout=$(KUNIT_TIMEOUT) --selftest-timeout=$(SELFTEST_TIMEOUT)

trend: deps
	@$(GPTOOL) trend

# ROWS: rows by name (default: all); HOSTS: a GNU parallel sshloginfile (default: here).
ROWS  ?=
HOSTS ?=
matrix: deps
	@HOSTS='$(HOSTS)' bash ci/matrix.sh $(ROWS)

# The expected wall time of the matrix on HOSTS (a number, 1,4,8 or a sshloginfile)
# of CORES cores, from ci/matrix-times.json and the job logs in results/.
CORES ?= 2
matrix-plan:
	@$(GPTOOL) matrix-plan --hosts='$(or $(HOSTS),1,4,8,24)' --cores=$(CORES)

# One row of the matrix (and of GitLab's jobs), run as the matrix runs it.
cell: deps
	$(if $(ROW),,$(usage)$(error make cell needs ROW=<ARCH-CONFIG-CPU>, a row of ci/matrix, \
		e.g. ROW=x86_64-kasan-max or ROW=selftests-lockdep-max))
	@bash ci/matrix.sh $(ROW)

# A shared compiler cache for build hosts (redis): CACHE_BIND an address they reach.
CACHE_BIND   ?= 127.0.0.1
CACHE_PORT   ?= 6388
CACHE_MEMORY ?= 4gb
cache-server: deps
	@CACHE_BIND=$(CACHE_BIND) CACHE_PORT=$(CACHE_PORT) CACHE_MEMORY=$(CACHE_MEMORY) \
		GP_WORK=$(GP_WORK) bash ci/cache-server.sh start
cache-server-stop:
	@CACHE_BIND=$(CACHE_BIND) CACHE_PORT=$(CACHE_PORT) GP_WORK=$(GP_WORK) \
		bash ci/cache-server.sh stop

# Three sshd hosts in network namespaces and a cache server, here, and a small matrix
# across them with real kernels (root: ip netns); make pytest runs its quick part.
matrix-hosts-test: deps
	@cd ci && GP_WORK=$(GP_WORK) GP_SCALEOUT_E2E=1 $(PYTHON) -m pytest -q \
		tests/test_matrix_hosts.py -k three_hosts

# A commit's results as KernelCI KCIDB JSON (results/kcidb/).
COMMIT       ?= HEAD
KCIDB_ORIGIN ?= grouped_pages
kcidb: deps
	@$(GPTOOL) kcidb --commit='$(COMMIT)' --origin='$(KCIDB_ORIGIN)'

# The whole suite, the tests not marked slow first: a harness edit that breaks one is
# told in under a minute. Its gitlab-ci-local tests need npm; pytest-fast does not.
pytest: deps
	@bash ci/deps --tests
	@cd ci && GP_WORK=$(GP_WORK) $(PYTHON) -m pytest -q -m 'not slow' tests
	@cd ci && GP_WORK=$(GP_WORK) $(PYTHON) -m pytest -q -m slow tests

pytest-fast: deps
	@cd ci && GP_WORK=$(GP_WORK) $(PYTHON) -m pytest -q -m 'not slow' tests

shellcheck: deps
	@shellcheck ci/deps .ci/run $(wildcard ci/*.sh) && echo "shellcheck: clean"

checkpatch: deps
	@tree=$$($(GPTOOL) tree) && bash ci/checkpatch.sh "$$tree"

test: deps
	@bash ci/deps --tests
	@OUTCOME='$(OUTCOME)' bash ci/test-all.sh
