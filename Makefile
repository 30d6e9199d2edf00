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

PYTHON := /usr/bin/python3
GPTOOL := PYTHONPATH=$(CURDIR)/ci GP_WORK=$(GP_WORK) KERNEL_SRC=$(KERNEL_SRC) \
	CCACHE_DIR=$(CCACHE_DIR) $(PYTHON) -m gptool

export CCACHE_DIR

SMP        ?= 2
MEMORY     ?= 1024

.PHONY: help deps tree kunit selftests matrix pytest shellcheck checkpatch test

help:
	@echo 'make kunit     run our KUnit suites with kunit.py (ARCH=um|x86_64|i386, CONFIG=...)'
	@echo 'make test      everything CI runs: pytest, shellcheck, checkpatch, KUnit (um, x86_64 max and qemu64), selftests'
	@echo 'make selftests boot the patched kernel in QEMU and run the kselftest stress tests'
	@echo 'make matrix    the CI matrix of KUnit runs (ci/matrix) with GNU parallel'
	@echo 'make tree      prepare the kernel tree (base + kernel/ + kunit/ + kernel/patches/)'
	@echo 'make deps      install the Debian packages the harness needs'
	@echo 'make checkpatch   scripts/checkpatch.pl --strict on our kernel files'
	@echo 'variables: ARCH CONFIG QEMU_CPU KUNIT_ARGS SMP MEMORY JOBS GP_WORK CCACHE_DIR KERNEL_SRC'

deps:
	@bash ci/deps

tree: deps
	@$(GPTOOL) tree

kunit: deps
	@$(GPTOOL) kunit --arch=$(ARCH) --config=$(CONFIG) --jobs=$(JOBS) \
		--qemu-cpu=$(QEMU_CPU) -- $(KUNIT_ARGS)

selftests: deps
	@$(GPTOOL) selftests --config=$(CONFIG) --jobs=$(JOBS) --qemu-cpu=$(QEMU_CPU) \
		--smp=$(SMP) --memory=$(MEMORY)

matrix: deps
	@bash ci/matrix.sh

pytest: deps
	@cd ci && GP_WORK=$(GP_WORK) $(PYTHON) -m pytest -q tests

shellcheck: deps
	@shellcheck ci/deps .ci/run $(wildcard ci/*.sh) && echo "shellcheck: clean"

checkpatch: deps
	@bash ci/checkpatch.sh "$$($(GPTOOL) tree)"

test: deps
	@bash ci/test-all.sh
