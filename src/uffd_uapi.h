/*
 * uffd_uapi.h -- the kernel's userfaultfd and PAGEMAP_SCAN names (Linux
 * 6.7) that older headers lack, defined from the kernel's UAPI where they
 * are missing. The userfaultfd tracker and lrvm-bench's floor of it use
 * them; no code lives here.
 */
#ifndef LRVM_UFFD_UAPI_H
#define LRVM_UFFD_UAPI_H

#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/ioctl.h>

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
    uint64_t start, end, categories;
};
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN          _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WRITTEN       (1 << 1)
#define PAGE_IS_PRESENT       (1 << 3)
#define PAGE_IS_SWAPPED       (1 << 4)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
#endif

#endif /* LRVM_UFFD_UAPI_H */
