// SPDX-License-Identifier: GPL-2.0
/*
 * Page tables whose direct-map entries carry a PKS key.
 *
 * Page-table pages come from a grouped page cache whose protection sets
 * PKS_KEY_PGTABLES on whole 2M blocks of the direct map, so tagging them does
 * not shatter the direct map. Once boot tables are tagged too, PKRS
 * write-disables the key on every CPU: page-table writers open a write window
 * (pks_pgtable_write_begin()) around each write, and a write outside one is a
 * PK fault, reported and then oopsing or, in warn mode, let through.
 *
 * Splitting a direct-map large page needs a new page table, and that table
 * must carry the key too. It comes from a second cache, the direct-map
 * reserve, never from the page-table cache itself: a split while that cache
 * refills would otherwise recurse into it. The reserve is sized from the
 * amount of memory and is used without sleeping or refilling inline.
 */

#include <linux/debugfs.h>
#include <linux/grouped_pages.h>
#include <linux/grouped_pages_testing.h>
#include <linux/init.h>
#include <linux/memcontrol.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/pks_pgtables.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/stat.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/stop_machine.h>
#include <linux/extable.h>

#include <asm/msr.h>
#include <asm/pks.h>
#include <asm/pks_entry.h>
#include <asm/set_memory.h>
#include <asm/text-patching.h>
#include <asm/tlbflush.h>

#include "mm_internal.h"

/* Pages kept in the page-table cache for atomic callers and the shrinker. */
#define PKS_PGTABLE_RESERVE	16

DEFINE_STATIC_KEY_FALSE(pks_pgtables_enabled);
EXPORT_SYMBOL_GPL(pks_pgtables_enabled);

static bool pks_off_by_param __ro_after_init;

enum pks_pgtables_mode { PKS_MODE_ENFORCE, PKS_MODE_WARN, PKS_MODE_PERMISSIVE };
static const char * const pks_mode_names[] = {
	[PKS_MODE_ENFORCE] = "enforce",
	[PKS_MODE_WARN] = "warn",
	[PKS_MODE_PERMISSIVE] = "permissive",
};

static enum pks_pgtables_mode pks_mode __ro_after_init = PKS_MODE_ENFORCE;

DEFINE_STATIC_KEY_FALSE(pks_pgtables_enforcing);
/* Inlined into every page-table write, in modules too. */
EXPORT_SYMBOL(pks_pgtables_enforcing);
DEFINE_PER_CPU(u32, pks_pkrs);
u32 pks_default_pkrs __ro_after_init;
EXPORT_SYMBOL_GPL(pks_default_pkrs);
DEFINE_PER_CPU(bool, pks_fault_resume_writable);
DEFINE_PER_CPU(u32, pks_interrupted_pkrs);
/* For the KUnit suite: the next PK fault on this CPU is its own, expected one. */
static DEFINE_PER_CPU(bool, pks_fault_expected);
static DEFINE_PER_CPU(unsigned long, pks_windows);
static DEFINE_PER_CPU(unsigned long, pks_lazy_windows);
DEFINE_PER_CPU(unsigned long, pks_pkrs_writes);

/* PK faults on page tables: unexpected ones, ones fixed up by a nofault access, the suite's. */
static atomic_long_t pks_faults;
static atomic_long_t pks_faults_fixed_up;
static atomic_long_t pks_faults_expected;
static atomic_long_t pks_unprotected_bringups;
static struct pks_pgtable_fault pks_last_fault;
static DEFINE_RAW_SPINLOCK(pks_last_fault_lock);
static struct grouped_pages_cache *pks_pgtable_cache;
static struct grouped_pages_cache *pks_dmap_cache;
static unsigned int pks_dmap_reserve;
static atomic_long_t pks_pgtable_fallbacks;
static atomic_long_t pks_pgtable_fallbacks_adopted;
static atomic_long_t pks_dmap_fallbacks;
/* Tables from the page allocator (a split's, or a page table's) that got the key later. */
static atomic_long_t pks_adopted_tagged;
static atomic_long_t pks_boot_tables_tagged;
static atomic_long_t pks_foreign_untagged;
static atomic_long_t pks_foreign_untag_failures;
/* Per CPU: counted on every page-table allocation, summed only when read. */
static DEFINE_PER_CPU(unsigned long [PKS_PGTABLE_LEVELS], pks_tables_allocated);
static DEFINE_PER_CPU(unsigned long [PKS_PGTABLE_LEVELS], pks_tables_freed);

static int __init parse_nopkstables(char *arg)
{
	pks_off_by_param = true;
	return 0;
}
early_param("nopkstables", parse_nopkstables);

static int __init parse_pks_pgtables(char *arg)
{
	int mode = arg ? match_string(pks_mode_names, ARRAY_SIZE(pks_mode_names), arg) : -EINVAL;

	if (mode < 0) {
		pr_err("pks_pgtables=%s: unknown mode; valid: enforce, warn, permissive\n",
		       arg ?: "");
		return -EINVAL;
	}
	pks_mode = mode;
	return 0;
}
early_param("pks_pgtables", parse_pks_pgtables);

/*
 * With page-table isolation a PGD is two pages, the kernel's and the user copy
 * next to it, and the cache hands out single pages: as the RFC did, PKS page
 * tables are refused there rather than left with untagged PGDs.
 */
static bool pks_off_by_pti(void)
{
	return boot_cpu_has(X86_FEATURE_PTI);
}

/**
 * pks_available() - whether PKS is usable for page tables on this system
 *
 * Return: true when the CPU has PKS, "nopkstables" was not given and
 * page-table isolation is off.
 */
bool pks_available(void)
{
	return cpu_feature_enabled(X86_FEATURE_PKS) && !pks_off_by_param && !pks_off_by_pti();
}

/*
 * Whatever the cached value says: the MSR was reset by bring-up or by sleep.
 * Always inline: pks_load_pkrs_before_cr4() must call nothing traceable.
 */
static __always_inline void pks_load_default_pkrs(void)
{
	this_cpu_write(pks_pkrs, PKS_PKRS_CHANGING);
	pks_write_pkrs(pks_default_pkrs);
}

/**
 * pks_load_pkrs_before_cr4() - give PKRS its default before CR4.PKS is set
 *
 * cr4_init() calls this on a CPU coming up when CR4 pinning is about to turn
 * PKS on, long before setup_pks(). A CPU that comes out of reset (resume from
 * S3, a physically added CPU) has PKRS 0, which allows every write, and its
 * cached copy still says what it was before the CPU went away.
 */
notrace void pks_load_pkrs_before_cr4(void)
{
	/*
	 * Not traced, and nothing here is: the CPU is not set up yet. CR4.PKS is
	 * pinned only if the boot CPU set it, so PKS is available.
	 */
	pks_load_default_pkrs();
}

/* Called on every CPU as it is brought up. */
void setup_pks(void)
{
	if (!pks_available())
		return;
	/*
	 * Check the gap between CR4 pinning and here (that is: the hardware state,
	 * not our cached copy): page tables must have been write-protected all along.
	 */
	if ((__read_cr4() & X86_CR4_PKS) && (u32)__rdmsr(MSR_IA32_PKRS) != pks_default_pkrs)
		atomic_long_inc(&pks_unprotected_bringups);
	cr4_set_bits(X86_CR4_PKS);
	pks_load_default_pkrs();
}

/**
 * pks_restore_after_resume() - write-protect page tables again after sleep
 */
void pks_restore_after_resume(void)
{
	if (pks_available())
		pks_load_default_pkrs();
}

/**
 * __pks_pgtable_write_begin() - open a page-table write window on this CPU
 *
 * Use pks_pgtable_write_begin(), which calls this only while page tables are
 * write-protected.
 *
 * Return: the PKRS to restore when the window closes.
 */
notrace unsigned long __pks_pgtable_write_begin(void)
{
	u32 pkrs;

	/* PKRS is per CPU: the window must end where it began. */
	preempt_disable_notrace();
	this_cpu_inc(pks_windows);
	pkrs = this_cpu_read(pks_pkrs);
	pks_write_pkrs(pks_pkrs_writable(pkrs));
	return pkrs;
}
EXPORT_SYMBOL(__pks_pgtable_write_begin);

/**
 * __pks_pgtable_write_end() - close a page-table write window
 * @saved: what __pks_pgtable_write_begin() returned
 */
notrace void __pks_pgtable_write_end(unsigned long saved)
{
	pks_write_pkrs(saved);
	preempt_enable_notrace();
}
EXPORT_SYMBOL(__pks_pgtable_write_end);

/* Lazy MMU sections this CPU is in, and the PKRS its outermost one opened on. */
static DEFINE_PER_CPU(unsigned int, pks_lazy_depth);
static DEFINE_PER_CPU(u32, pks_lazy_saved);

/**
 * __pks_lazy_mmu_enter() - make page tables writable for a lazy MMU section
 *
 * Use arch_enter_lazy_mmu_mode(). Like a write window, a section belongs to
 * this CPU and runs with preemption off: nothing in it may sleep, so page
 * tables never stay writable while the task waits or reclaims (might_sleep()
 * complains). Sections nest; the outermost opens the window.
 */
void __pks_lazy_mmu_enter(void)
{
	preempt_disable();
	if (this_cpu_inc_return(pks_lazy_depth) == 1) {
		u32 pkrs = this_cpu_read(pks_pkrs);

		this_cpu_inc(pks_lazy_windows);
		this_cpu_write(pks_lazy_saved, pkrs);
		pks_write_pkrs(pks_pkrs_writable(pkrs));
	}
}
EXPORT_SYMBOL(__pks_lazy_mmu_enter);

/**
 * pks_lazy_mmu_leave() - end a lazy MMU section
 *
 * Use arch_leave_lazy_mmu_mode(). The outermost section's end gives back the
 * PKRS it opened on; a section entered before page tables were
 * write-protected opened nothing and ends nothing.
 */
void pks_lazy_mmu_leave(void)
{
	if (!this_cpu_read(pks_lazy_depth))
		return;
	if (this_cpu_dec_return(pks_lazy_depth) == 0)
		pks_write_pkrs(this_cpu_read(pks_lazy_saved));
	preempt_enable();
}
EXPORT_SYMBOL(pks_lazy_mmu_leave);

#ifdef CONFIG_PARAVIRT_XXL
/*
 * With PARAVIRT_XXL the lazy MMU hooks are paravirt operations: natively
 * these (Xen PV installs its own and has no PKS).
 */
void pks_paravirt_lazy_mmu_enter(void)
{
	pks_lazy_mmu_enter();
}

void pks_paravirt_lazy_mmu_leave(void)
{
	pks_lazy_mmu_leave();
}
#endif

/**
 * pks_pgtable_expect_fault() - let the next PK fault on this CPU through quietly
 * @expect: true before the KUnit suite's deliberate stray write, false after
 *
 * The fault is counted apart and let through as in warn mode, without the
 * report that would fail the run. Call with preemption disabled.
 */
void pks_pgtable_expect_fault(bool expect)
{
	this_cpu_write(pks_fault_expected, expect);
}
EXPORT_SYMBOL_GPL(pks_pgtable_expect_fault);

/**
 * pks_pgtable_read_faults() - PK faults on page tables so far
 * @faults: filled with the counts and the last fault
 */
void pks_pgtable_read_faults(struct pks_pgtable_faults *faults)
{
	unsigned long flags;

	faults->unexpected = atomic_long_read(&pks_faults);
	faults->fixed_up = atomic_long_read(&pks_faults_fixed_up);
	faults->expected = atomic_long_read(&pks_faults_expected);
	faults->unprotected_bringups = atomic_long_read(&pks_unprotected_bringups);
	raw_spin_lock_irqsave(&pks_last_fault_lock, flags);
	faults->last = pks_last_fault;
	raw_spin_unlock_irqrestore(&pks_last_fault_lock, flags);
}
EXPORT_SYMBOL_GPL(pks_pgtable_read_faults);

static unsigned long pks_sum_per_cpu(unsigned long __percpu *counter)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += *per_cpu_ptr(counter, cpu);
	return sum;
}

/**
 * pks_pgtable_windows() - page-table write windows opened so far, on all CPUs
 *
 * Return: the sum of the per-CPU counts.
 */
unsigned long pks_pgtable_windows(void)
{
	return pks_sum_per_cpu(&pks_windows);
}
EXPORT_SYMBOL_GPL(pks_pgtable_windows);

/* Whether the direct-map entry (or large entry) mapping @address carries the key. */
static bool pks_address_has_pgtable_key(unsigned long address)
{
	unsigned int level;
	bool has_key;
	pte_t *pte;

	/* Lockless, also from RCU callbacks: a collapse frees tables after a grace period. */
	rcu_read_lock();
	pte = lookup_address(address, &level);
	has_key = pte && (pte_val(*pte) & _PAGE_PKEY_MASK) ==
			 ((pteval_t)PKS_KEY_PGTABLES << _PAGE_BIT_PKEY_BIT0);
	rcu_read_unlock();
	return has_key;
}

/**
 * pks_pgtable_fault() - a kernel access denied by a protection key
 * @regs: the faulting context
 * @error_code: the page fault's hardware error code (X86_PF_PK set)
 * @address: the faulting address
 *
 * Called by the page-fault handler with interrupts off. A write to a page
 * table outside a write window is counted and reported with its address and
 * PKRS. A nofault access (one with an exception-table fixup) is counted apart
 * and fixed up as usual; in enforce mode anything else oopses, in warn mode
 * it is let through: the context resumes with page tables writable, until its
 * task is next scheduled out.
 *
 * Return: true if the access may be retried with page tables writable.
 */
bool pks_pgtable_fault(struct pt_regs *regs, unsigned long error_code, unsigned long address)
{
	u32 pkrs = this_cpu_read(pks_interrupted_pkrs);
	unsigned long flags;

	if (!static_branch_likely(&pks_pgtables_enforcing) ||
	    !pks_address_has_pgtable_key(address))
		return false;
	raw_spin_lock_irqsave(&pks_last_fault_lock, flags);
	pks_last_fault = (struct pks_pgtable_fault) {
		.address = address,
		.error_code = error_code,
		.pkrs = pkrs,
	};
	raw_spin_unlock_irqrestore(&pks_last_fault_lock, flags);
	if (search_exception_tables(regs->ip)) {
		atomic_long_inc(&pks_faults_fixed_up);
		return false;
	}
	if (this_cpu_read(pks_fault_expected)) {
		atomic_long_inc(&pks_faults_expected);
		this_cpu_write(pks_fault_expected, false);
		this_cpu_write(pks_fault_resume_writable, true);
		return true;
	}
	atomic_long_inc(&pks_faults);
	if (pks_mode != PKS_MODE_WARN) {
		/* The oops that follows gives the backtrace. */
		pr_alert("pks_pgtables: write to page table %#lx outside a write window at %pS (error code %#lx, PKRS %#x)\n",
			 address, (void *)regs->ip, error_code, pkrs);
		return false;
	}
	WARN(1, "pks_pgtables: write to page table %#lx outside a write window at %pS (error code %#lx, PKRS %#x): let through\n",
	     address, (void *)regs->ip, error_code, pkrs);
	this_cpu_write(pks_fault_resume_writable, true);
	return true;
}

static int pks_set_key(struct page *page, unsigned int nr_pages, int key)
{
	return set_memory_pkey((unsigned long)page_address(page), nr_pages, key);
}

static int pks_prot_apply(struct page *page, unsigned int nr_pages, void *data)
{
	return pks_set_key(page, nr_pages, PKS_KEY_PGTABLES);
}

static int pks_prot_reset(struct page *page, unsigned int nr_pages, void *data)
{
	return pks_set_key(page, nr_pages, PKS_KEY_DEFAULT);
}

static unsigned long pks_prot_write_begin(void)
{
	return pks_pgtable_write_begin();
}

static void pks_prot_write_end(unsigned long saved)
{
	pks_pgtable_write_end(saved);
}

static const struct grouped_pages_prot pks_pgtables_prot = {
	.name = "pks-pgtables",
	.apply = pks_prot_apply,
	.reset = pks_prot_reset,
	/* The cache zeroes page tables through the direct map, in a write window. */
	.direct_map_writable = true,
	.write_begin = pks_prot_write_begin,
	.write_end = pks_prot_write_end,
};

/**
 * pks_page_has_pgtable_key() - whether a page's direct-map entry has the page-table key
 * @page: the page
 *
 * Return: true if the direct-map PTE (or large entry) of @page carries PKS_KEY_PGTABLES.
 */
bool pks_page_has_pgtable_key(struct page *page)
{
	return pks_address_has_pgtable_key((unsigned long)page_address(page));
}
EXPORT_SYMBOL_GPL(pks_page_has_pgtable_key);

static int pks_local_node(void)
{
	int nid = numa_node_id();

	/* The caches serve nodes with normal memory only, never movable-only ones. */
	return node_state(nid, N_NORMAL_MEMORY) ? nid : NUMA_NO_NODE;
}

/*
 * Tables tagged at boot were never the cache's: freed, such a page must lose
 * the key before the page allocator hands it to someone else. Changing the
 * direct map may sleep and page tables are also freed from RCU callbacks, so
 * the key is taken off later, in process context.
 */
static LIST_HEAD(pks_untag_list);
static DEFINE_SPINLOCK(pks_untag_lock);
static void pks_untag_fn(struct work_struct *work);
static DECLARE_WORK(pks_untag_work, pks_untag_fn);

/*
 * Take the key off a page about to go to the page allocator. Its next owner
 * would find a page still carrying it write-protected: that page is leaked.
 * Return: true if @page may be freed.
 */
static bool pks_untag_or_leak(struct page *page)
{
	if (pks_set_key(page, 1, PKS_KEY_DEFAULT)) {
		atomic_long_inc(&pks_foreign_untag_failures);
		WARN_ONCE(1, "pks_pgtables: leaking pfn %#lx: cannot remove its key\n",
			  page_to_pfn(page));
		return false;
	}
	atomic_long_inc(&pks_foreign_untagged);
	return true;
}

static void pks_untag_fn(struct work_struct *work)
{
	struct page *page, *next;
	unsigned long flags;
	LIST_HEAD(pages);

	spin_lock_irqsave(&pks_untag_lock, flags);
	list_splice_init(&pks_untag_list, &pages);
	spin_unlock_irqrestore(&pks_untag_lock, flags);
	list_for_each_entry_safe(page, next, &pages, lru) {
		list_del(&page->lru);
		if (pks_untag_or_leak(page))
			__free_page(page);
	}
}

/*
 * A direct-map split with the reserve empty takes its table from the page
 * allocator, inside CPA, where the key cannot be set: setting it is CPA too.
 * The table gets it here, later, in process context. A table freed before
 * then (or never used: the split lost a race) is freed here instead, without
 * the key, so that no page gets the key after its last free: pks_adopt holds
 * the state of each table waiting.
 */
enum { PKS_ADOPT_PENDING = 1, PKS_ADOPT_TAGGING, PKS_ADOPT_FREED };
static DEFINE_XARRAY_FLAGS(pks_adopt, XA_FLAGS_LOCK_IRQ);
static void pks_adopt_fn(struct work_struct *work);
static DECLARE_WORK(pks_adopt_work, pks_adopt_fn);

/* Move @pfn's entry from @from to @to; return the state it was in (0: none). */
static unsigned long pks_adopt_move(unsigned long pfn, unsigned long from, unsigned long to)
{
	unsigned long flags, state;
	void *entry;

	xa_lock_irqsave(&pks_adopt, flags);
	entry = xa_load(&pks_adopt, pfn);
	state = entry ? xa_to_value(entry) : 0;
	if (state && (!from || state == from)) {
		if (to)
			__xa_store(&pks_adopt, pfn, xa_mk_value(to), GFP_ATOMIC);
		else
			__xa_erase(&pks_adopt, pfn);
	}
	xa_unlock_irqrestore(&pks_adopt, flags);
	return state;
}

/*
 * Record @table to get the key from the work item; from then on freeing it
 * hands it to the work. Without memory for the record the table stays
 * untagged (the caller counts it). Return: true if adopted.
 */
static bool pks_adopt_table(struct page *table, gfp_t gfp)
{
	if (xa_err(xa_store_irq(&pks_adopt, page_to_pfn(table), xa_mk_value(PKS_ADOPT_PENDING),
				gfpflags_allow_blocking(gfp) ? GFP_KERNEL : GFP_ATOMIC)))
		return false;
	queue_work(system_unbound_wq, &pks_adopt_work);
	return true;
}

/**
 * pks_direct_map_table_adopt() - give the key, later, to a split's table from the page allocator
 * @table: the new page table, not in place yet
 *
 * From then on pagetable_free() or pks_direct_map_table_free() hand @table
 * back to the work item, which frees it.
 *
 * Context: CPA allocating its table, without cpa_lock; may sleep.
 */
void pks_direct_map_table_adopt(struct page *table)
{
	if (static_branch_likely(&pks_pgtables_enabled))
		pks_adopt_table(table, GFP_KERNEL);
}

/* Whether @table waits for the work item to give it the key. */
static bool pks_adopt_pending(struct page *table)
{
	return !xa_empty(&pks_adopt) && xa_load(&pks_adopt, page_to_pfn(table));
}

/*
 * The cache refills a node from that node's memory only: when this CPU's
 * node cannot serve, another node's cache may.
 */
static struct page *pks_pgtable_from_cache(gfp_t gfp)
{
	int local = pks_local_node(), nid;
	struct page *page;

	page = grouped_pages_alloc(pks_pgtable_cache, local, gfp);
	if (page || num_node_state(N_NORMAL_MEMORY) < 2)
		return page;
	for_each_node_state(nid, N_NORMAL_MEMORY) {
		if (nid == local)
			continue;
		page = grouped_pages_alloc(pks_pgtable_cache, nid, gfp);
		if (page)
			return page;
	}
	return NULL;
}

/**
 * __pks_pgtable_alloc() - allocate a page-table page that carries the page-table key
 * @gfp: the caller's flags; __GFP_ACCOUNT charges the page to the current memcg
 *
 * From the PKS page-table cache, on this CPU's node or another; when no
 * cache can serve (no block to be had, an atomic caller past the reserve, a
 * task in reclaim), from the page allocator, and a work item gives that page
 * the key soon after (pks_pgtable_walk() counts it as pending until then).
 *
 * Return: the page, or NULL when the page allocator has none either.
 */
struct page *__pks_pgtable_alloc(gfp_t gfp)
{
	/* Quiet: the page allocator speaks for the last attempt, below. */
	struct page *page = pks_pgtable_from_cache((gfp & ~__GFP_ACCOUNT) | __GFP_NOWARN);

	if (!page) {
		atomic_long_inc(&pks_pgtable_fallbacks);
		page = alloc_pages(gfp, 0);
		if (page && pks_adopt_table(page, gfp))
			atomic_long_inc(&pks_pgtable_fallbacks_adopted);
		return page;
	}
	if ((gfp & __GFP_ACCOUNT) && memcg_kmem_charge_page(page, gfp, 0)) {
		grouped_pages_free(pks_pgtable_cache, page);
		return NULL;
	}
	set_page_private(page, 0);
	return page;
}
EXPORT_SYMBOL_GPL(__pks_pgtable_alloc);

static void pks_adopt_fn(struct work_struct *work)
{
	unsigned long pfn;
	void *entry;
	int err;

	xa_for_each(&pks_adopt, pfn, entry) {
		struct page *table = pfn_to_page(pfn);

		err = -ENOENT;
		if (pks_adopt_move(pfn, PKS_ADOPT_PENDING, PKS_ADOPT_TAGGING) == PKS_ADOPT_PENDING)
			err = pks_set_key(table, 1, PKS_KEY_PGTABLES);
		if (pks_adopt_move(pfn, 0, 0) == PKS_ADOPT_FREED) {
			/*
			 * Freed meanwhile: to the page allocator without the key,
			 * which the boot walk may have set as well as this work.
			 */
			if (!pks_page_has_pgtable_key(table) || pks_untag_or_leak(table))
				__free_page(table);
		} else if (!err) {
			atomic_long_inc(&pks_adopted_tagged);
		}
	}
}

/* Whether @page waits for the key: then the adopt work frees it. */
static bool pks_adopt_free(struct page *page)
{
	if (xa_empty(&pks_adopt))
		return false;
	return pks_adopt_move(page_to_pfn(page), 0, PKS_ADOPT_FREED) != 0;
}

/**
 * __pks_pgtable_free() - give a page-table page back to where it came from
 * @page: a page-table page whose last user is gone
 *
 * Pages of the page-table cache and of the direct-map reserve go back to
 * their cache; other pages carrying the key (tables tagged at boot) lose it
 * before they are freed.
 *
 * Return: true if @page was taken care of, false if the caller must free it
 * to the page allocator.
 */
bool __pks_pgtable_free(struct page *page)
{
	unsigned long flags;

	if (grouped_pages_owns(pks_pgtable_cache, page)) {
		memcg_kmem_uncharge_page(page, 0);
		grouped_pages_free(pks_pgtable_cache, page);
		return true;
	}
	/* A direct-map table freed by CPA's unmap paths. */
	if (grouped_pages_owns(pks_dmap_cache, page)) {
		grouped_pages_free(pks_dmap_cache, page);
		return true;
	}
	if (pks_adopt_free(page))
		return true;
	/* The deferred untagging handles single pages, as every tagged table is. */
	if (compound_order(page) || !pks_page_has_pgtable_key(page))
		return false;
	memcg_kmem_uncharge_page(page, 0);
	spin_lock_irqsave(&pks_untag_lock, flags);
	list_add_tail(&page->lru, &pks_untag_list);
	spin_unlock_irqrestore(&pks_untag_lock, flags);
	queue_work(system_unbound_wq, &pks_untag_work);
	return true;
}
EXPORT_SYMBOL_GPL(__pks_pgtable_free);

/**
 * pks_untag_boot_table() - take the key off a boot page table before it is freed
 * @page: a page table from memblock (PageReserved), about to go to the page allocator
 *
 * The boot walk tagged such tables; the page allocator and the page's next
 * owner must find it writable. Context: process context, without cpa_lock.
 *
 * Return: true if @page may be freed, false if it kept the key and must leak.
 */
bool pks_untag_boot_table(struct page *page)
{
	if (!static_branch_likely(&pks_pgtables_enabled) || !pks_page_has_pgtable_key(page))
		return true;
	return pks_untag_or_leak(page);
}

/* For the KUnit suite: wait until freed tagged pages lost the key, and adopted tables got it. */
void pks_pgtable_flush_untag(void)
{
	flush_work(&pks_adopt_work);
	flush_work(&pks_untag_work);
}
EXPORT_SYMBOL_GPL(pks_pgtable_flush_untag);

/**
 * __pks_pgtable_account() - count a page-table page made or freed at one level
 * @level: the page table's level
 * @allocated: true when the table was made, false when it is being freed
 *
 * The cache cannot tell levels apart; the per-level constructors and
 * destructors can, and call this through pks_pgtable_account().
 */
void __pks_pgtable_account(enum pks_pgtable_level level, bool allocated)
{
	if (allocated)
		this_cpu_inc(pks_tables_allocated[level]);
	else
		this_cpu_inc(pks_tables_freed[level]);
}
EXPORT_SYMBOL_GPL(__pks_pgtable_account);

/**
 * pks_pgtable_read_counts() - sum the per-level counts of all CPUs
 * @counts: filled with the totals
 */
void pks_pgtable_read_counts(struct pks_pgtable_counts *counts)
{
	int cpu, level;

	memset(counts, 0, sizeof(*counts));
	for_each_possible_cpu(cpu) {
		for (level = 0; level < PKS_PGTABLE_LEVELS; level++) {
			counts->allocated[level] += per_cpu(pks_tables_allocated, cpu)[level];
			counts->freed[level] += per_cpu(pks_tables_freed, cpu)[level];
		}
	}
}
EXPORT_SYMBOL_GPL(pks_pgtable_read_counts);

/**
 * pks_direct_map_table_alloc() - a page table for splitting a direct-map large page
 *
 * Never sleeps and never refills inline, so it is safe while a grouped cache
 * is refilling or being shrunk.
 *
 * Return: a tagged page from the direct-map reserve, or NULL when PKS page
 * tables are off or the reserve is empty.
 */
struct page *pks_direct_map_table_alloc(void)
{
	struct page *page;

	if (!static_branch_likely(&pks_pgtables_enabled))
		return NULL;
	page = grouped_pages_alloc(pks_dmap_cache, NUMA_NO_NODE, GFP_NOWAIT);
	if (!page)
		atomic_long_inc(&pks_dmap_fallbacks);
	return page;
}

/**
 * pks_direct_map_table_free() - return an unused direct-map table to the reserve
 * @page: a page from pks_direct_map_table_alloc() or from the page allocator
 *
 * Return: true if @page was taken care of: back to the reserve, or to the
 * work item that frees a table from pks_direct_map_table_adopt().
 */
bool pks_direct_map_table_free(struct page *page)
{
	if (!static_branch_likely(&pks_pgtables_enabled))
		return false;
	if (pks_adopt_free(page))
		return true;
	if (!grouped_pages_owns(pks_dmap_cache, page))
		return false;
	grouped_pages_free(pks_dmap_cache, page);
	return true;
}

/*
 * KASAN's shadow maps one zero page table under thousands of entries: a table
 * that repeats the previous one at its level is neither counted nor walked again.
 */
struct pks_walker {
	struct pks_pgtable_walk *walk;
	bool tag;
	/* Without split PMD locks the deposits hang off the mm: walk them once. */
	bool mm_deposits_walked;
	struct page *last[PKS_PGTABLE_LEVELS];
};

/* Count (and with ->tag, tag) a table; false if it repeats the last one of its level. */
static bool pks_visit(struct pks_walker *w, struct page *table, int level)
{
	if (w->last[level] == table)
		return false;
	w->last[level] = table;
	w->walk->tables[level]++;
	if (pks_page_has_pgtable_key(table))
		return true;
	if (pks_adopt_pending(table)) {
		w->walk->pending[level]++;
		return true;
	}
	if (w->tag && !pks_set_key(table, 1, PKS_KEY_PGTABLES)) {
		atomic_long_inc(&pks_boot_tables_tagged);
		return true;
	}
	w->walk->untagged[level]++;
	return true;
}

/*
 * A huge PMD entry of a user mm keeps a PTE table in reserve for its split
 * (pgtable_trans_huge_deposit()): a table from the cache like any other, kept
 * on a list of its PMD table's, under the PMD lock rather than mmap_lock.
 */
static void pks_walk_deposited(struct pks_walker *w, struct mm_struct *mm, pmd_t *pmd_table)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	pgtable_t first, table;
	spinlock_t *ptl;	/* the PMD table's lock, which deposits take */

	/* Tagging sleeps (CPA): only counting walks look here, and no boot table is deposited. */
	if (mm == &init_mm || w->tag)
		return;
	if (!IS_ENABLED(CONFIG_SPLIT_PMD_PTLOCKS)) {
		if (w->mm_deposits_walked)
			return;
		w->mm_deposits_walked = true;
	}
	ptl = pmd_lock(mm, pmd_table);
	first = pmd_huge_pte(mm, pmd_table);
	if (first) {
		pks_visit(w, first, PKS_PGTABLE_PTE);
		list_for_each_entry(table, &first->lru, lru)
			pks_visit(w, table, PKS_PGTABLE_PTE);
	}
	spin_unlock(ptl);
#endif
}

static void pks_walk_pud_table(struct pks_walker *w, struct mm_struct *mm, pud_t *pud_table)
{
	unsigned int i, j;

	for (i = 0; i < PTRS_PER_PUD; i++) {
		pud_t pud = READ_ONCE(pud_table[i]);
		bool huge_pmds = false;
		pmd_t *pmd_table;

		if (pud_none(pud) || !pud_present(pud) || pud_leaf(pud))
			continue;
		pmd_table = pud_pgtable(pud);
		if (!pks_visit(w, virt_to_page(pmd_table), PKS_PGTABLE_PMD))
			continue;
		for (j = 0; j < PTRS_PER_PMD; j++) {
			pmd_t pmd = READ_ONCE(pmd_table[j]);

			if (pmd_none(pmd))
				continue;
			/* A huge page under migration keeps its deposit too. */
			if (!pmd_present(pmd) || pmd_leaf(pmd)) {
				huge_pmds = true;
				continue;
			}
			pks_visit(w, pmd_page(pmd), PKS_PGTABLE_PTE);
		}
		if (huge_pmds)
			pks_walk_deposited(w, mm, pmd_table);
	}
}

static void pks_walk_pgd_entry(struct pks_walker *w, struct mm_struct *mm, pgd_t *pgdp)
{
	pgd_t pgd = READ_ONCE(*pgdp);
	unsigned int i, nr = 1;
	p4d_t *p4d_table;

	if (pgd_none(pgd) || !pgd_present(pgd))
		return;
	if (pgtable_l5_enabled()) {
		p4d_table = (p4d_t *)pgd_page_vaddr(pgd);
		if (!pks_visit(w, virt_to_page(p4d_table), PKS_PGTABLE_P4D))
			return;
		nr = PTRS_PER_P4D;
	} else {
		/* Four levels: the P4D level is folded into the PGD entry. */
		p4d_table = (p4d_t *)pgdp;
	}
	for (i = 0; i < nr; i++) {
		p4d_t p4d = READ_ONCE(p4d_table[i]);
		pud_t *pud_table;

		if (p4d_none(p4d) || !p4d_present(p4d) || p4d_leaf(p4d))
			continue;
		pud_table = p4d_pgtable(p4d);
		if (pks_visit(w, virt_to_page(pud_table), PKS_PGTABLE_PUD))
			pks_walk_pud_table(w, mm, pud_table);
	}
}

static void pks_walk_mm(struct mm_struct *mm, struct pks_pgtable_walk *walk, bool tag)
{
	/* The kernel half is shared by every mm: walk it through init_mm only. */
	unsigned int first = mm == &init_mm ? PTRS_PER_PGD / 2 : 0;
	unsigned int last = mm == &init_mm ? PTRS_PER_PGD : PTRS_PER_PGD / 2;
	struct pks_walker w = { .walk = walk, .tag = tag };
	unsigned int i;

	/*
	 * As ptdump does: memory hot-remove frees direct-map tables, and munmap()
	 * frees page tables under the read lock; set_memory_collapse() stays out
	 * while init_mm's is held.
	 */
	get_online_mems();
	mmap_write_lock(mm);
	/*
	 * init_mm's PGD is swapper_pg_dir, in the kernel image next to the boot
	 * tables below it, whose tagging keys their image alias as well (CPA
	 * keeps aliases alike) and splits that stretch of the image mapping
	 * anyway: the PGD gets the key like them, at no further cost.
	 */
	pks_visit(&w, virt_to_page(mm->pgd), PKS_PGTABLE_PGD);
	for (i = first; i < last; i++)
		pks_walk_pgd_entry(&w, mm, mm->pgd + i);
	mmap_write_unlock(mm);
	put_online_mems();
}

/**
 * pks_pgtable_walk() - count live page-table pages and those lacking the key
 * @mm: &init_mm for the kernel half, any other mm for its user half
 * @walk: counts are added here
 *
 * Context: process context, without the memory hotplug lock or @mm's mmap
 * lock: the walk takes get_online_mems() and then the mmap lock for writing.
 */
void pks_pgtable_walk(struct mm_struct *mm, struct pks_pgtable_walk *walk)
{
	pks_walk_mm(mm, walk, false);
}
EXPORT_SYMBOL_GPL(pks_pgtable_walk);

static unsigned long pks_sum_levels(const unsigned long *per_level)
{
	unsigned long sum = 0;
	int level;

	for (level = 0; level < PKS_PGTABLE_LEVELS; level++)
		sum += per_level[level];
	return sum;
}

static unsigned long pks_untagged(struct pks_pgtable_walk *walk)
{
	return pks_sum_levels(walk->untagged);
}

static unsigned long pks_pending(struct pks_pgtable_walk *walk)
{
	return pks_sum_levels(walk->pending);
}

/*
 * The mms of all threads, each once. A thread group whose leader exited keeps
 * its mm in the other threads, so every thread is looked at, not only leaders.
 * Return: how many were taken, or -ENOSPC when @max were not enough.
 */
static int pks_take_mms(struct mm_struct **mms, unsigned int max)
{
	struct task_struct *p, *t;
	unsigned int nr = 0, i;
	int ret = 0;

	rcu_read_lock();
	for_each_process_thread(p, t) {
		struct mm_struct *mm = READ_ONCE(t->mm);

		if (!mm || (t->flags & PF_KTHREAD))
			continue;
		for (i = 0; i < nr && mms[i] != mm; i++)
			;
		if (i < nr)
			continue;
		if (nr == max) {
			ret = -ENOSPC;
			goto out;
		}
		mm = get_task_mm(t);
		if (mm)
			mms[nr++] = mm;
	}
out:
	rcu_read_unlock();
	if (!ret)
		return nr;
	while (nr)
		mmput(mms[--nr]);
	return ret;
}

/* The kernel half, every process's user half and text_poke()'s address space. */
static int pks_walk_all(struct pks_pgtable_walk *walk)
{
	unsigned int max = nr_threads + 64, i;
	struct mm_struct **mms;
	int nr;

	pks_pgtable_walk(&init_mm, walk);
	if (poking_mm)
		pks_pgtable_walk(poking_mm, walk);
	for (;;) {
		mms = kvcalloc(max, sizeof(*mms), GFP_KERNEL);
		if (!mms)
			return -ENOMEM;
		nr = pks_take_mms(mms, max);
		if (nr != -ENOSPC)
			break;
		kvfree(mms);
		max *= 2;
	}
	for (i = 0; i < nr; i++) {
		pks_pgtable_walk(mms[i], walk);
		mmput(mms[i]);
	}
	kvfree(mms);
	return 0;
}

static const char * const pks_level_names[PKS_PGTABLE_LEVELS] = {
	[PKS_PGTABLE_PTE] = "pte",
	[PKS_PGTABLE_PMD] = "pmd",
	[PKS_PGTABLE_PUD] = "pud",
	[PKS_PGTABLE_P4D] = "p4d",
	[PKS_PGTABLE_PGD] = "pgd",
};

/* Two per-level counts as "<level>_<name> <value>" lines, level by level. */
static void pks_show_levels(struct seq_file *m, const char *name_a, const unsigned long *a,
			    const char *name_b, const unsigned long *b)
{
	int level;

	for (level = 0; level < PKS_PGTABLE_LEVELS; level++)
		seq_printf(m, "%s_%s %lu\n%s_%s %lu\n",
			   pks_level_names[level], name_a, a[level],
			   pks_level_names[level], name_b, b[level]);
}

static int pks_walk_show(struct seq_file *m, void *unused)
{
	struct pks_pgtable_walk walk = {};
	int ret = pks_walk_all(&walk);

	if (ret)
		return ret;
	pks_show_levels(m, "tables", walk.tables, "untagged", walk.untagged);
	seq_printf(m, "untagged %lu\n", pks_untagged(&walk));
	seq_printf(m, "pending %lu\n", pks_pending(&walk));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pks_walk);

static int pks_levels_show(struct seq_file *m, void *unused)
{
	struct pks_pgtable_counts counts;

	pks_pgtable_read_counts(&counts);
	pks_show_levels(m, "allocated", counts.allocated, "freed", counts.freed);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pks_levels);

static int pks_status_show(struct seq_file *m, void *unused)
{
	struct pks_pgtable_faults faults;
	u64 pkrs = 0;

	if (static_branch_likely(&pks_pgtables_enabled))
		rdmsrl(MSR_IA32_PKRS, pkrs);
	pks_pgtable_read_faults(&faults);
	seq_printf(m, "enabled %d\nkey %d\npkrs %#llx\n",
		   static_key_enabled(&pks_pgtables_enabled) ? 1 : 0, PKS_KEY_PGTABLES, pkrs);
	seq_printf(m, "mode %s\nenforcing %d\ndefault_pkrs %#x\nwrite_windows %lu\n",
		   pks_mode_names[pks_mode], static_key_enabled(&pks_pgtables_enforcing) ? 1 : 0,
		   pks_default_pkrs, pks_pgtable_windows());
	seq_printf(m, "lazy_mmu_windows %lu\npkrs_writes %lu\n",
		   pks_sum_per_cpu(&pks_lazy_windows), pks_sum_per_cpu(&pks_pkrs_writes));
	seq_printf(m, "pk_faults %lu\npk_faults_fixed_up %lu\npk_faults_expected %lu\n",
		   faults.unexpected, faults.fixed_up, faults.expected);
	seq_printf(m, "unprotected_bringups %lu\n", faults.unprotected_bringups);
	seq_printf(m, "pgtable_fallbacks %ld\ndirect_map_reserve %u\ndirect_map_fallbacks %ld\n",
		   atomic_long_read(&pks_pgtable_fallbacks), pks_dmap_reserve,
		   atomic_long_read(&pks_dmap_fallbacks));
	seq_printf(m, "pgtable_fallbacks_adopted %ld\nadopted_tables_tagged %ld\n",
		   atomic_long_read(&pks_pgtable_fallbacks_adopted),
		   atomic_long_read(&pks_adopted_tagged));
	seq_printf(m, "boot_tables_tagged %ld\n", atomic_long_read(&pks_boot_tables_tagged));
	seq_printf(m, "freed_tables_untagged %ld\nuntag_failures %ld\n",
		   atomic_long_read(&pks_foreign_untagged),
		   atomic_long_read(&pks_foreign_untag_failures));
	/* Userspace cannot see whether P4D tables exist: four-level paging folds them. */
	seq_printf(m, "paging_levels %d\n", pgtable_l5_enabled() ? 5 : 4);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(pks_status);

/* Test hooks: the KUnit suite checks the reserve and the caches directly. */
struct grouped_pages_cache *pks_pgtables_cache(bool direct_map)
{
	return direct_map ? pks_dmap_cache : pks_pgtable_cache;
}
EXPORT_SYMBOL_GPL(pks_pgtables_cache);

/* Every node gets its share: CPA takes a table on any node, without sleeping. */
static void __init pks_fill_dmap_reserve(void)
{
	struct page *page;
	int nid;

	for_each_node_state(nid, N_NORMAL_MEMORY) {
		/* A sleeping allocation refills until more than the reserve is cached. */
		page = grouped_pages_alloc(pks_dmap_cache, nid, GFP_KERNEL);
		if (page)
			grouped_pages_free(pks_dmap_cache, page);
	}
}

/*
 * Tables made before the caches existed get the key now. Tagging them splits
 * the direct map around them, and a split may outrun the reserve and take an
 * untagged table from the page allocator: walk again, with the reserve
 * refilled, until a walk finds nothing left to tag.
 */
static void __init pks_tag_boot_tables(void)
{
	struct pks_pgtable_walk walk;
	unsigned int pass;

	for (pass = 0; pass < 8; pass++) {
		long tagged = atomic_long_read(&pks_boot_tables_tagged);

		memset(&walk, 0, sizeof(walk));
		pks_walk_mm(&init_mm, &walk, true);
		/* text_poke()'s tables were made before the caches, at poking_init(). */
		if (poking_mm)
			pks_walk_mm(poking_mm, &walk, true);
		grouped_pages_flush_refill(pks_dmap_cache);
		if (atomic_long_read(&pks_boot_tables_tagged) == tagged)
			break;
	}
	if (pks_untagged(&walk))
		pr_warn("pks_pgtables: %lu kernel page tables could not be tagged\n",
			pks_untagged(&walk));
}

/* Run by every CPU at once, when none can be inside a write window. */
static int pks_enforce_on_cpu(void *unused)
{
	pks_write_pkrs(pks_default_pkrs);
	return 0;
}

/*
 * Windows open from here on. CPUs brought up later read the new default; those
 * online now take it in stop_machine(), where none is inside a window that
 * would restore the old PKRS when it closes.
 */
static void __init pks_start_enforcing(void)
{
	static_branch_enable(&pks_pgtables_enforcing);
	WRITE_ONCE(pks_default_pkrs, PKS_ENFORCING_PKRS);
	stop_machine(pks_enforce_on_cpu, NULL, cpu_online_mask);
}

static int __init pks_pgtables_init(void)
{
	struct dentry *dir;

	if (!pks_available()) {
		pr_info("pks_pgtables: %s: page tables allocated as usual\n",
			pks_off_by_param ? "off (nopkstables)" :
			pks_off_by_pti() ? "off (page-table isolation: two-page PGDs)" :
			"CPU lacks PKS");
		return 0;
	}
	/* Enough tables to split a sixteenth of the 2M regions of memory at once. */
	pks_dmap_reserve = clamp_t(unsigned long, totalram_pages() >> (PMD_ORDER + 4), 32,
				   GROUPED_PAGES_MAX_RESERVE);
	pks_dmap_cache = grouped_pages_cache_create("pks_direct_map", &pks_pgtables_prot, NULL,
						    pks_dmap_reserve);
	pks_pgtable_cache = grouped_pages_cache_create("pks_pgtables", &pks_pgtables_prot, NULL,
						       PKS_PGTABLE_RESERVE);
	if (!pks_dmap_cache || !pks_pgtable_cache) {
		pr_warn("pks_pgtables: cannot create the caches: page tables allocated as usual\n");
		return 0;
	}
	pks_fill_dmap_reserve();
	static_branch_enable(&pks_pgtables_enabled);

	pks_tag_boot_tables();
	if (pks_mode != PKS_MODE_PERMISSIVE)
		pks_start_enforcing();
	pr_info("pks_pgtables: page tables carry PKS key %d; %ld boot tables tagged; mode %s\n",
		PKS_KEY_PGTABLES, atomic_long_read(&pks_boot_tables_tagged),
		pks_mode_names[pks_mode]);

	dir = debugfs_create_dir("pks_pgtables", NULL);
	debugfs_create_file("status", 0444, dir, NULL, &pks_status_fops);
	debugfs_create_file("walk", 0400, dir, NULL, &pks_walk_fops);
	debugfs_create_file("levels", 0444, dir, NULL, &pks_levels_fops);
	return 0;
}
arch_initcall(pks_pgtables_init);
