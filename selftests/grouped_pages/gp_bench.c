// SPDX-License-Identifier: GPL-2.0
/*
 * gp_bench: the grouped page cache against what it replaces, in one boot.
 *
 * Drives /sys/kernel/debug/grouped_pages_bench (CONFIG_GROUPED_PAGES_BENCH)
 * and reads the direct-map counters of /proc/vmstat and /proc/meminfo around
 * each step. Every figure is printed as one line
 *
 *   GP-BENCH-METRIC {"name": ..., "unit": ..., "direction": ..., "samples": [...]}
 *
 * with all its samples, so the host keeps the distribution, not a mean.
 * Exits non-zero if any step failed; the host then keeps no result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/grouped_pages_bench.h>

#include "gp_proc.h"

#define BENCH_FILE	"/sys/kernel/debug/grouped_pages_bench"
#define PKS_STATUS	"/sys/kernel/debug/pks_pgtables/status"
#define MAX_SAMPLES	64
#define BASE_PAGE	4096UL

/*
 * Which figures can be compared exactly. The grouped cache's counts do not
 * depend on where the page allocator puts things (0 splits, N/512 blocks), so
 * any change is real. The baseline's do: which 2M regions aged memory hands
 * out varies by a region or two from boot to boot, so they are compared with
 * statistics like the timings. Event counts vary less than timings. The
 * numbers are the smallest change in % that `make compare` calls real.
 */
#define MIN_EFFECT_COUNT	5
#define MIN_EFFECT_EVENTS	20
#define MIN_EFFECT_TIME		10

struct options {
	unsigned int rounds;
	unsigned int iterations;
	unsigned int sizes[4];
	unsigned int nr_sizes;
	unsigned int age_pages;
	unsigned int keep_one_in;
	unsigned int seed;
	unsigned int forks;
	unsigned int prots;	/* bit per GP_BENCH_PROT_* */
	bool fastpath;
	bool pgtables;
	bool only_pgtables;
};

static int bench_fd = -1;
static int failures;

static const char * const prot_names[] = { "ro", "np", "pkey" };
static const char * const mode_names[] = { "grouped", "baseline" };

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("GP-BENCH-ERROR ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	failures++;
}

static void info(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("GP-BENCH-INFO %s ", key);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

/* One metric with all its samples; @min_effect is the smallest change in % worth a verdict. */
static void metric(const char *name, const char *unit, const char *direction, bool deterministic,
		   double min_effect, const double *samples, unsigned int nr, const char *description)
{
	unsigned int i;

	printf("GP-BENCH-METRIC {\"name\": \"%s\", \"unit\": \"%s\", \"direction\": \"%s\", "
	       "\"deterministic\": %s, ", name, unit, direction, deterministic ? "true" : "false");
	if (min_effect > 0)
		printf("\"min_effect_pct\": %g, ", min_effect);
	printf("\"description\": \"%s\", \"samples\": [", description);
	for (i = 0; i < nr; i++)
		printf("%s%.6g", i ? ", " : "", samples[i]);
	printf("]}\n");
}

static void metric1(const char *name, const char *unit, const char *direction, bool deterministic,
		    double value, const char *description)
{
	metric(name, unit, direction, deterministic, 0, &value, 1, description);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The sum over CPUs of one row of /proc/interrupts, e.g. "CAL". */
static long long interrupts(const char *row)
{
	char line[1024], label[32];
	long long total = -1;
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return -1;
	snprintf(label, sizeof(label), "%s:", row);
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;

		while (*p == ' ')
			p++;
		if (strncmp(p, label, strlen(label)))
			continue;
		p += strlen(label);
		total = 0;
		for (;;) {
			long long n = strtoll(p, &end, 10);

			if (end == p)
				break;
			total += n;
			p = end;
		}
		break;
	}
	fclose(f);
	return total;
}

struct snapshot {
	long long l2_splits, l3_splits;
	/* -1 on kernels that cannot collapse the direct map (before patch 0004). */
	long long l2_collapses, l3_collapses;
	long long dm4k, dm2m, dm1g;	/* kB */
	long long tlb;			/* flushes counted with CONFIG_DEBUG_TLBFLUSH */
	long long call_ipis;		/* function-call IPIs: how CPA flushes other CPUs */
};

/* A counter this kernel does not have would read as "nothing happened": refuse it. */
static long long need(long long value, const char *what)
{
	if (value < 0)
		fail("cannot read %s (kernel without CONFIG_DEBUG_TLBFLUSH or DEBUG_FS?)", what);
	return value;
}

static void snap(struct snapshot *s)
{
	s->l2_splits = need(read_field("/proc/vmstat", "direct_map_level2_splits"),
			    "direct_map_level2_splits in /proc/vmstat");
	s->l3_splits = need(read_field("/proc/vmstat", "direct_map_level3_splits"),
			    "direct_map_level3_splits in /proc/vmstat");
	s->l2_collapses = read_field("/proc/vmstat", "direct_map_level2_collapses");
	s->l3_collapses = read_field("/proc/vmstat", "direct_map_level3_collapses");
	s->dm4k = need(read_field("/proc/meminfo", "DirectMap4k"), "DirectMap4k in /proc/meminfo");
	s->dm2m = need(read_field("/proc/meminfo", "DirectMap2M"), "DirectMap2M in /proc/meminfo");
	/* No 1G entries at all is a valid answer: some machines have none. */
	s->dm1g = read_field("/proc/meminfo", "DirectMap1G");
	if (s->dm1g < 0)
		s->dm1g = 0;
	s->tlb = need(read_field("/proc/vmstat", "nr_tlb_remote_flush"), "nr_tlb_remote_flush") +
		 need(read_field("/proc/vmstat", "nr_tlb_local_flush_all"),
		      "nr_tlb_local_flush_all") +
		 need(read_field("/proc/vmstat", "nr_tlb_local_flush_one"),
		      "nr_tlb_local_flush_one");
	s->call_ipis = need(interrupts("CAL"), "the CAL row of /proc/interrupts");
}

static void print_snapshot(const char *when, const struct snapshot *s)
{
	printf("GP-BENCH-INFO snapshot %s level2_splits=%lld level3_splits=%lld DirectMap4k=%lld "
	       "DirectMap2M=%lld DirectMap1G=%lld tlb_flushes=%lld call_ipis=%lld\n", when,
	       s->l2_splits, s->l3_splits, s->dm4k, s->dm2m, s->dm1g, s->tlb, s->call_ipis);
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd < 0 || write(fd, "3", 1) != 1)
		fail("cannot write /proc/sys/vm/drop_caches: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
}

static bool pkey_usable(void)
{
	struct gp_bench_block_prot arg = { .prot = GP_BENCH_PROT_PKEY };

	if (ioctl(bench_fd, GP_BENCH_BLOCK_PROT, &arg) == 0)
		return true;
	/* Only "no PKS" means there is nothing to measure; anything else is a failure. */
	if (errno != EOPNOTSUPP)
		fail("pkey probe: %s", strerror(errno));
	return false;
}

/* What one 2M block costs to protect and reset in one call each, as a refill does. */
static void bench_block_protection(unsigned int prot, unsigned int rounds)
{
	double protect[MAX_SAMPLES], reset[MAX_SAMPLES];
	char name[128];
	int r;

	/* Round -1 warms up (first-touch costs five times the rest) and is not kept. */
	for (r = -1; r < (int)rounds; r++) {
		struct gp_bench_block_prot arg = { .prot = prot };

		if (ioctl(bench_fd, GP_BENCH_BLOCK_PROT, &arg)) {
			fail("block protection %s: %s", prot_names[prot], strerror(errno));
			return;
		}
		if (r < 0)
			continue;
		protect[r] = arg.protect_ns / 512.0;
		reset[r] = arg.reset_ns / 512.0;
	}
	snprintf(name, sizeof(name), "protect.%s.block_ns_per_page", prot_names[prot]);
	metric(name, "ns/page", "lower", false, MIN_EFFECT_TIME, protect, rounds,
	       "set_memory_*() on one 2M block in one call, per page");
	snprintf(name, sizeof(name), "protect.%s.block_reset_ns_per_page", prot_names[prot]);
	metric(name, "ns/page", "lower", false, MIN_EFFECT_TIME, reset, rounds,
	       "resetting one 2M block in one call, per page");
}

static void frag_metric(const char *prefix, const char *what, const char *unit,
			const char *direction, int kind, double value, const char *description)
{
	bool grouped = strstr(prefix, ".grouped");
	char name[160];

	snprintf(name, sizeof(name), "%s.%s", prefix, what);
	if (kind == MIN_EFFECT_COUNT && grouped)
		metric1(name, unit, direction, true, value, description);
	else
		metric(name, unit, direction, false, kind, &value, 1, description);
}

static void print_snapshots(const char *prefix, const struct snapshot *before,
			    const struct snapshot *held, const struct snapshot *after)
{
	char label[128];

	snprintf(label, sizeof(label), "%s before", prefix);
	print_snapshot(label, before);
	snprintf(label, sizeof(label), "%s held", prefix);
	print_snapshot(label, held);
	snprintf(label, sizeof(label), "%s after", prefix);
	print_snapshot(label, after);
}

/* Protect @nr pages, hold them, give them back: what the direct map went through. */
static void bench_fragmentation(unsigned int prot, unsigned int mode, unsigned int nr)
{
	struct gp_bench_hold hold = { .mode = mode, .prot = prot, .nr_pages = nr };
	struct gp_bench_release rel = {};
	struct snapshot before, held, after;
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "frag.%s.n%u.%s", prot_names[prot], nr, mode_names[mode]);
	drop_caches();
	snap(&before);
	if (ioctl(bench_fd, GP_BENCH_HOLD, &hold)) {
		fail("%s: hold: %s", prefix, strerror(errno));
		return;
	}
	snap(&held);
	if (ioctl(bench_fd, GP_BENCH_RELEASE, &rel)) {
		fail("%s: release: %s", prefix, strerror(errno));
		return;
	}
	drop_caches();
	snap(&after);
	print_snapshots(prefix, &before, &held, &after);

	frag_metric(prefix, "splits", "splits", "lower", MIN_EFFECT_COUNT,
		    hold.splits + rel.splits,
		    "direct-map mappings that protecting and giving back these pages split");
	frag_metric(prefix, "system_level2_splits", "splits", "lower", MIN_EFFECT_EVENTS,
		    after.l2_splits - before.l2_splits,
		    "all 2M splits in /proc/vmstat over hold, release and drop_caches");
	frag_metric(prefix, "system_level3_splits", "splits", "lower", MIN_EFFECT_EVENTS,
		    after.l3_splits - before.l3_splits,
		    "all 1G splits in /proc/vmstat over hold, release and drop_caches");
	if (before.l2_collapses >= 0 && before.l3_collapses >= 0) {
		frag_metric(prefix, "system_level2_collapses", "collapses", "higher",
			    MIN_EFFECT_EVENTS, after.l2_collapses - before.l2_collapses,
			    "2M mappings made whole again, in /proc/vmstat, over the same");
		frag_metric(prefix, "system_level3_collapses", "collapses", "higher",
			    MIN_EFFECT_EVENTS, after.l3_collapses - before.l3_collapses,
			    "1G mappings made whole again, in /proc/vmstat, over the same");
	}
	frag_metric(prefix, "directmap4k_held_kb", "kB", "lower", MIN_EFFECT_EVENTS, held.dm4k - before.dm4k,
		    "DirectMap4k while the pages are held, minus before");
	frag_metric(prefix, "directmap4k_after_kb", "kB", "lower", MIN_EFFECT_EVENTS, after.dm4k - before.dm4k,
		    "DirectMap4k after free, shrink and drop_caches, minus before");
	frag_metric(prefix, "directmap2m_after_kb", "kB", "higher", MIN_EFFECT_EVENTS,
		    after.dm2m - before.dm2m,
		    "DirectMap2M after free, shrink and drop_caches, minus before");
	frag_metric(prefix, "directmap1g_after_kb", "kB", "higher", MIN_EFFECT_EVENTS,
		    after.dm1g - before.dm1g,
		    "DirectMap1G after free, shrink and drop_caches, minus before");
	frag_metric(prefix, "regions_2m", "regions", "lower", MIN_EFFECT_COUNT, hold.regions_2m,
		    "distinct 2M regions the held pages lie in");
	frag_metric(prefix, "mapped_4k_held", "pages", "lower", MIN_EFFECT_COUNT, hold.mapped_4k,
		    "held pages mapped by 4K direct-map entries");
	frag_metric(prefix, "hold_ns_per_page", "ns/page", "lower", MIN_EFFECT_TIME,
		    (double)(hold.alloc_ns + hold.protect_ns) / nr,
		    "allocating and protecting, per page");
	frag_metric(prefix, "free_ns_per_page", "ns/page", "lower", MIN_EFFECT_TIME,
		    (double)rel.free_ns / nr, "freeing (baseline: with the per-page reset), per page");
	frag_metric(prefix, "tlb_flushes_per_1000_pages", "flushes", "lower", MIN_EFFECT_EVENTS,
		    (after.tlb - before.tlb) * 1000.0 / nr,
		    "x86 TLB flush events (DEBUG_TLBFLUSH vmstat) over hold and release");
	frag_metric(prefix, "call_ipis_per_1000_pages", "IPIs", "lower", MIN_EFFECT_EVENTS,
		    (after.call_ipis - before.call_ipis) * 1000.0 / nr,
		    "function-call IPIs (CPA flushes other CPUs with them) over hold and release");
	if (mode == GP_BENCH_BASELINE) {
		frag_metric(prefix, "protect_ns_per_page", "ns/page", "lower", MIN_EFFECT_TIME,
			    (double)hold.protect_ns / nr, "set_memory_*() on one page, per page");
		return;
	}
	frag_metric(prefix, "fallback_pages", "pages", "lower", MIN_EFFECT_COUNT, hold.fallback_pages,
		    "pages from blocks smaller than 2M");
	frag_metric(prefix, "pages_left_after_shrink", "pages", "lower", MIN_EFFECT_COUNT, rel.pages_left,
		    "pages the cache still held after the shrinker ran to the end");
	if (hold.refills)
		frag_metric(prefix, "refill_ns_per_block", "ns/block", "lower", MIN_EFFECT_TIME,
			    (double)hold.alloc_ns / hold.refills,
			    "allocating from an empty cache, per block taken (refill, protection, hand-out)");
	if (rel.blocks_freed)
		frag_metric(prefix, "shrink_ns_per_block", "ns/block", "lower", MIN_EFFECT_TIME,
			    (double)rel.shrink_ns / rel.blocks_freed,
			    "shrinker time per block given back whole");
}

/*
 * With no 2M block free, a refill falls back to smaller blocks, whose
 * protection splits the 2M mappings around them. Once the pages are freed and
 * the cache shrunk, collapse must map those regions at 2M again.
 */
static void bench_fallback(unsigned int prot, unsigned int nr)
{
	struct gp_bench_hold hold = { .mode = GP_BENCH_GROUPED, .prot = prot, .nr_pages = nr };
	struct gp_bench_take_2m take = {}, give = { .give = 1 };
	struct gp_bench_release rel = {};
	struct snapshot before, held, after;
	char prefix[96];
	int held_ok;

	snprintf(prefix, sizeof(prefix), "fallback.%s.n%u", prot_names[prot], nr);
	drop_caches();
	snap(&before);
	if (ioctl(bench_fd, GP_BENCH_TAKE_2M, &take)) {
		fail("%s: taking the free 2M blocks: %s", prefix, strerror(errno));
		return;
	}
	held_ok = ioctl(bench_fd, GP_BENCH_HOLD, &hold);
	snap(&held);
	if (held_ok == 0 && ioctl(bench_fd, GP_BENCH_RELEASE, &rel))
		held_ok = -1;
	if (ioctl(bench_fd, GP_BENCH_TAKE_2M, &give))
		fail("%s: giving the 2M blocks back: %s", prefix, strerror(errno));
	if (held_ok) {
		fail("%s: hold or release with no 2M block free: %s", prefix, strerror(errno));
		return;
	}
	drop_caches();
	snap(&after);
	info("fallback", "%s: took %llu free 2M blocks, gave back %llu", prefix,
	     (unsigned long long)take.blocks, (unsigned long long)give.blocks);
	print_snapshots(prefix, &before, &held, &after);
	frag_metric(prefix, "fallback_pages", "pages", "higher", MIN_EFFECT_EVENTS,
		    hold.fallback_pages, "pages from blocks smaller than 2M (the scenario needs > 0)");
	frag_metric(prefix, "splits", "splits", "lower", MIN_EFFECT_EVENTS, hold.splits + rel.splits,
		    "direct-map mappings the fallback blocks' protection split");
	frag_metric(prefix, "directmap4k_held_kb", "kB", "lower", MIN_EFFECT_EVENTS,
		    held.dm4k - before.dm4k,
		    "DirectMap4k while the fallback pages are held, minus before");
	frag_metric(prefix, "directmap4k_after_kb", "kB", "lower", MIN_EFFECT_EVENTS,
		    after.dm4k - before.dm4k,
		    "DirectMap4k after free, shrink, 2M blocks back and drop_caches, minus before");
	if (before.l2_collapses >= 0)
		frag_metric(prefix, "system_level2_collapses", "collapses", "higher",
			    MIN_EFFECT_EVENTS, after.l2_collapses - before.l2_collapses,
			    "2M mappings made whole again, in /proc/vmstat, over the same");
	frag_metric(prefix, "pages_left_after_shrink", "pages", "lower", MIN_EFFECT_EVENTS,
		    rel.pages_left, "pages the cache still held after the shrinker ran to the end");
}

struct fastpath_job {
	pthread_t thread;
	int cpu;
	unsigned int mode, iterations;
	pthread_barrier_t *start;
	double ns_per_op;
	int err;
};

static void *fastpath_thread(void *data)
{
	struct fastpath_job *job = data;
	struct gp_bench_fastpath arg = { .mode = job->mode, .iterations = job->iterations };
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(job->cpu, &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	pthread_barrier_wait(job->start);
	job->err = ioctl(bench_fd, GP_BENCH_FASTPATH, &arg) ? errno : 0;
	job->ns_per_op = (double)arg.ns / job->iterations;
	return NULL;
}

/* ns per alloc+free with @cpus CPUs allocating at once; the mean over the CPUs. */
static double fastpath_round(unsigned int mode, unsigned int cpus, unsigned int iterations)
{
	struct fastpath_job jobs[2];
	pthread_barrier_t start;
	double sum = 0;
	unsigned int i;

	int err;

	pthread_barrier_init(&start, NULL, cpus);
	for (i = 0; i < cpus; i++) {
		jobs[i] = (struct fastpath_job){ .cpu = i, .mode = mode, .iterations = iterations,
						 .start = &start };
		err = pthread_create(&jobs[i].thread, NULL, fastpath_thread, &jobs[i]);
		if (err) {
			/* The threads started wait at the barrier: not recoverable. */
			fail("fastpath: pthread_create: %s", strerror(err));
			exit(1);
		}
	}
	/* Join every thread before returning: they use jobs[] and the barrier. */
	for (i = 0; i < cpus; i++)
		pthread_join(jobs[i].thread, NULL);
	pthread_barrier_destroy(&start);
	for (i = 0; i < cpus; i++) {
		if (jobs[i].err) {
			fail("fastpath %s on %u CPUs: %s", mode_names[mode], cpus,
			     strerror(jobs[i].err));
			return -1;
		}
		sum += jobs[i].ns_per_op;
	}
	return sum / cpus;
}

/* Interleaved rounds (the order alternates), so drift hits both sides alike. */
static void bench_fastpath(unsigned int cpus, const struct options *opt)
{
	double ns[2][MAX_SAMPLES], ratio[MAX_SAMPLES];
	char name[96];
	unsigned int r, m;

	/* Not kept: the first round pays for cold caches and the first refill. */
	if (fastpath_round(GP_BENCH_GROUPED, cpus, opt->iterations) < 0 ||
	    fastpath_round(GP_BENCH_BASELINE, cpus, opt->iterations) < 0)
		return;
	for (r = 0; r < opt->rounds; r++) {
		for (m = 0; m < 2; m++) {
			unsigned int mode = (r + m) % 2;

			ns[mode][r] = fastpath_round(mode, cpus, opt->iterations);
			if (ns[mode][r] < 0)
				return;
		}
		ratio[r] = ns[GP_BENCH_GROUPED][r] / ns[GP_BENCH_BASELINE][r];
	}
	for (m = 0; m < 2; m++) {
		snprintf(name, sizeof(name), "fastpath.cpus%u.%s_ns", cpus, mode_names[m]);
		metric(name, "ns/op", "lower", false, MIN_EFFECT_TIME, ns[m], opt->rounds,
		       m == GP_BENCH_GROUPED ? "grouped_pages_alloc()+free from a warm cache" :
		       "alloc_page()+__free_page()");
	}
	snprintf(name, sizeof(name), "fastpath.cpus%u.ratio", cpus);
	metric(name, "x", "lower", false, MIN_EFFECT_TIME, ratio, opt->rounds,
	       "grouped fast path / alloc_page(), same round");
}

/* Page faults on every page of a 32M mapping: one PTE write each, tables rarely. */
static double fault_storm_ns(void)
{
	const size_t len = 32UL << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t start;
	size_t off;

	if (p == MAP_FAILED) {
		fail("mmap: %s", strerror(errno));
		return 0;
	}
	/* No THP: one fault per 4K page is the point. */
	madvise(p, len, MADV_NOHUGEPAGE);
	start = now_ns();
	for (off = 0; off < len; off += BASE_PAGE)
		p[off] = 1;
	munmap(p, len);
	return (double)(now_ns() - start) / (len / BASE_PAGE);
}

/* A number from the PKS page-table status file, or -1 without it. */
static long long pks_status(const char *name)
{
	return read_field(PKS_STATUS, name);
}

/*
 * Page tables built and torn down by processes: fork+exit, sparse mmap storms
 * and a page-fault storm, with the PKS write windows they opened.
 */
static void bench_pgtables(const struct options *opt)
{
	double fork_us[MAX_SAMPLES], mmap_us[MAX_SAMPLES], fault_ns[MAX_SAMPLES];
	const size_t span = 256UL << 20, stride = 2UL << 20;
	long long windows = pks_status("write_windows");
	long long pkrs_writes = pks_status("pkrs_writes");
	long long lazy_windows = pks_status("lazy_mmu_windows");
	unsigned int i;
	int r;

	info("pks_mode", "%s, enforcing %lld",
	     pks_status("enforcing") < 0 ? "absent" : pks_status("enforcing") ? "write-protected" :
	     "not write-protected", pks_status("enforcing"));

	/* Round -1 warms up (the first forks are five times slower) and is not kept. */
	for (r = -1; r < (int)opt->rounds; r++) {
		uint64_t start = now_ns();

		for (i = 0; i < opt->forks; i++) {
			pid_t pid = fork();

			if (pid == 0)
				_exit(0);
			if (pid < 0 || waitpid(pid, NULL, 0) != pid) {
				fail("fork: %s", strerror(errno));
				return;
			}
		}
		if (r >= 0)
			fork_us[r] = (now_ns() - start) / 1000.0 / opt->forks;

		start = now_ns();
		for (i = 0; i < 8; i++) {
			char *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			size_t off;

			if (p == MAP_FAILED) {
				fail("mmap: %s", strerror(errno));
				return;
			}
			/* One page per 2M: a PTE table each, as sparse as it gets. */
			for (off = 0; off < span; off += stride)
				p[off] = 1;
			munmap(p, span);
		}
		if (r >= 0)
			mmap_us[r] = (now_ns() - start) / 1000.0 / 8;
		fault_ns[r < 0 ? 0 : r] = fault_storm_ns();
	}
	metric("pgtable.fork_exit_us", "us", "lower", false, MIN_EFFECT_TIME, fork_us, opt->rounds,
	       "fork() of a small process, its _exit() and waitpid()");
	metric("pgtable.mmap_storm_us", "us", "lower", false, MIN_EFFECT_TIME, mmap_us, opt->rounds,
	       "mmap 256M, touch one page per 2M (128 PTE tables), munmap");
	metric("pgtable.fault_ns", "ns/fault", "lower", false, MIN_EFFECT_TIME, fault_ns,
	       opt->rounds, "write fault on each 4K page of a 32M mapping, then munmap");
	if (windows >= 0)
		info("pks_write_windows", "%lld windows opened by this step",
		     pks_status("write_windows") - windows);
	/* What the windows cost: a window nested in another, or in a lazy MMU section, writes none. */
	if (pkrs_writes >= 0)
		info("pks_pkrs_writes", "%lld PKRS writes, %lld lazy MMU windows by this step",
		     pks_status("pkrs_writes") - pkrs_writes,
		     pks_status("lazy_mmu_windows") - lazy_windows);
}

static void parse_prots(struct options *opt, char *list)
{
	unsigned int prot;
	char *tok;

	opt->prots = 0;
	for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		for (prot = 0; prot < 3 && strcmp(tok, prot_names[prot]); prot++)
			;
		if (prot == 3) {
			fprintf(stderr, "gp_bench: --prots takes ro, np and pkey, not %s\n", tok);
			exit(2);
		}
		opt->prots |= 1U << prot;
	}
}

static void parse_sizes(struct options *opt, char *list)
{
	char *tok;

	opt->nr_sizes = 0;
	for (tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
		long n = strtol(tok, NULL, 10);

		if (n < 512 || n > GP_BENCH_MAX_PAGES || opt->nr_sizes == 4) {
			fprintf(stderr, "gp_bench: --sizes takes up to 4 page counts in 512..%d, "
				"not %s\n", GP_BENCH_MAX_PAGES, tok);
			exit(2);
		}
		opt->sizes[opt->nr_sizes++] = n;
	}
}

static unsigned int parse_uint(const char *flag, const char *value, unsigned int max)
{
	char *end;
	unsigned long n = strtoul(value, &end, 10);

	if (*end || !n || n > max) {
		fprintf(stderr, "gp_bench: %s takes a number in 1..%u, not %s\n", flag, max, value);
		exit(2);
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rounds", required_argument, NULL, 'r' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "sizes", required_argument, NULL, 's' },
		{ "age-pages", required_argument, NULL, 'a' },
		{ "keep-one-in", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 'S' },
		{ "forks", required_argument, NULL, 'f' },
		{ "prots", required_argument, NULL, 'p' },
		{ "skip-fastpath", no_argument, NULL, 'F' },
		{ "skip-pgtables", no_argument, NULL, 'P' },
		{ "only-pgtables", no_argument, NULL, 'O' },
		{ }
	};
	struct options opt = { .rounds = 10, .iterations = 20000, .sizes = { 4096, 65536 },
			       .nr_sizes = 2, .age_pages = 65536, .keep_one_in = 2, .seed = 1,
			       .forks = 50, .prots = 7, .fastpath = true, .pgtables = true };
	struct gp_bench_age age;
	unsigned int prot, s, cpus;
	char sizes[64], prots[32];
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			opt.rounds = parse_uint("--rounds", optarg, MAX_SAMPLES);
			break;
		case 'i':
			opt.iterations = parse_uint("--iterations", optarg, 1U << 24);
			break;
		case 's':
			snprintf(sizes, sizeof(sizes), "%s", optarg);
			parse_sizes(&opt, sizes);
			break;
		case 'a':
			opt.age_pages = parse_uint("--age-pages", optarg, GP_BENCH_MAX_PAGES);
			break;
		case 'k':
			opt.keep_one_in = parse_uint("--keep-one-in", optarg, 512);
			break;
		case 'S':
			opt.seed = parse_uint("--seed", optarg, UINT32_MAX);
			break;
		case 'f':
			opt.forks = parse_uint("--forks", optarg, 100000);
			break;
		case 'p':
			snprintf(prots, sizeof(prots), "%s", optarg);
			parse_prots(&opt, prots);
			break;
		case 'F':
			opt.fastpath = false;
			break;
		case 'P':
			opt.pgtables = false;
			break;
		case 'O':
			opt.only_pgtables = true;
			break;
		default:
			fprintf(stderr, "usage: gp_bench [--rounds N] [--iterations N] "
				"[--sizes N,N] [--age-pages N] [--keep-one-in N] [--seed N] "
				"[--forks N] [--prots ro,np,pkey] [--skip-fastpath] "
				"[--skip-pgtables | --only-pgtables]\n");
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_fd = open(BENCH_FILE, O_RDWR);
	if (bench_fd < 0) {
		printf("GP-BENCH-ERROR cannot open %s: %s (CONFIG_GROUPED_PAGES_BENCH?)\n",
		       BENCH_FILE, strerror(errno));
		return 1;
	}
	cpus = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
	printf("GP-BENCH-BEGIN\n");
	info("options", "rounds=%u iterations=%u age_pages=%u keep_one_in=%u seed=%u forks=%u",
	     opt.rounds, opt.iterations, opt.age_pages, opt.keep_one_in, opt.seed, opt.forks);
	info("pks_pgtables", "%s", access(PKS_STATUS, R_OK) ? "absent" : "present");
	if ((opt.prots & (1U << GP_BENCH_PROT_PKEY)) && !pkey_usable()) {
		/* Not a failure: this kernel or CPU has no PKS, so there is nothing to measure. */
		opt.prots &= ~(1U << GP_BENCH_PROT_PKEY);
		info("skipped", "pkey: no PKS page tables in this kernel or no PKS in this CPU");
	}
	if (opt.only_pgtables) {
		/* What PKS page tables cost, without the allocator's own workloads. */
		bench_pgtables(&opt);
		goto out;
	}
	info("protections", "%s%s%s", opt.prots & 1 ? "ro " : "", opt.prots & 2 ? "np " : "",
	     opt.prots & 4 ? "pkey" : "");

	/*
	 * Scatter the free lists, as on a machine that has run for a while: with
	 * one page in two held, no 2M region of the aged memory has more than
	 * half its pages free, so order-0 allocations spread over many regions.
	 */
	age = (struct gp_bench_age){ .nr_pages = opt.age_pages, .keep_one_in = opt.keep_one_in,
				     .seed = opt.seed };
	if (ioctl(bench_fd, GP_BENCH_AGE, &age))
		fail("aging memory: %s", strerror(errno));
	metric("age.regions_pinned_2m", "regions", "lower", false, MIN_EFFECT_COUNT,
	       (double[]){ age.regions_2m }, 1,
		"2M regions that aging left pinned by one held page or more");

	for (prot = 0; prot < 3; prot++)
		if (opt.prots & (1U << prot))
			bench_block_protection(prot, opt.rounds);
	for (prot = 0; prot < 3; prot++)
		if (opt.prots & (1U << prot)) {
			/*
			 * Every grouped size first: on 6.12 a 2M mapping the baseline
			 * splits stays split, and a later block could land in it.
			 */
			for (s = 0; s < opt.nr_sizes; s++)
				bench_fragmentation(prot, GP_BENCH_GROUPED, opt.sizes[s]);
			for (s = 0; s < opt.nr_sizes; s++)
				bench_fragmentation(prot, GP_BENCH_BASELINE, opt.sizes[s]);
		}
	/* Read-only stands for the others: a fallback block is split by any of them. */
	if (opt.prots & (1U << GP_BENCH_PROT_RO))
		bench_fallback(GP_BENCH_PROT_RO, 1024);
	if (opt.fastpath) {
		bench_fastpath(1, &opt);
		if (cpus == 2)
			bench_fastpath(2, &opt);
	}
	if (opt.pgtables)
		bench_pgtables(&opt);
out:
	if (ioctl(bench_fd, GP_BENCH_RESET))
		fail("reset: %s", strerror(errno));
	close(bench_fd);
	printf("GP-BENCH-END %d\n", failures);
	return failures ? 1 : 0;
}
