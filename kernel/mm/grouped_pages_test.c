// SPDX-License-Identifier: GPL-2.0
/*
 * A debugfs file through which the grouped_pages kselftests allocate and free
 * pages of a test cache, run its shrinker and read its counters, so that the
 * cache can be stressed from userspace together with real memory pressure.
 * Pages are named by handles, never by addresses: a bad handle is refused.
 */

#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/init.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/shrinker.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>
#include <uapi/linux/grouped_pages_test.h>

#ifdef CONFIG_X86
#include <asm/pgtable_types.h>
#endif

static char *prot_name = IS_ENABLED(CONFIG_X86) ? "read-only" : "none";
module_param_named(prot, prot_name, charp, 0444);
MODULE_PARM_DESC(prot, "protection of the test cache: none, read-only or not-present (x86)");

static struct grouped_pages_cache *gp_test_cache;
static const struct grouped_pages_prot *gp_test_prot;
static DEFINE_XARRAY(gp_test_pages);
static atomic64_t gp_test_next_handle;
static atomic_long_t gp_test_live;

static const struct grouped_pages_prot *gp_test_pick_prot(const char *name)
{
	if (!strcmp(name, "none"))
		return &grouped_pages_prot_none;
#ifdef CONFIG_X86
	if (!strcmp(name, "read-only"))
		return &grouped_pages_prot_read_only;
	if (!strcmp(name, "not-present"))
		return &grouped_pages_prot_not_present;
#endif
	return NULL;
}

/* Give back the page behind @handle; false if no page is (any longer) behind it. */
static bool gp_test_release(u64 handle)
{
	struct page *page = xa_erase(&gp_test_pages, handle);

	if (!page)
		return false;
	grouped_pages_free(gp_test_cache, page);
	atomic_long_dec(&gp_test_live);
	return true;
}

static long gp_test_alloc(struct gp_test_alloc __user *uarg)
{
	struct gp_test_alloc arg;
	gfp_t gfp;
	u32 i, stored;
	int err = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.count || arg.count > GP_TEST_MAX_BATCH || arg.atomic > 1)
		return -EINVAL;
	if (atomic_long_add_return(arg.count, &gp_test_live) > GP_TEST_MAX_PAGES) {
		atomic_long_sub(arg.count, &gp_test_live);
		return -ENOSPC;
	}
	gfp = arg.atomic ? GFP_NOWAIT : GFP_KERNEL;
	arg.first = atomic64_add_return(arg.count, &gp_test_next_handle) - arg.count;
	for (i = 0; i < arg.count; i++) {
		struct page *page = grouped_pages_alloc(gp_test_cache, NUMA_NO_NODE, gfp);

		if (!page) {
			err = -ENOMEM;
			break;
		}
		err = xa_err(xa_store(&gp_test_pages, arg.first + i, page, GFP_KERNEL));
		if (err) {
			grouped_pages_free(gp_test_cache, page);
			break;
		}
	}
	/* A caller that cannot learn the handles could never free the pages. */
	if (!err && copy_to_user(uarg, &arg, sizeof(arg)))
		err = -EFAULT;
	if (err) {
		/*
		 * All or nothing: give back what this request got. Once stored, a
		 * handle may already have been freed by a racing GP_TEST_FREE.
		 */
		stored = i;
		while (i--)
			gp_test_release(arg.first + i);
		/* The pages never stored were counted in advance too. */
		atomic_long_sub(arg.count - stored, &gp_test_live);
		return err;
	}
	return 0;
}

static long gp_test_free(struct gp_test_free __user *uarg)
{
	struct gp_test_free arg;
	u32 i, missing = 0;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.count || arg.count > GP_TEST_MAX_BATCH || arg.pad)
		return -EINVAL;
	for (i = 0; i < arg.count; i++)
		missing += !gp_test_release(arg.first + i);
	return missing ? -ENOENT : 0;
}

static void gp_test_free_all(void)
{
	unsigned long index;
	struct page *page;

	/* Handles are never reused: a racing free may only have taken it first. */
	xa_for_each(&gp_test_pages, index, page)
		gp_test_release(index);
}

static long gp_test_shrink(struct gp_test_shrink __user *uarg)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(gp_test_cache);
	struct gp_test_shrink arg;
	int nid;

	if (copy_from_user(&arg, uarg, sizeof(arg)))
		return -EFAULT;
	if (!arg.nr_to_scan)
		return -EINVAL;
	arg.freed = 0;
	for_each_node_state(nid, N_MEMORY) {
		struct shrink_control sc = { .gfp_mask = GFP_KERNEL, .nid = nid };
		unsigned long goal = arg.nr_to_scan, done = 0, freed;

		while (done < goal) {
			sc.nr_to_scan = min(goal - done, 1024UL);
			freed = shrinker->scan_objects(shrinker, &sc);
			if (freed == SHRINK_STOP)
				break;
			done += freed;
			cond_resched();
		}
		arg.freed += done;
	}
	return copy_to_user(uarg, &arg, sizeof(arg)) ? -EFAULT : 0;
}

/* Pages we hold whose direct-map entry does not carry the test protection. */
static unsigned long gp_test_unprotected(void)
{
	unsigned long index, count = 0;
	struct page *page;

#ifdef CONFIG_X86
	xa_for_each(&gp_test_pages, index, page) {
		unsigned int level;
		pte_t *pte = lookup_address((unsigned long)page_address(page), &level);

		bool wrong;

		if (!pte)
			continue;
		if (gp_test_prot == &grouped_pages_prot_read_only)
			wrong = pte_flags(*pte) & _PAGE_RW;
		else if (gp_test_prot == &grouped_pages_prot_not_present)
			wrong = pte_flags(*pte) & _PAGE_PRESENT;
		else
			wrong = false;
		/*
		 * A free removes the handle before the page goes back to the cache:
		 * if the handle is still there, the page was held when we looked.
		 */
		if (wrong && xa_load(&gp_test_pages, index) == page)
			count++;
	}
#endif
	return count;
}

static long gp_test_stats(struct gp_test_stats __user *uarg)
{
	struct grouped_pages_stats s;
	struct gp_test_stats out;

	grouped_pages_get_stats(gp_test_cache, &s);
	out = (struct gp_test_stats){
		.blocks = s.blocks,
		.pages_cached = s.pages_cached,
		.pages_in_use = s.pages_in_use,
		.fallback_pages = s.fallback_pages,
		.refills = s.refills,
		.direct_map_splits = s.direct_map_splits,
		.shrinker_scans = s.shrinker_scans,
		.shrinker_freed = s.shrinker_freed,
		.whole_blocks_freed = s.whole_blocks_freed,
		.partial_breaks = s.partial_breaks,
		.alloc_failures = s.alloc_failures,
		.bad_frees = s.bad_frees,
		.handles_live = atomic_long_read(&gp_test_live),
		.pages_not_protected = gp_test_unprotected(),
	};
	return copy_to_user(uarg, &out, sizeof(out)) ? -EFAULT : 0;
}

static long gp_test_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case GP_TEST_ALLOC:
		return gp_test_alloc(uarg);
	case GP_TEST_FREE:
		return gp_test_free(uarg);
	case GP_TEST_FREE_ALL:
		gp_test_free_all();
		return 0;
	case GP_TEST_SHRINK:
		return gp_test_shrink(uarg);
	case GP_TEST_STATS:
		return gp_test_stats(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations gp_test_fops = {
	.owner = THIS_MODULE,
	.open = nonseekable_open,
	.unlocked_ioctl = gp_test_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static int __init gp_test_init(void)
{
	gp_test_prot = gp_test_pick_prot(prot_name);
	if (!gp_test_prot) {
		pr_err("grouped_pages_test: unknown prot=%s: valid are none%s\n", prot_name,
		       IS_ENABLED(CONFIG_X86) ? ", read-only, not-present" : "");
		return -EINVAL;
	}
	gp_test_cache = grouped_pages_cache_create("test", gp_test_prot, NULL, 0);
	if (!gp_test_cache)
		return -ENOMEM;
	debugfs_create_file("grouped_pages_test", 0600, NULL, NULL, &gp_test_fops);
	return 0;
}
late_initcall(gp_test_init);
