/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Protection keys for supervisor pages (PKS): a 4-bit key in each kernel PTE
 * selects two bits of the per-CPU IA32_PKRS MSR, access-disable and
 * write-disable, that apply to supervisor data accesses.
 *
 * Page tables carry PKS_KEY_PGTABLES. While PKS page tables are enforcing,
 * PKRS write-disables that key on every CPU and page-table writers open a
 * short write window around each write. Interrupts and exceptions run with
 * the default PKRS, never inside the window they interrupted: see
 * <asm/pks_entry.h>.
 */
#ifndef _ASM_X86_PKS_H
#define _ASM_X86_PKS_H

#include <linux/jump_label.h>
#include <linux/types.h>

struct pt_regs;

#define PKS_KEY_DEFAULT		0
/* The key page-table pages carry in the direct map. */
#define PKS_KEY_PGTABLES	1

#define PKR_AD_BIT		0x1u
#define PKR_WD_BIT		0x2u
#define PKR_BITS_PER_PKEY	2
#define PKRS_AD(key)		(PKR_AD_BIT << ((key) * PKR_BITS_PER_PKEY))
#define PKRS_WD(key)		(PKR_WD_BIT << ((key) * PKR_BITS_PER_PKEY))

/* PKRS outside write windows once page tables are write-protected. */
#define PKS_ENFORCING_PKRS	PKRS_WD(PKS_KEY_PGTABLES)

/* @pkrs with page tables writable: what a write window runs with. */
static __always_inline u32 pks_pkrs_writable(u32 pkrs)
{
	return pkrs & ~PKRS_WD(PKS_KEY_PGTABLES);
}

/* What pks_pgtable_write_begin() returns when it opened no window. */
#define PKS_NO_WINDOW		(~0UL)

#ifdef CONFIG_PKS_PG_TABLES
DECLARE_STATIC_KEY_FALSE(pks_pgtables_enforcing);

void setup_pks(void);
void pks_load_pkrs_before_cr4(void);
bool pks_available(void);
unsigned long __pks_pgtable_write_begin(void);
void __pks_pgtable_write_end(unsigned long saved);
bool pks_pgtable_fault(struct pt_regs *regs, unsigned long error_code, unsigned long address);
void pks_restore_after_resume(void);
void __pks_lazy_mmu_enter(void);
void pks_lazy_mmu_leave(void);
void pks_paravirt_lazy_mmu_enter(void);
void pks_paravirt_lazy_mmu_leave(void);

/**
 * pks_pgtable_write_begin() - allow this CPU to write page tables
 *
 * Opens a write window: page-table pages are writable on this CPU, with
 * preemption off, until pks_pgtable_write_end(). Windows nest. Keep them to
 * the write itself: nothing in a window may sleep.
 *
 * Return: what pks_pgtable_write_end() needs to close the window.
 */
static __always_inline unsigned long pks_pgtable_write_begin(void)
{
	if (static_branch_unlikely(&pks_pgtables_enforcing))
		return __pks_pgtable_write_begin();
	return PKS_NO_WINDOW;
}

/**
 * pks_pgtable_write_end() - close a write window
 * @saved: what the matching pks_pgtable_write_begin() returned
 */
static __always_inline void pks_pgtable_write_end(unsigned long saved)
{
	/* A window opened before enforcement started was never opened. */
	if (saved != PKS_NO_WINDOW)
		__pks_pgtable_write_end(saved);
}

/*
 * arch_enter_lazy_mmu_mode(): page tables stay writable on this CPU, with
 * preemption off, until the matching pks_lazy_mmu_leave(), so that a batch
 * of updates opens one window. Windows nested in it write no PKRS.
 */
static __always_inline void pks_lazy_mmu_enter(void)
{
	if (static_branch_unlikely(&pks_pgtables_enforcing))
		__pks_lazy_mmu_enter();
}

#else
static inline void setup_pks(void) { }
static inline void pks_load_pkrs_before_cr4(void) { }
static inline bool pks_available(void) { return false; }
static inline unsigned long pks_pgtable_write_begin(void) { return PKS_NO_WINDOW; }
static inline void pks_pgtable_write_end(unsigned long saved) { }
static inline void pks_restore_after_resume(void) { }

static inline bool pks_pgtable_fault(struct pt_regs *regs, unsigned long error_code,
				     unsigned long address)
{
	return false;
}
#endif

#endif /* _ASM_X86_PKS_H */
