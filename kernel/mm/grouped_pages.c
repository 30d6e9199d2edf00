// SPDX-License-Identifier: GPL-2.0
/*
 * Grouped page cache.
 *
 * Changing the direct-map protection of single 4K pages splits the 2M and 1G
 * mappings around them and costs TLB reach for good. A grouped page cache
 * takes PMD-sized blocks from the page allocator, changes the protection of a
 * whole block in one call (so a block mapped large stays mapped large) and
 * hands out its 4K pages. Every page of a block shares the cache's protection.
 *
 * The shrinker gives whole free blocks back: each is reset in one call, so the
 * direct map keeps its large mapping, and all its pages go back to the page
 * allocator together, where they merge into one PMD-sized page again. A block
 * is never broken to keep the reserve: when giving a whole block back would
 * leave fewer free pages than the reserve, the block stays. The free pages of
 * blocks that still have pages in use go back only when reclaim is desperate
 * (a pass at priority below %GP_BREAK_PRIORITY, or drop_caches), because
 * resetting part of a block splits its 2M mapping for good.
 *
 * Free pages are tracked in per-block bitmaps, never in struct page, so a
 * cached page's struct page is left alone and a page in use may use every
 * field its user wants. Under KASAN, cached free pages are poisoned as the
 * page allocator's free pages are, so a use after free through the cache is
 * reported.
 */

#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/highmem.h>
#include <linux/kasan.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/nodemask.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/shrinker.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/swap.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <kunit/visibility.h>

#define GP_BLOCK_ORDER	min_t(unsigned int, PMD_ORDER, MAX_PAGE_ORDER)
#define GP_BLOCK_PAGES	BIT(GP_BLOCK_ORDER)
#define GP_MAP_LONGS	BITS_TO_LONGS(1U << PMD_ORDER)
/*
 * Reclaim passes start at DEF_PRIORITY and go down while they fall short.
 * Three passes that could not find enough elsewhere make reclaim desperate
 * enough to split the direct map for the free pages of partly used blocks.
 */
#define GP_BREAK_PRIORITY	(DEF_PRIORITY - 2)

/*
 * Free pages each CPU keeps per node of a cache, and how many move between a
 * CPU and its node at once: as the page allocator's per-CPU lists, they keep
 * an allocation and a free off the node's lock, which two CPUs would bounce.
 */
#define GP_PCP_HIGH		16
#define GP_PCP_BATCH		8
/*
 * The nodes a cache serves: blocks are taken with GFP_KERNEL | __GFP_THISNODE,
 * which a node whose memory is all ZONE_MOVABLE can never satisfy.
 */
#define GP_NODES		N_NORMAL_MEMORY

/* A range of 2^order pages taken from the page allocator in one piece. */
struct gp_block {
	struct list_head list;
	struct rcu_head rcu;
	unsigned long pfn;
	unsigned int order;
	int nid;
	unsigned int nr_present;
	unsigned int nr_free;
	bool dead;
	/* Pages the cache owns: in use or free. Holes went back to the allocator. */
	unsigned long present[GP_MAP_LONGS];
	unsigned long free[GP_MAP_LONGS];
};

struct gp_node {
	/* Protects the lists, the counts and the bitmaps of this node's blocks. */
	spinlock_t lock;
	/* Allocate from partly used blocks first, to keep free blocks whole. */
	struct list_head partial;
	struct list_head whole_free;
	struct list_head full;
	unsigned long nr_free;
	unsigned long nr_blocks;
	struct gp_pcp __percpu *pcp;
	/* An allocation that could not refill asked the refill work for this node. */
	bool refill_wanted;
	/* One refill at a time, so racing callers do not each take a block. */
	struct mutex refill_lock;
	/*
	 * One shrinker scan at a time. A scan resets a block's pages outside
	 * @lock while the block stays listed; a second scan could retire and
	 * free that block under it. Reclaim runs scans of one shrinker on many
	 * CPUs at once (kswapd per node, direct reclaimers): kswapd and gentle
	 * passes back off, desperate ones wait their turn.
	 */
	struct mutex shrink_lock;
};

/*
 * Free pages a CPU keeps of one node, with their blocks: a block stays while
 * it has a page here, as such a page is not free in it.
 */
struct gp_pcp {
	/* Taken by its CPU, and by others only to drain the list: rarely contended. */
	spinlock_t lock;
	unsigned int count;
	struct {
		struct page *page;
		struct gp_block *block;
	} free[GP_PCP_HIGH];
};

struct gp_counters {
	atomic_long_t fallback_pages;
	atomic_long_t refills;
	atomic_long_t direct_map_splits;
	atomic_long_t direct_map_collapses;
	atomic_long_t shrinker_scans;
	atomic_long_t shrinker_freed;
	atomic_long_t whole_blocks_freed;
	atomic_long_t partial_breaks;
	atomic_long_t alloc_failures;
	atomic_long_t apply_failures;
	atomic_long_t reset_failures;
	atomic_long_t bad_frees;
	atomic_long_t reserve_allocs;
};

struct grouped_pages_cache {
	const char *name;
	const struct grouped_pages_prot *prot;
	void *prot_data;
	unsigned int reserve;
	/* The block of every page the cache owns, to tell our pages from foreign ones. */
	struct xarray blocks;
	struct shrinker *shrinker;
	struct work_struct refill_work;
	atomic_t next_node;
	unsigned long failing_orders;
	/* For the KUnit suite: called between a free's ownership check and its claim. */
	void (*claim_hook)(void *arg);
	void *claim_hook_arg;
	struct gp_counters counters;
	/* Pages handed out: per CPU, not an atomic that every call would bounce. */
	long __percpu *in_use;
	struct dentry *debugfs;
	struct list_head caches;
	struct gp_node *nodes[];
};

/*
 * Caches may be created before debugfs is up (page-table caches are): their
 * directories are made once it is, by grouped_pages_debugfs_init().
 */
static DEFINE_MUTEX(gp_caches_lock);
static LIST_HEAD(gp_caches);
static struct dentry *gp_debugfs_root;

static unsigned int gp_block_pages(const struct gp_block *block)
{
	return 1U << block->order;
}

/*
 * Whether @pfn is still one of @block's pages, without the node's lock. The
 * answer is stable for a page its caller holds, since blocks change only
 * around free pages: the bit of a page in use is never cleared, and a block
 * with a page in use is never retired. Call under rcu_read_lock(): a
 * retired block is freed after a grace period.
 */
static bool gp_block_has(const struct gp_block *block, unsigned long pfn)
{
	unsigned long word;

	/* Writers change other bits of the word under the node's lock, never this one's. */
	word = data_race(READ_ONCE(block->present[BIT_WORD(pfn - block->pfn)]));
	return !READ_ONCE(block->dead) && (word & BIT_MASK(pfn - block->pfn));
}

/* Keep each block on the list that matches its free count. */
static void gp_relist(struct gp_node *node, struct gp_block *block)
{
	if (!block->nr_free)
		list_move(&block->list, &node->full);
	else if (block->nr_free == block->nr_present)
		list_move(&block->list, &node->whole_free);
	else
		list_move(&block->list, &node->partial);
}

/*
 * page->private of a free page (on a node or on a CPU's list): the cache's
 * address, odd. Users get pages with it 0, and no value they store there
 * (a page table's lock or its pointer) is odd, so a page freed twice is
 * caught without a lock.
 */
static unsigned long gp_free_mark(const struct grouped_pages_cache *cache)
{
	return (unsigned long)cache | 1;
}

/*
 * Move up to GP_PCP_BATCH free pages of @node onto @pcp, keeping @keep on
 * the node. A caller below the reserve takes one page at a time, so the
 * reserve is not drawn into a CPU's list. Called with @pcp->lock held.
 */
static void gp_pcp_fill(struct grouped_pages_cache *cache, struct gp_node *node,
			struct gp_pcp *pcp, unsigned long keep)
{
	unsigned long idx, batch = GP_PCP_BATCH;
	struct gp_block *block;

	spin_lock(&node->lock);
	if (node->nr_free <= cache->reserve + GP_PCP_BATCH)
		batch = 1;
	while (batch-- && node->nr_free > keep && pcp->count < GP_PCP_HIGH) {
		block = list_first_entry_or_null(&node->partial, struct gp_block, list);
		if (!block)
			block = list_first_entry(&node->whole_free, struct gp_block, list);
		idx = find_first_bit(block->free, gp_block_pages(block));
		__clear_bit(idx, block->free);
		block->nr_free--;
		node->nr_free--;
		gp_relist(node, block);
		if (node->nr_free < cache->reserve)
			atomic_long_inc(&cache->counters.reserve_allocs);
		pcp->free[pcp->count].page = pfn_to_page(block->pfn + idx);
		pcp->free[pcp->count++].block = block;
	}
	spin_unlock(&node->lock);
}

/* Give up to @nr pages of @pcp back to their blocks. Called with @pcp->lock held. */
static void gp_pcp_drain(struct gp_node *node, struct gp_pcp *pcp, unsigned int nr)
{
	struct gp_block *block;
	unsigned int i;

	nr = min(nr, pcp->count);
	if (!nr)
		return;
	spin_lock(&node->lock);
	/* The oldest: the newest are the likeliest to be in the CPU's caches. */
	for (i = 0; i < nr; i++) {
		block = pcp->free[i].block;
		__set_bit(page_to_pfn(pcp->free[i].page) - block->pfn, block->free);
		block->nr_free++;
		gp_relist(node, block);
	}
	node->nr_free += nr;
	spin_unlock(&node->lock);
	pcp->count -= nr;
	memmove(&pcp->free[0], &pcp->free[nr], pcp->count * sizeof(pcp->free[0]));
}

/* Every CPU's list of @node back to its blocks: before counting or freeing them. */
static void gp_drain_node(struct gp_node *node)
{
	unsigned long flags;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct gp_pcp *pcp = per_cpu_ptr(node->pcp, cpu);

		spin_lock_irqsave(&pcp->lock, flags);
		gp_pcp_drain(node, pcp, pcp->count);
		spin_unlock_irqrestore(&pcp->lock, flags);
	}
}

static unsigned long gp_pcp_pages(struct gp_node *node)
{
	unsigned long pages = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		pages += READ_ONCE(per_cpu_ptr(node->pcp, cpu)->count);
	return pages;
}

/* A page waiting on another CPU's list, for when the node has none to give. */
static struct page *gp_take_from_other_cpus(struct gp_node *node)
{
	struct page *page = NULL;
	unsigned long flags;
	int cpu;

	for_each_possible_cpu(cpu) {
		struct gp_pcp *pcp = per_cpu_ptr(node->pcp, cpu);

		spin_lock_irqsave(&pcp->lock, flags);
		if (pcp->count)
			page = pcp->free[--pcp->count].page;
		spin_unlock_irqrestore(&pcp->lock, flags);
		if (page)
			break;
	}
	return page;
}

/*
 * A free page of @node, keeping @keep free on the node: from this CPU's list,
 * refilled from the node, else from another CPU's list, so that every page
 * the stats count as cached can be had (an atomic caller may need the last).
 */
static struct page *gp_take(struct grouped_pages_cache *cache, struct gp_node *node,
			    unsigned long keep)
{
	struct page *page = NULL;
	struct gp_pcp *pcp;
	unsigned long flags;

	/* Moved to another CPU after this? Its list serves as well. */
	pcp = raw_cpu_ptr(node->pcp);
	spin_lock_irqsave(&pcp->lock, flags);
	if (!pcp->count)
		gp_pcp_fill(cache, node, pcp, keep);
	if (pcp->count)
		page = pcp->free[--pcp->count].page;
	spin_unlock_irqrestore(&pcp->lock, flags);
	if (!page)
		page = gp_take_from_other_cpus(node);
	if (!page)
		return NULL;
	set_page_private(page, 0);
	kasan_unpoison_pages(page, 0, false);
	this_cpu_inc(*cache->in_use);
	return page;
}

/**
 * grouped_pages_direct_map_size() - how large the direct-map mapping of a page is
 * @page: any page in the direct map
 *
 * Exported here, not next to an architecture's version: one export, whichever
 * definition wins.
 *
 * Return: the size in bytes of the mapping that covers @page (4K, 2M, 1G on
 * x86), or 0 where the architecture cannot tell.
 */
unsigned long __weak grouped_pages_direct_map_size(struct page *page)
{
	return 0;
}
EXPORT_SYMBOL_GPL(grouped_pages_direct_map_size);

/*
 * Count the splits that leave mappings smaller than a block: a 1G mapping
 * turned into 2M ones around a block keeps the TLB reach the cache promises.
 */
static void gp_count_split(struct grouped_pages_cache *cache, struct page *page,
			   unsigned long size_before)
{
	unsigned long size_after = grouped_pages_direct_map_size(page);

	if (size_after < size_before && size_after < ((unsigned long)GP_BLOCK_PAGES << PAGE_SHIFT))
		atomic_long_inc(&cache->counters.direct_map_splits);
}

/**
 * grouped_pages_collapse_direct_map() - map the direct map around pages large again
 * @page: the first page
 * @nr_pages: how many
 *
 * Architectures whose direct-map splits can be undone replace small mappings
 * around the range by large ones wherever every small mapping agrees.
 *
 * Return: the number of mappings collapsed; 0 where the architecture cannot.
 */
unsigned int __weak grouped_pages_collapse_direct_map(struct page *page, unsigned int nr_pages)
{
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_collapse_direct_map);

typedef int (*gp_change_fn)(struct page *page, unsigned int nr_pages, void *data);

/*
 * Change a range's protection. When it leaves the range mapped below
 * @restore_below bytes, or the change split a mapping, try to collapse the
 * direct map around it: after a reset, a block that was split (a fallback
 * block, one partly given back before, one split by someone else) may map
 * large again, and so may the 1G mapping around a 2M block.
 */
static int gp_change(struct grouped_pages_cache *cache, gp_change_fn change,
		     atomic_long_t *failures, struct page *page, unsigned int nr,
		     unsigned long restore_below)
{
	unsigned long before = grouped_pages_direct_map_size(page);
	int err = change(page, nr, cache->prot_data);
	unsigned long after;

	gp_count_split(cache, page, before);
	if (err) {
		atomic_long_inc(failures);
		return err;
	}
	after = grouped_pages_direct_map_size(page);
	if (after && (after < restore_below || after < before))
		atomic_long_add(grouped_pages_collapse_direct_map(page, nr),
				&cache->counters.direct_map_collapses);
	return 0;
}

/* A block that came split may be mapped large once all its pages share the protection. */
static int gp_apply(struct grouped_pages_cache *cache, struct page *page, unsigned int nr)
{
	return gp_change(cache, cache->prot->apply, &cache->counters.apply_failures, page, nr,
			 (unsigned long)GP_BLOCK_PAGES << PAGE_SHIFT);
}

/* Back to the default protection, the largest mapping the direct map allows may return. */
static int gp_reset(struct grouped_pages_cache *cache, struct page *page, unsigned int nr)
{
	return gp_change(cache, cache->prot->reset, &cache->counters.reset_failures, page, nr,
			 ULONG_MAX);
}

/* The caller's flags a refill passes on: how hard to try, and which reserves to use. */
#define GP_GFP_CALLER	(__GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_NOFAIL | __GFP_NORETRY | \
			 __GFP_RETRY_MAYFAIL | __GFP_HIGH | __GFP_NOMEMALLOC | __GFP_NOWARN)

/**
 * grouped_pages_block_gfp() - the flags of a refill's attempt at one block order
 * @gfp: the caller's flags
 * @order: the order tried; refills go from the block order down to 0
 *
 * Only the last attempt, at order 0, may reclaim, and carries the caller's
 * __GFP_NOFAIL, __GFP_RETRY_MAYFAIL and __GFP_NOWARN as they are. Larger orders,
 * as in slab, take what is free and never fail loudly: nine rounds of direct
 * reclaim and compaction for one page would cost more than a split. The block
 * order still wakes kswapd, whose compaction may give the next refill a block.
 *
 * A __GFP_NOFAIL caller's last attempt may take its page from any node: the
 * page allocator, asked for one node alone, neither fails nor calls the OOM
 * killer, and would wait for that node forever.
 *
 * Return: the flags for alloc_pages_node(): with __GFP_THISNODE, but for that
 * last attempt of a __GFP_NOFAIL caller.
 */
VISIBLE_IF_KUNIT gfp_t grouped_pages_block_gfp(gfp_t gfp, unsigned int order)
{
	gfp_t block_gfp = (gfp & GP_GFP_CALLER) | __GFP_THISNODE;

	if (!order)
		return gfp & __GFP_NOFAIL ? block_gfp & ~__GFP_THISNODE : block_gfp;
	block_gfp &= ~(__GFP_DIRECT_RECLAIM | __GFP_NOFAIL | __GFP_RETRY_MAYFAIL);
	if (order != GP_BLOCK_ORDER)
		block_gfp &= ~__GFP_KSWAPD_RECLAIM;
	return block_gfp | __GFP_NORETRY | __GFP_NOWARN | __GFP_NOMEMALLOC;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_block_gfp);

/* For the block's own bookkeeping: the caller's context and persistence, no placement. */
static gfp_t gp_meta_gfp(gfp_t gfp)
{
	return gfp & (GFP_KERNEL | (GP_GFP_CALLER & ~__GFP_RECLAIM));
}

static struct page *gp_alloc_block(struct grouped_pages_cache *cache, int nid, gfp_t gfp,
				   unsigned int *order)
{
	int try;

	for (try = GP_BLOCK_ORDER; try >= 0; try--) {
		struct page *page;

		if (test_bit(try, &cache->failing_orders))
			continue;
		page = alloc_pages_node(nid, grouped_pages_block_gfp(gfp, try), try);
		if (page) {
			*order = try;
			return page;
		}
	}
	return NULL;
}

/*
 * One entry per page, never a multi-index entry: the shrinker gives a block's
 * pages back a run at a time and a later refill may take them into another
 * block, so each page's entry must be stored and erased on its own. Storing
 * into part of a multi-index entry would replace the whole entry.
 */
static void gp_unindex_pages(struct grouped_pages_cache *cache, unsigned long pfn,
			     unsigned int nr)
{
	XA_STATE(xas, &cache->blocks, pfn);
	unsigned int i;

	xas_lock(&xas);
	for (i = 0; i < nr; i++) {
		xas_store(&xas, NULL);
		xas_next(&xas);
	}
	xas_unlock(&xas);
}

static int gp_index_pages(struct grouped_pages_cache *cache, struct gp_block *block,
			  gfp_t gfp)
{
	unsigned int i, nr = gp_block_pages(block);
	int err;

	for (i = 0; i < nr; i++) {
		err = xa_err(xa_store(&cache->blocks, block->pfn + i, block, gfp));
		if (err) {
			gp_unindex_pages(cache, block->pfn, i);
			return err;
		}
	}
	return 0;
}

/*
 * Changing the direct map may allocate page tables with GFP_KERNEL: a caller
 * that must not recurse into the filesystem or I/O gets that scope for it.
 */
static unsigned int gp_memalloc_scope(gfp_t gfp)
{
	if (!(gfp & __GFP_IO))
		return memalloc_flags_save(PF_MEMALLOC_NOIO);
	if (!(gfp & __GFP_FS))
		return memalloc_flags_save(PF_MEMALLOC_NOFS);
	return memalloc_flags_save(0);
}

/*
 * Take one block from the page allocator and protect it whole. Called with
 * @nid's refill_lock held. Return: the node whose lists got the block (@nid,
 * or where a __GFP_NOFAIL caller's last attempt found a page), or -ENOMEM.
 */
static int gp_refill(struct grouped_pages_cache *cache, int nid, gfp_t gfp)
{
	struct gp_node *node;
	struct gp_block *block;
	unsigned long flags;
	unsigned int order, nr, i;
	unsigned int scope;
	struct page *page;
	int err;

	block = kzalloc_node(sizeof(*block), gp_meta_gfp(gfp), nid);
	if (!block)
		return -ENOMEM;
	page = gp_alloc_block(cache, nid, gfp, &order);
	if (!page) {
		err = -ENOMEM;
		goto out_block;
	}
	nid = page_to_nid(page);
	node = cache->nodes[nid];
	nr = 1U << order;
	scope = gp_memalloc_scope(gfp);
	err = gp_apply(cache, page, nr);
	memalloc_flags_restore(scope);
	if (err)
		goto out_pages;

	block->pfn = page_to_pfn(page);
	block->order = order;
	block->nid = nid;
	block->nr_present = nr;
	block->nr_free = nr;
	bitmap_fill(block->present, nr);
	bitmap_fill(block->free, nr);
	err = gp_index_pages(cache, block, gp_meta_gfp(gfp));
	if (err)
		goto out_reset;
	/* Free in the cache now: poisoned until handed out, as in the page allocator. */
	kasan_poison_pages(page, order, false);
	split_page(page, order);
	for (i = 0; i < nr; i++)
		set_page_private(page + i, gp_free_mark(cache));

	spin_lock_irqsave(&node->lock, flags);
	list_add(&block->list, &node->whole_free);
	node->nr_free += nr;
	node->nr_blocks++;
	spin_unlock_irqrestore(&node->lock, flags);

	atomic_long_inc(&cache->counters.refills);
	if (order < GP_BLOCK_ORDER)
		atomic_long_add(nr, &cache->counters.fallback_pages);
	return nid;

out_reset:
	if (gp_reset(cache, page, nr)) {
		/* Unsafe to give back with a changed direct map: keep it out of use. */
		WARN_ONCE(1, "grouped_pages: %s: leaking %u pages that could not be reset\n",
			  cache->name, nr);
		goto out_block;
	}
out_pages:
	__free_pages(page, order);
out_block:
	kfree(block);
	return err;
}

static void gp_refill_work(struct work_struct *work)
{
	struct grouped_pages_cache *cache =
		container_of(work, struct grouped_pages_cache, refill_work);
	int nid;

	for_each_node_state(nid, GP_NODES) {
		struct gp_node *node = cache->nodes[nid];

		if (!READ_ONCE(node->refill_wanted))
			continue;
		mutex_lock(&node->refill_lock);
		WRITE_ONCE(node->refill_wanted, false);
		/* Until the reserve is whole again, however small the blocks that come. */
		while (READ_ONCE(node->nr_free) <= cache->reserve &&
		       gp_refill(cache, nid, GFP_KERNEL) == nid)
			;
		mutex_unlock(&node->refill_lock);
	}
}

static int gp_pick_node(struct grouped_pages_cache *cache, int nid)
{
	unsigned int nth;

	if (nid != NUMA_NO_NODE) {
		if (nid < 0 || nid >= nr_node_ids || !node_state(nid, GP_NODES))
			return -EINVAL;
		return nid;
	}
	/* One node: no shared counter to bounce between the CPUs on every call. */
	if (num_node_state(GP_NODES) == 1)
		return first_node(node_states[GP_NODES]);
	nth = (unsigned int)atomic_inc_return(&cache->next_node) % num_node_state(GP_NODES);
	for_each_node_state(nid, GP_NODES)
		if (!nth--)
			return nid;
	return first_memory_node;
}

/* Take a page from @node, refilling it when empty. Called with the node's refill_lock free. */
static struct page *gp_take_or_refill(struct grouped_pages_cache *cache, int nid, gfp_t gfp,
				      unsigned long keep)
{
	struct gp_node *node = cache->nodes[nid];
	struct page *page;
	int tries, got;

	page = gp_take(cache, node, keep);
	if (page)
		return page;
	mutex_lock(&node->refill_lock);
	/* A racing caller may have refilled while we waited. */
	for (tries = 0; !page && tries <= cache->reserve; tries++) {
		page = gp_take(cache, node, keep);
		if (page)
			break;
		got = gp_refill(cache, nid, gfp);
		if (got < 0)
			break;
		/* A __GFP_NOFAIL caller's page from another node: for it, reserve or not. */
		if (got != nid) {
			page = gp_take(cache, cache->nodes[got], 0);
			break;
		}
	}
	if (!page)
		page = gp_take(cache, node, keep);
	mutex_unlock(&node->refill_lock);
	return page;
}

/* Cached pages may be write-protected: clear them inside the protection's window. */
static void gp_clear_page(struct grouped_pages_cache *cache, struct page *page)
{
	unsigned long saved = 0;

	if (cache->prot->write_begin)
		saved = cache->prot->write_begin();
	clear_highpage(page);
	if (cache->prot->write_end)
		cache->prot->write_end(saved);
}

/**
 * grouped_pages_alloc() - allocate one page from a grouped page cache
 * @cache: the cache
 * @nid: node to allocate on, or NUMA_NO_NODE to spread over the nodes in turn
 *	(and take another node's cached page when the chosen one cannot serve).
 *	Only nodes with normal memory are served: an explicit node whose memory
 *	is all ZONE_MOVABLE (or that has none) gets NULL, and NUMA_NO_NODE never
 *	picks one.
 * @gfp: allocation flags. Without __GFP_DIRECT_RECLAIM the call never sleeps:
 *	it takes a cached page (the reserve included) or fails, and schedules
 *	a refill. GFP_NOFS and GFP_NOIO hold while the protection is applied.
 *	A refill tries a whole block without reclaim, then one page with the
 *	caller's flags (see grouped_pages_block_gfp()): __GFP_NORETRY, __GFP_RETRY_MAYFAIL,
 *	__GFP_HIGH, __GFP_NOMEMALLOC and __GFP_NOWARN mean what they mean to the
 *	page allocator. With __GFP_NOFAIL (which needs __GFP_DIRECT_RECLAIM, as
 *	in the page allocator) the call waits for memory and never returns NULL,
 *	unless the request itself is invalid (a bad @nid, or __GFP_ZERO below).
 *	__GFP_ZERO is honoured for protections that keep the direct map
 *	writable, refused otherwise. So are init_on_alloc and init_on_free:
 *	pages of other protections are not cleared when they are recycled.
 *
 * Allocations from a task in reclaim (PF_MEMALLOC), such as the cache's own
 * shrinker resetting a protection, may also use the reserve and never refill.
 *
 * Return: a page whose direct-map entry carries the cache's protection, with
 * page->private 0, or NULL.
 */
struct page *grouped_pages_alloc(struct grouped_pages_cache *cache, int nid, gfp_t gfp)
{
	bool may_refill = gfpflags_allow_blocking(gfp) && !(current->flags & PF_MEMALLOC);
	unsigned long keep = may_refill ? cache->reserve : 0;
	bool any_node = nid == NUMA_NO_NODE;
	bool nofail = gfp & __GFP_NOFAIL;
	struct page *page = NULL;
	struct gp_node *node;
	int other;

	might_alloc(gfp);
	/* The page allocator refuses to wait in atomic context for __GFP_NOFAIL too. */
	if (WARN_ON_ONCE(nofail && !gfpflags_allow_blocking(gfp)))
		nofail = false;
	if ((gfp & __GFP_ZERO) && !cache->prot->direct_map_writable)
		goto fail;
	nid = gp_pick_node(cache, nid);
	if (nid < 0)
		goto fail;
	node = cache->nodes[nid];

	for (;;) {
		page = may_refill ? gp_take_or_refill(cache, nid, gfp, keep) :
				    gp_take(cache, node, keep);
		if (!may_refill && READ_ONCE(node->nr_free) <= cache->reserve) {
			WRITE_ONCE(node->refill_wanted, true);
			queue_work(system_unbound_wq, &cache->refill_work);
		}
		/* Without a node asked for, take any node's page rather than fail. */
		if (!page && any_node) {
			for_each_node_state(other, GP_NODES) {
				page = gp_take(cache, cache->nodes[other], keep);
				if (page)
					break;
			}
		}
		if (page || !nofail)
			break;
		/* The last refill attempt had __GFP_NOFAIL, yet protecting its page failed. */
		memalloc_retry_wait(gfp);
	}
	if (!page)
		goto fail;
	/* As the page allocator: a page cleared when freed needs no clearing now. */
	if (cache->prot->direct_map_writable && want_init_on_alloc(gfp) && !want_init_on_free())
		gp_clear_page(cache, page);
	return page;

fail:
	atomic_long_inc(&cache->counters.alloc_failures);
	return NULL;
}
EXPORT_SYMBOL_GPL(grouped_pages_alloc);

static void gp_bad_free(struct grouped_pages_cache *cache, struct page *page, const char *what)
{
	atomic_long_inc(&cache->counters.bad_frees);
	WARN_ONCE(1, "grouped_pages: %s: refusing to free pfn %#lx: %s\n",
		  cache->name, page_to_pfn(page), what);
}

/**
 * grouped_pages_free() - give a page back to the cache it came from
 * @cache: the cache that handed out @page
 * @page: the page
 *
 * The page keeps its protection while cached, first on this CPU's list of free
 * pages (GP_PCP_HIGH of them per node), then in its block. Freeing a page that
 * is not from @cache, or freeing a page twice, is refused with a warning and
 * changes nothing: the cache keeps its own value in page->private while a page
 * is free, so a user must not leave that value there (the cache's address with
 * bit 0 set; no pointer or lock is). May be called from any context.
 */
void grouped_pages_free(struct grouped_pages_cache *cache, struct page *page)
{
	unsigned long pfn = page_to_pfn(page), mark = gp_free_mark(cache), seen, flags;
	struct gp_block *block;
	struct gp_node *node;
	struct gp_pcp *pcp;

	/*
	 * The check that the page is ours and the claim are one RCU read-side
	 * section: a page the shrinker gives back keeps the cache's mark until
	 * a grace period has passed (gp_release_runs()), so a second free
	 * racing with it finds the mark and is refused, and never marks a page
	 * the page allocator owns.
	 */
	rcu_read_lock();
	block = xa_load(&cache->blocks, pfn);
	if (!block || !gp_block_has(block, pfn)) {
		rcu_read_unlock();
		gp_bad_free(cache, page, "not from this cache");
		return;
	}
	node = cache->nodes[block->nid];
	if (unlikely(cache->claim_hook))
		cache->claim_hook(cache->claim_hook_arg);
	/* Of two frees of one page, racing or not, exactly one marks it. */
	seen = READ_ONCE(page->private);
	if (seen == mark || cmpxchg(&page->private, seen, mark) != seen) {
		rcu_read_unlock();
		gp_bad_free(cache, page, "double free");
		return;
	}
	rcu_read_unlock();
	/* Not on any list yet: nobody else can take it while it is cleared. */
	if (cache->prot->direct_map_writable && want_init_on_free())
		gp_clear_page(cache, page);
	kasan_poison_pages(page, 0, false);

	pcp = raw_cpu_ptr(node->pcp);
	spin_lock_irqsave(&pcp->lock, flags);
	if (pcp->count == GP_PCP_HIGH)
		gp_pcp_drain(node, pcp, GP_PCP_BATCH);
	pcp->free[pcp->count].page = page;
	pcp->free[pcp->count++].block = block;
	spin_unlock_irqrestore(&pcp->lock, flags);
	this_cpu_dec(*cache->in_use);
}
EXPORT_SYMBOL_GPL(grouped_pages_free);

/**
 * grouped_pages_owns() - whether a page belongs to a cache
 * @cache: the cache
 * @page: any page
 *
 * Takes no lock: the page-table free path asks it for every table.
 *
 * Return: true if @page is one of @cache's pages (in use or free), so that a
 * caller with pages from several sources knows where to free it. Exact for a
 * page the caller holds; for any other page, a snapshot.
 */
bool grouped_pages_owns(struct grouped_pages_cache *cache, struct page *page)
{
	unsigned long pfn = page_to_pfn(page);
	struct gp_block *block;
	bool owned;

	rcu_read_lock();
	block = xa_load(&cache->blocks, pfn);
	owned = block && gp_block_has(block, pfn);
	rcu_read_unlock();
	return owned;
}
EXPORT_SYMBOL_GPL(grouped_pages_owns);

/*
 * The pages of a run given back, a grace period after they left the cache's
 * index and bitmaps: only now may they lose the cache's mark and reach the
 * page allocator (see grouped_pages_free()).
 */
static void gp_free_run_rcu(struct rcu_head *head)
{
	struct page *first = container_of(head, struct page, rcu_head);
	unsigned long i, nr = first->index;

	first->index = 0;
	for (i = 0; i < nr; i++) {
		struct page *page = nth_page(first, i);

		set_page_private(page, 0);
		__free_page(page);
	}
}

/*
 * Give the pages marked in @release back to the page allocator, one reset per
 * contiguous run, after a grace period (gp_free_run_rcu()). Runs whose reset
 * fails stay owned: they are returned in @release for the caller to put back.
 */
static unsigned long gp_release_runs(struct grouped_pages_cache *cache,
				     const struct gp_block *block, unsigned long *release)
{
	unsigned int nbits = gp_block_pages(block), start, end;
	unsigned long freed = 0;

	for_each_set_bitrange(start, end, release, nbits) {
		struct page *page = pfn_to_page(block->pfn + start);

		if (gp_reset(cache, page, end - start))
			continue;
		/* Before the pages can reach another block of this cache. */
		gp_unindex_pages(cache, block->pfn + start, end - start);
		/* The run's first page is ours alone until then: it carries the run. */
		page->index = end - start;
		call_rcu(&page->rcu_head, gp_free_run_rcu);
		bitmap_clear(release, start, end - start);
		freed += end - start;
	}
	return freed;
}

static void gp_put_back(struct gp_node *node, struct gp_block *block,
			const unsigned long *kept)
{
	unsigned int nr = bitmap_weight(kept, gp_block_pages(block));
	unsigned long flags;

	if (!nr)
		return;
	spin_lock_irqsave(&node->lock, flags);
	bitmap_or(block->present, block->present, kept, gp_block_pages(block));
	bitmap_or(block->free, block->free, kept, gp_block_pages(block));
	block->nr_present += nr;
	block->nr_free += nr;
	node->nr_free += nr;
	if (block->dead) {
		block->dead = false;
		node->nr_blocks++;
		list_add_tail(&block->list, &node->whole_free);
	}
	gp_relist(node, block);
	spin_unlock_irqrestore(&node->lock, flags);
}

/* Off the node's lists, under its lock: lookups refuse its pages, gp_put_back() revives it. */
static void gp_retire_block(struct gp_node *node, struct gp_block *block)
{
	list_del_init(&block->list);
	block->dead = true;
	node->nr_blocks--;
}

/* Blocks are added at the head of their list: the tail is the one left alone longest. */
static struct gp_block *gp_oldest(struct list_head *list)
{
	return list_empty(list) ? NULL : list_last_entry(list, struct gp_block, list);
}

/* Its pages are gone from the index already; lookups may still hold the block. */
static void gp_forget_block(struct gp_block *block)
{
	kfree_rcu(block, rcu);
}

/*
 * Free whole free blocks, oldest first, keeping @keep free pages cached.
 * A block with every page free is reset in one call, so its mapping stays large.
 * Stops at a block whose reset failed, put back and returned in @stuck.
 */
static unsigned long gp_free_whole_blocks(struct grouped_pages_cache *cache, struct gp_node *node,
					  unsigned long target, unsigned long keep,
					  struct gp_block **stuck)
{
	unsigned long release[GP_MAP_LONGS];
	unsigned long freed = 0, flags;
	struct gp_block *block;

	while (freed < target) {
		spin_lock_irqsave(&node->lock, flags);
		block = gp_oldest(&node->whole_free);
		if (!block || node->nr_free < keep + block->nr_free) {
			spin_unlock_irqrestore(&node->lock, flags);
			break;
		}
		gp_retire_block(node, block);
		node->nr_free -= block->nr_free;
		bitmap_copy(release, block->free, gp_block_pages(block));
		bitmap_zero(block->free, gp_block_pages(block));
		bitmap_zero(block->present, gp_block_pages(block));
		block->nr_free = 0;
		block->nr_present = 0;
		spin_unlock_irqrestore(&node->lock, flags);

		freed += gp_release_runs(cache, block, release);
		if (!bitmap_empty(release, gp_block_pages(block))) {
			gp_put_back(node, block, release);
			*stuck = block;
			break;
		}
		atomic_long_inc(&cache->counters.whole_blocks_freed);
		gp_forget_block(block);
	}
	return freed;
}

/* Give back free pages of blocks that still have pages in use, keeping @keep free pages. */
static unsigned long gp_break_partial_blocks(struct grouped_pages_cache *cache,
					     struct gp_node *node, unsigned long target,
					     unsigned long keep)
{
	unsigned long release[GP_MAP_LONGS];
	unsigned long freed = 0, flags, take, idx;
	struct gp_block *block;
	unsigned int passes;

	for (passes = 0; freed < target && passes < 64; passes++) {
		spin_lock_irqsave(&node->lock, flags);
		/* Never a whole free block: it goes back whole or stays. */
		block = gp_oldest(&node->partial);
		if (!block || node->nr_free <= keep) {
			spin_unlock_irqrestore(&node->lock, flags);
			break;
		}
		take = min3((unsigned long)block->nr_free, node->nr_free - keep, target - freed);
		bitmap_zero(release, gp_block_pages(block));
		for_each_set_bit(idx, block->free, gp_block_pages(block)) {
			if (!take--)
				break;
			__set_bit(idx, release);
		}
		take = bitmap_weight(release, gp_block_pages(block));
		bitmap_andnot(block->free, block->free, release, gp_block_pages(block));
		bitmap_andnot(block->present, block->present, release, gp_block_pages(block));
		block->nr_free -= take;
		block->nr_present -= take;
		node->nr_free -= take;
		/* A partly used block keeps a page in use: it is never emptied here. */
		gp_relist(node, block);
		spin_unlock_irqrestore(&node->lock, flags);

		atomic_long_inc(&cache->counters.partial_breaks);
		freed += gp_release_runs(cache, block, release);
		if (!bitmap_empty(release, gp_block_pages(block))) {
			gp_put_back(node, block, release);
			break;
		}
	}
	return freed;
}

static bool gp_reclaim_desperate(const struct shrink_control *sc)
{
	return sc->priority < GP_BREAK_PRIORITY;
}

/* What gp_shrink_count() has found so far. */
struct gp_count {
	unsigned long avail;	/* free pages not counted yet */
	unsigned long whole;	/* pages of blocks a scan would give back whole */
	unsigned long in_whole;	/* pages of every block that is, or may be, whole */
	bool room;		/* the reserve left room for the last block */
};

/* Blocks go back whole, oldest first, as long as the reserve stays free. */
static void gp_count_whole(struct grouped_pages_cache *cache, struct gp_count *c,
			   unsigned int nr_pages)
{
	c->in_whole += nr_pages;
	if (c->room && c->avail >= cache->reserve + nr_pages) {
		c->avail -= nr_pages;
		c->whole += nr_pages;
	} else {
		c->room = false;
	}
}

/* Blocks looked at for pages on CPUs' lists: their GP_PCP_HIGH pages rarely span more. */
#define GP_COUNT_MAX_BLOCKS	64

/* A block counts as whole if the pages it misses may all be on CPUs' lists (@budget). */
static void gp_count_completed(struct grouped_pages_cache *cache, struct gp_count *c,
			       const struct gp_block *block, unsigned long *budget,
			       unsigned int *walked)
{
	unsigned int missing = block->nr_present - block->nr_free;

	if (!*budget || missing > *budget || ++*walked > GP_COUNT_MAX_BLOCKS)
		return;
	*budget -= missing;
	gp_count_whole(cache, c, block->nr_present);
}

/*
 * What a scan would give back: the same rules as gp_shrink_scan(), without
 * resetting. Reclaim counts far more often than it scans, so counting leaves
 * the CPUs' lists alone (the scan drains them): a block whose missing pages
 * could all be waiting on those lists counts as whole, as the scan's drain
 * may make it.
 */
static unsigned long gp_shrink_count(struct shrinker *shrinker, struct shrink_control *sc)
{
	struct grouped_pages_cache *cache = shrinker->private_data;
	struct gp_node *node = cache->nodes[sc->nid];
	unsigned long on_cpus = gp_pcp_pages(node), budget = on_cpus, flags, free;
	struct gp_count c = { .room = true };
	unsigned int walked = 0;
	struct gp_block *block;

	spin_lock_irqsave(&node->lock, flags);
	free = node->nr_free + on_cpus;
	if (!free) {
		spin_unlock_irqrestore(&node->lock, flags);
		return SHRINK_EMPTY;
	}
	c.avail = free;
	list_for_each_entry_reverse(block, &node->whole_free, list)
		gp_count_whole(cache, &c, block->nr_present);
	/* A small fallback block whose every free page is on a CPU's list counts as full. */
	list_for_each_entry_reverse(block, &node->partial, list)
		gp_count_completed(cache, &c, block, &budget, &walked);
	list_for_each_entry_reverse(block, &node->full, list)
		gp_count_completed(cache, &c, block, &budget, &walked);
	if (gp_reclaim_desperate(sc) && c.avail > cache->reserve)
		/* Free pages of partly used blocks, down to the reserve. */
		c.whole += min(free - c.in_whole, c.avail - cache->reserve);
	spin_unlock_irqrestore(&node->lock, flags);
	return c.whole;
}

/*
 * Resetting a protection may change the direct map, which can allocate page
 * tables with GFP_KERNEL: only callers that may reclaim, do I/O and enter the
 * filesystem may scan. Waking kswapd is not needed: THP's direct compaction
 * (GFP_TRANSHUGE) reclaims without that bit.
 */
static bool gp_shrink_allowed(gfp_t gfp)
{
	const gfp_t needed = __GFP_DIRECT_RECLAIM | __GFP_IO | __GFP_FS;

	return (gfp & needed) == needed;
}

static unsigned long gp_shrink_scan(struct shrinker *shrinker, struct shrink_control *sc)
{
	struct grouped_pages_cache *cache = shrinker->private_data;
	struct gp_node *node = cache->nodes[sc->nid];
	struct gp_block *stuck = NULL;
	unsigned int noreclaim;
	unsigned long freed;

	if (!gp_shrink_allowed(sc->gfp_mask))
		return SHRINK_STOP;
	/*
	 * A scan at work resets protections and flushes every CPU's TLB: kswapd
	 * and gentle direct reclaim do not sleep behind it, the memory it frees
	 * reaches them anyway. Only a desperate pass (and drop_caches) waits
	 * for its turn: it needs what the cache holds, all of it.
	 */
	if (!gp_reclaim_desperate(sc) || current_is_kswapd()) {
		if (!mutex_trylock(&node->shrink_lock))
			return SHRINK_STOP;
	} else {
		mutex_lock(&node->shrink_lock);
	}
	atomic_long_inc(&cache->counters.shrinker_scans);
	gp_drain_node(node);
	/* Allocations made while resetting may use the reserve and must not refill. */
	noreclaim = memalloc_noreclaim_save();
	freed = gp_free_whole_blocks(cache, node, sc->nr_to_scan, cache->reserve, &stuck);
	/* After a failed reset, retrying the same pages now would fail again. */
	if (freed < sc->nr_to_scan && !stuck && gp_reclaim_desperate(sc))
		freed += gp_break_partial_blocks(cache, node, sc->nr_to_scan - freed,
						 cache->reserve);
	memalloc_noreclaim_restore(noreclaim);
	mutex_unlock(&node->shrink_lock);
	atomic_long_add(freed, &cache->counters.shrinker_freed);
	return freed ? freed : SHRINK_STOP;
}

/* Exact when nothing is allocated or freed meanwhile (at destroy); a snapshot otherwise. */
static unsigned long gp_pages_in_use(struct grouped_pages_cache *cache)
{
	long in_use = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		in_use += *per_cpu_ptr(cache->in_use, cpu);
	return max(in_use, 0L);
}

/**
 * grouped_pages_get_stats() - read a cache's counters
 * @cache: the cache
 * @stats: filled with a snapshot; counters move on while it is taken
 */
void grouped_pages_get_stats(struct grouped_pages_cache *cache, struct grouped_pages_stats *stats)
{
	struct gp_counters *c = &cache->counters;
	int nid;

	*stats = (struct grouped_pages_stats){
		.fallback_pages = atomic_long_read(&c->fallback_pages),
		.refills = atomic_long_read(&c->refills),
		.direct_map_splits = atomic_long_read(&c->direct_map_splits),
		.direct_map_collapses = atomic_long_read(&c->direct_map_collapses),
		.shrinker_scans = atomic_long_read(&c->shrinker_scans),
		.shrinker_freed = atomic_long_read(&c->shrinker_freed),
		.whole_blocks_freed = atomic_long_read(&c->whole_blocks_freed),
		.partial_breaks = atomic_long_read(&c->partial_breaks),
		.alloc_failures = atomic_long_read(&c->alloc_failures),
		.apply_failures = atomic_long_read(&c->apply_failures),
		.reset_failures = atomic_long_read(&c->reset_failures),
		.bad_frees = atomic_long_read(&c->bad_frees),
		.reserve_allocs = atomic_long_read(&c->reserve_allocs),
		.pages_in_use = gp_pages_in_use(cache),
	};
	for_each_node_state(nid, N_MEMORY) {
		stats->blocks += READ_ONCE(cache->nodes[nid]->nr_blocks);
		stats->pages_cached += READ_ONCE(cache->nodes[nid]->nr_free) +
				       gp_pcp_pages(cache->nodes[nid]);
	}
}
EXPORT_SYMBOL_GPL(grouped_pages_get_stats);

static int gp_stats_show(struct seq_file *m, void *unused)
{
	struct grouped_pages_cache *cache = m->private;
	struct grouped_pages_stats s;

	grouped_pages_get_stats(cache, &s);
	seq_printf(m, "protection %s\nreserve %u\n", cache->prot->name, cache->reserve);
	seq_printf(m, "blocks %lu\npages_cached %lu\npages_in_use %lu\nfallback_pages %lu\n",
		   s.blocks, s.pages_cached, s.pages_in_use, s.fallback_pages);
	seq_printf(m, "refills %lu\ndirect_map_splits %lu\ndirect_map_collapses %lu\n",
		   s.refills, s.direct_map_splits, s.direct_map_collapses);
	seq_printf(m, "shrinker_scans %lu\n", s.shrinker_scans);
	seq_printf(m, "shrinker_freed %lu\nwhole_blocks_freed %lu\npartial_breaks %lu\n",
		   s.shrinker_freed, s.whole_blocks_freed, s.partial_breaks);
	seq_printf(m, "alloc_failures %lu\napply_failures %lu\nreset_failures %lu\n",
		   s.alloc_failures, s.apply_failures, s.reset_failures);
	seq_printf(m, "bad_frees %lu\nreserve_allocs %lu\n", s.bad_frees, s.reserve_allocs);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(gp_stats);

static void gp_debugfs_add(struct grouped_pages_cache *cache)
{
	cache->debugfs = debugfs_create_dir(cache->name, gp_debugfs_root);
	debugfs_create_file("stats", 0444, cache->debugfs, cache, &gp_stats_fops);
}

static void gp_free_nodes(struct grouped_pages_cache *cache)
{
	int nid;

	for_each_node(nid) {
		if (cache->nodes[nid])
			free_percpu(cache->nodes[nid]->pcp);
		kfree(cache->nodes[nid]);
	}
}

/**
 * grouped_pages_cache_create() - create a grouped page cache
 * @name: name for the shrinker and debugfs; must stay valid while the cache lives
 * @prot: the protection every block of the cache gets; must outlive the cache
 * @prot_data: passed to @prot's callbacks
 * @reserve_pages: free pages per node kept for atomic callers and for
 *	allocations made while the cache's own shrinker resets a protection
 *	(at most %GROUPED_PAGES_MAX_RESERVE). The shrinker never breaks a whole
 *	free block to keep it, so a node may keep a whole block for the reserve.
 *
 * Return: the cache, or NULL on bad arguments or lack of memory.
 */
struct grouped_pages_cache *
grouped_pages_cache_create(const char *name, const struct grouped_pages_prot *prot,
			   void *prot_data, unsigned int reserve_pages)
{
	struct grouped_pages_cache *cache;
	int nid, cpu;

	if (!name || !prot || !prot->apply || !prot->reset ||
	    reserve_pages > GROUPED_PAGES_MAX_RESERVE)
		return NULL;
	cache = kzalloc(struct_size(cache, nodes, nr_node_ids), GFP_KERNEL);
	if (!cache)
		return NULL;
	cache->name = name;
	cache->prot = prot;
	cache->prot_data = prot_data;
	cache->reserve = reserve_pages;
	xa_init(&cache->blocks);
	INIT_WORK(&cache->refill_work, gp_refill_work);
	cache->in_use = alloc_percpu(long);
	if (!cache->in_use)
		goto out_nodes;
	for_each_node(nid) {
		struct gp_node *node = kzalloc_node(sizeof(*node), GFP_KERNEL,
						    node_state(nid, N_MEMORY) ? nid : NUMA_NO_NODE);

		if (!node)
			goto out_nodes;
		cache->nodes[nid] = node;
		node->pcp = alloc_percpu(struct gp_pcp);
		if (!node->pcp)
			goto out_nodes;
		for_each_possible_cpu(cpu)
			spin_lock_init(&per_cpu_ptr(node->pcp, cpu)->lock);
		spin_lock_init(&node->lock);
		INIT_LIST_HEAD(&node->partial);
		INIT_LIST_HEAD(&node->whole_free);
		INIT_LIST_HEAD(&node->full);
		mutex_init(&node->refill_lock);
		mutex_init(&node->shrink_lock);
	}
	cache->shrinker = shrinker_alloc(SHRINKER_NUMA_AWARE, "grouped_pages-%s", name);
	if (!cache->shrinker)
		goto out_nodes;
	cache->shrinker->count_objects = gp_shrink_count;
	cache->shrinker->scan_objects = gp_shrink_scan;
	cache->shrinker->private_data = cache;
	shrinker_register(cache->shrinker);

	mutex_lock(&gp_caches_lock);
	list_add_tail(&cache->caches, &gp_caches);
	if (gp_debugfs_root)
		gp_debugfs_add(cache);
	mutex_unlock(&gp_caches_lock);
	return cache;

out_nodes:
	gp_free_nodes(cache);
	free_percpu(cache->in_use);
	kfree(cache);
	return NULL;
}
EXPORT_SYMBOL_GPL(grouped_pages_cache_create);

/*
 * Give back every block of a node whose cache is going away. A block whose
 * reset fails is set aside, so the blocks after it are still tried; the pages
 * it keeps are counted in @kept_pages and never freed.
 */
static void gp_destroy_node(struct grouped_pages_cache *cache, struct gp_node *node,
			    unsigned long *kept_blocks, unsigned long *kept_pages)
{
	struct gp_block *block, *next, *stuck;
	LIST_HEAD(failed);

	for (;;) {
		stuck = NULL;
		gp_free_whole_blocks(cache, node, ULONG_MAX, 0, &stuck);
		if (!stuck)
			break;
		spin_lock_irq(&node->lock);
		gp_retire_block(node, stuck);
		node->nr_free -= stuck->nr_free;
		list_add(&stuck->list, &failed);
		spin_unlock_irq(&node->lock);
	}
	list_for_each_entry_safe(block, next, &failed, list) {
		(*kept_blocks)++;
		*kept_pages += block->nr_present;
		list_del(&block->list);
		kfree_rcu(block, rcu);
	}
}

/**
 * grouped_pages_cache_destroy() - give every cached page back and free the cache
 * @cache: the cache
 *
 * Every block is tried, and every run of a block, even after a reset failed:
 * pages whose protection could not be reset stay allocated (unsafe to reuse)
 * and a warning says how many.
 *
 * Return: 0, or -EBUSY (with a warning) while pages are still in use: the
 * cache is then left intact, so nothing leaks and nothing is freed under a user.
 */
int grouped_pages_cache_destroy(struct grouped_pages_cache *cache)
{
	unsigned long in_use, kept_blocks = 0, kept_pages = 0;
	int nid;

	for_each_node_state(nid, N_MEMORY)
		gp_drain_node(cache->nodes[nid]);
	in_use = gp_pages_in_use(cache);
	if (WARN(in_use, "grouped_pages: %s: not destroyed, %lu pages in use\n",
		 cache->name, in_use))
		return -EBUSY;
	shrinker_free(cache->shrinker);
	cancel_work_sync(&cache->refill_work);
	mutex_lock(&gp_caches_lock);
	list_del(&cache->caches);
	debugfs_remove_recursive(cache->debugfs);
	mutex_unlock(&gp_caches_lock);
	for_each_node_state(nid, N_MEMORY) {
		struct gp_node *node = cache->nodes[nid];

		gp_destroy_node(cache, node, &kept_blocks, &kept_pages);
	}
	WARN(kept_blocks, "grouped_pages: %s: %lu pages in %lu blocks could not be reset: kept out of use\n",
	     cache->name, kept_pages, kept_blocks);
	rcu_barrier();
	xa_destroy(&cache->blocks);
	gp_free_nodes(cache);
	free_percpu(cache->in_use);
	kfree(cache);
	return 0;
}
EXPORT_SYMBOL_GPL(grouped_pages_cache_destroy);

static int gp_prot_none_change(struct page *page, unsigned int nr_pages, void *data)
{
	return 0;
}

/* Groups pages without changing the direct map: for generic code and tests. */
const struct grouped_pages_prot grouped_pages_prot_none = {
	.name = "none",
	.apply = gp_prot_none_change,
	.reset = gp_prot_none_change,
	.direct_map_writable = true,
};
EXPORT_SYMBOL_GPL(grouped_pages_prot_none);

struct shrinker *grouped_pages_cache_shrinker(struct grouped_pages_cache *cache)
{
	return cache->shrinker;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_cache_shrinker);

/* For the KUnit suite: make block allocations of the orders in @order_mask fail. */
void grouped_pages_set_failing_orders(struct grouped_pages_cache *cache,
				      unsigned long order_mask)
{
	WRITE_ONCE(cache->failing_orders, order_mask);
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_set_failing_orders);

/*
 * For the KUnit suite: run @hook(@arg) between a free's ownership check and
 * its claim, to put a racing scan in between. Set while no page is freed.
 */
void grouped_pages_set_claim_hook(struct grouped_pages_cache *cache,
				  void (*hook)(void *arg), void *arg)
{
	cache->claim_hook_arg = arg;
	cache->claim_hook = hook;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_set_claim_hook);

void grouped_pages_flush_refill(struct grouped_pages_cache *cache)
{
	flush_work(&cache->refill_work);
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_flush_refill);

unsigned int grouped_pages_block_order(void)
{
	return GP_BLOCK_ORDER;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_block_order);

/* The shrinker's second phase alone, for states its first phase would not leave. */
unsigned long grouped_pages_break_partial(struct grouped_pages_cache *cache, int nid,
					  unsigned long nr_pages)
{
	struct gp_node *node = cache->nodes[nid];
	unsigned int noreclaim;
	unsigned long freed;

	mutex_lock(&node->shrink_lock);
	gp_drain_node(node);
	noreclaim = memalloc_noreclaim_save();
	freed = gp_break_partial_blocks(cache, node, nr_pages, cache->reserve);
	memalloc_noreclaim_restore(noreclaim);
	mutex_unlock(&node->shrink_lock);
	return freed;
}
EXPORT_SYMBOL_IF_KUNIT(grouped_pages_break_partial);

static int __init grouped_pages_debugfs_init(void)
{
	struct grouped_pages_cache *cache;

	mutex_lock(&gp_caches_lock);
	gp_debugfs_root = debugfs_create_dir("grouped_pages", NULL);
	list_for_each_entry(cache, &gp_caches, caches)
		gp_debugfs_add(cache);
	mutex_unlock(&gp_caches_lock);
	return 0;
}

/* After debugfs itself (a core initcall of fs/, linked after mm/). */
postcore_initcall(grouped_pages_debugfs_init);
