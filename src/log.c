/*
 * log.c -- the log writer: opening and creating DIR/lrvm.log, the record
 * encoder, the write buffer, commit, group commit and flush, and new
 * generations.
 *
 * Owns: struct lrvm__log, its syncer thread, and every write to lrvm.log
 * (its format and its reader are logfmt.c's). Never: applies records to
 * segment files (recover.c does), or reports a commit durable before its
 * fdatasync returned.
 *
 * Commit (flushing), in order:
 *   encode the records into the buffer; when it is full, the records of
 *     earlier no-flush commits ahead go first (written, their sync left
 *     to the syncer), and a transaction still larger than half the
 *     buffer spills its parts with pwrite;
 *   pwrite the buffer at the end of the log; fdatasync;
 *   only then is the commit reported.
 * A no-flush commit that fits stays in the buffer: no call at all.
 * A transaction's commit does the last two steps as a group (group_flush):
 * while one fdatasync runs without the store lock, later commits encode
 * and wait, and the next sync covers them all.
 * A failed commit overwrites every byte its records may have reached with
 * zeros and syncs, so no crash can make it look committed (C4 in lrvm.h).
 *
 * The tail. A no-flush commit of a small transaction needs only a place
 * in the buffer and the next number, so while the store lock is let go
 * the buffer's free end may be open to commits that take no lock at all
 * (lrvm__log_tail_commit): one compare-and-swap of lg_tail places the
 * record (its bytes and its number, in the one order of the log), the
 * committer writes it there and adds its size to the bytes written
 * (lg_tail_done). Whoever holds the store lock and touches the buffer
 * shuts the tail first (tail_shut): no place is given after that, it
 * waits until the bytes of every place given are written, and takes them
 * in as buffered records. The tail opens (lrvm__log_tail_open) only
 * where a commit lets the store lock go at its end, never while a commit
 * has a part open: one that lets the lock go to wait for its group's
 * sync has made all its records, and shuts the tail when it takes the
 * lock back. So a transaction's parts always lie together.
 *
 * The switch (lrvm__log_switch), in a committing thread, store lock held,
 * when a truncation is due and none runs; generation g began at S:
 *   pwrite the buffer; fdatasync                 g's records durable
 *   pwrite {g, S, first, next S', next txno N'} into the slot that is
 *     not current; fdatasync                     both generations current
 *   go on writing g+1 at S' (records numbered from N')
 * The truncation then applies g beside the commits (recover.c) and has
 * lrvm__log_retire_header write {g+1, S'} into the other slot and
 * fdatasync it, without the store lock; lrvm__log_retired takes note.
 * Two syncs of the log and no segment I/O in the commit that switches.
 *
 * Invariants
 *   I1 Records in [header, lg_durable) are synced; those in
 *      [lg_durable, lg_written) are in the file, or in the spare while
 *      the syncer writes them (I8); the buffer holds only whole records
 *      of committed transactions and of commits waiting for their group's
 *      sync (and, during a commit, the committing one's parts) and is
 *      written at lg_written.
 *   I2 lg_written == lg_durable except while a multi-part commit spills,
 *      a group leader's sync is under way, or the syncer owes the sync of
 *      records let go from the buffer (lg_written == lg_bg_owed). Linux
 *      may drop dirty pages after a failed writeback and report it to one
 *      fdatasync only: bytes still buffered can be written again, bytes
 *      let go could not, and the hole would end the log before later
 *      commits. So a sync that fails while such bytes are owed fails the
 *      store (lg_sync_rc, then group_fail): no later commit can be
 *      reported durable behind the hole. The syncer is at most
 *      BG_LAG_HARD buffers behind.
 *   I3 The bytes after the last valid record are zero, stale (another
 *      generation), or out of sequence (logfmt.c V6) -- never a valid record.
 *   I4 The log file is preallocated with written zeros ahead of its end,
 *      so the fdatasync of a commit is that of an in-place overwrite. It
 *      only grows, under lg_grow_mu, and a record is written only below
 *      the size published after the zeros were synced.
 *   I5 One fdatasync of the log at a time: each holds lg_sync_mu. A
 *      failed one made without the store lock (a truncation's header,
 *      the syncer's), or while the syncer is owed, fails every later one
 *      (lg_sync_rc): it may have taken the error that a commit's pages
 *      were lost, which no later fdatasync reports again.
 *   I6 A header slot names a next generation only once every record of
 *      its own is durable; the writer moves to the next generation only
 *      once that slot is durable.
 *   T1 While the tail is open, lg_buf past lg_buf_used, lg_buf_used and
 *      lg_next_txno are the tail's; lg_buf, lg_generation, lg_durable,
 *      lg_version and lg_failed hold still. Every function below that
 *      changes one of them shuts the tail first, under the store lock.
 *   T2 A place is given only below lg_buf_cap and only while the tail is
 *      open; lg_tail counts the places and their bytes from lg_tail_txno
 *      and lg_buf_used on, and once shut, the sum of lg_tail_done's parts
 *      reaches those bytes exactly when every placed record is whole.
 *   I7 While a generation retires, the current one lies apart from it:
 *      it began at 4096 and stays below the retiring one's start, or
 *      began past its end; no write of the log passes lg_wall (reserve
 *      waits until the retiring generation is applied).
 *   I8 While a write of the syncer's is posted or under way (lg_bg_wbuf,
 *      lg_bg_writing), the spare is its: no one else reads or changes
 *      it, and its bytes lie in [lg_durable, lg_written). Every sync
 *      that makes records durable (lrvm__log_sync, a group leader's)
 *      first waits until that write is done (bg_wait_written), and so
 *      do group_fail's zeros and whoever uses the spare next. (The
 *      syncer's own syncs follow its writes; a truncation's header sync
 *      makes no record of the current generation durable.)
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_GROW_CHUNK   (1u << 20)
#define LOG_AHEAD        ((uint64_t)4 << 20)  /* the syncer's step of growth */
#define LOG_GROW_PACE    (256u << 10)          /* zeros it has in flight at most */
#define BG_LAG_SOFT      4          /* buffers the syncer may owe before commits slow */
#define BG_LAG_HARD      16         /* ... and before a commit waits for it */
#define LOG_NEW_NAME     "lrvm.log.new"

/* lg_tail: the records placed (bits 32-62) and the buffer offset placed
 * to (bits 0-31), or TAIL_SHUT. */
#define TAIL_SHUT  ((uint64_t)1 << 63)
#define TAIL_ONE   ((uint64_t)1 << 32)
#define TAIL_OFF(w)   ((size_t)(uint32_t)(w))
#define TAIL_COUNT(w) (((w) & ~TAIL_SHUT) >> 32)

static void tail_shut(struct lrvm__log *lg);

/* ------------------------------------------------------------ the file */

static int write_slot(int fd, int slot, const struct lrvm__log_header *h)
{
    unsigned char buf[LRVM__LOG_SLOT_SIZE];
    lrvm__log_header_encode(buf, h);
    return lrvm__io_pwrite_all(fd, buf, sizeof buf, (uint64_t)slot * LRVM__LOG_SLOT_SIZE);
}

/* A new log is built aside and renamed into place, so lrvm.log is either
 * absent or has a valid header. */
static int create_log(struct lrvm__log *lg)
{
    struct lrvm__log_header h = { LRVM__LOG_VERSION, 1, 1, LRVM__LOG_HEADER_SIZE, 0, 0 };
    int rc, fd = lrvm__io_open(lg->lg_dirfd, LOG_NEW_NAME, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return fd;
    if ((rc = lrvm__io_pwrite_zeros(fd, 0, LRVM__LOG_HEADER_SIZE + LOG_GROW_CHUNK)) < 0 ||
        (rc = write_slot(fd, 0, &h)) < 0 ||
        (rc = lrvm__io_fdatasync(fd)) < 0)
        goto fail;
    if ((rc = lrvm__io_rename(lg->lg_dirfd, LOG_NEW_NAME, LRVM__LOG_NAME)) < 0 ||
        (rc = lrvm__io_fsync(lg->lg_dirfd)) < 0)
        goto fail;
    lg->lg_stats->fsyncs += 2;
    return fd;
fail:
    lrvm__io_close(fd);
    lrvm__io_unlink(lg->lg_dirfd, LOG_NEW_NAME);
    return rc;
}

int lrvm__log_open(struct lrvm__log *lg, int dirfd, pthread_mutex_t *mu, lrvm_stats_t *stats,
                   size_t buf_cap, uint64_t room)
{
    struct lrvm__log_header h;
    int rc;

    memset(lg, 0, sizeof *lg);
    atomic_store(&lg->lg_tail, TAIL_SHUT);
    lg->lg_fd = -1;
    lg->lg_dirfd = dirfd;
    lg->lg_mu = mu;
    lg->lg_stats = stats;
    lg->lg_buf_cap = buf_cap & ~(size_t)7;
    lg->lg_room = room;
    pthread_mutex_init(&lg->lg_sync_mu, NULL);
    pthread_cond_init(&lg->lg_synced, NULL);
    pthread_mutex_init(&lg->lg_grow_mu, NULL);
    pthread_mutex_init(&lg->lg_bg_mu, NULL);
    pthread_cond_init(&lg->lg_bg_cond, NULL);
    pthread_cond_init(&lg->lg_bg_idle, NULL);
    lg->lg_buf = malloc(lg->lg_buf_cap);
    lg->lg_spare = malloc(lg->lg_buf_cap);
    if (lg->lg_buf == NULL || lg->lg_spare == NULL)
        return LRVM_ENOMEM;

    int fd = lrvm__io_open(lg->lg_dirfd, LRVM__LOG_NAME, O_RDWR, 0);
    if (fd == LRVM_ENOENT) {
        (void)lrvm__io_unlink(lg->lg_dirfd, LOG_NEW_NAME);   /* left by a crash */
        fd = create_log(lg);
        if (fd < 0)
            return fd;                      /* already an LRVM code */
        lg->lg_clean = 1;
    } else if (fd < 0) {
        return fd;
    }
    lg->lg_fd = fd;
    if ((rc = lrvm__log_read_header(fd, &h, &lg->lg_slot)) < 0)
        return rc;
    uint64_t size;
    if ((rc = lrvm__io_fstat_size(fd, &size)) < 0)
        return rc;
    atomic_store(&lg->lg_file_size, size);
    lg->lg_version = h.lh_version;
    lg->lg_generation = h.lh_generation;
    lg->lg_first_txno = h.lh_first_txno;
    lg->lg_start = h.lh_start;
    if (h.lh_next_start != 0) {
        /* A crash left a generation being retired: the writer is in the
         * next one, and recovery at open applies both. */
        lg->lg_retiring = 1;
        lg->lg_ret = (struct lrvm__log_retiring){ h.lh_generation, h.lh_start, 0,
                                                  h.lh_first_txno, h.lh_next_txno,
                                                  h.lh_next_start, !lg->lg_slot };
        lg->lg_generation = h.lh_generation + 1;
        lg->lg_first_txno = h.lh_next_txno;
        lg->lg_start = h.lh_next_start;
    }
    lg->lg_next_txno = lg->lg_first_txno;
    lg->lg_durable = lg->lg_written = lg->lg_start;
    return 0;
}

static void bg_stop(struct lrvm__log *lg);

void lrvm__log_close(struct lrvm__log *lg)
{
    if (lg->lg_buf_cap == 0)
        return;                             /* zeroed: lrvm__log_open never ran */
    tail_shut(lg);
    bg_stop(lg);
    if (lg->lg_fd >= 0)
        lrvm__io_close(lg->lg_fd);
    lg->lg_fd = -1;
    free(lg->lg_buf);
    free(lg->lg_spare);
    lg->lg_buf = lg->lg_spare = NULL;
    pthread_cond_destroy(&lg->lg_synced);
    pthread_mutex_destroy(&lg->lg_sync_mu);
    pthread_cond_destroy(&lg->lg_bg_cond);
    pthread_cond_destroy(&lg->lg_bg_idle);
    pthread_mutex_destroy(&lg->lg_bg_mu);
    pthread_mutex_destroy(&lg->lg_grow_mu);
    lg->lg_buf_cap = 0;
}

/* The buffer bytes in use: while the tail is open, with every place given
 * (some may be half written; a reader under the store lock only counts
 * them). */
static size_t buf_in_use(const struct lrvm__log *lg)
{
    uint64_t w = atomic_load_explicit((_Atomic uint64_t *)&lg->lg_tail, memory_order_relaxed);
    return w & TAIL_SHUT ? lg->lg_buf_used : TAIL_OFF(w);
}

uint64_t lrvm__log_size(const struct lrvm__log *lg)
{
    return lg->lg_written + buf_in_use(lg);
}

uint64_t lrvm__log_gen_size(const struct lrvm__log *lg)
{
    return LRVM__LOG_HEADER_SIZE + lrvm__log_size(lg) - lg->lg_start;
}

int lrvm__log_holds_records(const struct lrvm__log *lg)
{
    return lg->lg_retiring || lrvm__log_size(lg) > lg->lg_start;
}

int lrvm__log_wall_fill(const struct lrvm__log *lg)
{
    if (lg->lg_wall == 0 || lg->lg_wall <= lg->lg_start)
        return -1;
    uint64_t used = lrvm__log_size(lg) - lg->lg_start, room = lg->lg_wall - lg->lg_start;
    return used >= room ? 65536 : (int)(used * 65536 / room);
}

void lrvm__log_state(const struct lrvm__log *lg, struct lrvm__log_state *st)
{
    *st = (struct lrvm__log_state){ lg->lg_fd, lg->lg_version, lg->lg_generation,
                                    lg->lg_first_txno, lg->lg_start, lg->lg_durable,
                                    lg->lg_clean, lg->lg_retiring, lg->lg_ret };
}

/* Wipe the header slot SLOT after its write or sync failed: it may have
 * reached the disk, whole or torn, and must not win at the next open.
 * If even that fails, stop (C4). */
static void wipe_slot(struct lrvm__log *lg, int slot)
{
    static const unsigned char zeros[LRVM__LOG_SLOT_SIZE];
    if (lrvm__io_pwrite_all(lg->lg_fd, zeros, sizeof zeros,
                            (uint64_t)slot * LRVM__LOG_SLOT_SIZE) < 0 ||
        lrvm__log_sync(lg) < 0)
        lg->lg_failed = 1;
}

int lrvm__log_new_generation(struct lrvm__log *lg, uint64_t avoid, uint64_t txs)
{
    /* Only the next number needs skipping: a record of any other is
     * invalid in the new generation anyway, and a jump as far as a
     * hostile record asks would bring the numbers near their end. */
    uint64_t gen = lg->lg_generation + 1;
    if (avoid == gen)
        gen++;
    lg->lg_next_txno = lg->lg_first_txno + txs;
    struct lrvm__log_header h = { LRVM__LOG_VERSION, gen, lg->lg_next_txno,
                                  LRVM__LOG_HEADER_SIZE, 0, 0 };
    int slot = !lg->lg_slot, rc;

    tail_shut(lg);                                      /* keeps T1 */
    LRVM__ASSERT(lg->lg_buf_used == 0);
    if ((rc = write_slot(lg->lg_fd, slot, &h)) < 0 ||
        (rc = lrvm__log_sync(lg)) < 0) {
        /* The store goes on in the old generation. */
        wipe_slot(lg, slot);
        return rc;
    }
    lg->lg_stats->fsyncs++;
    lg->lg_slot = slot;
    lg->lg_clean = 1;
    lg->lg_version = h.lh_version;
    lg->lg_generation = h.lh_generation;
    lg->lg_first_txno = h.lh_first_txno;
    lg->lg_start = LRVM__LOG_HEADER_SIZE;
    lg->lg_durable = lg->lg_written = LRVM__LOG_HEADER_SIZE;
    lg->lg_bg_owed = 0;
    lg->lg_retiring = 0;
    lg->lg_wall = 0;
    return 0;
}

/*
 * The switch: the generation's records are made durable, then the slot
 * that is not current names the next generation (keeps I6), then the
 * writer goes on there. Where the next generation begins (keeps I7),
 * ROOM being the room the caller gives (the threshold, kept in lg_room): at
 * 4096 when this one's start leaves below it half of ROOM, or as much as
 * this one took; its wall then this one's start or ROOM past 4096, the
 * nearer. Else past this one's end, rounded up to 4096, its wall ROOM
 * further. A generation so takes at most ROOM (and the commit that
 * crosses its wall once the wall is gone) while the one before it is
 * applied, and one placed past another began below 4096 plus the less
 * of half ROOM and its own size: the log in use stays within two
 * generations, and the file within 2.5 ROOM (the largest given), two
 * commits and 8 KiB (or three of its largest generations, when a small
 * resident limit starts them), however far commits outrun the
 * truncation. (Taking
 * whatever room lies below, or always going on past the end, would let
 * each round start higher than the last.)
 */
int lrvm__log_switch(struct lrvm__log *lg, uint64_t room, int (*wait)(void *arg), void *arg,
                     struct lrvm__log_retiring *out)
{
    int rc;
    if (lg->lg_failed)
        return LRVM_EFAILED;
    LRVM__ASSERT(!lg->lg_retiring && lg->lg_version == LRVM__LOG_VERSION);
    /* Every record durable, a leader's batch and what the syncer owes
     * too, before the header names the next generation. */
    if ((rc = lrvm__log_flush(lg)) < 0)
        return rc;
    LRVM__ASSERT(lg->lg_durable == lg->lg_written);
    lg->lg_bg_owed = 0;                 /* offsets start again elsewhere */
    uint64_t end = lg->lg_written, next, wall;
    if (end == lg->lg_start)
        return 1;
    lg->lg_room = room;
    room = (room + 7) & ~(uint64_t)7;
    uint64_t below = lg->lg_start - LRVM__LOG_HEADER_SIZE, took = end - lg->lg_start;
    if (below > 0 && (below >= room / 2 || below >= took)) {
        next = LRVM__LOG_HEADER_SIZE;
        wall = next + room < lg->lg_start ? next + room : lg->lg_start;
    } else {
        next = (end + LRVM__LOG_HEADER_SIZE - 1) & ~(uint64_t)(LRVM__LOG_HEADER_SIZE - 1);
        wall = next + room;
    }
    struct lrvm__log_header h = { LRVM__LOG_VERSION, lg->lg_generation, lg->lg_first_txno,
                                  lg->lg_start, next, lg->lg_next_txno };
    int slot = !lg->lg_slot;
    if ((rc = write_slot(lg->lg_fd, slot, &h)) < 0 || (rc = lrvm__log_sync(lg)) < 0) {
        wipe_slot(lg, slot);
        return rc;
    }
    lg->lg_stats->fsyncs++;
    lg->lg_ret = (struct lrvm__log_retiring){ lg->lg_generation, lg->lg_start, end,
                                              lg->lg_first_txno, lg->lg_next_txno, next,
                                              lg->lg_slot };
    *out = lg->lg_ret;
    lg->lg_retiring = 1;
    lg->lg_slot = slot;
    lg->lg_generation++;
    lg->lg_first_txno = lg->lg_next_txno;
    lg->lg_start = lg->lg_written = lg->lg_durable = next;
    lg->lg_clean = 1;
    lg->lg_wall = wall;
    lg->lg_wall_wait = wait;
    lg->lg_wall_arg = arg;
    return 0;
}

/* The log's syncs fail from now on with RC, the first error kept (I5). */
static void fail_syncs(struct lrvm__log *lg, int rc)
{
    lrvm__lock(&lg->lg_sync_mu, LRVM__RANK_LOG_SYNC);
    if (lg->lg_sync_rc == 0)
        lg->lg_sync_rc = rc;
    lrvm__unlock(&lg->lg_sync_mu);
}

/* One fdatasync of the log made without the store lock (keeps I5); its
 * failure is for good: it may have taken the error of a commit's pages,
 * which no later sync reports again. */
static int sync_unlocked(struct lrvm__log *lg)
{
    lrvm__lock(&lg->lg_sync_mu, LRVM__RANK_LOG_SYNC);
    int rc = lg->lg_sync_rc != 0 ? lg->lg_sync_rc : lrvm__io_fdatasync(lg->lg_fd);
    if (rc < 0)
        lg->lg_sync_rc = rc;
    lrvm__unlock(&lg->lg_sync_mu);
    return rc;
}

int lrvm__log_retire_header(struct lrvm__log *lg, const struct lrvm__log_retiring *ret)
{
    struct lrvm__log_header h = { LRVM__LOG_VERSION, ret->lr_generation + 1, ret->lr_next_txno,
                                  ret->lr_next_start, 0, 0 };
    /* A torn or lost write leaves the slot that names both generations
     * current, which is as true as before: no wipe needed. */
    int rc = write_slot(lg->lg_fd, ret->lr_slot, &h);
    return rc < 0 ? rc : sync_unlocked(lg);
}

void lrvm__log_retired(struct lrvm__log *lg)
{
    LRVM__ASSERT(lg->lg_retiring);
    lg->lg_slot = lg->lg_ret.lr_slot;
    lg->lg_retiring = 0;
    lg->lg_wall = 0;
}

/* The size the file grows to so that END fits, from HAVE: a quarter
 * more, at least LOG_GROW_CHUNK, so a log grows in few steps. */
static uint64_t grown_size(uint64_t have, uint64_t end)
{
    uint64_t grow = have / 4 > LOG_GROW_CHUNK ? have / 4 : LOG_GROW_CHUNK;
    return (end + grow + LOG_GROW_CHUNK - 1) & ~(uint64_t)(LOG_GROW_CHUNK - 1);
}

static int bg_start(struct lrvm__log *lg);
static void bg_post(struct lrvm__log *lg, uint64_t sync_to, uint64_t grow_to);
static int bg_wait_idle(struct lrvm__log *lg);
static void bg_wait_quiet(struct lrvm__log *lg);
static void bg_wait_written(struct lrvm__log *lg);

/* The size the file will need once truncations run beside the commits,
 * or 0 while that is not known yet. A generation that began at 4096
 * is followed by one past its end (lrvm__log_switch), which takes a room
 * more; one that began past another is followed by one at 4096; half a
 * room more (4 MiB at most) for the commits past the threshold. Growing
 * toward it only once a generation that began at 4096 has taken half
 * its room keeps a small store's log small, and growing then, while no
 * truncation runs, finds the disk free: the same growth while the
 * generation after it is written meets the truncation's writes, its
 * syncs wait behind them, and commits that reach the file's end wait
 * for all of it (tens of milliseconds: doc/architecture.md, "The
 * syncer"). A generation that began past another exists because a
 * truncation runs, so it goes on at once with what the one before it
 * left undone. */
static uint64_t steady_size(const struct lrvm__log *lg, uint64_t end)
{
    int at_head = lg->lg_start == LRVM__LOG_HEADER_SIZE;
    if (lg->lg_room == 0 || (at_head && end - lg->lg_start < lg->lg_room / 2))
        return 0;
    uint64_t gens = at_head ? 2 : 1;
    uint64_t over = lg->lg_room / 2 < LOG_AHEAD ? lg->lg_room / 2 : LOG_AHEAD;
    return lg->lg_start + gens * lg->lg_room + over;
}

/* Keeps I4: the file holds END, grown with written zeros. The syncer grows
 * it ahead of the writer, once the writer is within a quarter of the file
 * or LOG_AHEAD of its end, LOG_AHEAD at a time (a step's zeros are what the
 * next sync of the log may have to carry), so that a commit does not
 * grow it and sync the zeros itself; without a syncer, a commit grows it
 * by a quarter (grown_size). Keeps I7: a
 * write past the wall first waits until the generation retiring is
 * applied (the wall then goes), or fails with what made that fail. */
static int reserve(struct lrvm__log *lg, uint64_t end)
{
    if (lg->lg_wall != 0 && end > lg->lg_wall) {
        int rc = lg->lg_wall_wait(lg->lg_wall_arg);
        if (rc < 0)
            return rc;
        LRVM__ASSERT(lg->lg_wall == 0);
    }
    uint64_t have = atomic_load(&lg->lg_file_size);
    if (end <= have) {
        uint64_t near = have / 4 < LOG_AHEAD ? have / 4 : LOG_AHEAD;
        if ((end + near > have || have < steady_size(lg, end)) &&
            lg->lg_bg_grow_asked < have && bg_start(lg)) {
            bg_post(lg, 0, have + LOG_AHEAD);
            lg->lg_bg_grow_asked = have;
        }
        return 0;
    }
    int rc = 0;
    if (lg->lg_bg_state > 0) {
        /* The syncer grows it (a failed growth is tried here, below, to
         * report why). */
        uint64_t ahead = (end + LOG_AHEAD + LOG_GROW_CHUNK - 1) & ~(uint64_t)(LOG_GROW_CHUNK - 1);
        bg_post(lg, 0, ahead);
        lg->lg_bg_grow_asked = have;
        if ((rc = bg_wait_idle(lg)) < 0)
            return rc;
    }
    lrvm__lock(&lg->lg_grow_mu, LRVM__RANK_LOG_GROW);
    have = atomic_load(&lg->lg_file_size);
    if (end > have) {
        uint64_t size = grown_size(have, end);
        if ((rc = lrvm__io_pwrite_zeros(lg->lg_fd, have, size - have)) == 0 &&
            (rc = lrvm__log_sync(lg)) == 0) {
            lg->lg_stats->fsyncs++;
            atomic_store(&lg->lg_file_size, size);
        }
    }
    lrvm__unlock(&lg->lg_grow_mu);
    return rc;
}

#ifdef LRVM_DEBUG
void lrvm__log_check(const struct lrvm__log *lg)
{
    LRVM__ASSERT(lg->lg_durable >= LRVM__LOG_HEADER_SIZE);               /* I1 */
    LRVM__ASSERT(lg->lg_durable <= lg->lg_written);
    LRVM__ASSERT(lg->lg_written == lg->lg_durable || lg->lg_syncing ||  /* I2 */
                 lg->lg_written == lg->lg_bg_owed);
    LRVM__ASSERT(lg->lg_buf_used <= lg->lg_buf_cap);
    LRVM__ASSERT(lg->lg_written % 8 == 0 && lg->lg_buf_used % 8 == 0);
    LRVM__ASSERT(lg->lg_written <= atomic_load(&lg->lg_file_size));     /* I4 */
    LRVM__ASSERT(lg->lg_next_txno >= lg->lg_first_txno);
    LRVM__ASSERT(lg->lg_start >= LRVM__LOG_HEADER_SIZE && lg->lg_written >= lg->lg_start);
    LRVM__ASSERT(lg->lg_wall == 0 || (lg->lg_retiring && lg->lg_written <= lg->lg_wall)); /* I7 */
    LRVM__ASSERT(!lg->lg_retiring || lg->lg_start == lg->lg_ret.lr_next_start);
    LRVM__ASSERT(!lg->lg_retiring || lg->lg_ret.lr_end == 0 ||
                 lg->lg_start >= lg->lg_ret.lr_end || lg->lg_wall <= lg->lg_ret.lr_start);
}
#endif

/* ------------------------------------------------------------ syncs */

/*
 * Every fdatasync of the log holds lg_sync_mu, so two never overlap: after
 * a failed writeback Linux reports the error to one fdatasync of the file
 * only, and an overlapping one could return success for pages that were
 * lost. A caller holding the store lock waits here for a group leader's
 * sync (which runs without the store lock) without letting the store lock
 * go: it may be halfway through encoding a transaction into the buffer.
 * After a group's sync failed, every sync fails with its error.
 */
/* Does the syncer owe the sync of records let go from the buffer (I2)?
 * Store lock held. */
static int bg_owes(const struct lrvm__log *lg)
{
    return lg->lg_bg_owed > lg->lg_durable;
}

int lrvm__log_sync(struct lrvm__log *lg)
{
    bg_wait_written(lg);
    int owed = bg_owes(lg);
    lrvm__lock(&lg->lg_sync_mu, LRVM__RANK_LOG_SYNC);
    int rc = lg->lg_sync_rc != 0 ? lg->lg_sync_rc
           : lg->lg_group_rc != 0 ? lg->lg_group_rc : lrvm__io_fdatasync(lg->lg_fd);
    if (rc < 0 && owed)
        lg->lg_sync_rc = rc;            /* it may have been theirs: see the syncer */
    lrvm__unlock(&lg->lg_sync_mu);
    return rc;
}

void lrvm__log_quiesce(struct lrvm__log *lg)
{
    while (lg->lg_syncing || lg->lg_waiters > 0)
        pthread_cond_wait(&lg->lg_synced, lg->lg_mu);
}

/* A shared sync failed where a lone commit's failure could not be undone
 * (see group_flush): fail the store, zero everything that is not known
 * durable so no crash brings back a failed commit, wake the waiters. */
static int group_fail(struct lrvm__log *lg, int rc)
{
    bg_wait_written(lg);                /* its bytes are among those zeroed */
    uint64_t end = lg->lg_written + lg->lg_buf_used;
    if (lg->lg_wall != 0 && end > lg->lg_wall)
        end = lg->lg_wall;                  /* nothing was written past it (I7) */
    lg->lg_failed = 1;
    if (lg->lg_group_rc == 0)
        lg->lg_group_rc = rc;
    if (end > lg->lg_durable &&
        lrvm__io_pwrite_zeros(lg->lg_fd, lg->lg_durable, end - lg->lg_durable) == 0) {
        lrvm__lock(&lg->lg_sync_mu, LRVM__RANK_LOG_SYNC);
        (void)lrvm__io_fdatasync(lg->lg_fd);
        lrvm__unlock(&lg->lg_sync_mu);
    }
    lg->lg_written = lg->lg_durable;
    lg->lg_buf_used = 0;
    pthread_cond_broadcast(&lg->lg_synced);
    return rc;
}

/* ------------------------------------------------------------ the syncer */

/*
 * A thread of the log's own, started by the first work posted to it, takes
 * writes and syncs off the commits' path (doc/architecture.md, "The
 * syncer", says what they cost a commit there):
 *   - a no-flush commit that finds the buffer full hands the records of
 *     the no-flush commits before it to the syncer, which writes and
 *     syncs them, and goes on in the spare buffer (pass_prefix); while
 *     the syncer still writes the spare, the commit writes them itself
 *     and the syncer syncs them;
 *   - the writer coming near the file's end, the syncer grows it, writes
 *     the zeros out and syncs them (reserve).
 * It never takes the store's lock: what it did is taken in by the
 * committing threads (bg_absorb), under it. A commit never does its work
 * beside it: one that finds it too far behind, or the file not yet grown,
 * waits for it (bg_wait_idle). Every other sync that makes records
 * durable first waits for the write it was handed (bg_wait_written), so
 * none passes records that are not in the file yet (I8). A write or
 * sync of its that fails fails the store as a group's does (group_fail):
 * the records it covered were let go from the buffer and cannot be
 * written again (I2).
 */

/* The syncer's growth: the file to hold END, its zeros on the disk before
 * the sync that makes the size durable, so that sync is short for the
 * commits that wait behind it. The zeros go out LOG_GROW_PACE at a time,
 * each step on the disk before the next is written: a commit's sync of
 * the log carries every dirty page of the file, so it finds at most one
 * step's zeros in its way, not the whole growth's. A write that fails
 * (the disk is full) leaves the growth to the writer, which then reports
 * it. *SYNCS counts. */
static int grow_ahead(struct lrvm__log *lg, uint64_t end, unsigned *syncs)
{
    int rc = 0;
    lrvm__lock(&lg->lg_grow_mu, LRVM__RANK_LOG_GROW);
    uint64_t have = atomic_load(&lg->lg_file_size), at = have;
    while (rc == 0 && at < end) {
        uint64_t n = end - at < LOG_GROW_PACE ? end - at : LOG_GROW_PACE;
        if (lrvm__io_pwrite_zeros(lg->lg_fd, at, n) < 0)
            break;
        /* A failed wait may be a commit's pages' failure, which no sync
         * would report after it: the log's syncs fail from now on. */
        if ((rc = lrvm__io_wait_writeback(lg->lg_fd, at, n)) < 0)
            fail_syncs(lg, rc);
        at += n;
    }
    if (rc == 0 && at == end && end > have && (rc = sync_unlocked(lg)) == 0) {
        ++*syncs;
        atomic_store(&lg->lg_file_size, end);
    }
    lrvm__unlock(&lg->lg_grow_mu);
    return rc;
}

_Thread_local int lrvm__in_syncer;
int lrvm__log_syncer_lockstep;

/* Has the syncer nothing posted and nothing under way? lg_bg_mu held. */
static int bg_idle(const struct lrvm__log *lg)
{
    return lg->lg_bg_want == 0 && lg->lg_bg_grow == 0 && lg->lg_bg_wbuf == NULL &&
           !lg->lg_bg_busy;
}

/* Write what the syncer took: LEN bytes of the spare at AT, their
 * writeback started. A failed write may leave a hole below records that
 * later syncs would call durable: the log's syncs fail from then on. */
static int bg_write(struct lrvm__log *lg, const unsigned char *buf, size_t len, uint64_t at)
{
    int rc = lrvm__io_pwrite_all(lg->lg_fd, buf, len, at);
    if (rc < 0) {
        fail_syncs(lg, rc);
        return rc;
    }
    lrvm__io_start_writeback(lg->lg_fd, at, len);
    return 0;
}

static void *syncer_main(void *arg)
{
    struct lrvm__log *lg = arg;
    lrvm__in_syncer = 1;
    (void)pthread_setname_np(pthread_self(), "lrvm-sync");     /* top -H, perf */
    lrvm__lock_own_thread();
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    for (;;) {
        if (lg->lg_bg_want == 0 && lg->lg_bg_grow == 0 && lg->lg_bg_wbuf == NULL) {
            lg->lg_bg_busy = 0;
            pthread_cond_broadcast(&lg->lg_bg_idle);
            if (lg->lg_bg_stop)
                break;
            pthread_cond_wait(&lg->lg_bg_cond, &lg->lg_bg_mu);
            continue;
        }
        uint64_t to = lg->lg_bg_want, gen = lg->lg_bg_want_gen, grow = lg->lg_bg_grow;
        const unsigned char *wbuf = lg->lg_bg_wbuf;
        size_t wlen = lg->lg_bg_wlen;
        uint64_t wat = lg->lg_bg_wat;
        lg->lg_bg_want = lg->lg_bg_grow = 0;
        lg->lg_bg_wbuf = NULL;
        lg->lg_bg_writing = wbuf != NULL;
        lg->lg_bg_busy = 1;
        lrvm__unlock(&lg->lg_bg_mu);

        /* The write first: the sync posted with it covers it, and the
         * spare goes back to the commits as soon as it is written. */
        int rc = 0;
        if (wbuf != NULL) {
            rc = bg_write(lg, wbuf, wlen, wat);
            lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
            lg->lg_bg_writing = 0;
            pthread_cond_broadcast(&lg->lg_bg_idle);
            lrvm__unlock(&lg->lg_bg_mu);
        }
        unsigned syncs = 0;
        if (rc == 0 && grow != 0)
            rc = grow_ahead(lg, grow, &syncs);
        if (rc == 0 && to != 0 && (rc = sync_unlocked(lg)) == 0)
            syncs++;

        lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
        lg->lg_bg_fsyncs += syncs;
        if (rc < 0 && lg->lg_bg_rc == 0)
            lg->lg_bg_rc = rc;
        if (rc == 0 && to != 0) {
            lg->lg_bg_done = to;
            lg->lg_bg_done_gen = gen;
        }
    }
    lrvm__unlock(&lg->lg_bg_mu);
    lrvm__io_thread_ends();
    return NULL;
}

/* Is the syncer running? It is started at the first call. Store lock held. */
static int bg_start(struct lrvm__log *lg)
{
    if (lg->lg_bg_state == 0)
        lg->lg_bg_state = lrvm__io_thread_start(&lg->lg_bg_thread, syncer_main, lg) == 0 ? 1 : -1;
    return lg->lg_bg_state > 0;
}

/* Post work to the running syncer: the write of the spare's first N
 * bytes at lg_written (N 0: none), which the spare holds until it is
 * written; a sync of the generation's records up to SYNC_TO, the file
 * grown to GROW_TO (either 0: none). Posted together, under one hold of
 * lg_bg_mu, a write is taken no later than the sync that covers it.
 * Store lock held. */
static void bg_post_write(struct lrvm__log *lg, size_t n, uint64_t sync_to, uint64_t grow_to)
{
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    if (n != 0) {
        LRVM__ASSERT(lg->lg_bg_wbuf == NULL && !lg->lg_bg_writing);       /* I8 */
        LRVM__ASSERT(lg->lg_written >= lg->lg_durable);
        lg->lg_bg_wbuf = lg->lg_spare;
        lg->lg_bg_wlen = n;
        lg->lg_bg_wat = lg->lg_written;
    }
    if (sync_to != 0) {
        lg->lg_bg_want = sync_to;
        lg->lg_bg_want_gen = lg->lg_generation;
    }
    if (grow_to > lg->lg_bg_grow)
        lg->lg_bg_grow = grow_to;
    pthread_cond_signal(&lg->lg_bg_cond);
    lrvm__unlock(&lg->lg_bg_mu);
    lg->lg_bg_asked = 1;
    if (lrvm__log_syncer_lockstep)
        bg_wait_quiet(lg);
}

static void bg_post(struct lrvm__log *lg, uint64_t sync_to, uint64_t grow_to)
{
    bg_post_write(lg, 0, sync_to, grow_to);
}

/* Is the spare free: no write of the syncer's posted or under way? */
static int bg_spare_free(struct lrvm__log *lg)
{
    if (lg->lg_bg_state <= 0)
        return 1;
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    int free_ = lg->lg_bg_wbuf == NULL && !lg->lg_bg_writing;
    lrvm__unlock(&lg->lg_bg_mu);
    return free_;
}

/* Wait until the write the syncer was handed is in the file (or failed,
 * which fails the log's syncs): before a sync that is to cover it, and
 * before the spare is used again. Any thread; the syncer never waits
 * for another. */
static void bg_wait_written(struct lrvm__log *lg)
{
    if (lrvm__in_syncer)
        return;
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    while (lg->lg_bg_wbuf != NULL || lg->lg_bg_writing)
        pthread_cond_wait(&lg->lg_bg_idle, &lg->lg_bg_mu);
    lrvm__unlock(&lg->lg_bg_mu);
}

/* The offset before which the syncer has synced the current generation,
 * 0 when it synced none of it: its syncs of a generation switched away
 * say nothing of this one's offsets. lg_bg_mu and the store lock held. */
static uint64_t bg_synced(const struct lrvm__log *lg)
{
    return lg->lg_bg_done_gen == lg->lg_generation ? lg->lg_bg_done : 0;
}

/* Take in what the syncer did: its syncs (lg_durable, and the count), or
 * its failure, which fails the store. 0 or the failure's code. Store
 * lock held. */
static int bg_absorb(struct lrvm__log *lg)
{
    if (!lg->lg_bg_asked)
        return 0;
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    uint64_t done = bg_synced(lg);
    unsigned syncs = lg->lg_bg_fsyncs;
    int rc = lg->lg_bg_rc;
    lg->lg_bg_fsyncs = 0;
    if (bg_idle(lg))
        lg->lg_bg_asked = 0;
    lrvm__unlock(&lg->lg_bg_mu);
    lg->lg_stats->fsyncs += syncs;
    if (rc < 0)
        return lg->lg_failed ? LRVM_EFAILED : group_fail(lg, rc);
    if (done > lg->lg_durable && done <= lg->lg_written)
        lg->lg_durable = done;
    return 0;
}

/* Wait until the syncer has done all it was given, then take it in: a
 * commit waits so rather than do the syncer's work beside it, which would
 * make the calls of each thread depend on the other's pace. Store lock
 * held; the syncer never takes it. */
static void bg_wait_quiet(struct lrvm__log *lg)
{
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    while (!bg_idle(lg))
        pthread_cond_wait(&lg->lg_bg_idle, &lg->lg_bg_mu);
    lrvm__unlock(&lg->lg_bg_mu);
}

static int bg_wait_idle(struct lrvm__log *lg)
{
    bg_wait_quiet(lg);
    return bg_absorb(lg);
}

/* Close: the syncer finishes what it took and ends. */
static void bg_stop(struct lrvm__log *lg)
{
    if (lg->lg_bg_state != 1)
        return;
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    lg->lg_bg_stop = 1;
    pthread_cond_signal(&lg->lg_bg_cond);
    lrvm__unlock(&lg->lg_bg_mu);
    pthread_join(lg->lg_bg_thread, NULL);
    lg->lg_bg_state = 0;
    lg->lg_bg_stop = 0;
}

/*
 * Group commit: make the buffered records up to the end of the committing
 * transaction's durable, sharing one fdatasync with the commits that come
 * meanwhile. The first committer to find no sync under way leads: it
 * writes the whole buffer, swaps in the spare one and syncs without the
 * store lock. Commits arriving meanwhile encode into the fresh buffer and
 * wait; when the sync ends, one of them leads the next, for all of them.
 * A commit whose records some sync made durable (a leader's, a flush's, a
 * truncation's) returns without one of its own. IN_FLIGHT(ARG) runs once,
 * before the wait or while the disk writes.
 *
 * A failed sync that touched only the leader's commit (nobody waiting,
 * nothing encoded or written meanwhile, its records last in the batch) is
 * undone: the batch goes back to the buffer and the caller invalidates its
 * records as a lone commit's failure. Any other failure may involve
 * several commits and no-flush ones already reported: group_fail.
 */
static int group_flush(struct lrvm__log *lg, void (*in_flight)(void *), void *arg)
{
    uint64_t gen = lg->lg_generation, end = lg->lg_written + lg->lg_buf_used;
    int rc;

    while (lg->lg_syncing) {
        if (in_flight != NULL) {
            in_flight(arg);
            in_flight = NULL;
        }
        lg->lg_waiters++;
        pthread_cond_wait(&lg->lg_synced, lg->lg_mu);
        tail_shut(lg);                  /* opened meanwhile (T1) */
        if (--lg->lg_waiters == 0)
            pthread_cond_broadcast(&lg->lg_synced);     /* lrvm__log_quiesce */
        if (lg->lg_generation != gen || lg->lg_durable >= end)
            return 0;
        if (lg->lg_failed)
            return lg->lg_group_rc != 0 ? lg->lg_group_rc : LRVM_EFAILED;
    }

    /* Its sync covers what the syncer was handed, and it swaps in the
     * spare. */
    bg_wait_written(lg);
    LRVM__ASSERT(bg_spare_free(lg));                    /* I8 */
    uint64_t start = lg->lg_written;
    size_t n = lg->lg_buf_used;
    int owed = bg_owes(lg);
    int alone = lg->lg_waiters == 0 && end == start + n && !owed;
    if ((rc = reserve(lg, start + n)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, n, start)) < 0)
        return alone ? rc : group_fail(lg, rc);
    lrvm__io_start_writeback(lg->lg_fd, start, n);
    if (in_flight != NULL)
        in_flight(arg);
    unsigned char *batch = lg->lg_buf;
    lg->lg_buf = lg->lg_spare;
    lg->lg_spare = batch;
    lg->lg_written = start + n;
    lg->lg_buf_used = 0;

    lg->lg_syncing = 1;
    lrvm__lock(&lg->lg_sync_mu, LRVM__RANK_LOG_SYNC);
    lrvm__unlock(lg->lg_mu);
    rc = lg->lg_sync_rc != 0 ? lg->lg_sync_rc : lrvm__io_fdatasync(lg->lg_fd);
    if (rc < 0)
        lg->lg_group_rc = rc;
    if (rc < 0 && owed)
        lg->lg_sync_rc = rc;
    lrvm__unlock(&lg->lg_sync_mu);
    lrvm__lock(lg->lg_mu, LRVM__RANK_STORE);
    tail_shut(lg);                      /* opened meanwhile (T1) */
    lg->lg_syncing = 0;
    pthread_cond_broadcast(&lg->lg_synced);

    if (rc == 0) {
        lg->lg_stats->fsyncs++;
        if (lg->lg_generation == gen && lg->lg_durable < start + n)
            lg->lg_durable = start + n;
        return 0;
    }
    if (alone && !lg->lg_failed && lg->lg_waiters == 0 && lg->lg_generation == gen &&
        lg->lg_written == start + n && lg->lg_buf_used == 0) {
        lg->lg_spare = lg->lg_buf;          /* as if the batch was never written */
        lg->lg_buf = batch;
        lg->lg_buf_used = n;
        lg->lg_written = start;
        lg->lg_group_rc = 0;
        return rc;
    }
    return group_fail(lg, rc);
}

/* Write the first N buffered bytes at lg_written and sync them; on success
 * they leave the buffer. On failure nothing changes (the bytes stay
 * buffered, to be written again: a failed fsync may have dropped them).
 * IN_FLIGHT(ARG), when given, runs while the disk writes them: the
 * writeback is started first, so its work hides in the sync's wait. */
/* The first N buffered bytes, written at lg_written, leave the buffer. */
static void drop_prefix(struct lrvm__log *lg, size_t n)
{
    lg->lg_written += n;
    memmove(lg->lg_buf, lg->lg_buf + n, lg->lg_buf_used - n);
    lg->lg_buf_used -= n;
}

static int flush_prefix(struct lrvm__log *lg, size_t n, void (*in_flight)(void *), void *arg)
{
    int rc;
    if (n == 0)
        return 0;
    if ((rc = reserve(lg, lg->lg_written + n)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, n, lg->lg_written)) < 0)
        return rc;
    if (in_flight != NULL) {
        lrvm__io_start_writeback(lg->lg_fd, lg->lg_written, n);
        in_flight(arg);
    }
    if ((rc = lrvm__log_sync(lg)) < 0)
        return rc;
    lg->lg_stats->fsyncs++;
    drop_prefix(lg, n);
    lg->lg_durable = lg->lg_written;
    return 0;
}

/* The buffer is full, and its first N bytes are records of no-flush
 * commits before the committing one: they go, to be synced by the syncer,
 * unless it cannot run (they are synced here) or it is BG_LAG_HARD
 * buffers behind: the commit waits for it, and the store keeps no more
 * bytes unsynced than that. Commits are slowed long before that
 * (lrvm__log_pace), so only a disk that stops for a long while makes one
 * wait here. */
static int pass_prefix(struct lrvm__log *lg, size_t n)
{
    int rc;
    if (!bg_start(lg))
        return flush_prefix(lg, n, NULL, NULL);
    if ((rc = bg_absorb(lg)) < 0)
        return rc;
    if (lg->lg_written + n - lg->lg_durable > BG_LAG_HARD * (uint64_t)lg->lg_buf_cap &&
        (rc = bg_wait_idle(lg)) < 0)
        return rc;
    if ((rc = reserve(lg, lg->lg_written + n)) < 0)
        return rc;
    if (!bg_spare_free(lg)) {
        /* The syncer still writes the last one: this one is written here. */
        if ((rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, n, lg->lg_written)) < 0)
            return rc;
        lrvm__io_start_writeback(lg->lg_fd, lg->lg_written, n);
        drop_prefix(lg, n);
        lg->lg_bg_owed = lg->lg_written;
        bg_post(lg, lg->lg_written, 0);
        return 0;
    }
    /* The spare takes what follows (this transaction's open part), and
     * the syncer writes the first N bytes from the full one: the store
     * lock is held only for the copy, and commits at the log's tail go on
     * while the syncer writes (doc/architecture.md, "The syncer"). */
    unsigned char *full = lg->lg_buf;
    lg->lg_buf = lg->lg_spare;
    lg->lg_spare = full;
    memcpy(lg->lg_buf, full + n, lg->lg_buf_used - n);
    lg->lg_buf_used -= n;
    bg_post_write(lg, n, lg->lg_written + n, 0);
    lg->lg_written += n;
    lg->lg_bg_owed = lg->lg_written;
    return 0;
}

/* The syncer's syncs wait behind everything else the disk has been given
 * (a truncation's writes above all), and when the commits write faster
 * than it syncs, the one that found it BG_LAG_HARD buffers behind would
 * wait for all of it at once: a commit slowed a little each time instead
 * keeps the pace of the disk without a long wait. lg_durable may be
 * behind what the syncer did (bg_absorb takes that in at the next full
 * buffer), so its own figure decides when the first looks late. */
unsigned lrvm__log_pace(struct lrvm__log *lg)
{
    uint64_t soft = BG_LAG_SOFT * (uint64_t)lg->lg_buf_cap, done = lg->lg_durable;
    if (lg->lg_bg_state <= 0 || lg->lg_written - done <= soft)
        return 0;
    lrvm__lock(&lg->lg_bg_mu, LRVM__RANK_LOG_BG);
    if (bg_synced(lg) > done)
        done = bg_synced(lg);
    lrvm__unlock(&lg->lg_bg_mu);
    if (lg->lg_written - done <= soft)
        return 0;
    __atomic_fetch_add(&lg->lg_stats->commit_waits, 1, __ATOMIC_RELAXED);  /* as wall_wait */
    return LRVM__PACE_US;
}

int lrvm__log_flush(struct lrvm__log *lg)
{
    tail_shut(lg);                                      /* keeps T1 */
    if (lg->lg_failed)
        return LRVM_EFAILED;
    int rc = bg_absorb(lg);
    if (rc == 0 && lg->lg_buf_used > 0)
        rc = flush_prefix(lg, lg->lg_buf_used, NULL, NULL);
    else if (rc == 0 && lg->lg_durable < lg->lg_written) {
        /* What the syncer has yet to sync, or a leader's batch whose sync
         * runs now: this one begins after it (I5) and covers it. */
        if ((rc = lrvm__log_sync(lg)) == 0) {
            lg->lg_stats->fsyncs++;
            lg->lg_durable = lg->lg_written;
        }
    }
    return rc;
}

/* ------------------------------------------------------------ the tail */

/* The least free buffer the tail opens with, and the largest record it
 * places: a larger transaction is the locked path's. */
#define TAIL_ROOM   ((size_t)4096)
#define TAIL_MAX    ((size_t)4096)

/* The bytes of placed records written, in parts: the first threads to
 * commit at a tail get a part each, for good, which they add to with a
 * plain store (a locked add would wait for the record's own stores to
 * reach the cache, whose lines the records placed beside it share);
 * later threads share the last part, with an atomic add. The parts go
 * back to 0 only while the tail is shut, when no place is being written. */
#define SHARED_PART (LRVM__TAIL_PARTS - 1)
static atomic_uint next_part;
static __thread unsigned my_part = LRVM__TAIL_PARTS;

static void tail_written(struct lrvm__log *lg, size_t n)
{
    if (my_part == LRVM__TAIL_PARTS) {
        my_part = atomic_fetch_add_explicit(&next_part, 1, memory_order_relaxed);
        if (my_part > SHARED_PART)
            my_part = SHARED_PART;
    }
    _Atomic uint64_t *part = &lg->lg_tail_done[my_part].td_bytes;
    if (my_part == SHARED_PART)
        atomic_fetch_add_explicit(part, n, memory_order_release);
    else
        atomic_store_explicit(part, atomic_load_explicit(part, memory_order_relaxed) + n,
                              memory_order_release);
}

static uint64_t tail_done(struct lrvm__log *lg)
{
    uint64_t n = 0;
    for (int i = 0; i < LRVM__TAIL_PARTS; i++)
        n += atomic_load_explicit(&lg->lg_tail_done[i].td_bytes, memory_order_acquire);
    return n;
}

/* Shut the tail (keeps T1): once every placed record is whole, they are
 * the buffer's, numbered and counted. Store lock held. */
static void tail_shut(struct lrvm__log *lg)
{
    /* Only a holder of the store lock opens or shuts it. */
    if (atomic_load_explicit(&lg->lg_tail, memory_order_relaxed) & TAIL_SHUT)
        return;
    uint64_t w = atomic_fetch_or_explicit(&lg->lg_tail, TAIL_SHUT, memory_order_acq_rel);
    size_t end = TAIL_OFF(w), bytes = end - lg->lg_buf_used;
    uint64_t n = TAIL_COUNT(w);
    for (unsigned spins = 0; tail_done(lg) != bytes; spins++)
        lrvm__wait_turn(spins);
    LRVM__ASSERT(end <= lg->lg_buf_cap && end % 8 == 0);                 /* T2 */
    lg->lg_buf_used = end;
    lg->lg_next_txno += n;
    /* Each record is a whole transaction's commit. */
    lg->lg_stats->commits += n;
    lg->lg_stats->log_records += n;
    lg->lg_stats->bytes_logged += bytes;
}

void lrvm__log_tail_shut(struct lrvm__log *lg)
{
    LRVM__ASSERT_HELD(lg->lg_mu);                       /* L1 */
    tail_shut(lg);
}

void lrvm__log_tail_open(struct lrvm__log *lg)
{
    LRVM__ASSERT_HELD(lg->lg_mu);                       /* L1 */
    if (!(atomic_load_explicit(&lg->lg_tail, memory_order_relaxed) & TAIL_SHUT) ||
        lg->lg_failed || lg->lg_version != LRVM__LOG_VERSION ||
        lg->lg_buf_cap - lg->lg_buf_used < TAIL_ROOM)
        return;
    lg->lg_tail_txno = lg->lg_next_txno;
    for (int i = 0; i < LRVM__TAIL_PARTS; i++)
        atomic_store_explicit(&lg->lg_tail_done[i].td_bytes, 0, memory_order_relaxed);
    /* Publishes the fields the tail's commits read (T1). */
    atomic_store_explicit(&lg->lg_tail, (uint64_t)lg->lg_buf_used, memory_order_release);
}

/* ------------------------------------------------------------ encoder */

/* Room a part keeps free for its padding. */
#define PAD_RESERVE 7u
/* The largest DEFINE plus RANGE header, and one byte of data. */
#define ENTRY_MAX (1u + 2u + LRVM__NAME_MAX + 1u + 10u + 10u + 10u + 1u)

static void part_open(struct lrvm__enc *e)
{
    struct lrvm__log *lg = e->en_log;
    e->en_rec_start = lg->lg_buf_used;
    lg->lg_buf_used += LRVM__REC_HEADER_SIZE;
    e->en_ndefined = 0;
    e->en_open = 1;
}

static void part_close(struct lrvm__enc *e, int final)
{
    struct lrvm__log *lg = e->en_log;
    unsigned char *rec = lg->lg_buf + e->en_rec_start;
    size_t payload = lg->lg_buf_used - e->en_rec_start - LRVM__REC_HEADER_SIZE;
    struct lrvm__rec_header h = {
        .rh_payload_len = (uint32_t)payload,
        .rh_part = (uint16_t)e->en_part,
        .rh_flags = final ? LRVM__REC_COMMIT : 0,
        .rh_generation = lg->lg_generation,
        .rh_txno = e->en_txno,
        .rh_durable = lg->lg_durable,
        .rh_hsize = LRVM__REC_HEADER_SIZE,
    };
    size_t total = (size_t)lrvm__rec_size(&h);

    memset(rec + LRVM__REC_HEADER_SIZE + payload, 0, total - LRVM__REC_HEADER_SIZE - payload);
    lrvm__rec_header_encode(rec, &h);
    lg->lg_buf_used = e->en_rec_start + total;
    e->en_bytes += total;
    e->en_records++;
    e->en_part++;
    e->en_open = 0;
}

/* Records of earlier no-flush commits ahead of this transaction leave the
 * buffer (pass_prefix); its open part, if any, moves to the front. */
static int pass_earlier(struct lrvm__enc *e)
{
    struct lrvm__log *lg = e->en_log;
    size_t n = e->en_mark;
    int rc;
    if (e->en_spilled || n == 0)
        return 0;
    if ((rc = pass_prefix(lg, n)) < 0)
        return rc;
    e->en_mark = 0;
    e->en_tx_start = lg->lg_written;
    if (e->en_open)
        e->en_rec_start -= n;
    return 0;
}

/* Empty the buffer for the next part: records of earlier no-flush commits
 * ahead of this transaction go first, then this transaction's closed
 * parts are written (keeps I1, I2). */
static int make_room(struct lrvm__enc *e)
{
    struct lrvm__log *lg = e->en_log;
    int rc;

    if ((rc = pass_earlier(e)) < 0)
        return rc;
    if (lg->lg_buf_used == 0)
        return 0;                           /* nothing of this transaction yet */
    e->en_spilled = 1;
    if ((rc = reserve(lg, lg->lg_written + lg->lg_buf_used)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, lg->lg_buf_used, lg->lg_written)) < 0)
        return rc;
    lg->lg_written += lg->lg_buf_used;
    lg->lg_buf_used = 0;
    return 0;
}

/* The buffer is full, or the open part may take no more (MUST_CLOSE).
 * A transaction that half the buffer holds stays there, whole, once the
 * records before it have gone: it then costs no sync of its own when it
 * commits without a flush. Else the open part is closed and written out. */
static int spill(struct lrvm__enc *e, int must_close)
{
    struct lrvm__log *lg = e->en_log;
    if (!must_close && e->en_mark > 0 && !e->en_spilled) {
        int rc = pass_earlier(e);
        if (rc < 0 || lg->lg_buf_used <= lg->lg_buf_cap / 2)
            return rc;
    }
    if (e->en_part == 0xffff)
        return LRVM_ENOMEM;                 /* over 65535 parts: too large */
    part_close(e, 0);
    return make_room(e);
}

/* A payload's entries (logfmt.c reads them): a DEFINE gives the next id
 * to the segment NAME; a RANGE carries N bytes for OFF of segment ID. */
static size_t define_size(size_t namelen)
{
    return 1 + lrvm__varint_len(namelen) + namelen;
}

static unsigned char *put_define(unsigned char *p, const char *name, size_t namelen)
{
    *p++ = LRVM__ENT_DEFINE;
    p += lrvm__varint_put(p, namelen);
    memcpy(p, name, namelen);
    return p + namelen;
}

static size_t range_head_size(size_t id, size_t off, size_t n)
{
    return 1 + lrvm__varint_len(id) + lrvm__varint_len(off) + lrvm__varint_len(n);
}

static unsigned char *put_range(unsigned char *p, size_t id, size_t off, const void *src,
                                size_t n)
{
    *p++ = LRVM__ENT_RANGE;
    p += lrvm__varint_put(p, id);
    p += lrvm__varint_put(p, off);
    p += lrvm__varint_put(p, n);
    memcpy(p, src, n);
    return p + n;
}

static int tail_gather(struct lrvm__tail_tx *t, const void *seg, const char *name, size_t off,
                       const void *src, size_t len);

static int defined_id(struct lrvm__enc *e, const void *seg)
{
    for (size_t i = 0; i < e->en_ndefined; i++)
        if (e->en_defined[i] == seg)
            return (int)i;
    return -1;
}

int lrvm__enc_range(struct lrvm__enc *e, const void *seg, const char *name, size_t off,
                    const void *src, size_t len)
{
    if (e->en_tail != NULL)                 /* the tail's: no other field is set */
        return tail_gather(e->en_tail, seg, name, off, src, len);
    struct lrvm__log *lg = e->en_log;
    const unsigned char *from = src;
    int rc;

    while (len > 0) {
        if (!e->en_open) {
            /* A part needs room for its header, its padding and at least
             * one whole entry header and byte. */
            if (lg->lg_buf_cap - lg->lg_buf_used < LRVM__REC_HEADER_SIZE + PAD_RESERVE + ENTRY_MAX &&
                (rc = make_room(e)) < 0)
                return rc;
            part_open(e);
        }
        int id = defined_id(e, seg);
        size_t namelen = id < 0 ? strlen(name) : 0;
        size_t need_def = id < 0 ? define_size(namelen) : 0;
        size_t need_hdr = 1 + lrvm__varint_len(e->en_ndefined) + lrvm__varint_len(off) + 10;
        size_t room = lg->lg_buf_cap - PAD_RESERVE - lg->lg_buf_used;
        int must_close = (id < 0 && e->en_ndefined == LRVM__REC_MAX_SEGS) ||
                         lg->lg_buf_used - e->en_rec_start >= LRVM__REC_MAX_PAYLOAD;
        if (must_close || room < need_def + need_hdr + 1) {
            if ((rc = spill(e, must_close)) < 0)
                return rc;
            continue;
        }
        unsigned char *p = lg->lg_buf + lg->lg_buf_used;
        if (id < 0) {
            if (e->en_ndefined == e->en_defined_cap) {
                /* Past the few segments a transaction usually names. */
                size_t cap = e->en_defined_cap * 2;
                int inline_now = e->en_defined == e->en_defined_few;
                const void **d = realloc(inline_now ? NULL : e->en_defined, cap * sizeof *d);
                if (d == NULL)
                    return LRVM_ENOMEM;
                if (inline_now)
                    memcpy(d, e->en_defined_few, sizeof e->en_defined_few);
                e->en_defined = d;
                e->en_defined_cap = cap;
            }
            id = (int)e->en_ndefined;
            e->en_defined[e->en_ndefined++] = seg;
            p = put_define(p, name, namelen);
        }
        size_t chunk = room - need_def - need_hdr;
        if (chunk > len)
            chunk = len;
        p = put_range(p, (size_t)id, off, from, chunk);
        lg->lg_buf_used = (size_t)(p - lg->lg_buf);
        from += chunk;
        off += chunk;
        len -= chunk;
    }
    return 0;
}

/* A transaction's redo, gathered for the tail: a few ranges of a few
 * segments, ids given in order of first use. */
#define TAIL_RANGES 16
#define TAIL_SEGS   4
struct lrvm__tail_tx {
    size_t n, nsegs, payload;
    int    over;                    /* too large for the tail */
    struct { size_t id, off, len; const void *src; } r[TAIL_RANGES];
    struct { const void *seg; const char *name; size_t namelen; } seg[TAIL_SEGS];
};

static int tail_gather(struct lrvm__tail_tx *t, const void *seg, const char *name, size_t off,
                       const void *src, size_t len)
{
    size_t id = 0;
    while (id < t->nsegs && t->seg[id].seg != seg)
        id++;
    if (t->over || t->n == TAIL_RANGES || (id == t->nsegs && id == TAIL_SEGS) || len > TAIL_MAX) {
        t->over = 1;
        return 0;
    }
    if (id == t->nsegs) {
        t->seg[id].seg = seg;
        t->seg[id].name = name;
        t->seg[id].namelen = strlen(name);
        t->payload += define_size(t->seg[id].namelen);
        t->nsegs++;
    }
    t->r[t->n].id = id;
    t->r[t->n].off = off;
    t->r[t->n].len = len;
    t->r[t->n].src = src;
    t->n++;
    t->payload += range_head_size(id, off, len) + len;
    t->over = t->payload > TAIL_MAX;
    return 0;
}

int lrvm__log_tail_commit(struct lrvm__log *lg, int (*redo)(void *arg, struct lrvm__enc *e),
                          void (*placed)(void *arg), void *arg)
{
    struct lrvm__tail_tx t;
    struct lrvm__enc e;
    t.n = t.nsegs = t.payload = 0;
    t.over = 0;
    e.en_tail = &t;
    if (redo(arg, &e) < 0 || t.over || t.n == 0)
        return LRVM__TAIL_NO;

    struct lrvm__rec_header h = {
        .rh_payload_len = (uint32_t)t.payload,
        .rh_part = 0,
        .rh_flags = LRVM__REC_COMMIT,
        .rh_hsize = LRVM__REC_HEADER_SIZE,
    };
    size_t size = (size_t)lrvm__rec_size(&h);
    if (size > TAIL_MAX)
        return LRVM__TAIL_NO;

    /* Made here, then copied in one go: the buffer's lines at a place's
     * ends are shared with the records placed beside it, by other
     * threads, and each write to one there would wait for it. */
    unsigned char rec[TAIL_MAX], *p = rec + LRVM__REC_HEADER_SIZE;
    size_t defined = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.r[i].id == defined) {
            p = put_define(p, t.seg[defined].name, t.seg[defined].namelen);
            defined++;
        }
        p = put_range(p, t.r[i].id, t.r[i].off, t.r[i].src, t.r[i].len);
    }
    LRVM__ASSERT((size_t)(p - rec) == LRVM__REC_HEADER_SIZE + t.payload);
    memset(p, 0, size - (size_t)(p - rec));

    uint64_t w = atomic_load_explicit(&lg->lg_tail, memory_order_relaxed);
    do {
        if ((w & TAIL_SHUT) || size > lg->lg_buf_cap - TAIL_OFF(w))
            return LRVM__TAIL_NO;
        /* Acquire: what lrvm__log_tail_open published (T1). */
    } while (!atomic_compare_exchange_weak_explicit(&lg->lg_tail, &w, w + TAIL_ONE + size,
                                                    memory_order_acquire,
                                                    memory_order_relaxed));
    h.rh_generation = lg->lg_generation;
    h.rh_txno = lg->lg_tail_txno + TAIL_COUNT(w);
    h.rh_durable = lg->lg_durable;
    lrvm__rec_header_encode(rec, &h);
    memcpy(lg->lg_buf + TAIL_OFF(w), rec, size);
    if (placed != NULL)
        placed(arg);
    tail_written(lg, size);                             /* T2 */
    return 0;
}

/* A commit failed after its records may have reached the file: put the
 * earlier no-flush records back on disk, zero every byte this transaction
 * may have written, sync. If that fails too, the store is failed (C4). */
static void invalidate(struct lrvm__enc *e)
{
    struct lrvm__log *lg = e->en_log;
    uint64_t end = lg->lg_written + lg->lg_buf_used;
    size_t keep = e->en_tx_start > lg->lg_written ? (size_t)(e->en_tx_start - lg->lg_written) : 0;
    int rc;

    if (lg->lg_failed)
        return;                             /* group_fail cleaned up */
    if (lg->lg_wall != 0 && end > lg->lg_wall)
        end = lg->lg_wall;                  /* nothing was written past it (I7) */
    if (end < e->en_tx_start)
        end = e->en_tx_start;               /* the earlier records still go back */
    lg->lg_buf_used = keep;
    if (lg->lg_written > e->en_tx_start)
        lg->lg_written = e->en_tx_start;   /* spilled parts: pending were synced (I2) */
    if ((rc = reserve(lg, end)) < 0 ||
        (rc = lrvm__io_pwrite_all(lg->lg_fd, lg->lg_buf, keep, lg->lg_written)) < 0 ||
        (rc = lrvm__io_pwrite_zeros(lg->lg_fd, e->en_tx_start, end - e->en_tx_start)) < 0 ||
        (rc = lrvm__log_sync(lg)) < 0) {
        lg->lg_failed = 1;
        return;
    }
    lg->lg_stats->fsyncs++;
    lg->lg_written = e->en_tx_start;
    lg->lg_durable = lg->lg_written;
    lg->lg_buf_used = 0;
}

int lrvm__log_commit(struct lrvm__log *lg, int (*redo)(void *arg, struct lrvm__enc *e),
                     void (*in_flight)(void *arg), void *arg, int flags)
{
    int rc;

    LRVM__ASSERT_HELD(lg->lg_mu);                       /* L1 */
    tail_shut(lg);                                      /* keeps T1 */
    if (lg->lg_failed)
        return LRVM_EFAILED;
    if ((rc = bg_absorb(lg)) < 0)
        return rc;
    /* An older format's generation is replaced by recovery at open before
     * anything is committed (recover.c). */
    LRVM__ASSERT(lg->lg_version == LRVM__LOG_VERSION);
    /* Every field but en_defined_few, which fills as segments are
     * defined: zeroing the whole encoder costs a small commit a
     * measurable share of its time. */
    struct lrvm__enc e;
    e.en_log = lg;
    e.en_txno = lg->lg_next_txno;
    e.en_part = 0;
    e.en_open = 0;
    e.en_rec_start = 0;
    e.en_spilled = 0;
    e.en_tx_start = lg->lg_written + lg->lg_buf_used;
    e.en_mark = lg->lg_buf_used;
    e.en_defined = e.en_defined_few;
    e.en_ndefined = 0;
    e.en_defined_cap = sizeof e.en_defined_few / sizeof e.en_defined_few[0];
    e.en_bytes = 0;
    e.en_records = 0;
    e.en_tail = NULL;

    rc = redo(arg, &e);
    if (rc == 0 && e.en_open)
        part_close(&e, 1);
    if (rc == 0 && e.en_records == 0)
        goto out;                           /* nothing changed: nothing logged */
    if (rc == 0) {
        /* Taken now: in a group commit others encode while this one waits. */
        lg->lg_next_txno++;
        if (!(flags & LRVM_NO_FLUSH) || e.en_spilled)
            rc = flags & LRVM__COMMIT_GROUP ? group_flush(lg, in_flight, arg)
                                            : flush_prefix(lg, lg->lg_buf_used, in_flight, arg);
        if (rc < 0)
            lg->lg_next_txno--;             /* its records are wiped (or the store failed) */
    }
    if (rc < 0) {
        invalidate(&e);
        goto out;
    }
    lg->lg_stats->bytes_logged += e.en_bytes;
    lg->lg_stats->log_records += e.en_records;
out:
    if (e.en_defined != e.en_defined_few)
        free(e.en_defined);
    return rc;
}

