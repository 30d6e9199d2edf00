// SPDX-License-Identifier: GPL-2.0
/*
 * Stress tests of the grouped page cache from userspace: real memory
 * pressure, shrinker races, and PKS page-table allocation. After each test
 * the kernel log since its start must hold no WARN, BUG, KASAN or lockdep
 * report.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/grouped_pages_test.h>

#include "gp_proc.h"

#include "../kselftest_harness.h"

#define GP_DEBUGFS	"/sys/kernel/debug/grouped_pages_test"
#define PKS_WALK	"/sys/kernel/debug/pks_pgtables/walk"
#define PKS_STATS	"/sys/kernel/debug/grouped_pages/pks_pgtables/stats"
#define PKS_STATUS	"/sys/kernel/debug/pks_pgtables/status"
#define PKS_LEVELS	"/sys/kernel/debug/pks_pgtables/levels"
#define PAGE		4096UL

static const char * const kmsg_reports[] = {
	"WARNING:", "BUG:", "KASAN:", "Oops", "possible circular locking",
	"inconsistent lock state", "possible recursive locking", "Call Trace:",
};

/* 2M splits accounted by every grouped page cache (test, page tables, reserve). */
static long long cache_splits(void)
{
	long long total = 0;
	glob_t found;
	size_t i;

	if (glob("/sys/kernel/debug/grouped_pages/*/stats", 0, NULL, &found))
		return -1;
	for (i = 0; i < found.gl_pathc; i++)
		total += read_field(found.gl_pathv[i], "direct_map_splits");
	globfree(&found);
	return total;
}

static int kmsg_open_at_end(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Count kernel log records since @fd was opened that report a kernel problem. */
static int kmsg_reports_since(int fd, struct __test_metadata *_metadata)
{
	char record[8192];
	int bad = 0;
	ssize_t n;
	size_t i;

	for (;;) {
		n = read(fd, record, sizeof(record) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: keep reading */
		if (n <= 0)
			break;
		record[n] = '\0';
		for (i = 0; i < sizeof(kmsg_reports) / sizeof(kmsg_reports[0]); i++) {
			if (strstr(record, kmsg_reports[i])) {
				TH_LOG("kernel log: %s", record);
				bad++;
				break;
			}
		}
	}
	return bad;
}

static int gp_stats(int fd, struct gp_test_stats *s)
{
	return ioctl(fd, GP_TEST_STATS, s);
}

static int gp_alloc(int fd, unsigned int count, bool atomic, __u64 *first)
{
	struct gp_test_alloc a = { .count = count, .atomic = atomic };
	int ret = ioctl(fd, GP_TEST_ALLOC, &a);

	*first = a.first;
	return ret;
}

static int gp_free(int fd, __u64 first, unsigned int count)
{
	struct gp_test_free f = { .first = first, .count = count };

	return ioctl(fd, GP_TEST_FREE, &f);
}

static unsigned long long gp_shrink(int fd, unsigned long long nr)
{
	struct gp_test_shrink s = { .nr_to_scan = nr };

	if (ioctl(fd, GP_TEST_SHRINK, &s))
		return 0;
	return s.freed;
}

static int write_str(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	ssize_t done;

	if (fd < 0)
		return -1;
	done = write(fd, text, strlen(text));
	close(fd);
	return done == (ssize_t)strlen(text) ? 0 : -1;
}

static void drop_caches(void)
{
	if (write_str("/proc/sys/vm/drop_caches", "3\n"))
		perror("drop_caches");
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

FIXTURE(gp) {
	int fd;
	int kmsg;
	struct gp_test_stats start;
};

FIXTURE_SETUP(gp)
{
	self->kmsg = kmsg_open_at_end();
	ASSERT_LE(0, self->kmsg) TH_LOG("cannot read /dev/kmsg: %s", strerror(errno));
	self->fd = open(GP_DEBUGFS, O_RDWR);
	if (self->fd < 0)
		SKIP(return, "%s: %s (needs CONFIG_GROUPED_PAGES_TEST and debugfs)",
		     GP_DEBUGFS, strerror(errno));
	ASSERT_EQ(0, ioctl(self->fd, GP_TEST_FREE_ALL));
	ASSERT_EQ(0, gp_stats(self->fd, &self->start));
}

FIXTURE_TEARDOWN(gp)
{
	if (self->fd >= 0) {
		ioctl(self->fd, GP_TEST_FREE_ALL);
		close(self->fd);
	}
	EXPECT_EQ(0, kmsg_reports_since(self->kmsg, _metadata));
	close(self->kmsg);
}

TEST_F(gp, bad_requests_are_refused)
{
	struct gp_test_alloc a = { .count = GP_TEST_MAX_BATCH + 1 };
	struct gp_test_free f = { .first = 1ULL << 60, .count = 1 };
	struct gp_test_shrink s = { .nr_to_scan = 0 };
	struct gp_test_alloc *readonly;
	struct gp_test_stats stats;

	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_ALLOC, &a));
	EXPECT_EQ(EINVAL, errno);
	a.count = 0;
	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_ALLOC, &a));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_FREE, &f));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_SHRINK, &s));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('G', 99)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_STATS, (void *)16));
	EXPECT_EQ(EFAULT, errno);

	/* A request that cannot be answered takes nothing: its handles would be lost. */
	readonly = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, readonly);
	*readonly = (struct gp_test_alloc){ .count = 8 };
	ASSERT_EQ(0, mprotect(readonly, PAGE, PROT_READ));
	EXPECT_EQ(-1, ioctl(self->fd, GP_TEST_ALLOC, readonly));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(0, gp_stats(self->fd, &stats));
	EXPECT_EQ(0, stats.pages_in_use);
	EXPECT_EQ(0, stats.handles_live);
	munmap(readonly, PAGE);
}

#define HOG_CACHE_SHORT	3

/*
 * Touch @bytes, then go on a megabyte at a time until the shrinker of the
 * cache behind @fd has freed @pages_wanted since @freed_before, at most
 * @extra more bytes. What is free cannot be read exactly beforehand (per-CPU
 * lists, RCU and kmemleak frees land meanwhile), so pushing until the cache
 * gave is what makes reclaim reach it every run. Exits 0 once the cache gave,
 * HOG_CACHE_SHORT if @extra ran out first, 2 if the mapping failed.
 */
static void hog_until_cache_gives(int fd, size_t bytes, size_t extra,
				  __u64 freed_before, __u64 pages_wanted)
{
	char *p = mmap(NULL, bytes + extra, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct gp_test_stats s;
	size_t off;

	if (p == MAP_FAILED)
		_exit(2);
	for (off = 0; off < bytes + extra; off += PAGE) {
		p[off] = 1;
		if (off < bytes || (off + PAGE) % (1UL << 20))
			continue;
		if (gp_stats(fd, &s))
			_exit(2);
		if (s.shrinker_freed >= freed_before + pages_wanted)
			_exit(0);
	}
	if (gp_stats(fd, &s))
		_exit(2);
	_exit(s.shrinker_freed >= freed_before + pages_wanted ? 0 : HOG_CACHE_SHORT);
}

struct churn {
	int fd;
	double until;
	unsigned long errors;
	unsigned long rounds;
	bool atomic_too;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	unsigned int seed = (unsigned int)(unsigned long)c;
	__u64 first;

	while (now() < c->until) {
		unsigned int n = 1 + rand_r(&seed) % 512;
		bool atomic = c->atomic_too && (rand_r(&seed) & 1);
		int ret = gp_alloc(c->fd, n, atomic, &first);

		if (ret == 0) {
			if (gp_free(c->fd, first, n))
				c->errors++;
		} else if (errno != ENOMEM) {
			c->errors++;
		}
		c->rounds++;
	}
	return NULL;
}

/*
 * The hog needs more memory than is free: it only gets it if the shrinker
 * gives back what the cache holds. Nothing may be OOM-killed. It starts with
 * 16M more than looks free and goes on until the cache gave 16M, at most 40M
 * further, short of the 64M the cache holds (the churners hold up to 4M).
 */
#define HOG_NEEDS_FROM_CACHE_MB	16
#define HOG_MAX_EXTRA_MB	40

TEST_F_TIMEOUT(gp, memory_pressure, 240)
{
	long long splits_before = read_field("/proc/vmstat", "direct_map_level2_splits");
	long long cache_splits_before = cache_splits();
	long long dm4k_before = read_field("/proc/meminfo", "DirectMap4k");
	long long oom_kills_before = read_field("/proc/vmstat", "oom_kill");
	struct churn churners[2];
	pthread_t threads[2];
	struct gp_test_stats s;
	long long avail_kb;
	unsigned int i;
	__u64 first;
	pid_t child;
	int status;

	ASSERT_LE(0, splits_before);
	/* Fill the cache with 64M of free pages. */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, gp_alloc(self->fd, GP_TEST_MAX_BATCH, false, &first));
	}
	ASSERT_EQ(0, ioctl(self->fd, GP_TEST_FREE_ALL));
	ASSERT_EQ(0, gp_stats(self->fd, &s));
	ASSERT_GE(s.pages_cached, 4 * GP_TEST_MAX_BATCH);
	/* What the hog can have without the cache: the smaller of free and available. */
	avail_kb = read_field("/proc/meminfo", "MemAvailable");
	if (read_field("/proc/meminfo", "MemFree") < avail_kb)
		avail_kb = read_field("/proc/meminfo", "MemFree");
	ASSERT_LT(0, avail_kb);

	for (i = 0; i < 2; i++) {
		churners[i] = (struct churn){ .fd = self->fd, .until = now() + 3 };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, churn_thread, &churners[i]));
	}
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0)
		hog_until_cache_gives(self->fd, (avail_kb + HOG_NEEDS_FROM_CACHE_MB * 1024) * 1024,
				      HOG_MAX_EXTRA_MB << 20, self->start.shrinker_freed,
				      HOG_NEEDS_FROM_CACHE_MB * 256);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	for (i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		EXPECT_EQ(0, churners[i].errors);
	}
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("hog killed by signal %d", WTERMSIG(status));
	EXPECT_NE(HOG_CACHE_SHORT, WEXITSTATUS(status))
		TH_LOG("the hog took %d MB more than looked free and the shrinker gave under %d MB",
		       HOG_NEEDS_FROM_CACHE_MB + HOG_MAX_EXTRA_MB, HOG_NEEDS_FROM_CACHE_MB);
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* Not the hog, and nobody else either. */
	EXPECT_EQ(oom_kills_before, read_field("/proc/vmstat", "oom_kill"));

	ASSERT_EQ(0, gp_stats(self->fd, &s));
	EXPECT_LT(self->start.shrinker_scans, s.shrinker_scans);
	EXPECT_LE(self->start.shrinker_freed + HOG_NEEDS_FROM_CACHE_MB * 256, s.shrinker_freed);

	/* Everything freed and dropped: nothing held, the direct map as before. */
	ASSERT_EQ(0, ioctl(self->fd, GP_TEST_FREE_ALL));
	drop_caches();
	gp_shrink(self->fd, 1ULL << 30);
	ASSERT_EQ(0, gp_stats(self->fd, &s));
	EXPECT_EQ(0, s.pages_in_use);
	EXPECT_EQ(0, s.pages_cached);
	EXPECT_EQ(0, s.blocks);
	EXPECT_EQ(0, s.handles_live);
	EXPECT_EQ(self->start.bad_frees, s.bad_frees);
	/*
	 * Every 2M split the system saw is one a grouped cache's fallback accounts
	 * for; without fallback in any cache there is none and DirectMap4k is as
	 * before.
	 */
	EXPECT_EQ(cache_splits() - cache_splits_before,
		  read_field("/proc/vmstat", "direct_map_level2_splits") - splits_before);
	if (cache_splits() == cache_splits_before)
		EXPECT_EQ(dm4k_before, read_field("/proc/meminfo", "DirectMap4k"));
}

/*
 * A refill protects its block with one call: a 2M block from the page
 * allocator keeps its 2M direct-map mapping, so refills that get whole
 * blocks split nothing. Protecting page by page would split every block.
 */
TEST_F(gp, refill_splits_nothing)
{
	struct gp_test_stats s;
	unsigned int i;
	__u64 first;

	/* An empty cache: the allocations below must refill. */
	gp_shrink(self->fd, 1ULL << 30);
	ASSERT_EQ(0, gp_stats(self->fd, &self->start));
	ASSERT_EQ(0, self->start.pages_cached);
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, gp_alloc(self->fd, GP_TEST_MAX_BATCH, false, &first));
	ASSERT_EQ(0, gp_stats(self->fd, &s));
	ASSERT_LT(self->start.refills, s.refills);
	if (s.fallback_pages != self->start.fallback_pages)
		SKIP(return, "the page allocator had no free 2M block: %llu fallback pages",
		     s.fallback_pages - self->start.fallback_pages);
	EXPECT_EQ(self->start.direct_map_splits, s.direct_map_splits)
		TH_LOG("%llu refills split %llu direct-map mappings",
		       s.refills - self->start.refills,
		       s.direct_map_splits - self->start.direct_map_splits);
	EXPECT_EQ(0, s.pages_not_protected);
}

TEST_F_TIMEOUT(gp, shrinker_races, 120)
{
	struct churn churners[4];
	pthread_t threads[4];
	struct gp_test_stats s;
	double until = now() + 5;
	unsigned int i;
	__u64 held;

	/* Pages held through the race must come out unharmed. */
	ASSERT_EQ(0, gp_alloc(self->fd, 1000, false, &held));
	for (i = 0; i < 4; i++) {
		churners[i] = (struct churn){ .fd = self->fd, .until = until, .atomic_too = true };
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, churn_thread, &churners[i]));
	}
	while (now() < until) {
		gp_shrink(self->fd, 1 + rand() % 4096);
		drop_caches();
		ASSERT_EQ(0, gp_stats(self->fd, &s));
		/* Pages held through the races keep their protection. */
		EXPECT_EQ(0, s.pages_not_protected);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(threads[i], NULL);
		EXPECT_EQ(0, churners[i].errors);
		EXPECT_LT(0, churners[i].rounds);
	}
	ASSERT_EQ(0, gp_stats(self->fd, &s));
	EXPECT_EQ(1000, s.pages_in_use);
	EXPECT_EQ(1000, s.handles_live);
	EXPECT_EQ(0, s.pages_not_protected);
	EXPECT_LT(self->start.shrinker_scans, s.shrinker_scans);
	EXPECT_EQ(self->start.bad_frees, s.bad_frees);
	EXPECT_EQ(0, gp_free(self->fd, held, 1000));
	EXPECT_EQ(-1, gp_free(self->fd, held, 1000));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, gp_stats(self->fd, &s));
	EXPECT_EQ(0, s.pages_in_use);
}

/*
 * Page tables at every level: 512 pages 2M apart in 8 regions far apart, each
 * unmapped again (freeing its tables) unless @keep.
 */
static void pgtable_storm(bool keep)
{
	static const unsigned long spread = 1UL << 39;	/* one PGD entry with 4 levels */
	unsigned long i, j;

	for (i = 0; i < 8; i++) {
		for (j = 0; j < 64; j++) {
			unsigned long addr = (1UL << 30) + i * (spread / 8) * 7 + j * (2UL << 20);
			char *p = mmap((void *)addr, PAGE, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

			if (p == MAP_FAILED)
				continue;
			*p = 1;
			if (!keep)
				munmap(p, PAGE);
		}
	}
}

/* Kernel page tables a test may cause to be made, and which are never freed. */
#define PKS_KERNEL_SLACK	4

static long long pks_in_use(void)
{
	return read_field(PKS_STATS, "pages_in_use");
}

static const char * const pks_levels[] = { "pte", "pmd", "pud", "p4d", "pgd" };
#define PKS_NR_LEVELS (sizeof(pks_levels) / sizeof(pks_levels[0]))

/* Per-level counts of page tables handed out ("allocated") or returned ("freed"). */
static void pks_read_levels(const char *what, long long *counts)
{
	char name[32];
	unsigned int level;

	for (level = 0; level < PKS_NR_LEVELS; level++) {
		snprintf(name, sizeof(name), "%s_%s", pks_levels[level], what);
		counts[level] = read_field(PKS_LEVELS, name);
	}
}

TEST_F_TIMEOUT(gp, pks_pgtables, 180)
{
	long long alloc_before[PKS_NR_LEVELS], alloc_after[PKS_NR_LEVELS];
	long long freed_before[PKS_NR_LEVELS], freed_after[PKS_NR_LEVELS];
	long long before, after = 0, fallbacks, slack;
	unsigned int level;
	bool p4d_folded;
	int i, status, tries;
	pid_t pid;

	if (read_field(PKS_WALK, "untagged") < 0)
		SKIP(return, "no %s: PKS page tables off (config, CPU, nopkstables or PTI)", PKS_WALK);
	fallbacks = read_field(PKS_STATUS, "pgtable_fallbacks");
	/* With four-level paging the P4D level is folded: no tables to count there. */
	p4d_folded = read_field(PKS_STATUS, "paging_levels") != 5;
	pks_read_levels("allocated", alloc_before);
	pks_read_levels("freed", freed_before);
	before = pks_in_use();
	ASSERT_LE(0, before);
	for (i = 0; i < 40; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			pgtable_storm(false);
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	EXPECT_EQ(0, read_field(PKS_WALK, "untagged"));
	EXPECT_LT(0, read_field(PKS_WALK, "pte_tables"));
	EXPECT_LT(0, read_field(PKS_WALK, "pmd_tables"));
	EXPECT_LT(0, read_field(PKS_WALK, "pud_tables"));
	EXPECT_LT(0, read_field(PKS_WALK, "pgd_tables"));
	/*
	 * Page tables of exited children go back to the cache after RCU, but for
	 * the PGD of the mm an idle CPU may still hold lazily (one per CPU) and
	 * kernel tables made meanwhile (vmalloc'd stacks): a few, where a leak
	 * would keep tables of each of the 40 children.
	 */
	slack = sysconf(_SC_NPROCESSORS_ONLN) + PKS_KERNEL_SLACK;
	for (tries = 0; tries < 50; tries++) {
		after = pks_in_use();
		if (after <= before + slack)
			break;
		usleep(100 * 1000);
	}
	EXPECT_LE(after, before + slack);
	/* Each child's fork and exec made, then freed, tables at every level. */
	pks_read_levels("allocated", alloc_after);
	pks_read_levels("freed", freed_after);
	for (level = 0; level < PKS_NR_LEVELS; level++) {
		/*
		 * Every storm region shares one PGD entry: P4D tables are one per
		 * mm. Each child makes two mms, by fork and by exec: two PGDs.
		 */
		long long least = strcmp(pks_levels[level], "p4d") ? 80 : 40;
		/*
		 * A PGD is freed with its mm, when no CPU uses the mm lazily any
		 * more: each CPU may still hold the last child's until a user
		 * task runs there.
		 */
		long long lazy = strcmp(pks_levels[level], "pgd") ? 0 : sysconf(_SC_NPROCESSORS_ONLN);

		if (p4d_folded && !strcmp(pks_levels[level], "p4d"))
			continue;

		ASSERT_LE(0, alloc_before[level]);
		EXPECT_LE(alloc_before[level] + least, alloc_after[level])
			TH_LOG("%s tables allocated: %lld then %lld", pks_levels[level],
			       alloc_before[level], alloc_after[level]);
		EXPECT_LE(freed_before[level] + least - lazy, freed_after[level])
			TH_LOG("%s tables freed: %lld then %lld", pks_levels[level],
			       freed_before[level], freed_after[level]);
	}
	EXPECT_EQ(fallbacks, read_field(PKS_STATUS, "pgtable_fallbacks"));
}

#define GP_DEPOSIT_THPS	8

/*
 * A huge page's PMD entry keeps a PTE table in reserve (deposited) for the day
 * it is split; page tables all the same, from the cache, and the walk must
 * count them: each huge page mapped adds one PTE table to the walk (fewer than
 * GP_DEPOSIT_THPS when memory is too fragmented is fine).
 */
TEST_F_TIMEOUT(gp, walk_counts_deposited_tables, 60)
{
	size_t huge = 2UL << 20, len = GP_DEPOSIT_THPS * huge, i;
	long long ptes_before, ptes_mapped, thp_kb, thps;
	char *map, *p;

	if (read_field(PKS_WALK, "untagged") < 0)
		SKIP(return, "no %s: PKS page tables off (config, CPU, nopkstables or PTI)", PKS_WALK);
	map = mmap(NULL, len + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	p = (char *)(((unsigned long)map + huge - 1) & ~(huge - 1));
	ptes_before = read_field(PKS_WALK, "pte_tables");
	ASSERT_EQ(0, madvise(p, len, MADV_HUGEPAGE));
	for (i = 0; i < len; i += huge)
		p[i] = 1;
	thp_kb = read_field("/proc/self/smaps_rollup", "AnonHugePages");
	thps = thp_kb > 0 ? thp_kb / (long long)(huge >> 10) : 0;
	if (thps == 0) {
		munmap(map, len + huge);
		SKIP(return, "no huge page mapped (AnonHugePages %lld kB): THP off", thp_kb);
	}
	ptes_mapped = read_field(PKS_WALK, "pte_tables");
	EXPECT_LE(ptes_before + thps, ptes_mapped)
		TH_LOG("PTE tables walked: %lld, then %lld with %lld huge pages mapped",
		       ptes_before, ptes_mapped, thps);
	EXPECT_EQ(0, read_field(PKS_WALK, "untagged"));
	ASSERT_EQ(0, munmap(map, len + huge));
}

/* Run on @cpu only; false if it is not online. */
static bool run_on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) == 0;
}

static void run_everywhere(void)
{
	cpu_set_t set;
	int cpu;

	CPU_ZERO(&set);
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* mmap, touch, mprotect, mremap (PTE and PMD moves), munmap. */
static int vma_writers(void)
{
	size_t len = 8UL << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *q, *to;
	size_t i;

	if (p == MAP_FAILED)
		return -1;
	for (i = 0; i < len; i += PAGE)
		p[i] = 1;
	if (mprotect(p, len / 2, PROT_READ) || mprotect(p, len / 2, PROT_READ | PROT_WRITE))
		return -1;
	to = mmap(NULL, 2 * len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED)
		return -1;
	/* 2M-aligned source and target: whole PMD tables move. */
	to = (char *)(((unsigned long)to + (2UL << 20) - 1) & ~((2UL << 20) - 1));
	q = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (q == MAP_FAILED)
		return -1;
	for (i = 0; i < len; i += PAGE)
		q[i]++;
	return munmap(q, len);
}

/* A THP faulted in, split by a partial mprotect and munmap, then MADV_COLLAPSE. */
static int thp_writers(void)
{
	size_t huge = 2UL << 20, len = 2 * huge, i;
	char *map = mmap(NULL, len + huge, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *p;

	if (map == MAP_FAILED)
		return -1;
	p = (char *)(((unsigned long)map + huge - 1) & ~(huge - 1));
	madvise(p, len, MADV_HUGEPAGE);
	for (i = 0; i < len; i += PAGE)
		p[i] = 1;
	if (mprotect(p + PAGE, PAGE, PROT_READ) || munmap(p + 2 * PAGE, PAGE))
		return -1;
#ifdef MADV_COLLAPSE
	/* Refused without free huge pages or THP off: the attempt is what counts here. */
	madvise(p + huge, huge, MADV_COLLAPSE);
#endif
	return munmap(map, len + huge);
}

static int hugetlb_writers(void)
{
	size_t len = 2UL << 20;
	char *p;

	if (write_str("/proc/sys/vm/nr_hugepages", "2\n"))
		return 1;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (p == MAP_FAILED) {
		write_str("/proc/sys/vm/nr_hugepages", "0\n");
		return 1;
	}
	p[0] = 1;
	p[len - 1] = 1;
	munmap(p, len);
	return write_str("/proc/sys/vm/nr_hugepages", "0\n");
}

/* A kprobe armed and disarmed: text_poke() writes through poking_mm's page tables. */
static int kprobe_writers(void)
{
	const char *events = "/sys/kernel/tracing/kprobe_events";

	/* The directory is there before tracefs is mounted on it. */
	if (access(events, F_OK))
		mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL);
	if (access(events, W_OK))
		return 1;
	if (write_str(events, "p:gp_probe do_sys_openat2\n") ||
	    write_str("/sys/kernel/tracing/events/kprobes/gp_probe/enable", "1\n"))
		return -1;
	close(open("/proc/self/status", O_RDONLY));
	if (write_str("/sys/kernel/tracing/events/kprobes/gp_probe/enable", "0\n"))
		return -1;
	return write_str(events, "-:gp_probe\n");
}

/* CPU 1 offline and back: it must come up write-protecting page tables. */
static int hotplug_writers(long long default_pkrs)
{
	const char *online = "/sys/devices/system/cpu/cpu1/online";
	long long pkrs;

	if (access(online, W_OK))
		return 1;
	if (write_str(online, "0\n") || write_str(online, "1\n"))
		return -1;
	if (!run_on_cpu(1))
		return -1;
	/* The status file reads PKRS on the CPU that reads it. */
	pkrs = read_field(PKS_STATUS, "pkrs");
	run_everywhere();
	return pkrs == default_pkrs ? 0 : -1;
}

/*
 * Every path that writes page tables, with page tables write-protected: no PK
 * fault (an unexpected one oopses or warns, and either fails the run), and
 * every write goes through a window.
 */
TEST_F_TIMEOUT(gp, pks_pgtable_writers, 240)
{
	long long default_pkrs, windows, lazy_windows, faults;
	size_t huge = 2UL << 20;
	char *thp, *thp_aligned;
	int i, status, ret;
	pid_t pid;

	if (read_field(PKS_STATUS, "enforcing") != 1)
		SKIP(return, "page tables not write-protected (PKS off or pks_pgtables=permissive)");
	default_pkrs = read_field(PKS_STATUS, "default_pkrs");
	EXPECT_LT(0, default_pkrs);
	faults = read_field(PKS_STATUS, "pk_faults");
	windows = read_field(PKS_STATUS, "write_windows");
	lazy_windows = read_field(PKS_STATUS, "lazy_mmu_windows");
	ASSERT_EQ(0, faults);
	ASSERT_LE(0, lazy_windows);

	/* A THP of the parent's: each fork write-protects its PMD (copy_huge_pmd()). */
	thp = mmap(NULL, 2 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, thp);
	thp_aligned = (char *)(((unsigned long)thp + huge - 1) & ~(huge - 1));
	madvise(thp_aligned, huge, MADV_HUGEPAGE);
	memset(thp_aligned, 1, huge);
	for (i = 0; i < 20; i++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			if (vma_writers() || thp_writers())
				_exit(1);
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	EXPECT_EQ(0, munmap(thp, 2 * huge));
	ret = hugetlb_writers();
	EXPECT_LE(0, ret);
	if (ret > 0)
		TH_LOG("no hugetlb pages: hugetlb not exercised");
	ret = kprobe_writers();
	EXPECT_LE(0, ret);
	if (ret > 0)
		TH_LOG("no kprobe_events: kprobes and text_poke not exercised");
	ret = hotplug_writers(default_pkrs);
	EXPECT_LE(0, ret) TH_LOG("CPU 1 after hotplug: PKRS is not the default");
	if (ret > 0)
		TH_LOG("one CPU: hotplug not exercised");

	EXPECT_EQ(0, read_field(PKS_STATUS, "pk_faults"));
	EXPECT_LT(windows, read_field(PKS_STATUS, "write_windows"));
	/* fork's copies and exit's zaps are lazy MMU sections: one window per batch. */
	EXPECT_LT(lazy_windows, read_field(PKS_STATUS, "lazy_mmu_windows"));
	EXPECT_EQ(0, read_field(PKS_WALK, "untagged"));
}

#define SCHEDSTATS_KNOB	"/proc/sys/kernel/sched_schedstats"
#define STATIC_KEY_FLIPS	200

/* CONFIG_JUMP_LABEL: static keys are patched code, not variables. */
static bool jump_labels_patch_text(void)
{
	char line[256];
	bool found = false;
	FILE *f = fopen("/proc/kallsyms", "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, " arch_jump_label_transform_queue\n") != NULL;
	fclose(f);
	return found;
}

/*
 * With jump labels, a static-key flip is text_poke_bp(): int3 written over
 * every site, then the rest of each instruction, then its first byte, each
 * step written through poking_mm's page tables (windows) and followed by a
 * sync IPI. Flip the schedstats key while both CPUs keep running the
 * scheduler paths it patches, so int3 sites are hit mid-flip.
 */
TEST_F_TIMEOUT(gp, static_key_flips, 240)
{
	long long windows = read_field(PKS_STATUS, "write_windows");
	bool enforcing = read_field(PKS_STATUS, "enforcing") == 1;
	int i, status, failed = 0;
	pid_t spinner;

	if (access(SCHEDSTATS_KNOB, W_OK))
		SKIP(return, "%s: %s (needs CONFIG_SCHEDSTATS)", SCHEDSTATS_KNOB,
		     strerror(errno));
	if (!jump_labels_patch_text())
		TH_LOG("no jump labels: the flips patch no text (CONFIG=jumplabel does)");
	spinner = fork();
	ASSERT_LE(0, spinner);
	if (spinner == 0) {
		/* Each sched_yield() goes through __schedule() and its schedstat sites. */
		run_on_cpu(1);
		for (;;)
			sched_yield();
	}
	for (i = 0; i < STATIC_KEY_FLIPS && !failed; i++) {
		failed = write_str(SCHEDSTATS_KNOB, i & 1 ? "0\n" : "1\n");
		sched_yield();
	}
	kill(spinner, SIGKILL);
	ASSERT_EQ(spinner, waitpid(spinner, &status, 0));
	EXPECT_EQ(0, failed) TH_LOG("flip %d of %s refused", i, SCHEDSTATS_KNOB);
	EXPECT_EQ(0, write_str(SCHEDSTATS_KNOB, "0\n"));
	if (!enforcing)
		return;
	EXPECT_EQ(0, read_field(PKS_STATUS, "pk_faults"));
	EXPECT_LT(windows, read_field(PKS_STATUS, "write_windows"));
}

#define CGROUP_ROOT	"/sys/fs/cgroup"
#define PGT_CGROUP	CGROUP_ROOT "/gp_pgtables"

/* cgroup v2 with the memory controller enabled for children; false if unavailable. */
static bool memcg_ready(void)
{
	char path[] = CGROUP_ROOT "/cgroup.controllers";

	if (access(path, F_OK) && mount("none", CGROUP_ROOT, "cgroup2", 0, NULL))
		return false;
	if (write_str(CGROUP_ROOT "/cgroup.subtree_control", "+memory"))
		return false;
	return !mkdir(PGT_CGROUP, 0755) || errno == EEXIST;
}

/*
 * Page tables from the cache are charged to the memcg of the task that made
 * them and counted in NR_PAGETABLE, and both charges go when the task exits.
 */
TEST_F_TIMEOUT(gp, pks_pgtables_memcg_accounting, 120)
{
	long long node_before, node_during, memcg_during, memcg_after = -1, cache_before;
	int ready[2], release[2], status, tries;
	char byte = 0;
	pid_t pid;

	if (read_field(PKS_WALK, "untagged") < 0)
		SKIP(return, "no %s: PKS page tables off (config, CPU, nopkstables or PTI)", PKS_WALK);
	if (!memcg_ready())
		SKIP(return, "no cgroup v2 memory controller: %s", strerror(errno));
	node_before = read_field("/proc/vmstat", "nr_page_table_pages");
	cache_before = pks_in_use();
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(release));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (write_str(PGT_CGROUP "/cgroup.procs", "0"))
			_exit(1);
		pgtable_storm(true);
		if (write(ready[1], &byte, 1) != 1 || read(release[0], &byte, 1) != 1)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &byte, 1));
	node_during = read_field("/proc/vmstat", "nr_page_table_pages");
	memcg_during = read_field(PGT_CGROUP "/memory.stat", "pagetables");
	/*
	 * 512 pages 2M apart need 512 PTE tables at least. The vmstat and memcg
	 * counters are batched per CPU, hence their margin; the cache's is exact.
	 */
	EXPECT_LE(384 * PAGE, memcg_during);
	EXPECT_LE(node_before + 384, node_during);
	EXPECT_LE(cache_before + 512, pks_in_use());
	EXPECT_EQ(0, read_field(PKS_WALK, "untagged"));
	ASSERT_EQ(1, write(release[1], &byte, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Tables freed through the mmu_gather go after an RCU grace period. */
	for (tries = 0; tries < 50; tries++) {
		memcg_after = read_field(PGT_CGROUP "/memory.stat", "pagetables");
		if (memcg_after == 0)
			break;
		usleep(100 * 1000);
	}
	EXPECT_EQ(0, memcg_after);
	EXPECT_GT(node_before + 128, read_field("/proc/vmstat", "nr_page_table_pages"));
	close(ready[0]);
	close(ready[1]);
	close(release[0]);
	close(release[1]);
	rmdir(PGT_CGROUP);
}

TEST_HARNESS_MAIN
