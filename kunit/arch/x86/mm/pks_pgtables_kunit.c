// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite of PKS page tables: every level of page table carries the key
 * in the direct map, nothing live lacks it, the direct-map reserve serves
 * splits and refills, page tables are write-protected outside write windows,
 * and interrupts run outside the window they interrupt.
 */

#include <kunit/test.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/delay.h>
#include <linux/efi.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/hrtimer.h>
#include <linux/io.h>
#include <linux/irq_work.h>
#include <linux/kthread.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mmap_lock.h>
#include <linux/set_memory.h>
#include <linux/vmalloc.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/pgalloc.h>
#include <linux/pgtable.h>
#include <linux/pks_pgtables.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include <asm/apicdef.h>
#include <asm/msr.h>
#include <asm/pks.h>
#include <asm/pks_entry.h>
#include <asm/set_memory.h>
#include <asm/tlbflush.h>
#include <asm/trap_pf.h>

static bool pks_on(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return static_branch_likely(&pks_pgtables_enabled);
#else
	return false;
#endif
}

static bool pks_enforcing(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return static_branch_likely(&pks_pgtables_enforcing);
#else
	return false;
#endif
}

/* PKRS outside write windows, and this CPU's cached copy of the MSR. */
static u32 pks_expected_pkrs(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return pks_default_pkrs;
#else
	return 0;
#endif
}

static u32 pks_cached_pkrs(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return this_cpu_read(pks_pkrs);
#else
	return 0;
#endif
}

/* Write windows opened so far, from the status file's counter. */
static unsigned long pks_windows_opened(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return pks_pgtable_windows();
#else
	return 0;
#endif
}

/* PKRS MSR writes on this CPU so far. */
static unsigned long pks_pkrs_writes_here(void)
{
#ifdef CONFIG_PKS_PG_TABLES
	return this_cpu_read(pks_pkrs_writes);
#else
	return 0;
#endif
}

static u64 pks_read_pkrs(void)
{
	u64 pkrs;

	rdmsrl(MSR_IA32_PKRS, pkrs);
	return pkrs;
}

static int pks_suite_init(struct kunit *test)
{
	if (!IS_ENABLED(CONFIG_PKS_PG_TABLES))
		kunit_skip(test, "CONFIG_PKS_PG_TABLES is off: page tables allocated as upstream");
	return 0;
}

static void pks_require(struct kunit *test)
{
	if (!pks_on())
		kunit_skip(test, "PKS page tables off: no PKS, nopkstables or PTI");
}

static void pks_require_enforcing(struct kunit *test)
{
	pks_require(test);
	if (!pks_enforcing())
		kunit_skip(test, "pks_pgtables=permissive: page tables are not write-protected");
}

static unsigned long pks_in_use(bool direct_map)
{
	struct grouped_pages_stats s;

	grouped_pages_get_stats(pks_pgtables_cache(direct_map), &s);
	return s.pages_in_use;
}

#define PKS_CPU_STATE	3

static void pks_read_cpu_state(void *data)
{
	u64 *state = (u64 *)data + smp_processor_id() * PKS_CPU_STATE;

	state[0] = __read_cr4() & X86_CR4_PKS;
	state[1] = pks_read_pkrs();
	state[2] = pks_cached_pkrs();
}

static void pks_test_every_cpu_set_up(struct kunit *test)
{
	u64 *state;
	int cpu;

	pks_require(test);
	if (pks_enforcing())
		KUNIT_EXPECT_EQ(test, (u32)PKS_ENFORCING_PKRS, pks_expected_pkrs());
	else
		KUNIT_EXPECT_EQ(test, 0, pks_expected_pkrs());
	state = kunit_kcalloc(test, nr_cpu_ids * PKS_CPU_STATE, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, state);
	for_each_online_cpu(cpu)
		smp_call_function_single(cpu, pks_read_cpu_state, state, 1);
	for_each_online_cpu(cpu) {
		u64 *cpu_state = state + cpu * PKS_CPU_STATE;

		KUNIT_EXPECT_EQ_MSG(test, (u64)X86_CR4_PKS, cpu_state[0], "CR4.PKS on CPU %d", cpu);
		KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), cpu_state[1],
				    "PKRS on CPU %d", cpu);
		KUNIT_EXPECT_EQ_MSG(test, cpu_state[1], cpu_state[2],
				    "PKRS and its cached copy on CPU %d", cpu);
	}
}

#ifdef CONFIG_HOTPLUG_CPU
static int pks_reset_victim = -1;

/*
 * The last thing the CPU does before it goes down: PKRS gets the value a reset
 * gives it (0, every write allowed) and the cached copy keeps the default, as
 * after a resume from S3. QEMU keeps PKRS across the INIT that brings a CPU
 * back, so without this the CPU would come up with the default it left with.
 */
static int pks_reset_pkrs_on_the_way_down(unsigned int cpu)
{
	if (cpu == READ_ONCE(pks_reset_victim))
		native_wrmsrl(MSR_IA32_PKRS, 0);
	return 0;
}
#endif

/*
 * CR4 pinning sets CR4.PKS as soon as a CPU comes up, long before setup_pks():
 * from that moment PKRS must write-protect page tables. setup_pks() reads the
 * hardware state it finds and counts a CPU that came up unprotected.
 */
static void pks_test_cpu_comes_up_write_protected(struct kunit *test)
{
#ifdef CONFIG_HOTPLUG_CPU
	struct pks_pgtable_faults before, after;
	int victim, state, err;
	u64 *cpu_state;

	pks_require(test);
	if (!pks_enforcing())
		kunit_skip(test, "page tables are not write-protected");
	victim = cpumask_last(cpu_online_mask);
	if (!victim)
		kunit_skip(test, "needs a second online CPU");
	cpu_state = kunit_kcalloc(test, nr_cpu_ids * PKS_CPU_STATE, sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, cpu_state);
	state = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "pks_test:reset_pkrs", NULL,
					  pks_reset_pkrs_on_the_way_down);
	KUNIT_ASSERT_GE(test, state, 0);
	pks_pgtable_read_faults(&before);
	WRITE_ONCE(pks_reset_victim, victim);
	err = remove_cpu(victim);
	WRITE_ONCE(pks_reset_victim, -1);
	cpuhp_remove_state_nocalls(state);
	if (err)
		kunit_skip(test, "CPU %d cannot go offline: %d", victim, err);
	KUNIT_ASSERT_EQ(test, 0, add_cpu(victim));
	pks_pgtable_read_faults(&after);
	KUNIT_EXPECT_EQ_MSG(test, before.unprotected_bringups, after.unprotected_bringups,
			    "CPU %d ran with CR4.PKS set before PKRS write-protected page tables",
			    victim);
	smp_call_function_single(victim, pks_read_cpu_state, cpu_state, 1);
	cpu_state += victim * PKS_CPU_STATE;
	KUNIT_EXPECT_EQ(test, (u64)X86_CR4_PKS, cpu_state[0]);
	KUNIT_EXPECT_EQ(test, (u64)pks_expected_pkrs(), cpu_state[1]);
	KUNIT_EXPECT_EQ(test, cpu_state[1], cpu_state[2]);
#else
	kunit_skip(test, "needs CONFIG_HOTPLUG_CPU");
#endif
}

/* One table of each kind, through the allocators the kernel uses for them. */
enum { PKS_KERNEL_PTE, PKS_USER_PTE, PKS_PMD, PKS_PUD, PKS_P4D, PKS_TABLE_KINDS };

/* The most pages a case takes from a cache to empty it. */
#define PKS_DRAIN_MAX	4096

struct pks_tables {
	struct page *page[PKS_TABLE_KINDS];
	/* PKS_P4D is only made with five-level paging. */
	unsigned int nr;
};

static struct page *pks_table_page(void *table)
{
	return table ? virt_to_page(table) : NULL;
}

static void pks_alloc_tables(struct pks_tables *t)
{
	t->page[PKS_KERNEL_PTE] = pks_table_page(pte_alloc_one_kernel(&init_mm));
	t->page[PKS_USER_PTE] = pte_alloc_one(&init_mm);
	t->page[PKS_PMD] = pks_table_page(pmd_alloc_one(&init_mm, 0));
	t->page[PKS_PUD] = pks_table_page(pud_alloc_one(&init_mm, 0));
	t->nr = PKS_P4D;
	if (pgtable_l5_enabled())
		t->page[t->nr++] = pks_table_page(p4d_alloc_one(&init_mm, 0));
}

static void pks_free_tables(struct pks_tables *t)
{
	struct page **page = t->page;

	if (page[PKS_KERNEL_PTE])
		pte_free_kernel(&init_mm, page_address(page[PKS_KERNEL_PTE]));
	if (page[PKS_USER_PTE])
		pte_free(&init_mm, page[PKS_USER_PTE]);
	if (page[PKS_PMD])
		pmd_free(&init_mm, page_address(page[PKS_PMD]));
	if (page[PKS_PUD])
		pud_free(&init_mm, page_address(page[PKS_PUD]));
	if (t->nr > PKS_P4D && page[PKS_P4D])
		p4d_free(&init_mm, page_address(page[PKS_P4D]));
}

/* Whether every table was had; the tables are freed and the case fails if not. */
static bool pks_tables_all_had(struct kunit *test, struct pks_tables *t, const char *when)
{
	unsigned int kind, missing = 0;

	for (kind = 0; kind < t->nr; kind++) {
		KUNIT_EXPECT_NOT_NULL_MSG(test, t->page[kind], "%s: table kind %u", when, kind);
		missing += !t->page[kind];
	}
	if (missing)
		pks_free_tables(t);
	return !missing;
}

static void pks_test_every_level_is_tagged(struct kunit *test)
{
	struct pks_tables t;
	unsigned long before;
	unsigned int kind;

	pks_require(test);
	before = pks_in_use(false);
	pks_alloc_tables(&t);
	if (!pks_tables_all_had(test, &t, "fresh"))
		return;
	for (kind = 0; kind < t.nr; kind++)
		KUNIT_EXPECT_TRUE_MSG(test, pks_page_has_pgtable_key(t.page[kind]),
				      "table kind %u", kind);
	KUNIT_EXPECT_NULL(test, memchr_inv(page_address(t.page[PKS_KERNEL_PTE]), 0, PAGE_SIZE));
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(pks_pgtables_cache(false), t.page[PKS_PMD]));
	KUNIT_EXPECT_GE(test, pks_in_use(false), before + 4);
	pks_free_tables(&t);
	KUNIT_EXPECT_LE(test, pks_in_use(false), before);
}

static long pks_count_delta(const struct pks_pgtable_counts *now,
			    const struct pks_pgtable_counts *then, bool allocated, int level)
{
	if (allocated)
		return now->allocated[level] - then->allocated[level];
	return now->freed[level] - then->freed[level];
}

/* Other CPUs may make tables meanwhile: each level moved by at least ours. */
static void pks_expect_counted(struct kunit *test, const struct pks_pgtable_counts *then,
			       bool allocated, const unsigned int *ours)
{
	struct pks_pgtable_counts now;
	int level;

	pks_pgtable_read_counts(&now);
	for (level = 0; level < PKS_PGTABLE_LEVELS; level++)
		KUNIT_EXPECT_GE_MSG(test, pks_count_delta(&now, then, allocated, level),
				    (long)ours[level], "%s at level %d",
				    allocated ? "allocated" : "freed", level);
}

static void pks_test_levels_counted(struct kunit *test)
{
	unsigned int ours[PKS_PGTABLE_LEVELS] = {
		[PKS_PGTABLE_PTE] = 2, [PKS_PGTABLE_PMD] = 1, [PKS_PGTABLE_PUD] = 1,
		[PKS_PGTABLE_P4D] = pgtable_l5_enabled() ? 1 : 0,
	};
	struct pks_pgtable_counts before, allocated;
	struct pks_tables t;

	pks_require(test);
	pks_pgtable_read_counts(&before);
	pks_alloc_tables(&t);
	pks_pgtable_read_counts(&allocated);
	pks_expect_counted(test, &before, true, ours);
	pks_free_tables(&t);
	pks_expect_counted(test, &allocated, false, ours);
}

static void pks_expect_all_tagged(struct kunit *test, struct pks_pgtable_walk *walk,
				  int first_level)
{
	int level;

	for (level = first_level; level < 4; level++) {
		if (level == 3 && !pgtable_l5_enabled())
			continue;
		KUNIT_EXPECT_GT_MSG(test, walk->tables[level], 0, "no tables at level %d", level);
		KUNIT_EXPECT_EQ_MSG(test, 0, walk->untagged[level], "untagged at level %d", level);
	}
}

static void pks_test_no_untagged_kernel_tables(struct kunit *test)
{
	struct pks_pgtable_walk walk = {};

	pks_require(test);
	pks_pgtable_walk(&init_mm, &walk);
	pks_expect_all_tagged(test, &walk, 0);
}

/* Addresses in different PGD, PUD and PMD entries: each needs tables of its own. */
static const unsigned long pks_user_addrs[] = {
	0x10000000UL, 0x10200000UL, 0x4000000000UL, 0x7f0000000000UL,
};

/*
 * A user address space is built, faulted in and torn down in this kthread,
 * as fork and exec do; its tables come from the cache and go back to it.
 */
static void pks_test_user_tables_tagged_and_returned(struct kunit *test)
{
	struct pks_pgtable_walk walk = {};
	unsigned long before, during, i;
	struct mm_struct *mm;

	pks_require(test);
	KUNIT_ASSERT_NULL(test, current->mm);
	before = pks_in_use(false);
	mm = mm_alloc();
	KUNIT_ASSERT_NOT_NULL(test, mm);
	mm->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm, &current->signal->rlim[RLIMIT_STACK]);
	kthread_use_mm(mm);
	for (i = 0; i < ARRAY_SIZE(pks_user_addrs); i++) {
		unsigned long addr = vm_mmap(NULL, pks_user_addrs[i], PAGE_SIZE,
					     PROT_READ | PROT_WRITE,
					     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0);

		KUNIT_EXPECT_EQ(test, pks_user_addrs[i], addr);
		KUNIT_EXPECT_EQ(test, 0, put_user(i, (unsigned long __user *)addr));
	}
	kthread_unuse_mm(mm);

	pks_pgtable_walk(mm, &walk);
	pks_expect_all_tagged(test, &walk, 0);
	/* The PGD is one of the cache's tables too. */
	KUNIT_EXPECT_EQ(test, 1, walk.tables[PKS_PGTABLE_PGD]);
	KUNIT_EXPECT_EQ(test, 0, walk.untagged[PKS_PGTABLE_PGD]);
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(pks_pgtables_cache(false),
						   virt_to_page(mm->pgd)));
	during = pks_in_use(false);
	KUNIT_EXPECT_GE(test, during, before + ARRAY_SIZE(pks_user_addrs));

	mmput(mm);
	/*
	 * Tables freed through the mmu_gather go back after an RCU grace period.
	 * The PGD goes back with the mm itself, when the last lazy-TLB user of
	 * it switches to another mm: this kthread and the idle task keep it
	 * while no user task runs (as at boot). The selftest sees PGDs freed.
	 */
	rcu_barrier();
	KUNIT_EXPECT_LE(test, pks_in_use(false), before + 1);
}

static void pks_shrink_all(struct grouped_pages_cache *cache)
{
	struct shrinker *shrinker = grouped_pages_cache_shrinker(cache);
	int nid;

	for_each_node_state(nid, N_MEMORY) {
		struct shrink_control sc = {
			.gfp_mask = GFP_KERNEL, .nid = nid, .nr_to_scan = ULONG_MAX,
		};

		shrinker->scan_objects(shrinker, &sc);
	}
}

/* One table of every level; a table carries the key exactly when it is the cache's. */
static void pks_alloc_every_level(struct kunit *test, const char *when)
{
	struct grouped_pages_cache *cache = pks_pgtables_cache(false);
	struct pks_tables t;
	unsigned int kind;

	pks_alloc_tables(&t);
	if (!pks_tables_all_had(test, &t, when))
		return;
	/* A table the cache could not give has the key once the adopting work ran. */
	pks_pgtable_flush_untag();
	for (kind = 0; kind < t.nr; kind++) {
		KUNIT_EXPECT_TRUE_MSG(test, pks_page_has_pgtable_key(t.page[kind]),
				      "%s: table kind %u (%s) lacks the key", when, kind,
				      grouped_pages_owns(cache, t.page[kind]) ? "from the cache" :
				      "from the page allocator");
	}
	pks_free_tables(&t);
}

/*
 * Take the cache's pages until it has to refill: the shrinker keeps a whole
 * block for the reserve rather than break it. Return how many were taken.
 */
static unsigned int pks_take_until_refill(struct kunit *test, struct grouped_pages_cache *cache,
					  struct page **taken, unsigned int max)
{
	struct grouped_pages_stats s;
	unsigned long refills;
	unsigned int n;

	grouped_pages_get_stats(cache, &s);
	refills = s.refills;
	for (n = 0; n < max; n++) {
		taken[n] = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, taken[n]);
		grouped_pages_get_stats(cache, &s);
		if (s.refills > refills)
			return n + 1;
	}
	KUNIT_FAIL(test, "%u pages taken after shrinking and no refill", max);
	return max;
}

/*
 * Memory pressure: the shrinker took all it may. Once the cache is down to
 * its reserve, every level still gets a table, from a refilled block; and with
 * no block to be had at all, an untagged one from the page allocator, the
 * reserve left to atomic callers.
 */
static void pks_test_every_level_under_pressure(struct kunit *test)
{
	struct grouped_pages_cache *cache = pks_pgtables_cache(false);
	/* The shrinker may keep a whole block per node for the reserve. */
	unsigned int max = num_node_state(N_MEMORY) * (1U << grouped_pages_block_order()) + 1;
	unsigned int n, i;
	struct page **taken;

	pks_require(test);
	taken = kunit_kcalloc(test, max, sizeof(*taken), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, taken);
	pks_shrink_all(cache);
	n = pks_take_until_refill(test, cache, taken, max);
	pks_alloc_every_level(test, "after shrinking");
	for (i = 0; i < n; i++)
		grouped_pages_free(cache, taken[i]);

	pks_shrink_all(cache);
	grouped_pages_set_failing_orders(cache, GENMASK(grouped_pages_block_order(), 0));
	/* Down to the reserve, which sleeping callers leave alone. */
	for (n = 0; n < max; n++) {
		taken[n] = grouped_pages_alloc(cache, NUMA_NO_NODE, GFP_KERNEL);
		if (!taken[n])
			break;
	}
	KUNIT_EXPECT_LT(test, n, max);
	pks_alloc_every_level(test, "with no block to be had");
	grouped_pages_set_failing_orders(cache, 0);
	for (i = 0; i < n; i++)
		grouped_pages_free(cache, taken[i]);
}

/*
 * The cache refills a node from that node's memory alone. With this CPU's
 * node full and its cached pages taken, page tables still carry the key:
 * from another node's cache, or adopted and tagged soon after.
 */
static void pks_test_tables_tagged_with_local_node_full(struct kunit *test)
{
	struct grouped_pages_cache *cache = pks_pgtables_cache(false);
	struct page **taken;
	struct pks_tables t;
	unsigned int n = 0, kind;
	LIST_HEAD(hog);
	int nid;

	pks_require(test);
	if (num_node_state(N_MEMORY) < 2)
		kunit_skip(test, "needs two nodes with memory (numa=fake=2)");
	taken = kunit_kcalloc(test, PKS_DRAIN_MAX, sizeof(*taken), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, taken);
	migrate_disable();
	nid = numa_node_id();
	grouped_pages_test_exhaust_node(nid, &hog);
	/* What the cache holds on this node, down to what no refill can replace. */
	while (n < PKS_DRAIN_MAX) {
		taken[n] = grouped_pages_alloc(cache, nid, GFP_KERNEL | __GFP_NOWARN);
		if (!taken[n])
			break;
		n++;
	}
	pks_alloc_tables(&t);
	grouped_pages_test_release_hog(&hog);
	migrate_enable();
	while (n)
		grouped_pages_free(cache, taken[--n]);
	if (!pks_tables_all_had(test, &t, "node full"))
		return;
	pks_pgtable_flush_untag();
	for (kind = 0; kind < t.nr; kind++)
		KUNIT_EXPECT_TRUE_MSG(test, pks_page_has_pgtable_key(t.page[kind]),
				      "node %d full: table kind %u (node %d) lacks the key", nid,
				      kind, page_to_nid(t.page[kind]));
	pks_free_tables(&t);
}

static void pks_test_atomic_alloc(struct kunit *test)
{
	struct ptdesc *ptdesc;
	unsigned long flags;

	pks_require(test);
	local_irq_save(flags);
	ptdesc = pagetable_alloc(GFP_ATOMIC | __GFP_ZERO, 0);
	local_irq_restore(flags);
	KUNIT_ASSERT_NOT_NULL(test, ptdesc);
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(ptdesc_page(ptdesc)));
	pagetable_free(ptdesc);
}

/*
 * With no 2M block to be had, a single page gets the key: its 2M mapping is
 * split, and the new page table must come from the direct-map reserve.
 */
static void pks_test_fallback_split_uses_reserve(struct kunit *test)
{
	struct grouped_pages_cache *cache = pks_pgtables_cache(false);
	struct grouped_pages_stats s;
	struct ptdesc **pages;
	unsigned long refills;
	unsigned int n = 0, level, i;
	pmd_t *pmd;

	pks_require(test);
	pages = kunit_kcalloc(test, 1024, sizeof(*pages), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pages);
	grouped_pages_get_stats(cache, &s);
	refills = s.refills;
	grouped_pages_set_failing_orders(cache, GENMASK(grouped_pages_block_order(), 1));
	while (n < 1024) {
		pages[n] = pagetable_alloc(GFP_KERNEL, 0);
		if (!pages[n])
			break;
		n++;
		grouped_pages_get_stats(cache, &s);
		if (s.refills > refills)
			break;
	}
	grouped_pages_set_failing_orders(cache, 0);
	KUNIT_ASSERT_GT(test, s.refills, refills);
	KUNIT_ASSERT_GT(test, n, 0);
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(ptdesc_page(pages[n - 1])));
	KUNIT_ASSERT_NOT_NULL(test, lookup_address((unsigned long)ptdesc_address(pages[n - 1]),
						   &level));
	if (level == PG_LEVEL_4K) {
		pmd = lookup_pmd_address((unsigned long)ptdesc_address(pages[n - 1]));
		KUNIT_ASSERT_NOT_NULL(test, pmd);
		KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(pmd_page(*pmd)));
	}
	for (i = 0; i < n; i++)
		pagetable_free(pages[i]);
}

/*
 * Tagging one page of a block mapped at 2M splits the mapping: the new PTE
 * table comes from the direct-map reserve and carries the key itself.
 */
static void pks_test_split_takes_table_from_reserve(struct kunit *test)
{
	struct grouped_pages_cache *dmap = pks_pgtables_cache(true);
	struct page *block, *tagged;
	unsigned long dmap_before;
	unsigned int level;
	pmd_t *pmd;

	pks_require(test);
	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only");
	block = alloc_pages(GFP_KERNEL | __GFP_NOWARN, PMD_ORDER);
	KUNIT_ASSERT_NOT_NULL(test, block);
	KUNIT_ASSERT_NOT_NULL(test, lookup_address((unsigned long)page_address(block), &level));
	if (level == PG_LEVEL_4K) {
		__free_pages(block, PMD_ORDER);
		kunit_skip(test, "no 2M block mapped large is left to split");
	}
	tagged = block + 5;
	dmap_before = pks_in_use(true);
	KUNIT_ASSERT_EQ(test, 0, set_memory_pkey((unsigned long)page_address(tagged), 1,
						 PKS_KEY_PGTABLES));
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(tagged));
	KUNIT_EXPECT_FALSE(test, pks_page_has_pgtable_key(block));
	KUNIT_EXPECT_NOT_NULL(test, lookup_address((unsigned long)page_address(tagged), &level));
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);
	pmd = lookup_pmd_address((unsigned long)page_address(tagged));
	KUNIT_ASSERT_NOT_NULL(test, pmd);
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(dmap, pmd_page(*pmd)));
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(pmd_page(*pmd)));
	KUNIT_EXPECT_GT(test, pks_in_use(true), dmap_before);
	KUNIT_EXPECT_EQ(test, 0, set_memory_pkey((unsigned long)page_address(tagged), 1,
						 PKS_KEY_DEFAULT));
	__free_pages(block, PMD_ORDER);
}

/* The key in the entry (large or 4K) that maps @addr, kernel image alias included. */
static int pks_key_at(struct kunit *test, const void *addr)
{
	unsigned int level;
	pte_t *pte = lookup_address((unsigned long)addr, &level);

	KUNIT_ASSERT_NOT_NULL_MSG(test, pte, "%p is not mapped", addr);
	return (pte_val(*pte) & _PAGE_PKEY_MASK) >> _PAGE_BIT_PKEY_BIT0;
}

/*
 * Tagging a boot table keys its kernel-image alias too (cpa_process_alias()):
 * a stray write through a symbol's address, as an overflowing neighbour in
 * .data would make, faults like one through the direct map. The kernel's PGD
 * (swapper_pg_dir) sits next to those tables in the image and gets the key
 * like them; init_mm's PGD entries are written through that image address.
 */
static void pks_test_kernel_pgd_and_image_alias_tagged(struct kunit *test)
{
	void *pgd_direct = __va(__pa_symbol(swapper_pg_dir));
	struct pks_pgtable_walk walk = {};
	pgd_t entry = READ_ONCE(swapper_pg_dir[0]);
	int through_image;

	pks_require(test);
	KUNIT_EXPECT_EQ_MSG(test, PKS_KEY_PGTABLES, pks_key_at(test, pgd_direct),
			    "swapper_pg_dir through the direct map");
	KUNIT_EXPECT_EQ_MSG(test, PKS_KEY_PGTABLES, pks_key_at(test, swapper_pg_dir),
			    "swapper_pg_dir through the kernel image");
	KUNIT_EXPECT_EQ_MSG(test, PKS_KEY_PGTABLES, pks_key_at(test, level3_kernel_pgt),
			    "level3_kernel_pgt through the kernel image");
	pks_pgtable_walk(&init_mm, &walk);
	KUNIT_EXPECT_EQ(test, 1, walk.tables[PKS_PGTABLE_PGD]);
	KUNIT_EXPECT_EQ(test, 0, walk.untagged[PKS_PGTABLE_PGD]);
	if (!pks_enforcing())
		return;
	/* Entry 0 (user half, unused by init_mm) written with the value it holds. */
	through_image = copy_to_kernel_nofault(&swapper_pg_dir[0], &entry, sizeof(entry));
	KUNIT_EXPECT_EQ_MSG(test, -EFAULT, through_image,
			    "a write to swapper_pg_dir outside a window");
}

/*
 * Split the 2M mapping around @addr as a passing user does, not on purpose:
 * one page read-only and writable again, 512 agreeing entries a collapse may
 * merge. set_memory_4k() marks its split to be kept and would not do.
 */
static int pks_split_unmarked(unsigned long addr)
{
	struct page *page = virt_to_page((void *)addr);
	int err = grouped_pages_prot_read_only.apply(page, 1, NULL);

	return err ?: grouped_pages_prot_read_only.reset(page, 1, NULL);
}

/*
 * A free 2M block mapped by one large entry. One that was split earlier and is
 * whole and free again is collapsed first (unlocked, the collapse the walk
 * case holds off); one that cannot be mapped large skips the case.
 */
static struct page *pks_alloc_large_block(struct kunit *test)
{
	struct page *block = alloc_pages(GFP_KERNEL | __GFP_NOWARN, PMD_ORDER);
	unsigned long addr;
	unsigned int level;

	KUNIT_ASSERT_NOT_NULL(test, block);
	addr = (unsigned long)page_address(block);
	KUNIT_ASSERT_NOT_NULL(test, lookup_address(addr, &level));
	if (level == PG_LEVEL_4K && set_memory_collapse(addr, 1) < 1) {
		__free_pages(block, PMD_ORDER);
		kunit_skip(test, "the 2M block cannot be mapped large (mixed protections)");
	}
	return block;
}

/*
 * The boot walk tags the tables it finds while holding init_mm's mmap lock.
 * A collapse freeing one of them in between (the direct-map reserve's refill
 * collapses on another CPU while the walk's splits drain it) would hand the
 * page allocator a page that carries the key: collapse stays out meanwhile.
 */
static void pks_test_collapse_stays_out_of_table_walks(struct kunit *test)
{
	struct page *block;
	unsigned long addr;
	unsigned int level;
	int collapsed;

	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only, nothing collapses");
	block = pks_alloc_large_block(test);
	addr = (unsigned long)page_address(block);
	KUNIT_ASSERT_EQ(test, 0, pks_split_unmarked(addr));

	mmap_write_lock(&init_mm);
	lookup_address(addr, &level);
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);
	collapsed = set_memory_collapse(addr, 1);
	lookup_address(addr, &level);
	mmap_write_unlock(&init_mm);
	KUNIT_EXPECT_EQ_MSG(test, 0, collapsed, "collapsed during a walk");
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);

	KUNIT_EXPECT_GE(test, set_memory_collapse(addr, 1), 1);
	lookup_address(addr, &level);
	KUNIT_EXPECT_NE(test, PG_LEVEL_4K, level);
	__free_pages(block, PMD_ORDER);
}

/*
 * Hot-remove frees the direct-map tables of the memory it removes, under
 * init_mm's page_table_lock, not cpa_lock, and whether a section is online
 * changes only inside a hotplug operation. A collapse that checked its range
 * online and then freed the same tables would free them twice: no collapse
 * runs while a hotplug operation does.
 */
static void pks_test_no_collapse_during_memory_hotplug(struct kunit *test)
{
	struct page *block;
	unsigned long addr;
	unsigned int level;
	int collapsed;

	if (!IS_ENABLED(CONFIG_MEMORY_HOTPLUG))
		kunit_skip(test, "CONFIG_MEMORY_HOTPLUG is off (configs/hotplug.config has it)");
	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only, nothing collapses");
	block = pks_alloc_large_block(test);
	addr = (unsigned long)page_address(block);
	KUNIT_ASSERT_EQ(test, 0, pks_split_unmarked(addr));

	mem_hotplug_begin();
	collapsed = set_memory_collapse(addr, 1);
	lookup_address(addr, &level);
	mem_hotplug_done();
	KUNIT_EXPECT_EQ_MSG(test, 0, collapsed, "collapsed during a memory hotplug operation");
	KUNIT_EXPECT_EQ(test, PG_LEVEL_4K, level);

	KUNIT_EXPECT_GE(test, set_memory_collapse(addr, 1), 1);
	__free_pages(block, PMD_ORDER);
}

#ifdef CONFIG_MEMORY_HOTREMOVE
/*
 * A memory block at 32G, where no RAM or device is on our machines and the
 * vmemmap tables of the first 64G already exist: hot-adding it makes its
 * direct-map tables (alloc_low_pages()), hot-removing it frees them. It stays
 * offline and is never touched, so nothing needs to back it. Built-in suites
 * run before SYSTEM_RUNNING, when memory beyond mem= may not be added: mem=
 * cannot make room for it.
 */
#define PKS_HOTPLUG_BASE	(32ULL << 30)
/* Its struct pages (64 bytes a page) start a new gigabyte of the vmemmap. */
#define PKS_HOTPLUG_FAR_BASE	(64ULL << 30)

static u64 pks_hotplug_base;
static int pks_hot_remove_result;

/* Registered as soon as the block is added: a failed assertion must not leave it behind. */
static void pks_hot_remove(void *unused)
{
	pks_hot_remove_result = remove_memory(pks_hotplug_base, memory_block_size_bytes());
}

static void pks_hot_add(struct kunit *test, u64 base)
{
	int ret;

	if (mhp_get_default_online_type() != MMOP_OFFLINE)
		kunit_skip(test, "memhp_default_state onlines hot-added memory: no RAM at %#llx",
			   base);
	ret = add_memory(memory_add_physaddr_to_nid(base), base, memory_block_size_bytes(),
			 MHP_NONE);
	if (ret == -EEXIST)
		kunit_skip(test, "the physical range at %#llx is in use here", base);
	KUNIT_ASSERT_EQ(test, 0, ret);
	pks_hotplug_base = base;
	KUNIT_ASSERT_EQ(test, 0, kunit_add_action_or_reset(test, pks_hot_remove, NULL));
}

static void pks_expect_hot_removed(struct kunit *test)
{
	kunit_release_action(test, pks_hot_remove, NULL);
	KUNIT_EXPECT_EQ_MSG(test, 0, pks_hot_remove_result, "remove_memory()");
}

/*
 * Tables made for hot-added memory come from the cache: the PMD table that maps
 * the block (a new one: no memory shares its 1G) is the cache's, and the walk
 * finds none untagged.
 */
static void pks_test_hot_added_tables_tagged(struct kunit *test)
{
	struct pks_pgtable_walk walk = {};
	pmd_t *pmd;

	pks_require(test);
	pks_hot_add(test, PKS_HOTPLUG_BASE);
	pmd = lookup_pmd_address((unsigned long)__va(PKS_HOTPLUG_BASE));
	KUNIT_ASSERT_NOT_NULL(test, pmd);
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(pks_pgtables_cache(false), virt_to_page(pmd)));
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(virt_to_page(pmd)));
	pks_pgtable_walk(&init_mm, &walk);
	pks_expect_all_tagged(test, &walk, 0);
	pks_expect_hot_removed(test);
}

/*
 * The memmap of a block 64G up needs a new vmemmap PMD table, made now
 * (vmemmap_pud_populate()): the cache's, like the rest.
 */
static void pks_test_hot_added_memmap_tables_tagged(struct kunit *test)
{
	struct pks_pgtable_walk walk = {};
	struct page *table;
	pmd_t *pmd;

	pks_require(test);
	pks_hot_add(test, PKS_HOTPLUG_FAR_BASE);
	pmd = lookup_pmd_address((unsigned long)pfn_to_page(PHYS_PFN(PKS_HOTPLUG_FAR_BASE)));
	KUNIT_ASSERT_NOT_NULL(test, pmd);
	table = virt_to_page(pmd);
	KUNIT_EXPECT_TRUE_MSG(test, grouped_pages_owns(pks_pgtables_cache(false), table),
			      "the vmemmap PMD table of the block's struct pages");
	pks_pgtable_walk(&init_mm, &walk);
	pks_expect_all_tagged(test, &walk, 0);
	pks_expect_hot_removed(test);
}

/*
 * Hot-remove frees the direct-map tables of the block. One that came from the
 * direct-map reserve (a split) goes back there, not to the page allocator
 * with the key on it. Until then nothing collapses the block's mapping: the
 * tables of offline memory may be on their way out.
 */
static void pks_test_hot_remove_returns_tables(struct kunit *test)
{
	unsigned long dmap_before, addr = (unsigned long)__va(PKS_HOTPLUG_BASE);
	struct page *table;
	pmd_t *pmd;

	pks_require(test);
	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only");
	pks_hot_add(test, PKS_HOTPLUG_BASE);
	dmap_before = pks_in_use(true);
	KUNIT_ASSERT_EQ(test, 0, pks_split_unmarked(addr));
	pmd = lookup_pmd_address(addr);
	KUNIT_ASSERT_NOT_NULL(test, pmd);
	table = pmd_page(*pmd);
	KUNIT_EXPECT_TRUE(test, grouped_pages_owns(pks_pgtables_cache(true), table));
	KUNIT_EXPECT_EQ(test, dmap_before + 1, pks_in_use(true));
	KUNIT_EXPECT_EQ_MSG(test, 0, set_memory_collapse(addr, 1), "offline memory collapsed");

	pks_expect_hot_removed(test);
	KUNIT_EXPECT_EQ_MSG(test, dmap_before, pks_in_use(true),
			    "the split's table did not go back to the reserve");
	KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(table));
}
#else
static void pks_test_hot_added_tables_tagged(struct kunit *test)
{
	kunit_skip(test, "CONFIG_MEMORY_HOTREMOVE is off (configs/hotplug.config has it)");
}

static void pks_test_hot_added_memmap_tables_tagged(struct kunit *test)
{
	kunit_skip(test, "CONFIG_MEMORY_HOTREMOVE is off (configs/hotplug.config has it)");
}

static void pks_test_hot_remove_returns_tables(struct kunit *test)
{
	kunit_skip(test, "CONFIG_MEMORY_HOTREMOVE is off (configs/hotplug.config has it)");
}
#endif

/*
 * With the direct-map reserve empty, a split takes its table from the page
 * allocator: CPA cannot set a key from inside itself, so the table gets it
 * afterwards, from a work item, and loses it again when it is freed.
 */
static void pks_test_split_with_empty_reserve_tags_table_later(struct kunit *test)
{
	struct grouped_pages_cache *dmap = pks_pgtables_cache(true);
	struct page **taken, *block, *table;
	unsigned long addr;
	unsigned int n, i;
	pmd_t *pmd;

	pks_require(test);
	if (debug_pagealloc_enabled())
		kunit_skip(test, "debug_pagealloc: the direct map is 4K only");
	block = pks_alloc_large_block(test);
	addr = (unsigned long)page_address(block);
	taken = kunit_kcalloc(test, PKS_DRAIN_MAX, sizeof(*taken), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, taken);
	/* Empty the reserve, with no refill to come to the rescue. */
	grouped_pages_set_failing_orders(dmap, GENMASK(grouped_pages_block_order(), 0));
	for (n = 0; n < PKS_DRAIN_MAX; n++) {
		taken[n] = pks_direct_map_table_alloc();
		if (!taken[n])
			break;
	}
	KUNIT_EXPECT_EQ(test, 0, pks_split_unmarked(addr));
	pmd = lookup_pmd_address(addr);
	table = pmd && !pmd_leaf(*pmd) ? pmd_page(*pmd) : NULL;
	/* Our reference keeps the page ours to look at after the collapse frees it. */
	if (table)
		get_page(table);
	grouped_pages_set_failing_orders(dmap, 0);
	for (i = 0; i < n; i++)
		pks_direct_map_table_free(taken[i]);
	if (n == PKS_DRAIN_MAX || !table) {
		if (table)
			put_page(table);
		__free_pages(block, PMD_ORDER);
		KUNIT_FAIL(test, n == PKS_DRAIN_MAX ? "the reserve never ran dry" : "no split");
		return;
	}
	KUNIT_EXPECT_FALSE(test, grouped_pages_owns(dmap, table));

	pks_pgtable_flush_untag();
	KUNIT_EXPECT_TRUE_MSG(test, pks_page_has_pgtable_key(table),
			      "the split's table from the page allocator");
	/* Collapsing frees the table: it goes back without the key. */
	KUNIT_EXPECT_GE(test, set_memory_collapse(addr, 1), 1);
	pks_pgtable_flush_untag();
	KUNIT_EXPECT_FALSE(test, pks_page_has_pgtable_key(table));
	put_page(table);
	__free_pages(block, PMD_ORDER);
}

/*
 * efi_mm's tables (EFI runtime services) are neither tagged nor walked: a
 * documented exclusion, and this case is its guard. On a kernel that boots
 * through EFI it fails, so the exclusion is never mistaken for coverage.
 */
static void pks_test_no_efi_runtime_page_tables(struct kunit *test)
{
	pks_require(test);
	if (!IS_ENABLED(CONFIG_EFI))
		kunit_skip(test, "CONFIG_EFI is off: no efi_mm");
#ifdef CONFIG_EFI
	KUNIT_EXPECT_FALSE_MSG(test, efi_enabled(EFI_RUNTIME_SERVICES) && efi_mm.pgd,
			       "EFI runtime services run on efi_mm, whose page tables PKS page tables do not cover");
#endif
}

/* A table tagged outside the cache (as at boot) loses the key when it is freed. */
static void pks_test_freed_foreign_table_loses_key(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL | __GFP_ZERO);

	pks_require(test);
	KUNIT_ASSERT_NOT_NULL(test, page);
	KUNIT_ASSERT_EQ(test, 0, set_memory_pkey((unsigned long)page_address(page), 1,
						 PKS_KEY_PGTABLES));
	KUNIT_ASSERT_TRUE(test, pks_page_has_pgtable_key(page));
	KUNIT_EXPECT_FALSE(test, grouped_pages_owns(pks_pgtables_cache(false), page));
	pagetable_free(page_ptdesc(page));
	pks_pgtable_flush_untag();
	/* The page is free now; its direct-map entry can still be read. */
	KUNIT_EXPECT_FALSE(test, pks_page_has_pgtable_key(page));
}

/* CPA may split on any node without sleeping: every node's reserve was filled at boot. */
static void pks_test_reserve_on_every_node(struct kunit *test)
{
	struct grouped_pages_cache *dmap = pks_pgtables_cache(true);
	struct page *page;
	int nid;

	pks_require(test);
	for_each_node_state(nid, N_NORMAL_MEMORY) {
		page = grouped_pages_alloc(dmap, nid, GFP_NOWAIT);
		KUNIT_EXPECT_NOT_NULL_MSG(test, page, "node %d has no direct-map reserve", nid);
		if (page)
			grouped_pages_free(dmap, page);
	}
}

static void pks_test_reserve_refills(struct kunit *test)
{
	struct grouped_pages_cache *dmap = pks_pgtables_cache(true);
	struct grouped_pages_stats s;
	unsigned long refills;
	struct page **taken;
	unsigned int n, i;

	pks_require(test);
	grouped_pages_get_stats(dmap, &s);
	refills = s.refills;
	taken = kunit_kcalloc(test, s.pages_cached, sizeof(*taken), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, taken);
	/* Empty it the way CPA does: without sleeping, reserve included. */
	for (n = 0; n < s.pages_cached; n++) {
		taken[n] = pks_direct_map_table_alloc();
		if (!taken[n])
			break;
	}
	KUNIT_EXPECT_EQ(test, s.pages_cached, n);
	grouped_pages_flush_refill(dmap);
	grouped_pages_get_stats(dmap, &s);
	KUNIT_EXPECT_GT(test, s.refills, refills);
	KUNIT_EXPECT_GT(test, s.pages_cached, 0);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_TRUE(test, pks_page_has_pgtable_key(taken[i]));
		KUNIT_EXPECT_TRUE(test, pks_direct_map_table_free(taken[i]));
	}
}

static bool pks_fault_is_stray_write(unsigned long error_code)
{
	return (error_code & (X86_PF_PK | X86_PF_WRITE | X86_PF_USER)) ==
	       (X86_PF_PK | X86_PF_WRITE);
}

/* Zero a page table the test wrote into, in a window, and free it. */
/* A zeroed page table, from pagetable_alloc() as the kernel's own callers get one. */
static struct ptdesc *pks_alloc_test_table(struct kunit *test)
{
	struct ptdesc *ptdesc = pagetable_alloc(GFP_KERNEL | __GFP_ZERO, 0);

	KUNIT_ASSERT_NOT_NULL(test, ptdesc);
	return ptdesc;
}

static void pks_free_written_table(struct ptdesc *ptdesc)
{
	unsigned long saved = pks_pgtable_write_begin();

	memset(ptdesc_address(ptdesc), 0, PAGE_SIZE);
	pks_pgtable_write_end(saved);
	pagetable_free(ptdesc);
}

static void pks_test_page_tables_write_protected(struct kunit *test)
{
	unsigned long value = 0x5a5a5a5a, seen = 0, saved;
	struct pks_pgtable_faults before, after;
	struct page *plain = alloc_page(GFP_KERNEL);
	int write_pt, read_pt, write_plain;
	struct ptdesc *ptdesc;
	void *table;

	pks_require_enforcing(test);
	KUNIT_ASSERT_NOT_NULL(test, plain);
	ptdesc = pks_alloc_test_table(test);
	table = ptdesc_address(ptdesc);

	pks_pgtable_read_faults(&before);
	write_pt = copy_to_kernel_nofault(table, &value, sizeof(value));
	pks_pgtable_read_faults(&after);
	read_pt = copy_from_kernel_nofault(&seen, table, sizeof(seen));
	write_plain = copy_to_kernel_nofault(page_address(plain), &value, sizeof(value));

	KUNIT_EXPECT_EQ_MSG(test, -EFAULT, write_pt, "a write to a page table outside a window");
	KUNIT_EXPECT_EQ(test, before.fixed_up + 1, after.fixed_up);
	KUNIT_EXPECT_EQ(test, before.unexpected, after.unexpected);
	KUNIT_EXPECT_EQ(test, (unsigned long)table, after.last.address);
	KUNIT_EXPECT_TRUE_MSG(test, pks_fault_is_stray_write(after.last.error_code),
			      "error code %#lx", after.last.error_code);
	KUNIT_EXPECT_EQ(test, PKRS_WD(PKS_KEY_PGTABLES),
			after.last.pkrs & PKRS_WD(PKS_KEY_PGTABLES));
	KUNIT_EXPECT_EQ(test, 0, read_pt);
	KUNIT_EXPECT_EQ(test, 0, seen);
	KUNIT_EXPECT_EQ_MSG(test, 0, write_plain, "a page without the key is not affected");

	saved = pks_pgtable_write_begin();
	write_pt = copy_to_kernel_nofault(table, &value, sizeof(value));
	pks_pgtable_write_end(saved);
	KUNIT_EXPECT_EQ_MSG(test, 0, write_pt, "a write inside a window");
	KUNIT_EXPECT_EQ(test, value, *(unsigned long *)table);
	KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), pks_read_pkrs(),
			    "PKRS after the window closed");
	pks_free_written_table(ptdesc);
	__free_page(plain);
}

/* A plain memset, as a stray pointer would do it: it must fault with X86_PF_PK. */
static void pks_test_stray_memset_faults(struct kunit *test)
{
	struct pks_pgtable_faults before, after;
	struct ptdesc *ptdesc;
	u8 *table;
	int i;

	pks_require_enforcing(test);
	ptdesc = pks_alloc_test_table(test);
	table = ptdesc_address(ptdesc);

	pks_pgtable_read_faults(&before);
	preempt_disable();
	pks_pgtable_expect_fault(true);
	memset(table, 0x5a, 64);
	pks_pgtable_expect_fault(false);
	preempt_enable();
	pks_pgtable_read_faults(&after);

	KUNIT_EXPECT_EQ(test, before.expected + 1, after.expected);
	KUNIT_EXPECT_EQ(test, before.unexpected, after.unexpected);
	KUNIT_EXPECT_GE(test, after.last.address, (unsigned long)table);
	KUNIT_EXPECT_LT(test, after.last.address, (unsigned long)table + 64);
	KUNIT_EXPECT_TRUE_MSG(test, pks_fault_is_stray_write(after.last.error_code),
			      "error code %#lx", after.last.error_code);
	/* Let through once reported, as in warn mode. */
	for (i = 0; i < 64; i++)
		KUNIT_EXPECT_EQ_MSG(test, 0x5a, table[i], "byte %d", i);
	/* The let-through ends when the task is next scheduled out. */
	schedule_timeout_uninterruptible(1);
	preempt_disable();
	KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), pks_read_pkrs(),
			    "PKRS after a context switch");
	preempt_enable();
	pks_free_written_table(ptdesc);
}

struct pks_irq_probe {
	struct irq_work work;
	u64 pkrs;
	bool ran;
};

static void pks_probe_pkrs(struct irq_work *work)
{
	struct pks_irq_probe *probe = container_of(work, struct pks_irq_probe, work);

	probe->pkrs = pks_read_pkrs();
	WRITE_ONCE(probe->ran, true);
}

/* A self-IPI taken inside a window runs with the default PKRS, then the window goes on. */
static void pks_test_interrupt_runs_outside_window(struct kunit *test)
{
	struct pks_irq_probe probe = { .work = IRQ_WORK_INIT_HARD(pks_probe_pkrs) };
	unsigned long saved, timeout;
	u64 in_window, after_irq;

	pks_require_enforcing(test);
	if (!arch_irq_work_has_interrupt())
		kunit_skip(test, "no self-IPI for irq_work on this machine");
	saved = pks_pgtable_write_begin();
	in_window = pks_read_pkrs();
	irq_work_queue(&probe.work);
	timeout = jiffies + HZ;
	while (!READ_ONCE(probe.ran) && time_before(jiffies, timeout))
		cpu_relax();
	after_irq = pks_read_pkrs();
	pks_pgtable_write_end(saved);
	irq_work_sync(&probe.work);

	KUNIT_ASSERT_TRUE_MSG(test, READ_ONCE(probe.ran), "the self-IPI never ran");
	KUNIT_EXPECT_EQ_MSG(test, 0, in_window & PKRS_WD(PKS_KEY_PGTABLES), "PKRS in the window");
	KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), probe.pkrs, "PKRS in the interrupt");
	KUNIT_EXPECT_EQ_MSG(test, in_window, after_irq, "PKRS back in the window");
	KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), pks_read_pkrs(),
			    "PKRS after the window");
}

/* The PKRS an emulated interrupt's handler ran with, and the state it left. */
struct pks_emulated_irq {
	bool nmi;
	unsigned int taken;
	u64 in_handler[4];
};

static struct pks_emulated_irq pks_emulated;

/*
 * What the entry code does for an interrupt (or an NMI) taken at this point:
 * enter, run a handler that reads PKRS, exit. Real interrupts are off.
 */
static void pks_emulate_interrupt(void)
{
	struct pks_emulated_irq *e = &pks_emulated;
	u64 state;

	state = e->nmi ? pks_nmi_enter() : pks_irqentry_enter();
	if (e->taken < ARRAY_SIZE(e->in_handler))
		e->in_handler[e->taken++] = pks_read_pkrs();
	if (e->nmi)
		pks_nmi_exit(state);
	else
		pks_irqentry_exit(state);
}

/*
 * Closing a window writes the cached PKRS and the MSR. An interrupt or NMI
 * that arrives between the two must still run its handler write-protected,
 * and leave the CPU write-protected once the close completes: emulate one at
 * every step of the close (TCG delivers interrupts only between translation
 * blocks, so a real one never lands there under QEMU).
 */
static void pks_test_interrupt_at_window_close(struct kunit *test)
{
	u32 writable = pks_pkrs_writable(pks_default_pkrs);
	unsigned long flags;
	unsigned int i;
	int nmi;

	pks_require_enforcing(test);
	for (nmi = 0; nmi <= 1; nmi++) {
		pks_emulated = (struct pks_emulated_irq){ .nmi = nmi };
		local_irq_save(flags);
		__pks_write_pkrs(writable, NULL);
		__pks_write_pkrs(pks_default_pkrs, pks_emulate_interrupt);
		local_irq_restore(flags);
		KUNIT_EXPECT_GT_MSG(test, pks_emulated.taken, 0, "%s", nmi ? "NMI" : "interrupt");
		for (i = 0; i < pks_emulated.taken; i++)
			KUNIT_EXPECT_EQ_MSG(test, (u64)pks_default_pkrs, pks_emulated.in_handler[i],
					    "%s handler %u of %u: page tables writable in it",
					    nmi ? "NMI" : "interrupt", i + 1, pks_emulated.taken);
		KUNIT_EXPECT_EQ_MSG(test, (u64)pks_default_pkrs, pks_read_pkrs(),
				    "PKRS after the close (%s)", nmi ? "NMI" : "interrupt");
		KUNIT_EXPECT_EQ(test, pks_default_pkrs, this_cpu_read(pks_pkrs));
	}
}

/* One interrupt storm: IPIs from the other CPU and a fast timer on this one. */
struct pks_storm {
	struct hrtimer timer;
	atomic_t taken;
	atomic_t writable;
	bool stop;
	int cpu;
	struct completion done;
};

static void pks_storm_check(struct pks_storm *storm)
{
	atomic_inc(&storm->taken);
	if (!(pks_read_pkrs() & PKRS_WD(PKS_KEY_PGTABLES)))
		atomic_inc(&storm->writable);
}

static void pks_storm_ipi(void *data)
{
	pks_storm_check(data);
}

static enum hrtimer_restart pks_storm_tick(struct hrtimer *timer)
{
	struct pks_storm *storm = container_of(timer, struct pks_storm, timer);

	pks_storm_check(storm);
	if (READ_ONCE(storm->stop))
		return HRTIMER_NORESTART;
	hrtimer_forward_now(timer, ns_to_ktime(20 * NSEC_PER_USEC));
	return HRTIMER_RESTART;
}

static int pks_storm_sender(void *data)
{
	struct pks_storm *storm = data;

	while (!READ_ONCE(storm->stop)) {
		smp_call_function_single(storm->cpu, pks_storm_ipi, storm, 1);
		cond_resched();
	}
	complete(&storm->done);
	return 0;
}

/*
 * Interrupts rain on a CPU that opens and closes windows as fast as it can:
 * every handler runs with page tables write-protected.
 */
static void pks_test_interrupt_storm_on_windows(struct kunit *test)
{
	struct pks_storm *storm = kunit_kzalloc(test, sizeof(*storm), GFP_KERNEL);
	unsigned long deadline, saved, windows = 0;
	struct task_struct *sender;
	int other;

	KUNIT_ASSERT_NOT_NULL(test, storm);
	pks_require_enforcing(test);
	migrate_disable();
	storm->cpu = raw_smp_processor_id();
	other = cpumask_any_but(cpu_online_mask, storm->cpu);
	init_completion(&storm->done);
	hrtimer_init(&storm->timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL_PINNED_HARD);
	storm->timer.function = pks_storm_tick;
	hrtimer_start(&storm->timer, ns_to_ktime(20 * NSEC_PER_USEC), HRTIMER_MODE_REL_PINNED_HARD);
	sender = other < nr_cpu_ids ?
		 kthread_run_on_cpu(pks_storm_sender, storm, other, "pks_storm/%u") : NULL;
	deadline = jiffies + 2 * HZ;
	while (time_before(jiffies, deadline)) {
		saved = pks_pgtable_write_begin();
		pks_pgtable_write_end(saved);
		windows++;
		if (!(windows % 1024))
			cond_resched();
	}
	WRITE_ONCE(storm->stop, true);
	hrtimer_cancel(&storm->timer);
	migrate_enable();
	if (!IS_ERR_OR_NULL(sender))
		wait_for_completion(&storm->done);
	kunit_info(test, "%lu windows, %d interrupts", windows, atomic_read(&storm->taken));
	KUNIT_EXPECT_GT(test, atomic_read(&storm->taken), 0);
	KUNIT_EXPECT_EQ_MSG(test, 0, atomic_read(&storm->writable),
			    "handlers ran with page tables writable");
}

/*
 * A lazy MMU section is one window: a write to a page table inside it needs
 * no window of its own, a window nested in it writes no PKRS, nothing in it
 * may sleep (might_sleep() complains: page tables must not stay writable
 * while the task reclaims or waits), and page tables are write-protected
 * again once it ends.
 */
static void pks_test_lazy_mmu_section_is_one_window(struct kunit *test)
{
	unsigned long value = 0x5a5a5a5a, saved, writes_before, writes_after, flags;
	struct pks_pgtable_faults before, after;
	int in_section, after_section;
	u64 pkrs_in_section;
	bool may_sleep;
	struct ptdesc *ptdesc;
	void *table;

	pks_require_enforcing(test);
	if (!IS_ENABLED(CONFIG_PREEMPT_COUNT))
		kunit_skip(test, "needs CONFIG_PREEMPT_COUNT (DEBUG_ATOMIC_SLEEP) to see a sleep");
	ptdesc = pks_alloc_test_table(test);
	table = ptdesc_address(ptdesc);
	pks_pgtable_read_faults(&before);

	arch_enter_lazy_mmu_mode();
	in_section = copy_to_kernel_nofault(table, &value, sizeof(value));
	/* An interrupt in between would write PKRS twice (entry and exit): none may come. */
	local_irq_save(flags);
	pkrs_in_section = pks_read_pkrs();
	writes_before = pks_pkrs_writes_here();
	saved = pks_pgtable_write_begin();
	pks_pgtable_write_end(saved);
	writes_after = pks_pkrs_writes_here();
	local_irq_restore(flags);
	/* What makes might_sleep() complain. */
	may_sleep = preemptible();
	arch_leave_lazy_mmu_mode();
	after_section = copy_to_kernel_nofault(table, &value, sizeof(value));
	pks_pgtable_read_faults(&after);

	KUNIT_EXPECT_EQ_MSG(test, 0, in_section, "a write in a lazy MMU section");
	KUNIT_EXPECT_EQ_MSG(test, 0, pkrs_in_section & PKRS_WD(PKS_KEY_PGTABLES),
			    "PKRS in the section");
	KUNIT_EXPECT_EQ_MSG(test, writes_before, writes_after,
			    "PKRS writes by a window nested in the section");
	KUNIT_EXPECT_FALSE_MSG(test, may_sleep,
			       "a lazy MMU section may sleep with page tables writable");
	KUNIT_EXPECT_EQ_MSG(test, -EFAULT, after_section, "a write after the section ended");
	KUNIT_EXPECT_EQ(test, before.fixed_up + 1, after.fixed_up);
	KUNIT_EXPECT_EQ(test, before.unexpected, after.unexpected);
	KUNIT_EXPECT_EQ_MSG(test, (u64)pks_expected_pkrs(), pks_read_pkrs(),
			    "PKRS after the section");
	pks_free_written_table(ptdesc);
}

/* apply_to_page_range()'s callback on kernel mappings: it sleeps, and sees PKRS. */
static int pks_sleepy_pte_fn(pte_t *pte, unsigned long addr, void *data)
{
	u64 *pkrs = data;

	might_sleep();
	*pkrs = pks_read_pkrs();
	return 0;
}

/*
 * apply_to_page_range() on kernel mappings calls back without a lock, and
 * callbacks allocate (KASAN's, for vmalloc shadow) and may sleep: they must
 * run with page tables write-protected, not inside a lazy MMU section's
 * window for as long as they take.
 */
static void pks_test_apply_to_page_range_callback_write_protected(struct kunit *test)
{
	u64 pkrs = 0;
	void *area;

	pks_require_enforcing(test);
	area = vmalloc(PAGE_SIZE);
	KUNIT_ASSERT_NOT_NULL(test, area);
	KUNIT_EXPECT_EQ(test, 0, apply_to_page_range(&init_mm, (unsigned long)area, PAGE_SIZE,
						     pks_sleepy_pte_fn, &pkrs));
	vfree(area);
	KUNIT_EXPECT_NE_MSG(test, 0, pkrs & PKRS_WD(PKS_KEY_PGTABLES),
			    "the callback ran with page tables writable");
}

/*
 * Kernel page tables written after boot, with page tables write-protected:
 * vmalloc and vfree, a CPA change and back, and ioremap. None may fault, and
 * each goes through write windows.
 */
static void pks_test_kernel_mappings_write_in_windows(struct kunit *test)
{
	struct pks_pgtable_faults before, after;
	unsigned long windows = pks_windows_opened();
	void __iomem *io;
	void *area;

	pks_require_enforcing(test);
	pks_pgtable_read_faults(&before);
	area = vmalloc(4 << 20);
	KUNIT_ASSERT_NOT_NULL(test, area);
	memset(area, 1, 4 << 20);
	KUNIT_EXPECT_EQ(test, 0, set_memory_ro((unsigned long)area, 16));
	KUNIT_EXPECT_EQ(test, 0, set_memory_rw((unsigned long)area, 16));
	vfree(area);
	vm_unmap_aliases();
	/* The local APIC's page: MMIO every x86_64 machine has. */
	io = ioremap(APIC_DEFAULT_PHYS_BASE, PAGE_SIZE);
	KUNIT_EXPECT_NOT_NULL(test, io);
	if (io)
		iounmap(io);
	pks_pgtable_read_faults(&after);

	KUNIT_EXPECT_EQ(test, before.unexpected, after.unexpected);
	KUNIT_EXPECT_EQ(test, before.fixed_up, after.fixed_up);
	KUNIT_EXPECT_GT(test, pks_windows_opened(), windows);
}

static void pks_test_fallback_without_pks(struct kunit *test)
{
	struct ptdesc *ptdesc;
	unsigned int level;
	pte_t *pte;

	if (pks_on())
		kunit_skip(test, "the CPU has PKS: run with QEMU_CPU=qemu64 to test the fallback");
	KUNIT_EXPECT_EQ(test, 0, __read_cr4() & X86_CR4_PKS);
	ptdesc = pks_alloc_test_table(test);
	pte = lookup_address((unsigned long)ptdesc_address(ptdesc), &level);
	KUNIT_ASSERT_NOT_NULL(test, pte);
	KUNIT_EXPECT_EQ(test, 0, pte_val(*pte) & _PAGE_PKEY_MASK);
	KUNIT_EXPECT_NULL(test, pks_pgtables_cache(false));
	pagetable_free(ptdesc);
}

static struct kunit_case pks_test_cases[] = {
	KUNIT_CASE(pks_test_every_cpu_set_up),
	KUNIT_CASE(pks_test_cpu_comes_up_write_protected),
	KUNIT_CASE(pks_test_reserve_on_every_node),
	KUNIT_CASE(pks_test_every_level_is_tagged),
	KUNIT_CASE(pks_test_levels_counted),
	KUNIT_CASE(pks_test_no_untagged_kernel_tables),
	KUNIT_CASE(pks_test_user_tables_tagged_and_returned),
	KUNIT_CASE(pks_test_atomic_alloc),
	KUNIT_CASE(pks_test_tables_tagged_with_local_node_full),
	KUNIT_CASE(pks_test_fallback_split_uses_reserve),
	KUNIT_CASE(pks_test_split_takes_table_from_reserve),
	KUNIT_CASE(pks_test_kernel_pgd_and_image_alias_tagged),
	KUNIT_CASE(pks_test_collapse_stays_out_of_table_walks),
	KUNIT_CASE(pks_test_no_collapse_during_memory_hotplug),
	KUNIT_CASE(pks_test_hot_added_tables_tagged),
	KUNIT_CASE(pks_test_hot_added_memmap_tables_tagged),
	KUNIT_CASE(pks_test_hot_remove_returns_tables),
	KUNIT_CASE(pks_test_split_with_empty_reserve_tags_table_later),
	KUNIT_CASE(pks_test_no_efi_runtime_page_tables),
	KUNIT_CASE(pks_test_freed_foreign_table_loses_key),
	KUNIT_CASE(pks_test_reserve_refills),
	KUNIT_CASE(pks_test_page_tables_write_protected),
	KUNIT_CASE(pks_test_stray_memset_faults),
	KUNIT_CASE(pks_test_interrupt_runs_outside_window),
	KUNIT_CASE(pks_test_interrupt_at_window_close),
	KUNIT_CASE_SLOW(pks_test_interrupt_storm_on_windows),
	KUNIT_CASE(pks_test_lazy_mmu_section_is_one_window),
	KUNIT_CASE(pks_test_apply_to_page_range_callback_write_protected),
	KUNIT_CASE(pks_test_kernel_mappings_write_in_windows),
	/* Last: its shrinking leaves 4K-mapped holes where later cases want 2M blocks. */
	KUNIT_CASE(pks_test_every_level_under_pressure),
	KUNIT_CASE(pks_test_fallback_without_pks),
	{}
};

static struct kunit_suite pks_test_suite = {
	.name = "pks_pgtables",
	.init = pks_suite_init,
	.test_cases = pks_test_cases,
};

kunit_test_suite(pks_test_suite);

MODULE_DESCRIPTION("KUnit tests for PKS page tables");
MODULE_LICENSE("GPL");
