// SPDX-License-Identifier: GPL-2.0
/*
 * A debugfs file through which gp_bench measures the grouped page cache
 * against what it replaces: pages from alloc_page() whose direct-map entry is
 * changed one by one with set_memory_*(). Both run in the same boot, so the
 * figures can be compared as ratios even under a noisy emulator. The counters
 * of the direct map (/proc/vmstat, /proc/meminfo) are read by userspace
 * around each step; this file only does the work and times it.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/init.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/prandom.h>
#include <linux/set_memory.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <uapi/linux/grouped_pages_bench.h>

#include <asm/pgtable_types.h>
#ifdef CONFIG_PKS_PG_TABLES
#include <asm/pks.h>
#endif

/* A key no kernel user has, so the bench never touches page-table pages' state. */
#define GP_BENCH_PKEY	2

struct gp_bench_pages {
	struct page **pages;
	unsigned long nr;
};

/* Serialises everything but the fast path, which has a cache of its own. */
static DEFINE_MUTEX(gp_bench_lock);
static struct grouped_pages_cache *gp_bench_caches[3];
static struct grouped_pages_cache *gp_bench_fast_cache;
static struct gp_bench_pages gp_bench_aged;
static struct gp_bench_pages gp_bench_held;
static unsigned int gp_bench_held_mode;
static unsigned int gp_bench_held_prot;
/* 2M blocks taken so that refills fall back, on their lru. */
static LIST_HEAD(gp_bench_taken_2m);

static unsigned long gp_bench_addr(struct page *page)
{
	return (unsigned long)page_address(page);
}

static bool gp_bench_pkey_usable(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return pks_available();
#else
	return false;
#endif
}

/* set_memory_*() for @prot on @nr pages, or its reset when @reset. */
static int gp_bench_set(unsigned int prot, unsigned long addr, int nr, bool reset)
{
	switch (prot) {
	case GP_BENCH_PROT_RO:
		return reset ? set_memory_rw(addr, nr) : set_memory_ro(addr, nr);
	case GP_BENCH_PROT_NP:
		return reset ? set_memory_p(addr, nr) : set_memory_np(addr, nr);
#ifdef CONFIG_PKS_PG_TABLES
	case GP_BENCH_PROT_PKEY:
		return set_memory_pkey(addr, nr, reset ? PKS_KEY_DEFAULT : GP_BENCH_PKEY);
#endif
	}
	return -EINVAL;
}

static int gp_bench_pkey_apply(struct page *page, unsigned int nr_pages, void *data)
{
	return gp_bench_set(GP_BENCH_PROT_PKEY, gp_bench_addr(page), nr_pages, false);
}

static int gp_bench_pkey_reset(struct page *page, unsigned int nr_pages, void *data)
{
	return gp_bench_set(GP_BENCH_PROT_PKEY, gp_bench_addr(page), nr_pages, true);
}

static const struct grouped_pages_prot gp_bench_prot_pkey = {
	.name = "bench-pkey",
	.apply = gp_bench_pkey_apply,
	.reset = gp_bench_pkey_reset,
	.direct_map_writable = true,
};

static int gp_bench_check_prot(unsigned int prot)
{
	if (prot > GP_BENCH_PROT_PKEY)
		return -EINVAL;
	if (prot == GP_BENCH_PROT_PKEY && !gp_bench_pkey_usable())
		return -EOPNOTSUPP;
	return 0;
}

static int gp_bench_pages_alloc(struct gp_bench_pages *set, unsigned long nr)
{
	set->pages = kvcalloc(nr, sizeof(*set->pages), GFP_KERNEL);
	set->nr = 0;
	return set->pages ? 0 : -ENOMEM;
}

static void gp_bench_pages_done(struct gp_bench_pages *set)
{
	kvfree(set->pages);
	set->pages = NULL;
	set->nr = 0;
}

/* Distinct 2M regions among the pages of @set, in @out. */
static int gp_bench_regions(struct gp_bench_pages *set, __u64 *out)
{
	unsigned long i, j, regions = 0;
	unsigned long *seen;

	seen = kvcalloc(set->nr, sizeof(*seen), GFP_KERNEL);
	if (!seen)
		return -ENOMEM;
	/* Few regions per hold: a linear scan of those seen so far is enough. */
	for (i = 0; i < set->nr; i++) {
		unsigned long region = page_to_pfn(set->pages[i]) >> PMD_ORDER;

		for (j = 0; j < regions && seen[j] != region; j++)
			;
		if (j == regions)
			seen[regions++] = region;
		if (!(i % 1024))
			cond_resched();
	}
	kvfree(seen);
	*out = regions;
	return 0;
}

static unsigned long gp_bench_mapped_4k(struct gp_bench_pages *set)
{
	unsigned long i, count = 0;

	for (i = 0; i < set->nr; i++) {
		unsigned int level;

		if (lookup_address(gp_bench_addr(set->pages[i]), &level) && level == PG_LEVEL_4K)
			count++;
	}
	return count;
}

static void gp_bench_unage(void)
{
	unsigned long i;

	for (i = 0; i < gp_bench_aged.nr; i++)
		__free_page(gp_bench_aged.pages[i]);
	gp_bench_pages_done(&gp_bench_aged);
}

static long gp_bench_age(struct gp_bench_age __user *uarg)
{
	struct gp_bench_age arg;
	struct gp_bench_pages all;
	struct rnd_state rnd;
	unsigned long i, j;
	int err;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.nr_pages || arg.nr_pages > GP_BENCH_MAX_PAGES || !arg.keep_one_in || arg.pad)
		return -EINVAL;
	if (gp_bench_aged.pages)
		return -EBUSY;
	err = gp_bench_pages_alloc(&all, arg.nr_pages);
	if (err)
		return err;
	err = gp_bench_pages_alloc(&gp_bench_aged, arg.nr_pages / arg.keep_one_in + 1);
	if (err)
		goto out;
	/* NORETRY: a request larger than memory fails, instead of waking the OOM killer. */
	for (all.nr = 0; all.nr < arg.nr_pages; all.nr++) {
		if (fatal_signal_pending(current))
			break;
		all.pages[all.nr] = alloc_page(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
		if (!all.pages[all.nr])
			break;
	}
	/*
	 * Fisher-Yates, so the pages go back in an order the seed names. The
	 * index is drawn first: swap() evaluates its arguments twice.
	 */
	prandom_seed_state(&rnd, arg.seed);
	for (i = all.nr; i > 1; i--) {
		j = prandom_u32_state(&rnd) % i;
		swap(all.pages[i - 1], all.pages[j]);
	}
	for (i = 0; i < all.nr; i++) {
		if (i % arg.keep_one_in == 0)
			gp_bench_aged.pages[gp_bench_aged.nr++] = all.pages[i];
		else
			__free_page(all.pages[i]);
	}
	/* Into the buddy lists, not only this CPU's per-CPU list, so the holes show there. */
	drain_all_pages(NULL);
	if (all.nr < arg.nr_pages)
		err = fatal_signal_pending(current) ? -EINTR : -ENOMEM;
	else
		err = gp_bench_regions(&gp_bench_aged, &arg.regions_2m);
	if (!err && copy_to_user(uarg, &arg, sizeof(arg)))
		err = -EFAULT;
	if (err)
		gp_bench_unage();
out:
	gp_bench_pages_done(&all);
	return err;
}

static int gp_bench_hold_grouped(struct gp_bench_hold *arg)
{
	struct grouped_pages_cache *cache = gp_bench_caches[arg->prot];
	struct grouped_pages_stats before, after;
	u64 start = ktime_get_ns();

	grouped_pages_get_stats(cache, &before);
	while (gp_bench_held.nr < arg->nr_pages) {
		struct page *page;

		if (fatal_signal_pending(current))
			return -EINTR;
		page = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL | __GFP_NORETRY);
		if (!page)
			return -ENOMEM;
		gp_bench_held.pages[gp_bench_held.nr++] = page;
	}
	arg->alloc_ns = ktime_get_ns() - start;
	grouped_pages_get_stats(cache, &after);
	arg->refills = after.refills - before.refills;
	arg->fallback_pages = after.fallback_pages - before.fallback_pages;
	arg->splits = after.direct_map_splits - before.direct_map_splits;
	return 0;
}

static bool gp_bench_mapped_large(struct page *page)
{
	unsigned int level;

	return lookup_address(gp_bench_addr(page), &level) && level > PG_LEVEL_4K;
}

/* Give back baseline pages, resetting those protected; one whose reset fails is kept. */
static void gp_bench_free_baseline(struct page **pages, unsigned long nr,
				   unsigned long nr_protected, unsigned int prot)
{
	unsigned long i;

	for (i = 0; i < nr; i++) {
		if (i < nr_protected &&
		    gp_bench_set(prot, gp_bench_addr(pages[i]), 1, true)) {
			/* Unsafe to reuse with a changed direct map. */
			pr_warn("grouped_pages_bench: leaking pfn %#lx: reset failed\n",
				page_to_pfn(pages[i]));
			continue;
		}
		__free_page(pages[i]);
	}
}

static int gp_bench_hold_baseline(struct gp_bench_hold *arg)
{
	unsigned long i;
	u64 start;
	int err;

	/*
	 * Pages just freed (a grouped run's blocks) sit on per-CPU lists, which
	 * alloc_page() serves first: drained, they merge back into 2M blocks and
	 * the baseline gets the scattered pages of aged memory, as on a machine
	 * that has run for a while.
	 */
	drain_all_pages(NULL);
	start = ktime_get_ns();

	while (gp_bench_held.nr < arg->nr_pages) {
		struct page *page;

		if (fatal_signal_pending(current))
			return -EINTR;
		page = alloc_page(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN);
		if (!page)
			return -ENOMEM;
		gp_bench_held.pages[gp_bench_held.nr++] = page;
	}
	arg->alloc_ns = ktime_get_ns() - start;
	start = ktime_get_ns();
	for (i = 0; i < gp_bench_held.nr; i++) {
		struct page *page = gp_bench_held.pages[i];
		bool large = gp_bench_mapped_large(page);

		err = gp_bench_set(arg->prot, gp_bench_addr(page), 1, false);
		if (!err && fatal_signal_pending(current))
			err = -EINTR;
		if (err) {
			/* The pages before this one carry the protection; this one may. */
			gp_bench_free_baseline(gp_bench_held.pages, gp_bench_held.nr, i + 1,
					       arg->prot);
			gp_bench_held.nr = 0;
			return err;
		}
		arg->splits += large && !gp_bench_mapped_large(page);
		if (!(i % 256))
			cond_resched();
	}
	arg->protect_ns = ktime_get_ns() - start;
	return 0;
}

static void gp_bench_shrink_all(struct grouped_pages_cache *cache, struct gp_bench_release *out)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(cache);
	struct grouped_pages_stats before, after;
	u64 start = ktime_get_ns();
	int nid;

	grouped_pages_get_stats(cache, &before);
	for_each_node_state(nid, N_MEMORY) {
		struct shrink_control sc = { .gfp_mask = GFP_KERNEL, .nid = nid };
		unsigned long freed;

		do {
			sc.nr_to_scan = 1024;
			freed = shrinker->scan_objects(shrinker, &sc);
			cond_resched();
		} while (freed && freed != SHRINK_STOP);
	}
	out->shrink_ns = ktime_get_ns() - start;
	grouped_pages_get_stats(cache, &after);
	out->blocks_freed = after.whole_blocks_freed - before.whole_blocks_freed;
	out->pages_left = after.pages_cached + after.pages_in_use;
	out->splits = after.direct_map_splits - before.direct_map_splits;
}

static void gp_bench_release_held(struct gp_bench_release *out)
{
	struct grouped_pages_cache *cache = gp_bench_caches[gp_bench_held_prot];
	unsigned long i;
	u64 start = ktime_get_ns();

	for (i = 0; i < gp_bench_held.nr; i++) {
		struct page *page = gp_bench_held.pages[i];
		bool large;

		if (gp_bench_held_mode == GP_BENCH_GROUPED) {
			grouped_pages_free(cache, page);
			continue;
		}
		large = gp_bench_mapped_large(page);
		/* A page whose protection cannot be reset must never be reused. */
		if (gp_bench_set(gp_bench_held_prot, gp_bench_addr(page), 1, true)) {
			pr_warn("grouped_pages_bench: leaking pfn %#lx: reset failed\n",
				page_to_pfn(page));
			continue;
		}
		out->splits += large && !gp_bench_mapped_large(page);
		__free_page(page);
		if (!(i % 256))
			cond_resched();
	}
	out->free_ns = ktime_get_ns() - start;
	if (gp_bench_held_mode == GP_BENCH_GROUPED)
		gp_bench_shrink_all(cache, out);
	gp_bench_pages_done(&gp_bench_held);
}

static long gp_bench_hold(struct gp_bench_hold __user *uarg)
{
	struct gp_bench_hold arg;
	struct gp_bench_release undo;
	int err;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.mode > GP_BENCH_BASELINE || !arg.nr_pages || arg.nr_pages > GP_BENCH_MAX_PAGES ||
	    arg.pad)
		return -EINVAL;
	err = gp_bench_check_prot(arg.prot);
	if (err)
		return err;
	if (gp_bench_held.pages)
		return -EBUSY;
	err = gp_bench_pages_alloc(&gp_bench_held, arg.nr_pages);
	if (err)
		return err;
	gp_bench_held_mode = arg.mode;
	gp_bench_held_prot = arg.prot;
	arg.alloc_ns = 0;
	arg.protect_ns = 0;
	arg.refills = 0;
	arg.fallback_pages = 0;
	arg.splits = 0;
	if (arg.mode == GP_BENCH_GROUPED)
		err = gp_bench_hold_grouped(&arg);
	else
		err = gp_bench_hold_baseline(&arg);
	if (!err)
		err = gp_bench_regions(&gp_bench_held, &arg.regions_2m);
	if (!err) {
		arg.mapped_4k = gp_bench_mapped_4k(&gp_bench_held);
		if (copy_to_user(uarg, &arg, sizeof(arg)))
			err = -EFAULT;
	}
	if (err)
		gp_bench_release_held(&undo);
	return err;
}

static long gp_bench_release(struct gp_bench_release __user *uarg)
{
	struct gp_bench_release out = {};

	if (!gp_bench_held.pages)
		return -ENOENT;
	gp_bench_release_held(&out);
	return copy_to_user(uarg, &out, sizeof(out)) ? -EFAULT : 0;
}

/* Runs without gp_bench_lock, so that one caller per CPU can time it at once. */
static long gp_bench_fastpath(struct gp_bench_fastpath __user *uarg)
{
	struct grouped_pages_cache *cache = gp_bench_fast_cache;
	struct gp_bench_fastpath arg;
	struct page *page;
	u64 start;
	u32 i;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.mode > GP_BENCH_BASELINE || !arg.iterations || arg.iterations > (1U << 24))
		return -EINVAL;
	if (arg.mode == GP_BENCH_GROUPED) {
		/* The refill is not the fast path: make sure a page is cached first. */
		page = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL);
		if (!page)
			return -ENOMEM;
		grouped_pages_free(cache, page);
	}
	start = ktime_get_ns();
	for (i = 0; i < arg.iterations; i++) {
		if (arg.mode == GP_BENCH_GROUPED) {
			page = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL);
			if (!page)
				return -ENOMEM;
			grouped_pages_free(cache, page);
		} else {
			page = alloc_page(GFP_KERNEL);
			if (!page)
				return -ENOMEM;
			__free_page(page);
		}
		if (!(i % 4096)) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	arg.ns = ktime_get_ns() - start;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static long gp_bench_block_prot(struct gp_bench_block_prot __user *uarg)
{
	struct gp_bench_block_prot arg;
	unsigned int level;
	unsigned long addr;
	struct page *block;
	u64 start;
	int err, ret;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.pad)
		return -EINVAL;
	err = gp_bench_check_prot(arg.prot);
	if (err)
		return err;
	block = alloc_pages(GFP_KERNEL | __GFP_NOWARN, PMD_ORDER);
	if (!block)
		return -ENOMEM;
	addr = gp_bench_addr(block);
	arg.mapped_2m = lookup_address(addr, &level) && level >= PG_LEVEL_2M;
	start = ktime_get_ns();
	err = gp_bench_set(arg.prot, addr, 1 << PMD_ORDER, false);
	arg.protect_ns = ktime_get_ns() - start;
	/* A failed change may have changed part of the block: reset it either way. */
	start = ktime_get_ns();
	ret = gp_bench_set(arg.prot, addr, 1 << PMD_ORDER, true);
	arg.reset_ns = ktime_get_ns() - start;
	if (ret) {
		pr_warn("grouped_pages_bench: leaking a block at pfn %#lx: reset failed\n",
			page_to_pfn(block));
		return ret;
	}
	__free_pages(block, PMD_ORDER);
	if (err)
		return err;
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static unsigned long gp_bench_give_2m(void)
{
	struct page *block, *next;
	unsigned long given = 0;

	list_for_each_entry_safe(block, next, &gp_bench_taken_2m, lru) {
		list_del(&block->lru);
		__free_pages(block, PMD_ORDER);
		given++;
	}
	return given;
}

static long gp_bench_take_2m(struct gp_bench_take_2m __user *uarg)
{
	/* What is free now, nothing reclaimed or compacted to make more. */
	const gfp_t gfp = (GFP_KERNEL & ~__GFP_RECLAIM) | __GFP_NORETRY | __GFP_NOWARN;
	struct gp_bench_take_2m arg;
	struct page *block;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (arg.give > 1 || arg.pad)
		return -EINVAL;
	if (arg.give) {
		arg.blocks = gp_bench_give_2m();
	} else {
		if (!list_empty(&gp_bench_taken_2m))
			return -EBUSY;
		/* Pages on the per-CPU lists may complete a 2M block: into the buddy first. */
		drain_all_pages(NULL);
		for (arg.blocks = 0; !fatal_signal_pending(current); arg.blocks++) {
			block = alloc_pages(gfp, PMD_ORDER);
			if (!block)
				break;
			list_add(&block->lru, &gp_bench_taken_2m);
		}
	}
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

static void gp_bench_reset(void)
{
	struct gp_bench_release ignored;

	if (gp_bench_held.pages)
		gp_bench_release_held(&ignored);
	if (gp_bench_aged.pages)
		gp_bench_unage();
	gp_bench_give_2m();
}

static long gp_bench_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	long ret;

	if (cmd == GP_BENCH_FASTPATH)
		return gp_bench_fastpath(uarg);
	mutex_lock(&gp_bench_lock);
	switch (cmd) {
	case GP_BENCH_AGE:
		ret = gp_bench_age(uarg);
		break;
	case GP_BENCH_HOLD:
		ret = gp_bench_hold(uarg);
		break;
	case GP_BENCH_RELEASE:
		ret = gp_bench_release(uarg);
		break;
	case GP_BENCH_BLOCK_PROT:
		ret = gp_bench_block_prot(uarg);
		break;
	case GP_BENCH_RESET:
		gp_bench_reset();
		ret = 0;
		break;
	case GP_BENCH_TAKE_2M:
		ret = gp_bench_take_2m(uarg);
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&gp_bench_lock);
	return ret;
}

/* A bench that dies half way must not leave pages held or protected. */
static int gp_bench_close(struct inode *inode, struct file *file)
{
	mutex_lock(&gp_bench_lock);
	gp_bench_reset();
	mutex_unlock(&gp_bench_lock);
	return 0;
}

static const struct file_operations gp_bench_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.release = gp_bench_close,
	.unlocked_ioctl = gp_bench_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static void gp_bench_destroy_caches(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(gp_bench_caches); i++)
		if (gp_bench_caches[i])
			grouped_pages_cache_destroy(gp_bench_caches[i]);
	if (gp_bench_fast_cache)
		grouped_pages_cache_destroy(gp_bench_fast_cache);
}

static int __init gp_bench_init(void)
{
	gp_bench_caches[GP_BENCH_PROT_RO] =
		grouped_pages_cache_create("bench-ro", &grouped_pages_prot_read_only, NULL, 0);
	gp_bench_caches[GP_BENCH_PROT_NP] =
		grouped_pages_cache_create("bench-np", &grouped_pages_prot_not_present, NULL, 0);
	gp_bench_caches[GP_BENCH_PROT_PKEY] =
		grouped_pages_cache_create("bench-pkey", &gp_bench_prot_pkey, NULL, 0);
	gp_bench_fast_cache =
		grouped_pages_cache_create("bench-fast", &grouped_pages_prot_read_only, NULL, 0);
	if (!gp_bench_caches[0] || !gp_bench_caches[1] || !gp_bench_caches[2] ||
	    !gp_bench_fast_cache) {
		gp_bench_destroy_caches();
		return -ENOMEM;
	}
	debugfs_create_file("grouped_pages_bench", 0600, NULL, NULL, &gp_bench_fops);
	return 0;
}
late_initcall(gp_bench_init);
