/*
 * lrvm.h -- Lightweight Recoverable Virtual Memory, the full interface.
 *
 * A store is a directory. Each segment is a file DIR/NAME.seg mapped into
 * the address space; a program changes it with ordinary loads and stores
 * inside transactions, and a committed transaction survives a crash: its
 * redo records reach the shared log DIR/lrvm.log before lrvm_commit
 * returns, recovery replays the log at the next lrvm_open, and truncation
 * folds the log back into the segment files.
 *
 * Design claims
 *   - The mapping is MAP_PRIVATE: the kernel never writes an uncommitted
 *     byte back into a segment file. The log is redo-only.
 *   - A committed transaction is all or nothing after a crash; committed
 *     transactions are recovered in commit order, so a crash leaves a
 *     prefix of the committed history.
 *   - Every call returns 0 or a negative LRVM_E* code; no call exits the
 *     process or prints unless tracing is on.
 *   - All calls on one store are thread-safe.
 *
 * Tracking modes
 *   LRVM_TRACK_AUTO (the default): every store into a segment is captured
 *   by the kernel's write protection, and commit logs only the bytes that
 *   changed. No declaration is needed; lrvm_set_range is allowed and
 *   changes nothing. Stores outside every transaction belong to the
 *   store's ambient epoch, committed atomically by lrvm_sync
 *   (failure-atomic msync). AUTO takes the userfaultfd tracker where the
 *   kernel offers it, the mprotect tracker otherwise; a program may name
 *   either:
 *   LRVM_TRACK_UFFD: userfaultfd write-protection in async mode (Linux 6.7
 *   and later, with PAGEMAP_SCAN): the kernel marks each page written,
 *   with no signal; commit lists the written pages, compares them with
 *   the segment's committed image and protects them again. It owns no
 *   signal (C1 does not apply) and sees kernel writes (C6 does not
 *   apply); each commit walks the page tables of the segment's touched
 *   part (and lrvm_begin too, unless nothing in the process has faulted
 *   since), so a transaction of one page on a large, densely touched
 *   segment costs more than under the mprotect tracker. Refused with
 *   LRVM_EMODE where the kernel or the process lacks it.
 *   LRVM_TRACK_MPROTECT: segments are mapped read-only; the first store to
 *   a page faults (SIGSEGV), and lrvm saves the page and makes it writable
 *   (lrvm_set_range captures pages early, without the fault). C1 applies.
 *   LRVM_TRACK_EXPLICIT: exactly the ranges declared with lrvm_set_range
 *   are saved and logged (classic RVM). Stores outside declared ranges are
 *   not persisted and not undone by lrvm_abort; lrvm_sync is LRVM_EMODE.
 *   lrvm_stats' tracking field says which tracker a store got.
 *   LRVM_TRACKING (the classic API's stores) takes auto, explicit, uffd or
 *   mprotect, in any case.
 *
 * Caveats
 *   C1 The mprotect tracker owns SIGSEGV: it installs a handler through GNU
 *      libsigsegv, which replaces any SIGSEGV handler the program set.
 *      Faults that are not first stores to a tracked page are declined and
 *      kill the program as they would without lrvm. A thread that blocks
 *      SIGSEGV cannot be captured: lrvm_map (and lrvm_heap_open) called
 *      from such a thread fails with LRVM_EMODE, and any other thread that
 *      blocks it dies at its first store into a segment, as the kernel
 *      forces the default action on a blocked fault.
 *   C2 fork(): the child shares the lock on the store's directory and a
 *      copy of the mappings; it must not call lrvm on the parent's store.
 *      Open stores in the child, after fork, if it needs one.
 *   C3 Network file systems: the lock (flock) and fdatasync must be
 *      honoured by the file system; NFS may do neither reliably.
 *      doc/architecture.md states once what lrvm assumes of the file
 *      system and what it then guarantees.
 *   C4 An I/O error during a commit fails that commit and leaves the store
 *      usable when lrvm could invalidate the failed record. When it could
 *      not (the invalidating write or sync failed too), the store refuses
 *      further commits, flushes and truncations with LRVM_EFAILED until it
 *      is closed and opened again, and the failed transaction's outcome is
 *      unknown until recovery. The same holds when a truncation cannot
 *      undo a half-written log header, and when a sync shared by several
 *      concurrent commits fails (group commit): every one of them fails,
 *      no-flush commits not yet durable are lost with them, and lrvm
 *      zeroes the log past its last durable record so that none of them
 *      comes back after a crash. So too when a write or sync fails of
 *      records no-flush commits already handed to the log (a no-flush
 *      commit that fills the log buffer leaves the records before it to
 *      a thread of lrvm's own, which writes and syncs them): the next
 *      commit, flush or truncation reports the error.
 *   C5 Segment files must not be changed by anything but lrvm while the log
 *      holds records for them.
 *   C6 Kernel writes into a segment (the mprotect tracker): a system call
 *      that writes into a write-protected page fails with EFAULT instead
 *      of faulting.
 *      liblrvm wraps read, pread, readv, preadv, recv, recvfrom and recvmsg
 *      so their buffers are captured first; calls made inside libc (fread)
 *      and every other system call that writes into memory (getdents,
 *      stat into a segment, io_uring...) need lrvm_set_range on the buffer
 *      first, or a buffer outside the segment. The wrappers then call the
 *      C library's definitions, so they stay cancellation points and the
 *      fortified (_FORTIFY_SOURCE) ones still check their buffers.
 *   C7 A store into a segment belongs to the transaction that holds the
 *      segment, whichever thread makes it; outside transactions to the
 *      ambient epoch. lrvm_begin sets the segment's ambient changes aside
 *      (they survive its abort and are committed by the next lrvm_sync).
 *      Other threads may go on storing while lrvm_sync runs: each store is
 *      in that sync or the next one. (The mprotect tracker makes a store
 *      to a page being committed wait until the sync returns; the
 *      userfaultfd tracker lets it land, and the next sync takes it.) A
 *      store that races with lrvm_commit on its own transaction's pages
 *      is a data race: it may be lost.
 *   C8 Memory: the userfaultfd tracker keeps, per segment, an image of it
 *      (a second private mapping of its file): each page a commit changed
 *      since lrvm_map holds a private copy there. The mprotect tracker
 *      reserves, per segment, address space for one before-image of every
 *      page (MAP_NORESERVE); a transaction that changes N pages uses N
 *      pages of it. When vm.max_map_count runs short (over a sixth of it
 *      used by isolated writable pages) it widens capture to aligned
 *      blocks of 64 pages. If mprotect still fails, the handler prints a
 *      diagnostic and declines, and the process dies of SIGSEGV.
 *   C9 Segments are file mappings, and recovery copies the changes it
 *      replays out of a read-only mapping of the log: a disk read error in
 *      either raises SIGBUS, as for any mapped file, instead of returning
 *      LRVM_EIO. (The scan that checks the log reads it with pread, so a
 *      read error there is LRVM_EIO.) Recovery also holds up to a quarter of the
 *      resident limit (C14), 64 MiB at most, of segment blocks in memory
 *      while it replays.
 *   C10 The store directory is trusted only when this user (or root) owns
 *      it and no one else may write to it, as ssh treats ~/.ssh: otherwise
 *      another user could replace a segment file by a symbolic link, and
 *      recovery would write the log's records wherever it points. Its
 *      files are opened without following links and must be regular
 *      files; a store shared on purpose (a group's directory) is opened
 *      with lrvm_options.shared. The lock is taken on the directory
 *      itself, so removing lrvm.lock while a store is open lets no second
 *      process in. A store whose directory or log is removed while it is
 *      open keeps its files only in the process's descriptors, where no
 *      commit is durable: the next sync of the log fails (a flushed commit
 *      or lrvm_flush with LRVM_EIO and errno ENOENT, the calls after it as
 *      C4 says). A segment file removed so fails the truncation that would
 *      write it the same way; the log keeps its records, and lrvm_open
 *      refuses them (LRVM_ECORRUPT) until the file is back.
 *   C11 Mappings changed by the program: a segment's pages belong to lrvm
 *      while the segment is mapped. If the program unmaps a page that a
 *      transaction wrote (the mprotect tracker), or any page of a segment
 *      (the userfaultfd tracker, which cannot tell whether it was
 *      written), the next commit of it fails with LRVM_EFAULT (the store
 *      stays usable; abort restores what is still mapped; later commits
 *      go on with what is mapped). A MAP_FIXED over a segment fails the
 *      commits of it with LRVM_EFAULT under the userfaultfd tracker, from
 *      the first that follows a store or any other page fault in the
 *      process (abort still restores the segment's own pages); under
 *      the mprotect tracker, it and the program's own mprotect(PROT_WRITE)
 *      are not detected: stores to such pages are not captured and are
 *      silently lost, and a page the program made PROT_NONE kills it when
 *      lrvm reads it. Stores into a segment made by another process
 *      (process_vm_writev, a debugger) are not captured.
 *   C12 A full disk: lrvm reserves a segment file's blocks when lrvm_map
 *      (or lrvm_heap_open) creates or grows it, so a segment larger than
 *      the free space fails there with LRVM_ENOSPC, and no later commit,
 *      truncation or recovery needs a new block of a segment file. What
 *      can still fail when the disk fills: a commit whose records do not
 *      fit the log's preallocated room (LRVM_ENOSPC, the store usable);
 *      creating a file (the first lrvm_open of a store, a new segment or
 *      heap). A file system that cannot reserve blocks (no fallocate)
 *      leaves segment files sparse, as before; a segment file made by an
 *      older version, sparse, is not reserved until it grows.
 *   C13 Damage in the log: a record carries the log offset that was durable
 *      when it was made, so an intact record past a damaged spot proves
 *      the spot was durable; lrvm_open then fails with LRVM_ECORRUPT
 *      (traced with the offset) instead of dropping the acknowledged
 *      commits after it, and lrvmutl verify names what they are;
 *      lrvmutl recover --discard-after keeps the commits before the
 *      damage on purpose. Damage it cannot tell from a torn tail, and
 *      takes for one: in the last batch of records synced before a crash
 *      when nothing was written after it, over more than 4 MiB, or in a
 *      log of format 1 (older versions).
 *   C14 Memory: after their commits the store keeps the private copies of
 *      the pages that transactions (or the ambient epoch) changed, and an
 *      automatic tracker a second copy of each (the mprotect tracker its
 *      before-image, the userfaultfd tracker its image). When a commit
 *      leaves more of them than lrvm_options.resident_limit, it starts a
 *      truncation of the log, which puts their committed bytes into the
 *      segment files beside the commits, and once that ended a commit
 *      gives back every page the files then hold and no open
 *      transaction or ambient epoch has changed since: the page reads the
 *      file again, and the kernel may evict it like any clean file page.
 *      Meanwhile the pages kept may pass the limit: commits slow to the
 *      truncation's pace, so that they pass it by at most a quarter,
 *      and there a commit waits for the truncation (lrvm_stats
 *      commit_waits); with the truncation's cache of a quarter of the
 *      limit, the store's memory stays within one and a half times the
 *      limit. The limit bounds what is kept between transactions, not
 *      what one transaction may touch. Segments are mapped
 *      MAP_NORESERVE, so one larger than memory maps; a program that
 *      touches one at random should advise MADV_RANDOM on it
 *      (madvise(2)), or the first touch of each page reads the device's
 *      readahead window around it. Three exceptions: the userfaultfd
 *      tracker gives private copies back only while the program runs a
 *      single thread (lrvm's own threads, which never store into a
 *      segment, do not count: the kernel resolves a store with no
 *      message, so another thread's store landing just as its page went
 *      would be lost), and with more threads only images: use the
 *      mprotect tracker (whose stores wait while pages go) to bound a
 *      multi-threaded program's memory; a segment with ambient runs set
 *      aside by lrvm_begin keeps its pages until the next lrvm_sync; in
 *      explicit mode, a store into a segment outside any transaction,
 *      never logged, may also vanish from memory when its page goes
 *      back.
 *   C15 Shared transactions (lrvm_begin_shared, explicit mode): the
 *      transactions that share a segment must declare disjoint bytes, as
 *      Coda RVM's users promise. Each commit logs, and each abort puts
 *      back, only its own declarations, so two transactions that both
 *      changed a byte would log each other's values or undo each other's
 *      work. The debug build (configure --enable-debug) checks it: a
 *      declaration that overlaps one of another open transaction fails
 *      with LRVM_EEXIST; the release build does not look. A segment held
 *      by shared transactions keeps its pages in memory (C14) until the
 *      last of them ends. The persistent heap serves them (lrvm_heap_open
 *      says how); a heap call from a thread that began no shared
 *      transaction on the heap fails with LRVM_EBUSY.
 */
#ifndef LRVM_H
#define LRVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; configure.ac takes the package's version
 * from these lines, and the library's soname from the major number. */
#define LRVM_VERSION_MAJOR 0
#define LRVM_VERSION_MINOR 6
#define LRVM_VERSION_PATCH 0

/* lrvm_version -- "MAJOR.MINOR.PATCH" of the library the program runs on,
 * which may be newer than the header it was built with. */
const char *lrvm_version(void);

typedef struct lrvm      lrvm_t;
typedef struct lrvm_tx   lrvm_tx_t;
typedef struct lrvm_heap lrvm_heap_t;

enum {
    LRVM_TRACK_AUTO = 0,        /* automatic capture by the faster tracker:
                                   MPROTECT today (doc/architecture.md) */
    LRVM_TRACK_EXPLICIT = 1,    /* lrvm_set_range declares every change */
    LRVM_TRACK_UFFD = 2,        /* userfaultfd write-protection, async mode
                                   (Linux 6.7+); LRVM_EMODE where missing */
    LRVM_TRACK_MPROTECT = 3     /* mprotect and SIGSEGV (caveat C1) */
};

/* Flags of lrvm_commit. */
enum { LRVM_NO_FLUSH = 1 };

/*
 * Error codes. Every failing call returns one of these (negative);
 * lrvm_strerror gives its message.
 */
#define LRVM_ERRNO_MAP(X)                                                     \
    X(EINVAL,   -1,  "invalid argument")                                      \
    X(EEXIST,   -2,  "already mapped or already in a transaction")            \
    X(ENOENT,   -3,  "no such file, segment or transaction")                  \
    X(EBUSY,    -4,  "store open in another process, or segment in use")      \
    X(EIO,      -5,  "input/output error")                                    \
    X(ENOSPC,   -6,  "no space left on device")                               \
    X(ENOMEM,   -7,  "out of memory")                                         \
    X(ECORRUPT, -8,  "log or heap fails its checks")                          \
    X(EVERSION, -9,  "file of another format version")                        \
    X(EADDR,    -10, "fixed address is taken")                                \
    X(EMODE,    -11, "not possible in this tracking mode")                    \
    X(ENOTDIR,  -12, "store path is not a directory")                         \
    X(EACCES,   -13, "permission denied")                                     \
    X(EFAILED,  -14, "store refuses commits after an unrecoverable I/O error") \
    X(ENOTSUP,  -15, "not supported in this release")                         \
    X(EFAULT,   -16, "a segment's pages were unmapped or protected by the program")

enum lrvm_errno {
#define LRVM__ERRNO_ENUM(name, value, text) LRVM_##name = value,
    LRVM_ERRNO_MAP(LRVM__ERRNO_ENUM)
#undef LRVM__ERRNO_ENUM
};

typedef struct lrvm_options {
    int    tracking;           /* LRVM_TRACK_AUTO (default), _EXPLICIT, _UFFD or
                                  _MPROTECT */
    size_t truncate_threshold; /* bytes of log (a generation's records and the
                                  header) past which a commit starts a
                                  truncation, which runs beside the commits
                                  (lrvm_truncate); 0: the bytes of the
                                  segments mapped, held to at most 64 MiB
                                  or a quarter of resident_limit, the
                                  less, and to at least 32 MiB (each
                                  truncation may write every block of
                                  every segment: a log as large keeps
                                  those writes within the log's own).
                                  Honoured from 4 KiB; smaller values
                                  are refused with LRVM_EINVAL. */
    size_t log_buffer_size;    /* bytes of committed records buffered in memory
                                  before a write; 0: 1 MiB. A transaction
                                  larger than this is written in parts.
                                  At least 4 KiB. */
    int    shared;             /* 1: the store directory is shared on purpose:
                                  open it even when anyone may write to it or
                                  another user owns it (refused by default) */
    size_t resident_limit;     /* bytes of segment pages the store keeps in
                                  memory after their commits: private copies
                                  of pages and the trackers' second copies
                                  (before-images, images). Past it a commit
                                  truncates the log and gives back every page
                                  whose committed bytes the files then hold
                                  (C14). 0: 256 MiB, or an eighth of the
                                  machine's memory when that is less. At
                                  least 1 MiB; smaller values are refused
                                  with LRVM_EINVAL. */
} lrvm_options_t;

/*
 * lrvm_open -- open (or create) the store in directory DIR.
 * Creates DIR (mode 0700) if it is missing, locks it (flock on the
 * directory, and on DIR/lrvm.lock for older versions), and runs recovery:
 * every complete record of the log is applied to the segment files and
 * the log is emptied. The store's files are opened relative to DIR, never
 * through a symbolic link, and must be regular files (C10).
 * opts may be NULL (every default).
 * Errors: LRVM_EINVAL (dir NULL or empty, bad option), LRVM_ENOTDIR,
 * LRVM_ENOENT (DIR's parent does not exist), LRVM_EACCES (no permission;
 * a file of the store that is a symbolic link or not a regular file; a
 * directory that anyone may write to or that another user owns, unless
 * opts->shared), LRVM_EBUSY (open in another process or already open in
 * this one), LRVM_ECORRUPT (a complete log record fails its checks, e.g. it
 * names a missing segment or a range outside one, or the log is damaged
 * before records that were durable after it (C13); nothing is applied),
 * LRVM_EVERSION, LRVM_EIO, LRVM_ENOSPC, LRVM_ENOMEM.
 */
int lrvm_open(const char *dir, const lrvm_options_t *opts, lrvm_t **out);

/*
 * lrvm_close -- abort the open transactions, make every committed
 * transaction durable, unmap every segment and release the store.
 * The store is released even when the final flush fails; the error is
 * returned (LRVM_EIO, LRVM_ENOSPC, LRVM_EFAILED) and no-flush commits may
 * then be lost.
 */
int lrvm_close(lrvm_t *rvm);

/*
 * lrvm_map -- map segment NAME, creating it with SIZE zero bytes if it
 * does not exist, extending it with zeros if it is shorter than SIZE.
 * An existing longer segment is mapped whole, at its own size.
 * Names: 1 to 200 bytes, no '/', no "..".
 * Errors: LRVM_EINVAL (name, size 0), LRVM_EEXIST (already mapped),
 * LRVM_EIO, LRVM_ENOSPC, LRVM_ENOMEM, LRVM_EMODE (auto mode and SIGSEGV
 * cannot be caught here).
 */
int lrvm_map(lrvm_t *rvm, const char *name, size_t size, void **base);

/*
 * lrvm_unmap -- unmap the segment at BASE. Uncommitted stores to it are
 * dropped. Errors: LRVM_ENOENT (not a segment base), LRVM_EBUSY (in an
 * open transaction).
 */
int lrvm_unmap(lrvm_t *rvm, void *base);

/*
 * lrvm_destroy -- remove segment NAME and its committed data for good.
 * Errors: LRVM_EINVAL (name), LRVM_EBUSY (mapped), LRVM_ENOENT, LRVM_EIO.
 */
int lrvm_destroy(lrvm_t *rvm, const char *name);

/*
 * lrvm_begin -- start a transaction over NSEGS mapped segments, named by
 * their bases. A segment belongs to at most one open transaction.
 * Errors: LRVM_EINVAL (nsegs < 1, a base listed twice), LRVM_ENOENT (not a
 * mapped segment base), LRVM_EEXIST (a segment is in another transaction).
 */
int lrvm_begin(lrvm_t *rvm, int nsegs, void *const *bases, lrvm_tx_t **tx);

/*
 * lrvm_begin_shared -- start a transaction over NSEGS mapped segments that
 * other shared transactions may hold too, each declaring its own disjoint
 * bytes (C15): threads that change separate records of one segment
 * commit and abort them independently. A segment is held either by one
 * lrvm_begin transaction or by any number of shared ones. Explicit mode
 * only: the automatic trackers cannot tell whose a store is (the kernel's
 * page protection is the whole process's: a page made writable for one
 * transaction's first store takes every thread's later stores silently,
 * so another transaction's store to it could be neither waited for nor
 * refused, and would commit or abort with the wrong transaction). The
 * transaction is used like any other.
 * Errors: those of lrvm_begin (LRVM_EEXIST: a segment is in an lrvm_begin
 * transaction, and lrvm_begin gets it for a segment in a shared one),
 * LRVM_EMODE (an automatic tracker).
 */
int lrvm_begin_shared(lrvm_t *rvm, int nsegs, void *const *bases, lrvm_tx_t **tx);

/*
 * lrvm_set_range -- declare that [addr, addr+len) is about to change: its
 * before-image is saved and, at commit, its bytes are logged (explicit
 * mode), or its pages are captured now, without faults (auto mode).
 * Ranges may repeat and overlap. len 0 does nothing.
 * In explicit mode the thread that began TX declares without taking the
 * store's lock. Any thread may use TX, but the first call that reaches
 * it from another thread (on TX, or on a heap inside it) or from
 * lrvm_close takes that right away for good, at the cost of one
 * membarrier(2).
 * Errors: LRVM_EINVAL (range not inside one segment of the transaction),
 * LRVM_ENOENT (transaction finished), LRVM_ENOMEM, LRVM_EEXIST (a shared
 * transaction's range overlaps another's, in the debug build: C15).
 */
int lrvm_set_range(lrvm_tx_t *tx, void *addr, size_t len);

/*
 * lrvm_commit -- commit TX. flags 0: durable when the call returns.
 * LRVM_NO_FLUSH: durable at the next lrvm_flush, flushing commit, close,
 * or soon after the log buffer fills (a thread of lrvm's own writes and
 * syncs the records before the commit that fills it, C4); commit
 * order is kept either way: lrvm_flush from any thread makes durable
 * every commit whose call returned before it began. In explicit mode the
 * thread that began TX commits a small transaction with LRVM_NO_FLUSH
 * without taking the store's lock (a shared TX that called the heap too,
 * when the blocks it freed fit what it keeps, below), and its next
 * lrvm_begin (or lrvm_begin_shared, for a shared TX) of the same
 * segments takes none either; nothing else changes for the program.
 * Group commit: flushing commits of several threads share fdatasyncs. A
 * commit that finds the log being synced writes its records and waits
 * (without the store's lock) for the next sync, which covers every commit
 * that came meanwhile. If a sync shared by several commits fails, all of
 * them fail, and so does the store (C4).
 * On success TX is freed. On failure TX stays open: commit may be retried,
 * or the transaction aborted. A freed handle passed again gets
 * LRVM_ENOENT, unless a later lrvm_begin happened to reuse its memory:
 * do not keep handles past commit or abort. While one thread commits TX,
 * other calls on TX get LRVM_EBUSY.
 * Errors: LRVM_EINVAL (flags), LRVM_ENOENT (finished transaction),
 * LRVM_EBUSY (TX is being committed by another thread), LRVM_EIO,
 * LRVM_ENOSPC (the log write failed; see caveat C4), LRVM_EFAILED,
 * LRVM_ENOMEM.
 */
int lrvm_commit(lrvm_tx_t *tx, int flags);

/*
 * lrvm_abort -- restore every declared range (explicit) or captured page
 * (auto) to its before-image and free TX. Errors: LRVM_ENOENT (finished transaction).
 */
int lrvm_abort(lrvm_tx_t *tx);

/* lrvm_sync -- commit the ambient epoch: every store made outside a
 * transaction since the last sync, atomically and durably. While a
 * transaction holds a segment, only the ambient changes made to it before
 * the transaction began are included (C7).
 * Errors: LRVM_EMODE (explicit mode), LRVM_EIO, LRVM_ENOSPC, LRVM_EFAILED. */
int lrvm_sync(lrvm_t *rvm);

/* lrvm_flush -- make every no-flush commit durable.
 * Errors: LRVM_EIO, LRVM_ENOSPC, LRVM_EFAILED. */
int lrvm_flush(lrvm_t *rvm);

/*
 * lrvm_truncate -- apply the log to the segment files, sync them, and
 * start a new, empty log generation: when it returns, the files hold
 * every commit, and lrvm_stats' log_size is the header alone. It waits
 * for a truncation running beside the commits first.
 * A commit starts a truncation by itself once the log passes
 * truncate_threshold (or the pages kept pass resident_limit): the part of
 * the log written so far is applied by a thread of the store's while
 * commits go on in another part, and no commit waits for a segment
 * file's write or sync, unless commits outrun it: a commit that finds
 * the log in use ahead of the truncation's progress sleeps 200
 * microseconds after it, so that commits slow to the truncation's pace;
 * the pages kept past resident_limit slow them the same way, against a
 * quarter of the limit more; when the log in use still reaches its limit
 * (about a threshold more than the part being applied), or the pages
 * kept pass the limit by a quarter, a commit waits for it. lrvm_stats
 * commit_waits counts both. lrvm_close waits for it too.
 * Errors: LRVM_EIO, LRVM_ENOSPC, LRVM_ECORRUPT.
 */
int lrvm_truncate(lrvm_t *rvm);

/*
 * The persistent heap: an allocator whose state lives in segment NAME,
 * which is always mapped at the same address, so pointers stored in the
 * heap stay valid from run to run.
 *
 * lrvm_heap_open -- open heap NAME, creating it with SIZE bytes (at least
 * 8 KiB) when the segment does not exist. A new heap's address is chosen
 * then (high in the address space) and recorded in it. An existing heap
 * opened with a larger SIZE grows to it in place, in a transaction of its
 * own (the addresses after it must be free, else LRVM_EADDR); a smaller
 * SIZE changes nothing. The handle lives until lrvm_close, or lrvm_unmap of
 * the heap's base. Errors: LRVM_EINVAL (name, size, or a segment with data
 * that is not a heap), LRVM_EEXIST (already mapped), LRVM_EADDR (the
 * recorded address range is taken by another mapping: the heap is never
 * moved), LRVM_ECORRUPT (the heap fails its checks), LRVM_EVERSION,
 * LRVM_EIO, LRVM_ENOSPC, LRVM_ENOMEM.
 *
 * A heap call changes the heap inside whatever owns the heap segment's
 * pages: the open transaction that includes lrvm_heap_base(heap), or else
 * the ambient epoch (auto mode). So an allocation is durable when that
 * transaction commits or that epoch is synced, and an abort takes it back.
 * In explicit mode the heap declares the ranges it changes itself, and a
 * heap call outside such a transaction fails with LRVM_EMODE. Stores into
 * allocated blocks are the program's, declared by it in explicit mode.
 *
 * Shared transactions (C15) that hold the heap segment use the heap at
 * once, each from its own thread: a call acts for the shared transaction
 * its thread began last on the heap. lrvm_malloc takes the block at
 * once, and the block is the caller's when its transaction commits; its
 * abort gives the block back, and the next lrvm_heap_open after a crash
 * that came first frees it. lrvm_free takes effect at the caller's commit
 * (its abort forgets it), but at once for a block its own transaction
 * took. Freeing a block that another open transaction took, or one this
 * transaction freed already, fails with LRVM_EINVAL. Blocks of up to 512
 * bytes that these transactions free or give back are kept for their next
 * allocations: up to 64 of each size by the transaction that freed them,
 * kept as long as its thread begins it again (lrvm_commit above), and
 * while those serve, that thread's lrvm_malloc and lrvm_free take no
 * store lock; and at most 128 of each size by the heap for all (taken 32
 * at a time, in transactions of the heap's own committed without a
 * flush). Larger ones go back to the heap's lists, and so do the kept
 * ones when a request finds the heap too full (but those of transactions
 * still open). The next lrvm_heap_open frees the kept ones, and until
 * then freeing one outside a shared transaction fails with LRVM_EINVAL.
 * calloc's zeros, realloc's copy and lrvm_heap_set_root are declared in
 * the caller's transaction (the root is one word: two transactions that
 * set it overlap, C15).
 *
 * lrvm_malloc, lrvm_calloc (zeroed), lrvm_realloc (contents kept up to
 * the smaller size; NULL p: malloc; size 0: free) return 16-byte aligned
 * blocks, or NULL with the reason in lrvm_last_error: LRVM_ENOMEM (no
 * free block fits), LRVM_EMODE, LRVM_EBUSY (the owning transaction is
 * being committed by another thread, or shared transactions hold the
 * heap segment and the caller began none: C15), LRVM_EINVAL (p is not a
 * block),
 * LRVM_ECORRUPT (the program wrote over the heap's own words, e.g. a
 * store into a freed block: the call stores nothing).
 * lrvm_free ignores NULL; a pointer that is no block is left alone
 * (LRVM_EINVAL in lrvm_last_error), as is one whose neighbours' words are
 * broken (LRVM_ECORRUPT). lrvm_heap_root returns the root object
 * set by lrvm_heap_set_root (NULL: none), which takes a block or NULL.
 * Free blocks are kept in lists by size (exact up to 512 bytes, then by
 * powers of two); malloc takes the first that fits from the smallest
 * list that has one, and freed blocks merge with free neighbours. A heap
 * made by an earlier version of liblrvm is brought to this one's heap
 * format (4), in one transaction, the first time lrvm_heap_open opens it
 * (format 1, one free list, is sorted into the lists; formats 2 and 3
 * need their version word only); an earlier liblrvm refuses a format 4
 * heap with LRVM_EVERSION.
 */
int   lrvm_heap_open(lrvm_t *rvm, const char *name, size_t size, lrvm_heap_t **heap);
void *lrvm_heap_base(lrvm_heap_t *heap);
void *lrvm_malloc(lrvm_heap_t *heap, size_t size);
void *lrvm_calloc(lrvm_heap_t *heap, size_t n, size_t size);
void *lrvm_realloc(lrvm_heap_t *heap, void *p, size_t size);
void  lrvm_free(lrvm_heap_t *heap, void *p);
void *lrvm_heap_root(lrvm_heap_t *heap);
int   lrvm_heap_set_root(lrvm_heap_t *heap, void *p);

typedef struct lrvm_stats {
    uint64_t commits, aborts, syncs; /* transactions committed / aborted, ambient epochs synced */
    uint64_t faults;                 /* pages captured by a write fault */
    uint64_t pages_captured;         /* pages captured by any means */
    uint64_t bytes_logged;           /* bytes of records written to the log, headers included */
    uint64_t log_records, fsyncs, truncations;
    uint64_t log_size;               /* end of the log in use: just past its last record;
                                        the header alone after lrvm_truncate */
    int      tracking;               /* the tracker the store uses: LRVM_TRACK_EXPLICIT,
                                        _MPROTECT or _UFFD, never _AUTO */
    uint64_t pages_private;          /* segment pages kept private in memory after their
                                        commits (C14) */
    uint64_t pages_shadow;           /* second copies kept with them: before-images
                                        (mprotect tracker) or images (userfaultfd tracker) */
    uint64_t pages_released;         /* pages given back to the kernel, both kinds */
    uint64_t commit_waits;           /* commits slowed or made to wait by a truncation
                                        running beside them: the log in use ahead of its
                                        progress, or at its limit (a generation being
                                        applied lay in the way); and no-flush commits
                                        slowed because the disk had not yet taken the
                                        log's earlier records */
} lrvm_stats_t;

/* lrvm_stats -- copy the store's counters. Errors: LRVM_EINVAL. The
 * struct grows at its end between minor versions while the major version
 * is 0 (0.3.0 added tracking, 0.4.0 the pages_ counters): rebuild programs against the lrvm.h of the
 * library they run on. */
int lrvm_stats(lrvm_t *rvm, lrvm_stats_t *out);

/* lrvm_strerror -- the message of an LRVM_E* code ("unknown error" else). */
const char *lrvm_strerror(int err);

/* lrvm_last_error -- the code behind the last failed rvm_* call, or heap
 * call that returns no code (lrvm_malloc, lrvm_calloc, lrvm_realloc,
 * lrvm_free), in this thread; 0 if none failed yet. */
int lrvm_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* LRVM_H */
