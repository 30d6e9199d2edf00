// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite of the grouped page cache.
 *
 * Every case wraps the protection under test in a recording protection, so it
 * can check which ranges were protected and reset, and inject failures.
 */

#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/kasan.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/pgtable.h>
#include <linux/prandom.h>
#include <linux/random.h>
#include <linux/sched/mm.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#ifdef CONFIG_X86
#include <asm/pgtable_types.h>
#include <asm/set_memory.h>
#endif

#define GP_MAX_TRACKED	4096
/* Pages a CPU holds or leaves on its list in the CPU hotplug case. */
#define GP_PCP_TEST_PAGES	16
/* Cases that are not about node choice use one node, so blocks fill in order. */
#define GP_NODE		first_memory_node
#define GP_X86		(IS_ENABLED(CONFIG_X86) && IS_ENABLED(CONFIG_GROUPED_PAGES))

#ifndef CONFIG_GROUPED_PAGES
/* Lets the suite build on HIGHMEM kernels, where every case is skipped. */
static const struct grouped_pages_prot grouped_pages_prot_none = { .name = "unavailable" };
#endif

struct gp_ctx {
	struct kunit *test;
	struct grouped_pages_cache *cache;
	const struct grouped_pages_prot *inner;
	struct grouped_pages_prot prot;
	unsigned int block_pages;

	atomic_t applies;
	atomic_t resets;
	atomic_long_t protected_pages;
	unsigned long last_apply_pfn;
	unsigned int last_apply_nr;
	unsigned long last_reset_pfn;
	unsigned int last_reset_nr;
	unsigned long size_before_apply;
	/* The first apply's: where a block starts, even if it is protected piecemeal. */
	unsigned long first_apply_pfn;
	unsigned long size_before_first_apply;
	int apply_err;
	int reset_err;
	/* Resets of the block at this pfn fail with reset_err (0: every reset does). */
	unsigned long reset_err_pfn;

	/* Reset sleeps, widening the window in which a scan has a block off its lock. */
	bool slow_reset;
	atomic_t resets_running;
	atomic_t most_resets_running;

	/* Reset allocates from the cache, as a page-table cache splitting the direct map would. */
	bool nested_alloc;
	struct page *nested_page;
	bool nested_in_memalloc;

	/* Protects pages[] and nr_pages: kthreads allocate concurrently. */
	spinlock_t track_lock;
	struct page **pages;
	unsigned int nr_pages;
};

static bool gp_in_block(unsigned long pfn, unsigned long base, unsigned int nr)
{
	return pfn >= base && pfn < base + nr;
}

static int gp_wrap_apply(struct page *page, unsigned int nr, void *data)
{
	struct gp_ctx *ctx = data;

	if (atomic_inc_return(&ctx->applies) == 1) {
		ctx->first_apply_pfn = page_to_pfn(page);
		ctx->size_before_first_apply = grouped_pages_direct_map_size(page);
	}
	ctx->last_apply_pfn = page_to_pfn(page);
	ctx->last_apply_nr = nr;
	ctx->size_before_apply = grouped_pages_direct_map_size(page);
	if (ctx->apply_err)
		return ctx->apply_err;
	atomic_long_add(nr, &ctx->protected_pages);
	return ctx->inner->apply(page, nr, NULL);
}

static int gp_wrap_reset(struct page *page, unsigned int nr, void *data)
{
	struct gp_ctx *ctx = data;

	atomic_inc(&ctx->resets);
	ctx->last_reset_pfn = page_to_pfn(page);
	ctx->last_reset_nr = nr;
	if (ctx->reset_err &&
	    (!ctx->reset_err_pfn ||
	     gp_in_block(page_to_pfn(page), ctx->reset_err_pfn, ctx->block_pages)))
		return ctx->reset_err;
	if (ctx->slow_reset) {
		int running = atomic_inc_return(&ctx->resets_running);
		int most = atomic_read(&ctx->most_resets_running);

		while (running > most &&
		       !atomic_try_cmpxchg(&ctx->most_resets_running, &most, running))
			;
		usleep_range(100, 200);
		atomic_dec(&ctx->resets_running);
	}
	if (ctx->nested_alloc && !ctx->nested_page) {
		ctx->nested_in_memalloc = current->flags & PF_MEMALLOC;
		ctx->nested_page = grouped_pages_alloc(ctx->cache, GP_NODE, GFP_KERNEL);
	}
	atomic_long_sub(nr, &ctx->protected_pages);
	return ctx->inner->reset(page, nr, NULL);
}

static void gp_ctx_teardown(void *data)
{
	struct gp_ctx *ctx = data;
	unsigned int i;

	if (!ctx->cache)
		return;
	for (i = 0; i < ctx->nr_pages; i++)
		if (ctx->pages[i])
			grouped_pages_free(ctx->cache, ctx->pages[i]);
	if (ctx->nested_page)
		grouped_pages_free(ctx->cache, ctx->nested_page);
	/* With every page back, destroying must succeed; a refusal means a leak. */
	KUNIT_EXPECT_EQ(ctx->test, 0, grouped_pages_cache_destroy(ctx->cache));
	ctx->cache = NULL;
}

/* Caches are named for their case: the provoked warnings in the kernel log say which. */
static struct gp_ctx *gp_make_named_cache(struct kunit *test, const char *name,
					  const struct grouped_pages_prot *inner,
					  unsigned int reserve)
{
	struct gp_ctx *ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, ctx);
	ctx->pages = kunit_kcalloc(test, GP_MAX_TRACKED, sizeof(*ctx->pages), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, ctx->pages);
	ctx->test = test;
	ctx->inner = inner;
	ctx->prot = (struct grouped_pages_prot){
		.name = inner->name,
		.apply = gp_wrap_apply,
		.reset = gp_wrap_reset,
		.direct_map_writable = inner->direct_map_writable,
	};
	ctx->block_pages = 1U << grouped_pages_block_order();
	spin_lock_init(&ctx->track_lock);
	ctx->cache = grouped_pages_cache_create(name, &ctx->prot, ctx, reserve);
	KUNIT_ASSERT_NOT_NULL(test, ctx->cache);
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, gp_ctx_teardown, ctx));
	return ctx;
}

static struct gp_ctx *gp_make_cache(struct kunit *test, const struct grouped_pages_prot *inner,
				    unsigned int reserve)
{
	return gp_make_named_cache(test, test->name, inner, reserve);
}

/* Remember @page for teardown to give back; NULL stays NULL. */
static struct page *gp_track(struct gp_ctx *ctx, struct page *page)
{
	bool page_tracked = false;
	unsigned long flags;

	if (!page)
		return NULL;
	spin_lock_irqsave(&ctx->track_lock, flags);
	if (ctx->nr_pages < GP_MAX_TRACKED) {
		ctx->pages[ctx->nr_pages++] = page;
		page_tracked = true;
	}
	spin_unlock_irqrestore(&ctx->track_lock, flags);
	/* Kthreads call this too: fail without leaving the lock or the page behind. */
	if (!page_tracked) {
		grouped_pages_free(ctx->cache, page);
		KUNIT_FAIL(ctx->test, "more than %u pages held", GP_MAX_TRACKED);
		return NULL;
	}
	return page;
}

static struct page *gp_get(struct gp_ctx *ctx, int nid, gfp_t gfp)
{
	return gp_track(ctx, grouped_pages_alloc(ctx->cache, nid, gfp));
}

static struct page *gp_get_ok(struct gp_ctx *ctx)
{
	struct page *page = gp_get(ctx, GP_NODE, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(ctx->test, page);
	return page;
}

static void gp_put(struct gp_ctx *ctx, struct page *page)
{
	unsigned long flags;
	unsigned int i;

	spin_lock_irqsave(&ctx->track_lock, flags);
	for (i = 0; i < ctx->nr_pages; i++) {
		if (ctx->pages[i] == page) {
			ctx->pages[i] = ctx->pages[--ctx->nr_pages];
			break;
		}
	}
	spin_unlock_irqrestore(&ctx->track_lock, flags);
	grouped_pages_free(ctx->cache, page);
}

static struct grouped_pages_stats gp_stats(struct gp_ctx *ctx)
{
	struct grouped_pages_stats s;

	grouped_pages_get_stats(ctx->cache, &s);
	return s;
}

/* Reclaim's first pass, and its last, most desperate one (drop_caches asks with it too). */
#define GP_GENTLE	DEF_PRIORITY
#define GP_DESPERATE	0

static unsigned long gp_count_at(struct gp_ctx *ctx, int nid, int priority)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(ctx->cache);
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL, .nid = nid, .priority = priority };

	return shrinker->count_objects(shrinker, &sc);
}

static unsigned long gp_count(struct gp_ctx *ctx, int nid)
{
	return gp_count_at(ctx, nid, GP_DESPERATE);
}

static unsigned long gp_scan_at(struct gp_ctx *ctx, gfp_t gfp, unsigned long nr, int priority)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(ctx->cache);
	struct shrink_control sc = { .gfp_mask = gfp, .nid = first_memory_node,
				     .nr_to_scan = nr, .priority = priority };

	return shrinker->scan_objects(shrinker, &sc);
}

static unsigned long gp_scan(struct gp_ctx *ctx, gfp_t gfp, unsigned long nr)
{
	return gp_scan_at(ctx, gfp, nr, GP_DESPERATE);
}

static unsigned long gp_scan_node_at(struct gp_ctx *ctx, int nid, unsigned long nr, int priority)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(ctx->cache);
	struct shrink_control sc = { .gfp_mask = GFP_KERNEL, .nid = nid, .nr_to_scan = nr,
				     .priority = priority };

	return shrinker->scan_objects(shrinker, &sc);
}

static unsigned long gp_scan_all_nodes(struct gp_ctx *ctx, unsigned long nr, int priority)
{
	unsigned long freed, total = 0;
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		freed = gp_scan_node_at(ctx, nid, nr, priority);
		if (freed != SHRINK_STOP)
			total += freed;
	}
	return total;
}

/* Reclaim's priorities, each as likely: gentle passes back off, desperate ones break blocks. */
static int gp_rnd_priority(struct rnd_state *rnd)
{
	return prandom_u32_state(rnd) % (DEF_PRIORITY + 1);
}

/* Fill the cache's first block completely; return its first pfn. */
static unsigned long gp_fill_block(struct gp_ctx *ctx)
{
	unsigned int i;

	for (i = 0; i < ctx->block_pages; i++)
		gp_get_ok(ctx);
	return ctx->last_apply_pfn;
}

/*
 * A page handed back to the page allocator has no references left: the
 * shrinker frees pages a grace period after they leave the cache.
 */
static void gp_expect_released(struct kunit *test, unsigned long pfn)
{
	rcu_barrier();
	KUNIT_EXPECT_EQ(test, 0, page_ref_count(pfn_to_page(pfn)));
}

static const struct grouped_pages_prot *gp_prots[] = {
	&grouped_pages_prot_none,
#if GP_X86
	&grouped_pages_prot_not_present,
	&grouped_pages_prot_read_only,
#endif
};

static void gp_prot_desc(const struct grouped_pages_prot **prot, char *desc)
{
	strscpy(desc, (*prot)->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(gp_prot, gp_prots, gp_prot_desc);

static const struct grouped_pages_prot *gp_param_prot(struct kunit *test)
{
	return *(const struct grouped_pages_prot **)test->param_value;
}

static const struct grouped_pages_prot *gp_plain(void)
{
	return gp_prots[0];
}

static int gp_suite_init(struct kunit *test)
{
	if (!IS_ENABLED(CONFIG_GROUPED_PAGES)) {
		KUNIT_ASSERT_TRUE_MSG(test, IS_ENABLED(CONFIG_HIGHMEM),
				      "CONFIG_GROUPED_PAGES is off on a kernel without HIGHMEM");
		kunit_skip(test, "HIGHMEM kernel: grouped pages need every page in the direct map");
	}
	return 0;
}

/* ---- API basics ---- */

static void gp_test_create_rejects_bad_args(struct kunit *test)
{
	const struct grouped_pages_prot *plain = gp_plain();
	const struct grouped_pages_prot no_apply = { .name = "bad", .reset = plain->reset };
	const struct grouped_pages_prot no_reset = { .name = "bad", .apply = plain->apply };
	struct grouped_pages_cache *cache;

	KUNIT_EXPECT_NULL(test, grouped_pages_cache_create(NULL, plain, NULL, 0));
	KUNIT_EXPECT_NULL(test, grouped_pages_cache_create("gp-bad", NULL, NULL, 0));
	KUNIT_EXPECT_NULL(test, grouped_pages_cache_create("gp-bad", &no_apply, NULL, 0));
	KUNIT_EXPECT_NULL(test, grouped_pages_cache_create("gp-bad", &no_reset, NULL, 0));
	KUNIT_EXPECT_NULL(test, grouped_pages_cache_create("gp-bad", plain, NULL,
							   GROUPED_PAGES_MAX_RESERVE + 1));
	/* The bounds themselves are valid. */
	cache = grouped_pages_cache_create("gp-max-reserve", plain, NULL,
					   GROUPED_PAGES_MAX_RESERVE);
	KUNIT_ASSERT_NOT_NULL(test, cache);
	KUNIT_EXPECT_EQ(test, 0, grouped_pages_cache_destroy(cache));
}

static void gp_test_new_cache_is_empty(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct grouped_pages_stats s = gp_stats(ctx);
	struct page *page;
	int nid;

	KUNIT_EXPECT_EQ(test, 0, s.blocks);
	KUNIT_EXPECT_EQ(test, 0, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, 0, s.refills);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->applies));
	for_each_node_state(nid, N_MEMORY)
		KUNIT_EXPECT_EQ_MSG(test, SHRINK_EMPTY, gp_count(ctx, nid), "node %d", nid);
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->resets));
	/* It owns nothing, not even a page its first refill is about to take. */
	page = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_FALSE(test, grouped_pages_owns(ctx->cache, page));
	__free_page(page);
	/* Its first allocation protects exactly one block. */
	page = gp_get_ok(ctx);
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(ctx->cache, page));
	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->applies));
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
}

static void gp_test_alloc_free_one(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct page *page = gp_get_ok(ctx);
	struct grouped_pages_stats s = gp_stats(ctx);

	KUNIT_EXPECT_EQ(test, 1, s.blocks);
	KUNIT_EXPECT_EQ(test, 1, s.refills);
	KUNIT_EXPECT_EQ(test, 1, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.fallback_pages);
	KUNIT_EXPECT_TRUE(test, gp_in_block(page_to_pfn(page), ctx->last_apply_pfn,
					    ctx->block_pages));

	gp_put(ctx, page);
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.bad_frees);
}

static void gp_test_block_pages_distinct_and_aligned(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	unsigned long *seen, base;
	unsigned int i;

	seen = kunit_kcalloc(test, BITS_TO_LONGS(ctx->block_pages), sizeof(long), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, seen);
	base = gp_fill_block(ctx);
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(base, ctx->block_pages));
	for (i = 0; i < ctx->nr_pages; i++) {
		unsigned long pfn = page_to_pfn(ctx->pages[i]);

		KUNIT_ASSERT_TRUE(test, gp_in_block(pfn, base, ctx->block_pages));
		KUNIT_EXPECT_FALSE(test, test_and_set_bit(pfn - base, seen));
	}
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_cached);

	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 2, gp_stats(ctx).refills);
	KUNIT_EXPECT_FALSE(test, gp_in_block(ctx->last_apply_pfn, base, ctx->block_pages));
}

static void gp_test_apply_once_per_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	unsigned long base = gp_fill_block(ctx);

	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->applies));
	KUNIT_EXPECT_EQ(test, ctx->block_pages, ctx->last_apply_nr);
	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 2, atomic_read(&ctx->applies));
	KUNIT_EXPECT_NE(test, base, ctx->last_apply_pfn);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->resets));
	KUNIT_EXPECT_EQ(test, 2 * ctx->block_pages, atomic_long_read(&ctx->protected_pages));
}

static void gp_test_freed_page_is_reused(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page;

	gp_get_ok(ctx);
	page = gp_get_ok(ctx);
	gp_get_ok(ctx);
	gp_put(ctx, page);
	KUNIT_EXPECT_PTR_EQ(test, page, gp_get_ok(ctx));
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
}

static void gp_test_prefers_partial_blocks(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned long first, second;
	struct page *keep_partial = NULL;
	unsigned int i;

	first = gp_fill_block(ctx);
	gp_fill_block(ctx);
	second = ctx->last_apply_pfn;
	KUNIT_ASSERT_NE(test, first, second);

	/* Free all of the first block and one page of the second. */
	for (i = ctx->nr_pages; i-- > 0;) {
		unsigned long pfn = page_to_pfn(ctx->pages[i]);

		if (gp_in_block(pfn, first, ctx->block_pages))
			gp_put(ctx, ctx->pages[i]);
		else if (!keep_partial)
			keep_partial = ctx->pages[i];
	}
	gp_put(ctx, keep_partial);
	KUNIT_EXPECT_PTR_EQ(test, keep_partial, gp_get_ok(ctx));
}

static void gp_test_zero_on_writable(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page = gp_get_ok(ctx);

	memset(page_address(page), 0xa5, PAGE_SIZE);
	gp_put(ctx, page);
	page = gp_get(ctx, GP_NODE, GFP_KERNEL | __GFP_ZERO);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_EXPECT_NULL(test, memchr_inv(page_address(page), 0, PAGE_SIZE));
}

/* ---- protection failures ---- */

static void gp_test_apply_failure_hands_out_nothing(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct grouped_pages_stats s;

	ctx->apply_err = -EIO;
	KUNIT_EXPECT_NULL(test, gp_get(ctx, GP_NODE, GFP_KERNEL));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->applies));
	KUNIT_EXPECT_EQ(test, 1, s.apply_failures);
	KUNIT_EXPECT_EQ(test, 1, s.alloc_failures);
	KUNIT_EXPECT_EQ(test, 0, s.blocks);
	KUNIT_EXPECT_EQ(test, 0, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	gp_expect_released(test, ctx->last_apply_pfn);

	ctx->apply_err = 0;
	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).blocks);
}

static void gp_test_reset_failure_keeps_pages(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct grouped_pages_stats s;

	gp_put(ctx, gp_get_ok(ctx));
	ctx->reset_err = -EIO;
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, GFP_KERNEL, 128));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 1, s.reset_failures);
	KUNIT_EXPECT_EQ(test, 1, s.blocks);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 1, page_ref_count(pfn_to_page(ctx->last_apply_pfn)));

	ctx->reset_err = 0;
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, 128));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
}

/* ---- fallback ---- */

static const unsigned int gp_fallback_orders[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };

static void gp_order_desc(const unsigned int *order, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "order-%u", *order);
}

KUNIT_ARRAY_PARAM(gp_order, gp_fallback_orders, gp_order_desc);

static void gp_test_fallback_order(struct kunit *test)
{
	unsigned int order = *(const unsigned int *)test->param_value;
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned int nr = 1U << order, i;
	struct grouped_pages_stats s;

	if (order >= grouped_pages_block_order())
		kunit_skip(test, "order %u is not below the block order %u", order,
			   grouped_pages_block_order());
	/* Every order above the one under test fails. */
	grouped_pages_set_failing_orders(ctx->cache,
					 GENMASK(grouped_pages_block_order(), order + 1));
	for (i = 0; i < nr; i++)
		gp_get_ok(ctx);
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 1, s.refills);
	KUNIT_EXPECT_EQ(test, nr, s.fallback_pages);
	KUNIT_EXPECT_EQ(test, nr, ctx->last_apply_nr);
	KUNIT_EXPECT_TRUE(test, IS_ALIGNED(ctx->last_apply_pfn, nr));

	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 2, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, 2 * nr, gp_stats(ctx).fallback_pages);

	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_EXPECT_EQ(test, 2 * nr, gp_scan(ctx, GFP_KERNEL, 2 * nr));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
	KUNIT_EXPECT_EQ(test, 0, atomic_long_read(&ctx->protected_pages));
}

/* ---- gfp ---- */

/* Only the last attempt, one page, reclaims; larger orders take what is free. */
static void gp_test_gfp_only_last_order_reclaims(struct kunit *test)
{
	unsigned int top = grouped_pages_block_order(), order;
	gfp_t gfp;

	for (order = top; order > 0; order--) {
		gfp = grouped_pages_block_gfp(GFP_KERNEL | __GFP_NOFAIL | __GFP_RETRY_MAYFAIL,
					      order);
		KUNIT_EXPECT_FALSE_MSG(test, gfp & __GFP_DIRECT_RECLAIM, "order %u", order);
		KUNIT_EXPECT_FALSE_MSG(test, gfp & (__GFP_NOFAIL | __GFP_RETRY_MAYFAIL),
				       "order %u", order);
		KUNIT_EXPECT_EQ_MSG(test, __GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC |
				    __GFP_THISNODE,
				    gfp & (__GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC |
					   __GFP_THISNODE), "order %u", order);
		/* Only the block order wakes kswapd, to compact for a later refill. */
		KUNIT_EXPECT_EQ_MSG(test, order == top, !!(gfp & __GFP_KSWAPD_RECLAIM),
				    "order %u", order);
	}
	/* Any node may serve the last attempt of a caller that must not fail. */
	gfp = grouped_pages_block_gfp(GFP_KERNEL | __GFP_NOFAIL, 0);
	KUNIT_EXPECT_EQ(test, GFP_KERNEL | __GFP_NOFAIL, gfp);
	gfp = grouped_pages_block_gfp(GFP_NOFS | __GFP_NORETRY | __GFP_HIGH | __GFP_NOWARN, 0);
	KUNIT_EXPECT_EQ(test, GFP_NOFS | __GFP_NORETRY | __GFP_HIGH | __GFP_NOWARN |
			__GFP_THISNODE, gfp);
	/* Placement and accounting are the cache's business, not the caller's. */
	gfp = grouped_pages_block_gfp(GFP_KERNEL_ACCOUNT | __GFP_ZERO | __GFP_COMP, 0);
	KUNIT_EXPECT_EQ(test, GFP_KERNEL | __GFP_THISNODE, gfp);
}

struct gp_nofail_alloc {
	struct gp_ctx *ctx;
	struct page *page;
	struct completion done;
};

static int gp_nofail_alloc_fn(void *data)
{
	struct gp_nofail_alloc *a = data;

	a->page = grouped_pages_alloc(a->ctx->cache, GP_NODE, GFP_KERNEL | __GFP_NOFAIL);
	complete(&a->done);
	return 0;
}

/* A __GFP_NOFAIL caller waits while no block can be had, and gets its page once one can. */
static void gp_test_nofail_waits_for_memory(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct gp_nofail_alloc *a = kunit_kzalloc(test, sizeof(*a), GFP_KERNEL);
	struct task_struct *task;
	bool returned_early;

	KUNIT_ASSERT_NOT_NULL(test, a);
	a->ctx = ctx;
	init_completion(&a->done);
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 0));
	task = kthread_run(gp_nofail_alloc_fn, a, "gp_nofail");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	returned_early = wait_for_completion_timeout(&a->done, HZ / 5);
	KUNIT_EXPECT_FALSE_MSG(test, returned_early, "returned %p with no memory to be had",
			       a->page);
	grouped_pages_set_failing_orders(ctx->cache, 0);
	/* Until it returns, the task uses @a: never leave before it does. */
	if (!returned_early)
		wait_for_completion(&a->done);
	KUNIT_EXPECT_NOT_NULL(test, gp_track(ctx, a->page));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).alloc_failures);
}

struct gp_nofail_any {
	struct gp_ctx *ctx;
	struct page *pages[2];
	struct completion done;
};

static int gp_nofail_any_fn(void *data)
{
	struct gp_nofail_any *a = data;
	unsigned int i;

	/* NUMA_NO_NODE goes round the nodes: one of the two picks the exhausted one. */
	for (i = 0; i < ARRAY_SIZE(a->pages); i++)
		a->pages[i] = grouped_pages_alloc(a->ctx->cache, NUMA_NO_NODE,
						  GFP_KERNEL | __GFP_NOFAIL);
	complete(&a->done);
	return 0;
}

/*
 * A __GFP_NOFAIL caller that named no node gets its page from any node that
 * has memory: it must not wait forever on an exhausted node, where the page
 * allocator, asked for that node alone, neither fails nor calls the OOM killer.
 */
static void gp_test_nofail_any_node_when_one_is_exhausted(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct gp_nofail_any *a = kunit_kzalloc(test, sizeof(*a), GFP_KERNEL);
	int exhausted = first_memory_node, i;
	struct task_struct *task;
	unsigned long hogged, deadline;
	bool returned;
	LIST_HEAD(hog);

	KUNIT_ASSERT_NOT_NULL(test, a);
	if (num_node_state(N_MEMORY) < 2)
		kunit_skip(test, "needs two nodes with memory (numa=fake=2)");
	a->ctx = ctx;
	init_completion(&a->done);
	hogged = grouped_pages_test_exhaust_node(exhausted, &hog);
	kunit_info(test, "node %d exhausted: %lu pages held", exhausted, hogged);
	task = kthread_run(gp_nofail_any_fn, a, "gp_nofail_any");
	if (IS_ERR(task)) {
		grouped_pages_test_release_hog(&hog);
		KUNIT_FAIL(test, "cannot start the allocating thread");
		return;
	}
	deadline = jiffies + 20 * HZ;
	do {
		/*
		 * Pages the node gets back meanwhile (reclaim, other frees) go to the
		 * hog too: a caller waiting on this node alone must find nothing there.
		 */
		hogged += grouped_pages_test_exhaust_node(exhausted, &hog);
		returned = wait_for_completion_timeout(&a->done, HZ / 50);
	} while (!returned && time_before(jiffies, deadline));
	KUNIT_EXPECT_TRUE_MSG(test, returned,
			      "a NUMA_NO_NODE __GFP_NOFAIL allocation still waits after 20 s with node %d exhausted and another node free",
			      exhausted);
	grouped_pages_test_release_hog(&hog);
	/* Until it returns, the task uses @a: never leave before it does. */
	if (!returned)
		wait_for_completion(&a->done);
	for (i = 0; i < ARRAY_SIZE(a->pages); i++)
		KUNIT_EXPECT_NOT_NULL(test, gp_track(ctx, a->pages[i]));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).alloc_failures);
}

/*
 * With init_on_alloc or init_on_free, a page recycled by the cache comes back
 * cleared, as one from the page allocator would.
 */
static void gp_test_recycled_page_cleared_with_init_on(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page, *again;

	if (!want_init_on_free() && !want_init_on_alloc(GFP_KERNEL))
		kunit_skip(test, "init_on_alloc and init_on_free are off");
	page = gp_get_ok(ctx);
	memset(page_address(page), 0xa5, PAGE_SIZE);
	gp_put(ctx, page);
	again = gp_get_ok(ctx);
	KUNIT_ASSERT_PTR_EQ(test, page, again);
	KUNIT_EXPECT_TRUE(test, mem_is_zero(page_address(again), PAGE_SIZE));
}

/* ---- KASAN ---- */

#ifdef CONFIG_KASAN_GENERIC
/* How many of the page's shadow bytes mark it inaccessible; read without a report. */
static unsigned int gp_poisoned_shadow(struct page *page)
{
	const u8 *shadow = kasan_mem_to_shadow(page_address(page));
	unsigned int i, poisoned = 0;

	for (i = 0; i < PAGE_SIZE >> KASAN_SHADOW_SCALE_SHIFT; i++)
		poisoned += shadow[i] != 0;
	return poisoned;
}
#endif

/*
 * A page in the cache is poisoned for KASAN, as a free page of the page
 * allocator is, so a stale user's write to it is reported; it is accessible
 * again once handed out.
 */
static void gp_test_kasan_poisons_cached_pages(struct kunit *test)
{
#ifdef CONFIG_KASAN_GENERIC
	const unsigned int shadow_bytes = PAGE_SIZE >> KASAN_SHADOW_SCALE_SHIFT;
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page, *again;

	if (!kasan_enabled())
		kunit_skip(test, "KASAN is off");
	page = gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 0, gp_poisoned_shadow(page));
	/* A page the cache never handed out. */
	KUNIT_EXPECT_EQ(test, shadow_bytes, gp_poisoned_shadow(page + 1));
	gp_put(ctx, page);
	KUNIT_EXPECT_EQ(test, shadow_bytes, gp_poisoned_shadow(page));
	again = gp_get_ok(ctx);
	KUNIT_ASSERT_PTR_EQ(test, page, again);
	KUNIT_EXPECT_EQ(test, 0, gp_poisoned_shadow(again));
#else
	kunit_skip(test, "needs CONFIG_KASAN_GENERIC");
#endif
}

static void gp_test_fallback_all_orders_fail(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);

	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 0));
	KUNIT_EXPECT_NULL(test, gp_get(ctx, GP_NODE, GFP_KERNEL));
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->applies));
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).alloc_failures);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
}

/* ---- shrinker ---- */

static void gp_test_shrink_count(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page;

	KUNIT_EXPECT_EQ(test, SHRINK_EMPTY, gp_count(ctx, first_memory_node));
	page = gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_count(ctx, first_memory_node));
	gp_put(ctx, page);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_count(ctx, first_memory_node));
}

/*
 * Masks reclaim really passes to shrinkers: those of allocations that enter
 * direct reclaim (current_gfp_context() applied), and kswapd's GFP_KERNEL.
 * Resetting a protection may allocate page tables with GFP_KERNEL, so only
 * masks that allow I/O, the filesystem and direct reclaim may scan.
 */
static const gfp_t gp_bad_gfps[] = {
	GFP_NOFS, GFP_NOIO,
	GFP_HIGHUSER_MOVABLE & ~__GFP_FS,	/* page cache of a NOFS mapping */
	GFP_NOFS | __GFP_NOWARN | __GFP_NORETRY,
	GFP_NOIO | __GFP_HIGHMEM | __GFP_MOVABLE,
};

static void gp_gfp_desc(const gfp_t *gfp, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%pGg", gfp);
}

KUNIT_ARRAY_PARAM(gp_bad_gfp, gp_bad_gfps, gp_gfp_desc);

static void gp_test_shrink_stops_on_incompatible_gfp(struct kunit *test)
{
	gfp_t gfp = *(const gfp_t *)test->param_value;
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);

	gp_put(ctx, gp_get_ok(ctx));
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, gfp, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).shrinker_scans);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->resets));
}

static const gfp_t gp_good_gfps[] = {
	GFP_KERNEL, GFP_KERNEL_ACCOUNT, GFP_HIGHUSER_MOVABLE,
	GFP_TRANSHUGE,				/* THP direct compaction: no kswapd bit */
	GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_NOWARN,
};

KUNIT_ARRAY_PARAM(gp_good_gfp, gp_good_gfps, gp_gfp_desc);

static void gp_test_shrink_works_for_reclaiming_gfp(struct kunit *test)
{
	gfp_t gfp = *(const gfp_t *)test->param_value;
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);

	gp_put(ctx, gp_get_ok(ctx));
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, gfp, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_cached);
}

static void gp_test_shrink_frees_whole_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct grouped_pages_stats s;
	unsigned long base;

	gp_put(ctx, gp_get_ok(ctx));
	base = ctx->last_apply_pfn;
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, 128));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 0, s.blocks);
	KUNIT_EXPECT_EQ(test, 0, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 1, s.whole_blocks_freed);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, s.shrinker_freed);
	/* One reset call, on exactly the range that was protected. */
	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->resets));
	KUNIT_EXPECT_EQ(test, base, ctx->last_reset_pfn);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, ctx->last_reset_nr);
	KUNIT_EXPECT_EQ(test, 0, atomic_long_read(&ctx->protected_pages));
	gp_expect_released(test, base);
	KUNIT_EXPECT_EQ(test, SHRINK_EMPTY, gp_count(ctx, first_memory_node));
}

static void gp_test_shrink_whole_blocks_first(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *keep = NULL;
	unsigned long first, second;
	unsigned int i;

	first = gp_fill_block(ctx);
	gp_fill_block(ctx);
	second = ctx->last_apply_pfn;
	/* First block: all free. Second block: all free but one page. */
	for (i = ctx->nr_pages; i-- > 0;) {
		struct page *page = ctx->pages[i];

		if (!keep && gp_in_block(page_to_pfn(page), second, ctx->block_pages)) {
			keep = page;
			continue;
		}
		gp_put(ctx, page);
	}
	KUNIT_ASSERT_EQ(test, 1, ctx->nr_pages);

	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, 128));
	KUNIT_EXPECT_EQ(test, first, ctx->last_reset_pfn);
	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->resets));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).partial_breaks);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).blocks);
}

static void gp_test_shrink_breaks_partial_when_asked(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *in_use = gp_get_ok(ctx);
	unsigned long base = ctx->last_apply_pfn;
	struct grouped_pages_stats s;

	KUNIT_EXPECT_EQ(test, 128, gp_scan(ctx, GFP_KERNEL, 128));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 1, s.partial_breaks);
	KUNIT_EXPECT_EQ(test, 1, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1 - 128, s.pages_cached);
	KUNIT_EXPECT_FALSE(test, gp_in_block(page_to_pfn(in_use), ctx->last_reset_pfn,
					     ctx->last_reset_nr));
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 128, atomic_long_read(&ctx->protected_pages));

	/* Once the last page comes back, the rest of the block goes too. */
	gp_put(ctx, in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 128, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
	KUNIT_EXPECT_EQ(test, 0, atomic_long_read(&ctx->protected_pages));
	gp_expect_released(test, base);
}

/*
 * Pages a partial break gave back may return at once in a fallback block of
 * the same cache: each must then belong to its new block, while the old
 * block's page still in use frees into the old block.
 */
static void gp_test_broken_pages_return_in_new_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *in_use = gp_get_ok(ctx), *page, *again[64];
	unsigned long base = ctx->last_apply_pfn, freed;
	unsigned int i, got, returned = 0;

	/* The per-CPU free lists that hand the freed pages back are this CPU's. */
	migrate_disable();
	freed = gp_scan(ctx, GFP_KERNEL, ctx->block_pages);
	/* They reach the page allocator a grace period later, on this CPU. */
	rcu_barrier();
	/* Order-0 refills: the page allocator hands out the pages freed last first. */
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 1));
	for (i = 0; i < 64; i++) {
		again[i] = grouped_pages_alloc(ctx->cache, GP_NODE, GFP_KERNEL);
		if (!again[i])
			break;
	}
	migrate_enable();
	got = i;
	for (i = 0; i < got; i++) {
		/* Tracked, so that teardown gives them back whatever fails below. */
		page = gp_track(ctx, again[i]);
		if (!page)
			continue;
		if (gp_in_block(page_to_pfn(page), base, ctx->block_pages))
			returned++;
		KUNIT_EXPECT_TRUE(test, grouped_pages_owns(ctx->cache, page));
	}
	KUNIT_ASSERT_EQ(test, ctx->block_pages - 1, freed);
	KUNIT_ASSERT_EQ(test, 64, got);
	KUNIT_EXPECT_GT_MSG(test, returned, 0, "no freed page came back: case not exercised");
	gp_put(ctx, in_use);
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).bad_frees);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, 65, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 65, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
	KUNIT_EXPECT_EQ(test, 0, atomic_long_read(&ctx->protected_pages));
	/* Nothing of it is ours any more. */
	KUNIT_EXPECT_FALSE(test, grouped_pages_owns(ctx->cache, in_use));
}

/*
 * A page freed between the shrinker's two phases leaves the break phase a
 * whole free block: it must not break it (that would split its mapping), and
 * leave it for the whole-block phase.
 */
static void gp_test_partial_break_skips_whole_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct grouped_pages_stats s;

	gp_put(ctx, gp_get_ok(ctx));
	KUNIT_ASSERT_EQ(test, 1, gp_stats(ctx).blocks);
	KUNIT_EXPECT_EQ(test, 0,
			grouped_pages_break_partial(ctx->cache, GP_NODE, ctx->block_pages));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 1, s.blocks);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.partial_breaks);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->resets));
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
	KUNIT_EXPECT_EQ(test, SHRINK_EMPTY, gp_count(ctx, GP_NODE));
}

/*
 * Early reclaim passes take whole free blocks only: the free pages of a block
 * with a page in use go back only once reclaim is desperate.
 */
static void gp_test_shrink_breaks_partial_only_when_desperate(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	int priority;

	gp_get_ok(ctx);
	for (priority = GP_GENTLE; priority >= DEF_PRIORITY - 2; priority--) {
		KUNIT_EXPECT_EQ_MSG(test, 0, gp_count_at(ctx, GP_NODE, priority),
				    "priority %d", priority);
		KUNIT_EXPECT_EQ_MSG(test, SHRINK_STOP,
				    gp_scan_at(ctx, GFP_KERNEL, ctx->block_pages, priority),
				    "priority %d", priority);
	}
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).partial_breaks);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&ctx->resets));
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_stats(ctx).pages_cached);

	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_count_at(ctx, GP_NODE, DEF_PRIORITY - 3));
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1,
			gp_scan_at(ctx, GFP_KERNEL, ctx->block_pages, DEF_PRIORITY - 3));
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).partial_breaks);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_cached);
}

/*
 * Keeping the reserve never breaks a whole free block, even when reclaim is
 * desperate: the block stays whole (and mapped large) instead.
 */
/* How much reclaim asks a shrinker for at once: mm/shrinker.c's SHRINK_BATCH. */
#define GP_SHRINK_BATCH	128

/*
 * Reclaim asks at falling priorities, DEF_PRIORITY first, in batches of
 * GP_SHRINK_BATCH, until it has enough; here it never has. The whole free
 * blocks go back in the gentle passes, without waiting on anyone; the block
 * with a page in use is broken only once reclaim is desperate.
 */
static void gp_test_shrink_priorities_like_reclaim(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned long count, scanned;
	struct grouped_pages_stats s;
	int priority;
	unsigned int i;

	for (i = 0; i < 3; i++)
		gp_fill_block(ctx);
	/* Keep one page of the last block. */
	while (ctx->nr_pages > 1)
		gp_put(ctx, ctx->pages[0]);
	for (priority = DEF_PRIORITY; priority >= 0; priority--) {
		count = gp_count_at(ctx, GP_NODE, priority);
		if (count == SHRINK_EMPTY)
			count = 0;
		for (scanned = 0; scanned < count; scanned += GP_SHRINK_BATCH)
			if (gp_scan_at(ctx, GFP_KERNEL, GP_SHRINK_BATCH, priority) == SHRINK_STOP)
				break;
		s = gp_stats(ctx);
		if (priority == DEF_PRIORITY) {
			KUNIT_EXPECT_EQ(test, 2, s.whole_blocks_freed);
			KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, s.pages_cached);
		}
		if (priority >= DEF_PRIORITY - 2)
			KUNIT_EXPECT_EQ_MSG(test, 0, s.partial_breaks, "priority %d", priority);
	}
	s = gp_stats(ctx);
	KUNIT_EXPECT_GE(test, s.partial_breaks, 1);
	KUNIT_EXPECT_EQ(test, 0, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 1, s.pages_in_use);
}

static void gp_test_shrink_reserve_keeps_whole_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 16);
	struct grouped_pages_stats s;
	unsigned long first, second;
	unsigned int i;

	/* Allocations leave the reserve free: this many pages take exactly two blocks. */
	gp_get_ok(ctx);
	first = ctx->last_apply_pfn;
	for (i = 1; i < 2 * ctx->block_pages - 16; i++)
		gp_get_ok(ctx);
	second = ctx->last_apply_pfn;
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_ASSERT_EQ(test, 2, gp_stats(ctx).blocks);

	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_count(ctx, GP_NODE));
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 0, s.partial_breaks);
	KUNIT_EXPECT_EQ(test, 1, s.blocks);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, s.pages_cached);
	/* One reset, of one whole block. */
	KUNIT_EXPECT_EQ(test, 1, atomic_read(&ctx->resets));
	KUNIT_EXPECT_TRUE(test, ctx->last_reset_pfn == first || ctx->last_reset_pfn == second);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, ctx->last_reset_nr);
	KUNIT_EXPECT_EQ(test, 0, gp_count(ctx, GP_NODE));
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
}

static void gp_test_shrink_keeps_reserve(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 16);

	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1 - 16, gp_count(ctx, first_memory_node));
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1 - 16,
			gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, 16, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 0, gp_count(ctx, first_memory_node));
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
}

static void gp_test_shrink_nested_alloc_uses_reserve(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 4);
	struct grouped_pages_stats s;

	gp_get_ok(ctx);
	/* No refill can help: only the reserve can serve the nested allocation. */
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 0));
	ctx->nested_alloc = true;
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1 - 4, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	KUNIT_EXPECT_TRUE(test, ctx->nested_in_memalloc);
	KUNIT_ASSERT_NOT_NULL(test, ctx->nested_page);
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 2, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, 3, s.pages_cached);
	KUNIT_EXPECT_GE(test, s.reserve_allocs, 1);
	KUNIT_EXPECT_EQ(test, 1, s.refills);
	gp_put(ctx, ctx->nested_page);
	ctx->nested_page = NULL;
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).bad_frees);
}

static void gp_test_shrink_count_per_node(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned long sum = 0, count;
	int nid;

	for_each_node_state(nid, N_MEMORY)
		gp_get(ctx, nid, GFP_KERNEL);
	for_each_node_state(nid, N_MEMORY) {
		count = gp_count(ctx, nid);
		KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, count);
		sum += count;
	}
	KUNIT_EXPECT_EQ(test, sum, gp_stats(ctx).pages_cached);
}

/* ---- atomic context ---- */

static void gp_test_atomic_alloc_from_cache(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page;
	unsigned long flags;

	gp_put(ctx, gp_get_ok(ctx));
	local_irq_save(flags);
	page = grouped_pages_alloc(ctx->cache, GP_NODE, GFP_ATOMIC);
	if (page)
		grouped_pages_free(ctx->cache, page);
	local_irq_restore(flags);
	KUNIT_EXPECT_NOT_NULL(test, page);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
}

static void gp_test_atomic_empty_fails_then_refills(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page;

	preempt_disable();
	page = grouped_pages_alloc(ctx->cache, GP_NODE, GFP_NOWAIT);
	preempt_enable();
	KUNIT_EXPECT_NULL(test, page);
	grouped_pages_flush_refill(ctx->cache);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_stats(ctx).pages_cached);
	preempt_disable();
	page = grouped_pages_alloc(ctx->cache, GP_NODE, GFP_NOWAIT);
	preempt_enable();
	KUNIT_ASSERT_NOT_NULL(test, page);
	grouped_pages_free(ctx->cache, page);
}

static void gp_test_atomic_may_use_reserve(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 8);
	unsigned int sleeping = 0, atomic = 0;

	gp_get_ok(ctx);
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 0));
	while (gp_get(ctx, GP_NODE, GFP_KERNEL))
		sleeping++;
	while (gp_get(ctx, GP_NODE, GFP_ATOMIC))
		atomic++;
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1 - 8, sleeping);
	KUNIT_EXPECT_EQ(test, 8, atomic);
	KUNIT_EXPECT_EQ(test, 8, gp_stats(ctx).reserve_allocs);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_cached);
}

/* ---- misuse ---- */

static void gp_test_free_foreign_page(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *foreign = alloc_page(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, foreign);
	gp_get_ok(ctx);
	grouped_pages_free(ctx->cache, foreign);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).bad_frees);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 1, page_ref_count(foreign));
	__free_page(foreign);
}

static void gp_test_double_free(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page = gp_get_ok(ctx);

	gp_get_ok(ctx);
	gp_put(ctx, page);
	grouped_pages_free(ctx->cache, page);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).bad_frees);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_stats(ctx).pages_cached);
}

/* A page on a CPU's free list is free: freeing it again is refused there, and in its block. */
static void gp_test_double_free_after_drain(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page = gp_get_ok(ctx);

	gp_get_ok(ctx);
	gp_put(ctx, page);
	grouped_pages_free(ctx->cache, page);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).bad_frees);
	/* A scan moves every CPU's free pages back to their blocks, here freeing none. */
	KUNIT_EXPECT_EQ(test, SHRINK_STOP, gp_scan(ctx, GFP_KERNEL, 0));
	grouped_pages_free(ctx->cache, page);
	KUNIT_EXPECT_EQ(test, 2, gp_stats(ctx).bad_frees);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages - 1, gp_stats(ctx).pages_cached);
	/* The cache's mark on a free page is gone once it is handed out again. */
	KUNIT_EXPECT_EQ(test, 0UL, page_private(gp_get_ok(ctx)));
}

/* The scanner of gp_test_double_free_racing_shrinker: one full scan each time it is armed. */
struct gp_armed_scan {
	struct gp_ctx *ctx;
	atomic_t armed;
	atomic_t scans;
	bool stop;
	struct completion done;
	/* Scans followed by a grace period and the callbacks it let run. */
	atomic_t synced;
};

static int gp_armed_scan_fn(void *data)
{
	struct gp_armed_scan *as = data;

	while (!READ_ONCE(as->stop)) {
		if (!atomic_xchg(&as->armed, 0)) {
			cpu_relax();
			continue;
		}
		gp_scan(as->ctx, GFP_KERNEL, ULONG_MAX);
		atomic_inc(&as->scans);
		/*
		 * What the free's read-side section must hold off: the end of a
		 * grace period, after which the block's pages reach the page
		 * allocator (rcu_barrier() waits for that).
		 */
		synchronize_rcu();
		rcu_barrier();
		atomic_inc(&as->synced);
	}
	complete(&as->done);
	return 0;
}

/* The claim hook: a whole scan happens between the free's check and its claim. */
static void gp_claim_after_scan(void *data)
{
	struct gp_armed_scan *as = data;
	int scans = atomic_read(&as->scans), synced = atomic_read(&as->synced);
	unsigned long timeout = jiffies + HZ;

	atomic_set(&as->armed, 1);
	while (atomic_read(&as->scans) == scans && time_before(jiffies, timeout))
		cpu_relax();
	/*
	 * Then the grace period, if it can end: it cannot while the free's check
	 * and claim are one read-side section, and a claim outside it would find
	 * a page the page allocator owns by now.
	 */
	timeout = jiffies + HZ / 4;
	while (atomic_read(&as->synced) == synced && time_before(jiffies, timeout))
		cpu_relax();
}

/*
 * A double free checks that the page is the cache's, then claims it. A scan
 * on another CPU that gives the page's block back between the two must not
 * let the claim succeed: the page belongs to the page allocator by then, and
 * the free would mark it and queue it with a block about to be freed. A hook
 * runs the scan in between, every round.
 */
static void gp_test_double_free_racing_shrinker(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct gp_armed_scan *as = kunit_kzalloc(test, sizeof(*as), GFP_KERNEL);
	struct task_struct *task;
	unsigned int round, scans;
	struct page *page;
	int other;

	KUNIT_ASSERT_NOT_NULL(test, as);
	/* The hook spins until the scan is done: it must not spin on the scanner's CPU. */
	migrate_disable();
	other = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	if (other >= nr_cpu_ids) {
		migrate_enable();
		kunit_skip(test, "needs a second CPU for the scanner");
	}
	as->ctx = ctx;
	init_completion(&as->done);
	task = kthread_run_on_cpu(gp_armed_scan_fn, as, other, "gp_armed_scan/%u");
	if (IS_ERR(task)) {
		migrate_enable();
		KUNIT_FAIL(test, "cannot start the scanner");
		return;
	}
	for (round = 0; round < 16; round++) {
		page = gp_get_ok(ctx);
		/* Its only page free again: the block is whole and the scan gives it back. */
		gp_put(ctx, page);
		/* The last round's grace period must be over, or the scanner is still in it. */
		while (atomic_read(&as->synced) != atomic_read(&as->scans))
			usleep_range(1000, 2000);
		scans = atomic_read(&as->scans);
		grouped_pages_set_claim_hook(ctx->cache, gp_claim_after_scan, as);
		grouped_pages_free(ctx->cache, page);
		grouped_pages_set_claim_hook(ctx->cache, NULL, NULL);
		KUNIT_EXPECT_EQ_MSG(test, scans + 1, atomic_read(&as->scans),
				    "round %u: no scan between the check and the claim", round);
		KUNIT_EXPECT_EQ_MSG(test, round + 1, gp_stats(ctx).bad_frees,
				    "round %u: a double free racing the shrinker was taken", round);
		if (gp_stats(ctx).bad_frees != round + 1)
			break;
	}
	migrate_enable();
	WRITE_ONCE(as->stop, true);
	wait_for_completion(&as->done);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
}

struct gp_remote_free {
	struct work_struct work;
	struct gp_ctx *ctx;
};

static void gp_remote_free_fn(struct work_struct *work)
{
	struct gp_remote_free *rf = container_of(work, struct gp_remote_free, work);

	while (rf->ctx->nr_pages)
		gp_put(rf->ctx, rf->ctx->pages[rf->ctx->nr_pages - 1]);
}

/* Pages freed on another CPU wait on its list: the shrinker still gives the block back whole. */
static void gp_test_shrink_drains_other_cpus(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct gp_remote_free rf = { .ctx = ctx };
	unsigned int i;
	int other;

	other = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	if (other >= nr_cpu_ids)
		kunit_skip(test, "needs a second CPU");
	for (i = 0; i < 4; i++)
		gp_get_ok(ctx);
	INIT_WORK_ONSTACK(&rf.work, gp_remote_free_fn);
	schedule_work_on(other, &rf.work);
	flush_work(&rf.work);
	destroy_work_on_stack(&rf.work);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).whole_blocks_freed);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_cached);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).blocks);
}

static void gp_test_free_to_wrong_cache(struct kunit *test)
{
	struct gp_ctx *a = gp_make_cache(test, gp_plain(), 0);
	/* Its own name, or its debugfs directory would clash with the first one's. */
	struct gp_ctx *b = gp_make_named_cache(test, "gp_test_free_to_wrong_cache_b",
					       gp_plain(), 0);
	struct page *page = gp_get_ok(a);

	grouped_pages_free(b->cache, page);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(b).bad_frees);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(a).pages_in_use);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(b).pages_cached);
}

static void gp_test_free_after_shrinker_took_it_back(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct page *page = gp_get_ok(ctx);

	gp_get_ok(ctx);
	gp_put(ctx, page);
	gp_scan(ctx, GFP_KERNEL, ctx->block_pages);
	/* The page left the cache with the broken block: a late free is foreign. */
	grouped_pages_free(ctx->cache, page);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).bad_frees);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).pages_in_use);
}

/*
 * A block whose reset fails when the cache is destroyed keeps its pages out
 * of use; every other block, older or newer, still goes back.
 */
static void gp_test_destroy_after_failed_reset_frees_the_rest(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned long base[3];
	unsigned int b, i;

	for (b = 0; b < ARRAY_SIZE(base); b++)
		base[b] = gp_fill_block(ctx);
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_ASSERT_EQ(test, ARRAY_SIZE(base), gp_stats(ctx).blocks);
	ctx->reset_err = -EIO;
	ctx->reset_err_pfn = base[1];

	KUNIT_EXPECT_EQ(test, 0, grouped_pages_cache_destroy(ctx->cache));
	ctx->cache = NULL;
	KUNIT_EXPECT_EQ(test, ARRAY_SIZE(base), atomic_read(&ctx->resets));
	gp_expect_released(test, base[0]);
	gp_expect_released(test, base[2]);
	/* Still allocated, never reused; unprotected here, so the case can free them. */
	for (i = 0; i < ctx->block_pages; i++) {
		KUNIT_EXPECT_EQ(test, 1, page_ref_count(pfn_to_page(base[1] + i)));
		__free_page(pfn_to_page(base[1] + i));
	}
}

static void gp_test_destroy_busy_refused(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);

	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, -EBUSY, grouped_pages_cache_destroy(ctx->cache));
	/* Still fully usable. */
	gp_get_ok(ctx);
	KUNIT_EXPECT_EQ(test, 2, gp_stats(ctx).pages_in_use);
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_EXPECT_EQ(test, 0, grouped_pages_cache_destroy(ctx->cache));
	ctx->cache = NULL;
}

/* ---- NUMA ---- */

static void gp_test_node_explicit(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		struct page *page = gp_get(ctx, nid, GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, page);
		KUNIT_EXPECT_EQ(test, nid, page_to_nid(page));
	}
}

static void gp_test_node_invalid(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);

	KUNIT_EXPECT_NULL(test, gp_get(ctx, nr_node_ids, GFP_KERNEL));
	KUNIT_EXPECT_NULL(test, gp_get(ctx, -5, GFP_KERNEL));
	KUNIT_EXPECT_EQ(test, 2, gp_stats(ctx).alloc_failures);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).refills);
}

static void gp_test_no_node_spreads_evenly(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	unsigned int nodes = num_node_state(N_MEMORY), per_node = 8, i;
	unsigned int *counts = kunit_kcalloc(test, nr_node_ids, sizeof(*counts), GFP_KERNEL);
	int nid;

	KUNIT_ASSERT_NOT_NULL(test, counts);
	for (i = 0; i < nodes * per_node; i++) {
		struct page *page = gp_get(ctx, NUMA_NO_NODE, GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, page);
		counts[page_to_nid(page)]++;
	}
	for_each_node_state(nid, N_MEMORY)
		KUNIT_EXPECT_EQ(test, per_node, counts[nid]);
}

/* A node that cannot refill does not fail NUMA_NO_NODE while another has pages. */
static void gp_test_no_node_takes_other_node(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	int stocked = next_memory_node(first_memory_node), i;
	struct page *page;

	if (num_node_state(N_MEMORY) < 2)
		kunit_skip(test, "needs two nodes with memory");
	KUNIT_ASSERT_NOT_NULL(test, gp_get(ctx, stocked, GFP_KERNEL));
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 0));
	/* Round robin makes some of these pick a node with nothing cached. */
	for (i = 0; i < 2 * num_node_state(N_MEMORY); i++) {
		page = gp_get(ctx, NUMA_NO_NODE, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, page);
		KUNIT_EXPECT_EQ(test, stocked, page_to_nid(page));
	}
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).alloc_failures);
}

/* ---- concurrency ---- */

#define GP_RACE_MIN_SCANS 16

/* Random churn is replayable: each case prints its seed, and this sets it. */
static ulong gp_seed;
module_param_named(seed, gp_seed, ulong, 0444);
MODULE_PARM_DESC(seed, "seed of the races' random choices (0: a new one each case)");

struct gp_race {
	struct gp_ctx *ctx;
	/* Thread n draws from a PRNG seeded with seed + n. */
	u64 seed;
	atomic_t threads;
	struct completion start;
	atomic_t running;
	atomic_t failures;
	atomic_t bad;
	atomic_t scans;
	unsigned int rounds;
	bool stop;
	/* For races that run for a time, not for a number of rounds. */
	unsigned long deadline;
	struct completion done;
};

static int gp_race_one_alloc(void *data)
{
	struct gp_race *race = data;

	wait_for_completion(&race->start);
	if (!gp_get(race->ctx, GP_NODE, GFP_KERNEL))
		atomic_inc(&race->failures);
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

static void gp_run_threads(struct kunit *test, struct gp_race *race, int (*fn)(void *),
			   unsigned int nr)
{
	unsigned int i;

	init_completion(&race->start);
	init_completion(&race->done);
	atomic_set(&race->running, nr);
	for (i = 0; i < nr; i++) {
		struct task_struct *task = kthread_run_on_cpu(fn, race, i % num_online_cpus(),
							      "gp_test/%u");

		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	complete_all(&race->start);
	wait_for_completion(&race->done);
}

static void gp_test_racing_refills_take_one_block(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_plain(), 0);
	struct gp_race race = { .ctx = ctx };
	unsigned int nr = 4 * num_online_cpus();

	gp_run_threads(test, &race, gp_race_one_alloc, nr);
	KUNIT_EXPECT_EQ(test, 0, atomic_read(&race.failures));
	KUNIT_EXPECT_EQ(test, nr, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).refills);
}

static void gp_race_seed(struct kunit *test, struct gp_race *race)
{
	race->seed = gp_seed ?: get_random_u64();
	kunit_info(test, "random seed %llu (replay: grouped_pages_kunit.seed=%llu)",
		   race->seed, race->seed);
}

/* Each thread its own PRNG, so a thread's choices replay whatever the others do. */
static void gp_race_rnd_init(struct gp_race *race, struct rnd_state *rnd)
{
	prandom_seed_state(rnd, race->seed + atomic_inc_return(&race->threads));
}

static u32 gp_rnd_below(struct rnd_state *rnd, u32 ceil)
{
	return prandom_u32_state(rnd) % ceil;
}

static int gp_race_churn(void *data)
{
	struct gp_race *race = data;
	struct rnd_state rnd;
	struct page *held[32];
	unsigned int round, i, n;

	gp_race_rnd_init(race, &rnd);
	wait_for_completion(&race->start);
	/*
	 * On one CPU without preemption the churners could finish before the
	 * scanner first runs: keep churning until it has scanned alongside us.
	 */
	for (round = 0; round < race->rounds || atomic_read(&race->scans) < GP_RACE_MIN_SCANS;
	     round++) {
		n = 1 + gp_rnd_below(&rnd, ARRAY_SIZE(held));
		for (i = 0; i < n; i++) {
			held[i] = grouped_pages_alloc(race->ctx->cache, NUMA_NO_NODE,
						      round & 1 ? GFP_ATOMIC : GFP_KERNEL);
			if (!held[i])
				break;
		}
		while (i--)
			grouped_pages_free(race->ctx->cache, held[i]);
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

static int gp_race_shrink(void *data)
{
	struct gp_race *race = data;
	struct rnd_state rnd;

	gp_race_rnd_init(race, &rnd);
	wait_for_completion(&race->start);
	while (atomic_read(&race->running) > 1) {
		int nid = gp_rnd_below(&rnd, 2) ? first_memory_node :
						  next_memory_node(first_memory_node);

		if (nid >= MAX_NUMNODES)
			nid = first_memory_node;
		gp_scan_node_at(race->ctx, nid, 1 + gp_rnd_below(&rnd, 600), gp_rnd_priority(&rnd));
		atomic_inc(&race->scans);
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

static void gp_test_stress_alloc_free_shrink(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 8);
	struct gp_race race = { .ctx = ctx, .rounds = 2000 };
	unsigned int workers = 2 * num_online_cpus(), i;
	struct task_struct *task;
	struct grouped_pages_stats s;

	gp_race_seed(test, &race);
	init_completion(&race.start);
	init_completion(&race.done);
	atomic_set(&race.running, workers + 1);
	for (i = 0; i < workers; i++) {
		task = kthread_run_on_cpu(gp_race_churn, &race, i % num_online_cpus(),
					  "gp_churn/%u");
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	task = kthread_run(gp_race_shrink, &race, "gp_shrink");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	complete_all(&race.start);
	wait_for_completion(&race.done);
	/* Atomic allocations queued refills: let them land before counting. */
	grouped_pages_flush_refill(ctx->cache);

	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 0, s.bad_frees);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	KUNIT_EXPECT_GE(test, s.shrinker_scans, GP_RACE_MIN_SCANS);
	/* Every protected page is either still cached or was reset on its way out. */
	KUNIT_EXPECT_EQ(test, s.pages_cached, atomic_long_read(&ctx->protected_pages));
	/*
	 * With nothing in use, everything can go back but the reserve, which
	 * keeps whole the block it needs (per node) rather than break it.
	 */
	gp_scan_all_nodes(ctx, ULONG_MAX, GP_DESPERATE);
	KUNIT_EXPECT_LT(test, gp_stats(ctx).pages_cached,
			(8 + ctx->block_pages) * num_node_state(N_MEMORY));
	KUNIT_EXPECT_EQ(test, 0, gp_count(ctx, GP_NODE));
	KUNIT_EXPECT_EQ(test, gp_stats(ctx).pages_cached, atomic_long_read(&ctx->protected_pages));
}

/* Allocate and free at random, holding up to 48 pages: blocks stay partly used. */
static int gp_race_hold_churn(void *data)
{
	struct gp_race *race = data;
	struct rnd_state rnd;
	struct page *held[48];
	unsigned int n = 0, i;

	gp_race_rnd_init(race, &rnd);
	wait_for_completion(&race->start);
	while (time_before(jiffies, race->deadline)) {
		if (n < ARRAY_SIZE(held) && (!n || gp_rnd_below(&rnd, 2))) {
			held[n] = grouped_pages_alloc(race->ctx->cache, GP_NODE, GFP_KERNEL);
			n += !!held[n];
		} else {
			i = gp_rnd_below(&rnd, n);
			grouped_pages_free(race->ctx->cache, held[i]);
			held[i] = held[--n];
		}
		cond_resched();
	}
	while (n)
		grouped_pages_free(race->ctx->cache, held[--n]);
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

static int gp_race_scan_until(void *data)
{
	struct gp_race *race = data;
	struct rnd_state rnd;

	gp_race_rnd_init(race, &rnd);
	wait_for_completion(&race->start);
	while (time_before(jiffies, race->deadline)) {
		/* Up to two blocks: past the whole free ones into the partial phase. */
		if (gp_scan_node_at(race->ctx, GP_NODE,
				    1 + gp_rnd_below(&rnd, 2 * race->ctx->block_pages),
				    gp_rnd_priority(&rnd)) != SHRINK_STOP)
			atomic_inc(&race->scans);
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

/*
 * Reclaim scans one shrinker from many CPUs at once. Two scans of one node
 * must never work at the same time: one resets pages of a block it left on
 * the lists, and the other could free that block under it (a use-after-free
 * KASAN reports, and pages freed twice without it). Scanners and churners
 * run together for two seconds on every CPU; resets sleep to widen the window.
 */
static void gp_test_concurrent_scanners_never_overlap(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct gp_race race = { .ctx = ctx };
	unsigned int each = max(2U, num_online_cpus()), i;
	struct grouped_pages_stats s;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs SMP: scans can only overlap on two CPUs or more");
	ctx->slow_reset = true;
	gp_race_seed(test, &race);
	init_completion(&race.start);
	init_completion(&race.done);
	atomic_set(&race.running, 2 * each);
	race.deadline = jiffies + 2 * HZ;
	for (i = 0; i < 2 * each; i++) {
		struct task_struct *task =
			kthread_run_on_cpu(i < each ? gp_race_hold_churn : gp_race_scan_until,
					   &race, i % num_online_cpus(), "gp_overlap/%u");

		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	complete_all(&race.start);
	wait_for_completion(&race.done);

	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ_MSG(test, 1, atomic_read(&ctx->most_resets_running),
			    "scans of one node reset blocks at the same time");
	KUNIT_EXPECT_GT(test, atomic_read(&race.scans), 0);
	KUNIT_EXPECT_GT(test, s.partial_breaks, 0);
	KUNIT_EXPECT_EQ(test, 0, s.bad_frees);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, s.pages_cached, atomic_long_read(&ctx->protected_pages));
}

/* Allocate, free, and free again at random: every second free must be refused. */
static int gp_race_double_free_churn(void *data)
{
	struct gp_race *race = data;
	struct rnd_state rnd;
	struct page *held[16];
	unsigned int n, i;

	gp_race_rnd_init(race, &rnd);
	wait_for_completion(&race->start);
	while (time_before(jiffies, race->deadline)) {
		n = 1 + gp_rnd_below(&rnd, ARRAY_SIZE(held));
		for (i = 0; i < n; i++) {
			held[i] = grouped_pages_alloc(race->ctx->cache, NUMA_NO_NODE, GFP_KERNEL);
			if (!held[i])
				break;
		}
		n = i;
		for (i = 0; i < n; i++)
			grouped_pages_free(race->ctx->cache, held[i]);
		for (i = 0; i < n; i++) {
			if (gp_rnd_below(&rnd, 2))
				continue;
			grouped_pages_free(race->ctx->cache, held[i]);
			atomic_inc(&race->bad);
		}
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

/* Microseconds a free waits between its check and its claim in the stress case. */
#define GP_CLAIM_DAWDLE_US	20

/* Inside the free's RCU read-side section: it may not sleep. */
static void gp_claim_dawdles(void *unused)
{
	udelay(GP_CLAIM_DAWDLE_US);
}

/*
 * Two CPUs free pages twice while a scanner gives blocks back: each second
 * free is refused and counted, and nothing the page allocator owns is ever
 * taken for the cache (KASAN reports a block used after it was freed).
 */
static void gp_test_double_frees_while_scanning(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct gp_race race = { .ctx = ctx };
	unsigned int each = max(2U, num_online_cpus()), i;
	struct grouped_pages_stats s;
	struct page *page;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs SMP: frees and scans race on two CPUs or more");
	gp_race_seed(test, &race);
	init_completion(&race.start);
	init_completion(&race.done);
	atomic_set(&race.running, 2 * each);
	race.deadline = jiffies + 3 * HZ;
	/*
	 * One double free before the race: the free path warns once per boot,
	 * and two CPUs printing that warning at once garble it.
	 */
	page = gp_get_ok(ctx);
	gp_put(ctx, page);
	grouped_pages_free(ctx->cache, page);
	KUNIT_ASSERT_EQ(test, 1, gp_stats(ctx).bad_frees);
	atomic_inc(&race.bad);
	/* Widen the gap between a free's ownership check and its claim. */
	grouped_pages_set_claim_hook(ctx->cache, gp_claim_dawdles, NULL);
	for (i = 0; i < 2 * each; i++) {
		int (*fn)(void *) = i < each ? gp_race_double_free_churn : gp_race_scan_until;
		struct task_struct *task = kthread_run_on_cpu(fn, &race, i % num_online_cpus(),
							      "gp_dfree/%u");

		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	complete_all(&race.start);
	wait_for_completion(&race.done);
	grouped_pages_set_claim_hook(ctx->cache, NULL, NULL);

	s = gp_stats(ctx);
	KUNIT_EXPECT_GT(test, atomic_read(&race.scans), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&race.bad), s.bad_frees);
	KUNIT_EXPECT_EQ(test, 0, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, s.pages_cached, atomic_long_read(&ctx->protected_pages));
}

#ifdef CONFIG_HOTPLUG_CPU
/* What the victim CPU of gp_test_cpu_offline_keeps_its_pages does before it goes. */
struct gp_on_victim {
	struct gp_ctx *ctx;
	unsigned int hold;
	unsigned int cycle;
	struct completion done;
};

/* Hold @hold pages, and leave @cycle more freed on this CPU's list. */
static int gp_on_victim_fn(void *data)
{
	struct gp_on_victim *v = data;
	struct page *pages[GP_PCP_TEST_PAGES];
	unsigned int i;

	for (i = 0; i < v->hold + v->cycle; i++)
		pages[i] = gp_get(v->ctx, GP_NODE, GFP_KERNEL);
	for (i = v->hold; i < v->hold + v->cycle; i++)
		if (pages[i])
			gp_put(v->ctx, pages[i]);
	complete(&v->done);
	return 0;
}

static void gp_run_on_cpu(struct kunit *test, struct gp_on_victim *v, int cpu)
{
	struct task_struct *task;

	init_completion(&v->done);
	task = kthread_run_on_cpu(gp_on_victim_fn, v, cpu, "gp_victim/%u");
	KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	wait_for_completion(&v->done);
}
#endif /* CONFIG_HOTPLUG_CPU */

/*
 * A CPU that goes offline with free pages on its list and pages in use that
 * it allocated, while others allocate and shrink: nothing it held is lost or
 * counted twice, the shrinker still gets every free page back, and the CPU
 * works again once it is back.
 */
static void gp_test_cpu_offline_keeps_its_pages(struct kunit *test)
{
#ifdef CONFIG_HOTPLUG_CPU
	struct gp_ctx *ctx = gp_make_cache(test, gp_param_prot(test), 0);
	struct gp_on_victim *v = kunit_kzalloc(test, sizeof(*v), GFP_KERNEL);
	struct gp_race race = { .ctx = ctx };
	struct grouped_pages_stats s;
	int victim, err, i;

	KUNIT_ASSERT_NOT_NULL(test, v);
	if (num_online_cpus() < 2)
		kunit_skip(test, "needs a second CPU");
	victim = cpumask_last(cpu_online_mask);
	v->ctx = ctx;
	v->hold = 4;
	v->cycle = 12;
	gp_run_on_cpu(test, v, victim);
	KUNIT_ASSERT_EQ(test, 4, gp_stats(ctx).pages_in_use);

	/* Churn and scans go on elsewhere while the CPU leaves. */
	gp_race_seed(test, &race);
	init_completion(&race.start);
	init_completion(&race.done);
	atomic_set(&race.running, 3);
	race.deadline = jiffies + HZ;
	for (i = 0; i < 3; i++) {
		struct task_struct *task =
			kthread_run_on_cpu(i < 2 ? gp_race_hold_churn : gp_race_scan_until, &race,
					   cpumask_first(cpu_online_mask), "gp_hotplug/%u");

		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	complete_all(&race.start);
	err = remove_cpu(victim);
	wait_for_completion(&race.done);
	if (err)
		kunit_skip(test, "CPU %d cannot go offline: %d", victim, err);

	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 4, s.pages_in_use);
	KUNIT_EXPECT_EQ(test, s.pages_cached + s.pages_in_use,
			atomic_long_read(&ctx->protected_pages));
	/* Freed here, counted where they were allocated: the sum stays exact. */
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
	/* The offline CPU's list is drained like any other: every page goes back. */
	gp_scan_all_nodes(ctx, ULONG_MAX, GP_DESPERATE);
	s = gp_stats(ctx);
	KUNIT_EXPECT_EQ(test, 0, s.pages_cached);
	KUNIT_EXPECT_EQ(test, 0, s.blocks);
	KUNIT_EXPECT_EQ(test, 0, atomic_long_read(&ctx->protected_pages));

	KUNIT_ASSERT_EQ(test, 0, add_cpu(victim));
	v->hold = 0;
	gp_run_on_cpu(test, v, victim);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).pages_in_use);
	KUNIT_EXPECT_EQ(test, s.bad_frees, gp_stats(ctx).bad_frees);
#else
	kunit_skip(test, "needs CONFIG_HOTPLUG_CPU");
#endif
}

/* ---- soak ---- */

#if GP_X86
/*
 * Split the 2M mapping of @page the way a passing user does, not on purpose:
 * one page read-only and writable again leaves 512 agreeing 4K entries that
 * a collapse may merge (set_memory_4k() marks its split to be kept).
 */
static int gp_split_unmarked(struct page *page)
{
	int err = grouped_pages_prot_read_only.apply(page, 1, NULL);

	return err ?: grouped_pages_prot_read_only.reset(page, 1, NULL);
}

#endif

/* Opt-in: `make soak` sets it. Seeded by grouped_pages_kunit.seed like the races. */
static uint gp_soak_seconds;
module_param_named(soak_seconds, gp_soak_seconds, uint, 0444);
MODULE_PARM_DESC(soak_seconds, "how long gp_test_soak runs (0: it is skipped)");

#define GP_SOAK_HELD	64

struct gp_soak {
	struct gp_race race;
	struct gp_ctx *ctxs[ARRAY_SIZE(gp_prots)];
	atomic_long_t ops;
	atomic_long_t double_frees[ARRAY_SIZE(gp_prots)];
	atomic_long_t cpu_flips;
};

struct gp_soak_held {
	struct page *page;
	unsigned int cache;
};

static int gp_soak_node(struct rnd_state *rnd)
{
	int nid = first_memory_node;

	switch (gp_rnd_below(rnd, 3)) {
	case 0:
		return NUMA_NO_NODE;
	case 1:
		nid = next_memory_node(nid);
		return nid < MAX_NUMNODES ? nid : first_memory_node;
	default:
		return nid;
	}
}

/* One step of every kind the cache knows, chosen at random, on a random cache. */
static void gp_soak_step(struct gp_soak *soak, struct rnd_state *rnd,
			 struct gp_soak_held *held, unsigned int *nr)
{
	static const gfp_t gfps[] = { GFP_KERNEL, GFP_ATOMIC, GFP_NOWAIT, GFP_NOFS };
	unsigned int c = gp_rnd_below(rnd, ARRAY_SIZE(soak->ctxs)), op = gp_rnd_below(rnd, 100), i;
	struct grouped_pages_cache *cache = soak->ctxs[c]->cache;
	struct page *page;

	if (op < 40 && *nr < GP_SOAK_HELD) {
		page = grouped_pages_alloc(cache, gp_soak_node(rnd),
					   gfps[gp_rnd_below(rnd, ARRAY_SIZE(gfps))]);
		if (page)
			held[(*nr)++] = (struct gp_soak_held){ page, c };
	} else if (op < 75 && *nr) {
		i = gp_rnd_below(rnd, *nr);
		grouped_pages_free(soak->ctxs[held[i].cache]->cache, held[i].page);
		held[i] = held[--*nr];
	} else if (op < 80) {
		page = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL);
		if (page) {
			grouped_pages_free(cache, page);
			grouped_pages_free(cache, page);
			atomic_long_inc(&soak->double_frees[c]);
		}
	} else if (op < 92) {
		int nid = gp_soak_node(rnd);

		gp_scan_node_at(soak->ctxs[c], nid == NUMA_NO_NODE ? first_memory_node : nid,
				1 + gp_rnd_below(rnd, 1024), gp_rnd_priority(rnd));
	} else if (op < 96) {
		gp_count_at(soak->ctxs[c], first_memory_node, gp_rnd_priority(rnd));
	} else if (*nr) {
		/* Split and collapse the direct map around a page of the unprotected cache. */
		i = gp_rnd_below(rnd, *nr);
#if GP_X86
		if (held[i].cache == 0 && !debug_pagealloc_enabled() &&
		    !gp_split_unmarked(held[i].page))
			grouped_pages_collapse_direct_map(held[i].page, 1);
#endif
	}
	atomic_long_inc(&soak->ops);
}

static int gp_soak_worker(void *data)
{
	struct gp_soak *soak = data;
	struct gp_soak_held held[GP_SOAK_HELD];
	struct rnd_state rnd;
	unsigned int nr = 0;

	gp_race_rnd_init(&soak->race, &rnd);
	wait_for_completion(&soak->race.start);
	while (time_before(jiffies, soak->race.deadline)) {
		gp_soak_step(soak, &rnd, held, &nr);
		cond_resched();
	}
	while (nr--)
		grouped_pages_free(soak->ctxs[held[nr].cache]->cache, held[nr].page);
	if (atomic_dec_and_test(&soak->race.running))
		complete(&soak->race.done);
	return 0;
}

/* Now and then the last CPU goes offline with pages on its lists, and comes back. */
static int gp_soak_cpu_flipper(void *data)
{
	struct gp_soak *soak = data;

	wait_for_completion(&soak->race.start);
	while (time_before(jiffies, soak->race.deadline)) {
#ifdef CONFIG_HOTPLUG_CPU
		int cpu = cpumask_last(cpu_online_mask);

		if (cpu && !remove_cpu(cpu)) {
			msleep(100);
			if (!add_cpu(cpu))
				atomic_long_inc(&soak->cpu_flips);
		}
#endif
		msleep(900);
	}
	if (atomic_dec_and_test(&soak->race.running))
		complete(&soak->race.done);
	return 0;
}

/*
 * Minutes of everything at once, on every protection: allocations of every
 * kind on every node, frees, double frees, scans at every priority, counts,
 * direct-map splits and collapses and a CPU going offline and back. Replay a
 * failure with its seed. Skipped unless soak_seconds is set (make soak).
 */
static void gp_test_soak(struct kunit *test)
{
	struct gp_soak *soak = kunit_kzalloc(test, sizeof(*soak), GFP_KERNEL);
	unsigned int workers = 2 * num_online_cpus(), c, i;
	struct grouped_pages_stats s;
	unsigned long kept;
	struct page *page;
	char name[48];

	KUNIT_ASSERT_NOT_NULL(test, soak);
	if (!gp_soak_seconds)
		kunit_skip(test, "opt-in: make soak (grouped_pages_kunit.soak_seconds=N)");
	for (c = 0; c < ARRAY_SIZE(soak->ctxs); c++) {
		/* Named like a case (no '-'): the harness knows its provoked warnings by that. */
		snprintf(name, sizeof(name), "gp_test_soak_%s", gp_prots[c]->name);
		strreplace(name, '-', '_');
		soak->ctxs[c] = gp_make_named_cache(test, kunit_kstrdup(test, name, GFP_KERNEL),
						    gp_prots[c], c * 8);
	}
	/* The free path warns once per boot: before the race, where no other CPU prints. */
	page = grouped_pages_alloc(soak->ctxs[0]->cache, NUMA_NO_NODE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);
	grouped_pages_free(soak->ctxs[0]->cache, page);
	grouped_pages_free(soak->ctxs[0]->cache, page);
	atomic_long_inc(&soak->double_frees[0]);
	gp_race_seed(test, &soak->race);
	init_completion(&soak->race.start);
	init_completion(&soak->race.done);
	atomic_set(&soak->race.running, workers + 1);
	soak->race.deadline = jiffies + gp_soak_seconds * HZ;
	for (i = 0; i < workers; i++) {
		struct task_struct *task = kthread_run(gp_soak_worker, soak, "gp_soak/%u", i);

		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run(gp_soak_cpu_flipper, soak, "gp_soak_cpu")));
	complete_all(&soak->race.start);
	wait_for_completion(&soak->race.done);
	kunit_info(test, "%ld steps, %ld CPU offline/online cycles in %u s",
		   atomic_long_read(&soak->ops), atomic_long_read(&soak->cpu_flips),
		   gp_soak_seconds);
	for (c = 0; c < ARRAY_SIZE(soak->ctxs); c++) {
		struct gp_ctx *ctx = soak->ctxs[c];

		grouped_pages_flush_refill(ctx->cache);
		s = gp_stats(ctx);
		KUNIT_EXPECT_EQ_MSG(test, atomic_long_read(&soak->double_frees[c]), s.bad_frees,
				    "cache %s", ctx->inner->name);
		KUNIT_EXPECT_EQ_MSG(test, 0, s.pages_in_use, "cache %s", ctx->inner->name);
		KUNIT_EXPECT_EQ_MSG(test, s.pages_cached, atomic_long_read(&ctx->protected_pages),
				    "cache %s", ctx->inner->name);
		gp_scan_all_nodes(ctx, ULONG_MAX, GP_DESPERATE);
		/* What is left is the reserve's block on each node. */
		kept = (unsigned long)(c * 8 + ctx->block_pages) * num_node_state(N_MEMORY);
		KUNIT_EXPECT_LE_MSG(test, gp_stats(ctx).pages_cached, kept, "cache %s",
				    ctx->inner->name);
	}
}

/* ---- x86 direct map ---- */

#if GP_X86
static void gp_expect_block_mapping(struct kunit *test, unsigned long base, unsigned int nr,
				    unsigned long size, pteval_t set, pteval_t clear)
{
	unsigned int i, bad_size = 0, bad_prot = 0, level;

	for (i = 0; i < nr; i++) {
		pte_t *pte = lookup_address((unsigned long)page_address(pfn_to_page(base + i)),
					    &level);

		KUNIT_ASSERT_NOT_NULL(test, pte);
		if (page_level_size(level) < size)
			bad_size++;
		if ((pte_flags(*pte) & set) != set || (pte_flags(*pte) & clear))
			bad_prot++;
	}
	KUNIT_EXPECT_EQ_MSG(test, 0, bad_size, "pages mapped below %lu bytes", size);
	KUNIT_EXPECT_EQ_MSG(test, 0, bad_prot, "pages with the wrong protection");
}

/*
 * debug_pagealloc maps the direct map with 4K pages only and unmaps every page
 * the buddy holds: there is no large mapping to keep or restore, and a block
 * given back is not present. The cases about large mappings check nothing there.
 */
static void gp_skip_unless_large_direct_map(struct kunit *test)
{
	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only");
}

static pteval_t gp_prot_clears(const struct grouped_pages_prot *prot)
{
	if (prot == &grouped_pages_prot_not_present)
		return _PAGE_PRESENT;
	if (prot == &grouped_pages_prot_read_only)
		return _PAGE_RW;
	return 0;
}

#define GP_HELD_MAX	8

struct gp_held_blocks {
	struct page *blocks[GP_HELD_MAX];
	unsigned int nr;
};

static void gp_release_held_blocks(void *data)
{
	struct gp_held_blocks *held = data;

	while (held->nr)
		__free_pages(held->blocks[--held->nr], PMD_ORDER);
}

/*
 * Earlier cases leave free 2M blocks mapped at 4K (6.12 never collapses the
 * direct map), and the page allocator may hand one out next. Hold such blocks
 * back until the test ends and give the first one mapped large back just
 * before the cache refills, which then takes it from this CPU's free lists:
 * call with migration disabled.
 */
static void gp_steer_to_large_block(struct kunit *test)
{
	struct gp_held_blocks *held = kunit_kzalloc(test, sizeof(*held), GFP_KERNEL);
	struct page *block;

	if (!held || kunit_add_action_or_reset(test, gp_release_held_blocks, held))
		return;
	while (held->nr < GP_HELD_MAX) {
		block = alloc_pages_node(GP_NODE, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN,
					 PMD_ORDER);
		if (!block)
			return;
		if (grouped_pages_direct_map_size(block) >= PMD_SIZE) {
			__free_pages(block, PMD_ORDER);
			return;
		}
		held->blocks[held->nr++] = block;
	}
}

/* The cache's first page, from a block that was mapped large if one can be had. */
static struct page *gp_get_from_large_block(struct gp_ctx *ctx)
{
	struct page *page;

	migrate_disable();
	gp_steer_to_large_block(ctx->test);
	page = gp_get(ctx, GP_NODE, GFP_KERNEL);
	migrate_enable();
	KUNIT_ASSERT_NOT_NULL(ctx->test, page);
	return page;
}

static void gp_test_x86_block_stays_mapped_large(struct kunit *test)
{
	const struct grouped_pages_prot *prot = gp_param_prot(test);
	struct gp_ctx *ctx = gp_make_cache(test, prot, 0);
	unsigned long size;

	gp_skip_unless_large_direct_map(test);

	gp_get_from_large_block(ctx);
	/* Before the first apply: a refill that protects page by page splits its own block. */
	size = ctx->size_before_first_apply;
	if (size < PMD_SIZE)
		kunit_skip(test, "block mapped at %lu bytes before the cache took it", size);
	/* A 1G mapping around the block may become 2M ones; nothing goes below 2M. */
	gp_expect_block_mapping(test, ctx->first_apply_pfn, ctx->block_pages, PMD_SIZE, 0,
				gp_prot_clears(prot));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).direct_map_splits);
}

/*
 * Hand the next refill a 2M block mapped by 4K pages that all agree, as one
 * split by someone else and made writable again is: split a large block and
 * free it to this CPU's lists. Call with migration disabled.
 */
static void gp_steer_to_split_block(struct kunit *test)
{
	struct page *block;
	unsigned int level;

	block = alloc_pages_node(GP_NODE, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, PMD_ORDER);
	if (!block)
		return;
	KUNIT_EXPECT_EQ(test, 0, gp_split_unmarked(block));
	KUNIT_EXPECT_NOT_NULL(test, lookup_address((unsigned long)page_address(block), &level));
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);
	__free_pages(block, PMD_ORDER);
}

/*
 * A block that came split is mapped large again: by the refill where its
 * protection leaves every page alike and present, and by the shrinker once
 * the block is reset. Without collapse it would stay 4K for good.
 */
static void gp_test_x86_shrink_restores_mapping(struct kunit *test)
{
	const struct grouped_pages_prot *prot = gp_param_prot(test);
	struct gp_ctx *ctx = gp_make_cache(test, prot, 0);
	unsigned long base;
	struct page *page;

	gp_skip_unless_large_direct_map(test);

	migrate_disable();
	gp_steer_to_split_block(test);
	page = gp_get(ctx, GP_NODE, GFP_KERNEL);
	migrate_enable();
	KUNIT_ASSERT_NOT_NULL(test, page);
	base = ctx->last_apply_pfn;
	if (ctx->size_before_apply >= PMD_SIZE || ctx->last_apply_nr != ctx->block_pages)
		kunit_skip(test, "the refill did not take the split block");
	if (gp_prot_clears(prot) & _PAGE_PRESENT)
		gp_expect_block_mapping(test, base, ctx->block_pages, PAGE_SIZE, 0, _PAGE_PRESENT);
	else
		gp_expect_block_mapping(test, base, ctx->block_pages, PMD_SIZE, 0,
					gp_prot_clears(prot));
	gp_put(ctx, page);
	KUNIT_ASSERT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, ctx->block_pages));
	gp_expect_block_mapping(test, base, ctx->block_pages, PMD_SIZE,
				_PAGE_PRESENT | _PAGE_RW, 0);
	KUNIT_EXPECT_GE(test, gp_stats(ctx).direct_map_collapses, 1);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).direct_map_splits);
}

/*
 * Take order-0 fallback pages until one comes from a mapping that was large:
 * they often come from mappings split already. The last page taken is that one
 * (ctx->last_apply_pfn); @splits_before, if given, gets the split count from
 * just before it. Skips the case when 64 pages in a row were mapped at 4K.
 *
 * Return: how many pages were taken.
 */
static unsigned int gp_get_fallback_from_large(struct gp_ctx *ctx, unsigned long *splits_before)
{
	unsigned int tries;

	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 1));
	for (tries = 0; tries < 64; tries++) {
		if (splits_before)
			*splits_before = gp_stats(ctx).direct_map_splits;
		gp_get_ok(ctx);
		if (ctx->size_before_apply >= PMD_SIZE)
			return tries + 1;
	}
	kunit_skip(ctx->test, "64 order-0 pages were all mapped at 4K already");
	return tries;
}

/*
 * A fallback page splits the 2M mapping around it while protected; once it
 * goes back, the mapping around it is large again.
 */
static void gp_test_x86_fallback_block_mapped_large_again(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, &grouped_pages_prot_read_only, 0);
	unsigned int taken, level;
	unsigned long pfn;

	gp_skip_unless_large_direct_map(test);

	taken = gp_get_fallback_from_large(ctx, NULL);
	pfn = ctx->last_apply_pfn;
	KUNIT_ASSERT_NOT_NULL(test, lookup_address((unsigned long)page_address(pfn_to_page(pfn)),
						   &level));
	KUNIT_ASSERT_EQ(test, PG_LEVEL_4K, level);
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);
	KUNIT_EXPECT_EQ(test, taken, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	gp_expect_block_mapping(test, pfn, 1, PMD_SIZE, _PAGE_PRESENT | _PAGE_RW, 0);
	KUNIT_EXPECT_GE(test, gp_stats(ctx).direct_map_collapses, 1);
}

/*
 * A cache whose blocks are all free, trimmed as hard as reclaim can: the block
 * kept for the reserve and the block given back both stay mapped at 2M.
 */
static void gp_test_x86_trim_free_cache_splits_nothing(struct kunit *test)
{
	const struct grouped_pages_prot *prot = gp_param_prot(test);
	struct gp_ctx *ctx = gp_make_cache(test, prot, 16);
	unsigned long base[2], freed_base, kept_base;
	unsigned int b, i;

	gp_skip_unless_large_direct_map(test);

	/* Allocations leave the reserve free: the second block's refill comes 16 pages early. */
	for (b = 0; b < 2; b++) {
		unsigned int nr = b ? ctx->block_pages : ctx->block_pages - 16;

		migrate_disable();
		gp_steer_to_large_block(test);
		for (i = 0; i < nr; i++)
			if (!gp_get(ctx, GP_NODE, GFP_KERNEL))
				break;
		migrate_enable();
		KUNIT_ASSERT_EQ(test, nr, i);
		if (ctx->size_before_apply < PMD_SIZE)
			kunit_skip(test, "block %u mapped at %lu bytes before the cache took it", b,
				   ctx->size_before_apply);
		base[b] = ctx->last_apply_pfn;
	}
	KUNIT_ASSERT_EQ(test, 2, atomic_read(&ctx->applies));
	while (ctx->nr_pages)
		gp_put(ctx, ctx->pages[0]);

	KUNIT_EXPECT_EQ(test, ctx->block_pages, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).direct_map_splits);
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).partial_breaks);
	KUNIT_ASSERT_EQ(test, 1, atomic_read(&ctx->resets));
	freed_base = ctx->last_reset_pfn;
	kept_base = freed_base == base[0] ? base[1] : base[0];
	KUNIT_EXPECT_EQ(test, ctx->block_pages, ctx->last_reset_nr);
	gp_expect_block_mapping(test, freed_base, ctx->block_pages, PMD_SIZE,
				_PAGE_PRESENT | _PAGE_RW, 0);
	gp_expect_block_mapping(test, kept_base, ctx->block_pages, PMD_SIZE, 0,
				gp_prot_clears(prot));
}

#ifdef CONFIG_X86_64
#define GP_WALK_BLOCKS	4
/* Microseconds a walker holds a table it found before reading it. */
#define GP_WALK_HOLD_US	50

/* What gp_test_x86_lookup_survives_collapse shares with its threads. */
struct gp_walk_race {
	struct gp_ctx *cache_ctx;
	struct page *blocks[GP_WALK_BLOCKS];
	unsigned long deadline;
	atomic_t running;
	struct completion done;
	atomic_long_t collapses;
	atomic_long_t splits;
};

/* Split each block's 2M mapping and collapse it again, as fast as CPA allows. */
static int gp_walk_split_collapse(void *data)
{
	struct gp_walk_race *race = data;
	unsigned int b, k = 0;

	while (time_before(jiffies, race->deadline)) {
		for (b = 0; b < GP_WALK_BLOCKS; b++) {
			struct page *block = race->blocks[b];

			k = (k + 97) % PTRS_PER_PTE;
			if (!gp_split_unmarked(block + k))
				atomic_long_inc(&race->splits);
			atomic_long_add(grouped_pages_collapse_direct_map(block, PTRS_PER_PTE),
					&race->collapses);
		}
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

/* A real read-only cache at work: refills, resets and the collapses they make. */
static int gp_walk_cache_churn(void *data)
{
	struct gp_walk_race *race = data;
	struct grouped_pages_cache *cache = race->cache_ctx->cache;
	struct page *held[64];
	unsigned int n, i;

	while (time_before(jiffies, race->deadline)) {
		for (n = 0; n < ARRAY_SIZE(held); n++) {
			held[n] = grouped_pages_alloc(cache, GP_NODE, GFP_KERNEL);
			if (!held[n])
				break;
		}
		for (i = 0; i < n; i++)
			grouped_pages_free(cache, held[i]);
		gp_scan(race->cache_ctx, GFP_KERNEL, ULONG_MAX);
		cond_resched();
	}
	if (atomic_dec_and_test(&race->running))
		complete(&race->done);
	return 0;
}

/*
 * A lockless walker's view of the 2M region around @addr, which maps the
 * block at @pfn: inside an RCU read-side section, as a lookup_address()
 * caller outside CPA must be, every entry it reads maps what it did when the
 * walk found it. Reading a table a collapse freed under it finds zeroes
 * (init_on_free), another table's entries, or a KASAN report.
 * Return: the entries found wrong.
 */
static unsigned int gp_walk_block(unsigned long addr, unsigned long pfn)
{
	unsigned int level, i, wrong = 0;
	pte_t *pte, *table;

	rcu_read_lock();
	pte = lookup_address(addr, &level);
	if (!pte) {
		wrong = 1;
	} else if (level == PG_LEVEL_4K) {
		table = pte - pte_index(addr);
		/* Work with what it found, as CPA's clflush loop does: long enough to lose it. */
		udelay(GP_WALK_HOLD_US);
		for (i = 0; i < PTRS_PER_PTE; i++) {
			pte_t entry = READ_ONCE(table[i]);

			wrong += !pte_present(entry) || pte_pfn(entry) != pfn + i;
		}
	} else {
		/* A large entry may be split meanwhile: a table pointer is no error. */
		pte_t entry = READ_ONCE(*pte);

		wrong = !pte_present(entry) ||
			((pte_flags(entry) & _PAGE_PSE) &&
			 pte_pfn(entry) != (pfn & ~((page_level_size(level) >> PAGE_SHIFT) - 1)));
	}
	rcu_read_unlock();
	return wrong;
}

/*
 * Collapse frees the page tables it replaces. A lockless walker of the
 * direct map (lookup_address() outside CPA) may still hold one: the table
 * must not be freed while it can. One CPU walks the blocks' tables and the
 * 1G region around them, while another splits and collapses the blocks and
 * churns a read-only cache. Run it under KASAN with init_on_free (the kasan
 * row) to see every stale read.
 */
static void gp_test_x86_lookup_survives_collapse(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, &grouped_pages_prot_read_only, 8);
	struct gp_walk_race *race = kunit_kzalloc(test, sizeof(*race), GFP_KERNEL);
	unsigned long walks = 0, wrong = 0, addr, region, pfn;
	unsigned int b, i, level;
	int other;

	KUNIT_ASSERT_NOT_NULL(test, race);
	gp_skip_unless_large_direct_map(test);
	other = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	if (other >= nr_cpu_ids)
		kunit_skip(test, "needs a second CPU: walks and collapses must race");
	race->cache_ctx = ctx;
	for (b = 0; b < GP_WALK_BLOCKS; b++) {
		race->blocks[b] = alloc_pages_node(GP_NODE, GFP_KERNEL | __GFP_THISNODE |
						   __GFP_NOWARN, PMD_ORDER);
		if (!race->blocks[b]) {
			while (b--)
				__free_pages(race->blocks[b], PMD_ORDER);
			kunit_skip(test, "no free 2M block");
		}
	}
	init_completion(&race->done);
	atomic_set(&race->running, 2);
	/* Freeing tables under walkers: KASAN caught 2 runs of 3 in 5 s, 5 of 5 in 10 s. */
	race->deadline = jiffies + 10 * HZ;
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run_on_cpu(gp_walk_split_collapse, race, other,
							   "gp_collapse/%u")));
	KUNIT_ASSERT_FALSE(test, IS_ERR(kthread_run_on_cpu(gp_walk_cache_churn, race, other,
							   "gp_ro_churn/%u")));
	region = (unsigned long)page_address(race->blocks[0]) & PUD_MASK;
	migrate_disable();
	while (time_before(jiffies, race->deadline)) {
		for (b = 0; b < GP_WALK_BLOCKS; b++) {
			pfn = page_to_pfn(race->blocks[b]);
			wrong += gp_walk_block((unsigned long)page_address(race->blocks[b]), pfn);
			walks++;
		}
		/* The 1G region around them, a 2M step at a time: its PMD table may go too. */
		for (i = 0; i < PTRS_PER_PMD; i += 8) {
			addr = region + i * PMD_SIZE;
			pfn = __pa(addr) >> PAGE_SHIFT;
			/* RAM is all in the direct map; the rest of the region may be holes. */
			if (!page_is_ram(pfn))
				continue;
			for (b = 0; b < GP_WALK_BLOCKS; b++)
				if (page_to_pfn(race->blocks[b]) == pfn)
					break;
			if (b < GP_WALK_BLOCKS)
				continue;
			rcu_read_lock();
			wrong += !lookup_address(addr, &level);
			rcu_read_unlock();
			walks++;
		}
		cond_resched();
	}
	migrate_enable();
	wait_for_completion(&race->done);
	for (b = 0; b < GP_WALK_BLOCKS; b++)
		__free_pages(race->blocks[b], PMD_ORDER);
	kunit_info(test, "%lu walks, %ld splits, %ld collapses", walks,
		   atomic_long_read(&race->splits), atomic_long_read(&race->collapses));
	KUNIT_EXPECT_GT(test, atomic_long_read(&race->collapses), 0);
	KUNIT_EXPECT_EQ_MSG(test, 0, wrong,
			    "a walker read page-table entries that a collapse freed under it");
}

/*
 * set_memory_4k() splits on purpose (IOMMU buffers, SEV-SNP's RMP, cpa-test):
 * no collapse may merge those entries again, neither one asked for the
 * range itself nor one that a fallback page's reset in the same 2M region
 * asks for.
 */
static void gp_test_x86_collapse_keeps_deliberate_4k(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, &grouped_pages_prot_read_only, 0);
	struct page *block, *fallback;
	unsigned long addr;
	unsigned int level, i;

	gp_skip_unless_large_direct_map(test);
	block = alloc_pages_node(GP_NODE, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, PMD_ORDER);
	if (!block)
		kunit_skip(test, "no free 2M block");
	addr = (unsigned long)page_address(block);
	/* All of it: entries that all agree, as a collapse wants them. */
	KUNIT_ASSERT_EQ(test, 0, set_memory_4k(addr, PTRS_PER_PTE));
	KUNIT_EXPECT_EQ(test, 0, grouped_pages_collapse_direct_map(block, PTRS_PER_PTE));
	KUNIT_EXPECT_NOT_NULL(test, lookup_address(addr, &level));
	KUNIT_EXPECT_EQ_MSG(test, PG_LEVEL_4K, level, "a collapse undid set_memory_4k()");

	/* The rest of the 2M region to the page allocator, for an order-0 refill to take. */
	split_page(block, PMD_ORDER);
	grouped_pages_set_failing_orders(ctx->cache, GENMASK(grouped_pages_block_order(), 1));
	migrate_disable();
	for (i = PTRS_PER_PTE - 1; i > 0; i--)
		__free_page(block + i);
	fallback = gp_get(ctx, GP_NODE, GFP_KERNEL);
	migrate_enable();
	KUNIT_ASSERT_NOT_NULL(test, fallback);
	if (page_to_pfn(fallback) - page_to_pfn(block) >= PTRS_PER_PTE) {
		__free_page(block);
		kunit_skip(test, "the refill took a page outside the 2M region");
	}
	gp_put(ctx, fallback);
	KUNIT_EXPECT_EQ(test, 1, gp_scan(ctx, GFP_KERNEL, ULONG_MAX));
	KUNIT_EXPECT_NOT_NULL(test, lookup_address(addr, &level));
	KUNIT_EXPECT_EQ_MSG(test, PG_LEVEL_4K, level,
			    "a fallback page's reset collapsed a region split on purpose");
	__free_page(block);
}

/*
 * The first 2M of memory are mapped 4K so that no large page spans memory
 * types the MTRRs set apart (the legacy VGA and BIOS ranges below 1M): no
 * collapse may map them large.
 */
static void gp_test_x86_collapse_keeps_mtrr_split(struct kunit *test)
{
	unsigned long addr = (unsigned long)__va(0);
	unsigned int level;

	gp_skip_unless_large_direct_map(test);
	if (!lookup_address(addr, &level) || level != PG_LEVEL_4K)
		kunit_skip(test, "the first 2M are not mapped 4K here");
	KUNIT_EXPECT_EQ(test, 0, grouped_pages_collapse_direct_map(pfn_to_page(0), 1));
	KUNIT_EXPECT_NOT_NULL(test, lookup_address(addr, &level));
	KUNIT_EXPECT_EQ_MSG(test, PG_LEVEL_4K, level, "the first 2M were mapped large");
}

/*
 * Without PSE (Xen PV guests clear it) there are no large pages to collapse
 * to. Only a kernel that may run without PSE (PARAVIRT_XXL) can tell.
 */
static void gp_test_x86_no_collapse_without_pse(struct kunit *test)
{
	struct page *block;
	unsigned long addr;
	unsigned int collapsed, level;

	gp_skip_unless_large_direct_map(test);
	if (!IS_ENABLED(CONFIG_PARAVIRT_XXL))
		kunit_skip(test, "PSE is a required feature without CONFIG_PARAVIRT_XXL");
	block = alloc_pages_node(GP_NODE, GFP_KERNEL | __GFP_THISNODE | __GFP_NOWARN, PMD_ORDER);
	if (!block)
		kunit_skip(test, "no free 2M block");
	addr = (unsigned long)page_address(block);
	KUNIT_ASSERT_EQ(test, 0, gp_split_unmarked(block));
	/* For the length of one call, as a Xen PV guest's CPU features would be. */
	clear_cpu_cap(&boot_cpu_data, X86_FEATURE_PSE);
	collapsed = grouped_pages_collapse_direct_map(block, PTRS_PER_PTE);
	set_cpu_cap(&boot_cpu_data, X86_FEATURE_PSE);
	KUNIT_EXPECT_EQ(test, 0, collapsed);
	KUNIT_EXPECT_NOT_NULL(test, lookup_address(addr, &level));
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);
	grouped_pages_collapse_direct_map(block, PTRS_PER_PTE);
	__free_pages(block, PMD_ORDER);
}
#else
static void gp_test_x86_lookup_survives_collapse(struct kunit *test)
{
	kunit_skip(test, "the direct map collapses on x86_64 only");
}

static void gp_test_x86_collapse_keeps_deliberate_4k(struct kunit *test)
{
	kunit_skip(test, "the direct map collapses on x86_64 only");
}

static void gp_test_x86_collapse_keeps_mtrr_split(struct kunit *test)
{
	kunit_skip(test, "the direct map collapses on x86_64 only");
}

static void gp_test_x86_no_collapse_without_pse(struct kunit *test)
{
	kunit_skip(test, "the direct map collapses on x86_64 only");
}
#endif /* CONFIG_X86_64 */

static void gp_test_x86_fallback_split_is_counted(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, &grouped_pages_prot_read_only, 0);
	unsigned long splits, pfn;
	unsigned int level;

	gp_skip_unless_large_direct_map(test);

	gp_get_fallback_from_large(ctx, &splits);
	pfn = ctx->last_apply_pfn;
	KUNIT_EXPECT_EQ(test, splits + 1, gp_stats(ctx).direct_map_splits);
	KUNIT_ASSERT_NOT_NULL(test, lookup_address((unsigned long)page_address(pfn_to_page(pfn)),
						   &level));
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);
}

static void gp_test_zero_refused_when_read_only(struct kunit *test)
{
	struct gp_ctx *ctx = gp_make_cache(test, &grouped_pages_prot_read_only, 0);

	KUNIT_EXPECT_NULL(test, gp_get(ctx, GP_NODE, GFP_KERNEL | __GFP_ZERO));
	KUNIT_EXPECT_EQ(test, 0, gp_stats(ctx).refills);
	KUNIT_EXPECT_EQ(test, 1, gp_stats(ctx).alloc_failures);
}

static const struct grouped_pages_prot *gp_x86_prots[] = {
	&grouped_pages_prot_not_present,
	&grouped_pages_prot_read_only,
};

KUNIT_ARRAY_PARAM(gp_x86_prot, gp_x86_prots, gp_prot_desc);
#endif /* GP_X86 */

/* Races of a few seconds, once per protection. */
#define GP_SLOW	{ .speed = KUNIT_SPEED_SLOW }

static struct kunit_case gp_test_cases[] = {
	KUNIT_CASE(gp_test_create_rejects_bad_args),
	KUNIT_CASE_PARAM(gp_test_new_cache_is_empty, gp_prot_gen_params),
	KUNIT_CASE_PARAM(gp_test_alloc_free_one, gp_prot_gen_params),
	KUNIT_CASE_PARAM(gp_test_block_pages_distinct_and_aligned, gp_prot_gen_params),
	KUNIT_CASE_PARAM(gp_test_apply_once_per_block, gp_prot_gen_params),
	KUNIT_CASE(gp_test_freed_page_is_reused),
	KUNIT_CASE(gp_test_prefers_partial_blocks),
	KUNIT_CASE(gp_test_zero_on_writable),
	KUNIT_CASE(gp_test_apply_failure_hands_out_nothing),
	KUNIT_CASE(gp_test_reset_failure_keeps_pages),
	KUNIT_CASE_PARAM(gp_test_fallback_order, gp_order_gen_params),
	KUNIT_CASE(gp_test_fallback_all_orders_fail),
	KUNIT_CASE(gp_test_gfp_only_last_order_reclaims),
	KUNIT_CASE(gp_test_nofail_waits_for_memory),
	KUNIT_CASE(gp_test_nofail_any_node_when_one_is_exhausted),
	KUNIT_CASE(gp_test_recycled_page_cleared_with_init_on),
	KUNIT_CASE(gp_test_kasan_poisons_cached_pages),
	KUNIT_CASE(gp_test_shrink_count),
	KUNIT_CASE_PARAM(gp_test_shrink_stops_on_incompatible_gfp, gp_bad_gfp_gen_params),
	KUNIT_CASE_PARAM(gp_test_shrink_works_for_reclaiming_gfp, gp_good_gfp_gen_params),
	KUNIT_CASE_PARAM(gp_test_shrink_frees_whole_block, gp_prot_gen_params),
	KUNIT_CASE(gp_test_shrink_whole_blocks_first),
	KUNIT_CASE(gp_test_shrink_breaks_partial_when_asked),
	KUNIT_CASE(gp_test_broken_pages_return_in_new_block),
	KUNIT_CASE(gp_test_partial_break_skips_whole_block),
	KUNIT_CASE(gp_test_shrink_breaks_partial_only_when_desperate),
	KUNIT_CASE(gp_test_shrink_priorities_like_reclaim),
	KUNIT_CASE(gp_test_shrink_reserve_keeps_whole_block),
	KUNIT_CASE(gp_test_shrink_keeps_reserve),
	KUNIT_CASE(gp_test_shrink_nested_alloc_uses_reserve),
	KUNIT_CASE(gp_test_shrink_count_per_node),
	KUNIT_CASE(gp_test_atomic_alloc_from_cache),
	KUNIT_CASE(gp_test_atomic_empty_fails_then_refills),
	KUNIT_CASE(gp_test_atomic_may_use_reserve),
	KUNIT_CASE(gp_test_free_foreign_page),
	KUNIT_CASE(gp_test_double_free),
	KUNIT_CASE(gp_test_double_free_after_drain),
	KUNIT_CASE(gp_test_double_free_racing_shrinker),
	KUNIT_CASE(gp_test_shrink_drains_other_cpus),
	KUNIT_CASE(gp_test_free_to_wrong_cache),
	KUNIT_CASE(gp_test_free_after_shrinker_took_it_back),
	KUNIT_CASE(gp_test_destroy_busy_refused),
	KUNIT_CASE(gp_test_destroy_after_failed_reset_frees_the_rest),
	KUNIT_CASE(gp_test_node_explicit),
	KUNIT_CASE(gp_test_node_invalid),
	KUNIT_CASE(gp_test_no_node_spreads_evenly),
	KUNIT_CASE(gp_test_no_node_takes_other_node),
	KUNIT_CASE(gp_test_racing_refills_take_one_block),
	KUNIT_CASE_PARAM_ATTR(gp_test_concurrent_scanners_never_overlap, gp_prot_gen_params,
			      GP_SLOW),
	KUNIT_CASE_PARAM_ATTR(gp_test_stress_alloc_free_shrink, gp_prot_gen_params, GP_SLOW),
	KUNIT_CASE_PARAM_ATTR(gp_test_double_frees_while_scanning, gp_prot_gen_params, GP_SLOW),
	KUNIT_CASE_PARAM_ATTR(gp_test_cpu_offline_keeps_its_pages, gp_prot_gen_params, GP_SLOW),
	KUNIT_CASE_SLOW(gp_test_soak),
#if GP_X86
	KUNIT_CASE_PARAM(gp_test_x86_block_stays_mapped_large, gp_x86_prot_gen_params),
	KUNIT_CASE_PARAM(gp_test_x86_shrink_restores_mapping, gp_x86_prot_gen_params),
	KUNIT_CASE_PARAM(gp_test_x86_trim_free_cache_splits_nothing, gp_x86_prot_gen_params),
	KUNIT_CASE(gp_test_x86_fallback_split_is_counted),
	KUNIT_CASE(gp_test_x86_fallback_block_mapped_large_again),
	KUNIT_CASE(gp_test_x86_collapse_keeps_deliberate_4k),
	KUNIT_CASE(gp_test_x86_collapse_keeps_mtrr_split),
	KUNIT_CASE(gp_test_x86_no_collapse_without_pse),
	KUNIT_CASE_SLOW(gp_test_x86_lookup_survives_collapse),
	KUNIT_CASE(gp_test_zero_refused_when_read_only),
#endif
	{}
};

static struct kunit_suite gp_test_suite = {
	.name = "grouped_pages",
	.init = gp_suite_init,
	.test_cases = gp_test_cases,
};

kunit_test_suite(gp_test_suite);

MODULE_DESCRIPTION("KUnit tests for the grouped page cache");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);
