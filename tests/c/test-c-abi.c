/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * End-to-end test of include/chardev_multiplex.h from C, with real pipes.
 * Prints TAP for `meson test`. It doubles as the C example of the API.
 *
 * The library never calls out: the caller pushes events in (frontend output,
 * sink writability, sink events, input, the clock) and pulls work out. After
 * every call that may produce work, drain() below writes what
 * cmx_mux_poll_transmit() hands out, reports each outcome with
 * cmx_mux_transmitted(), reads the sinks to watch from cmx_mux_watch_mask(),
 * delivers the frontend's events from cmx_mux_poll_event() and takes the
 * sink reports from cmx_mux_poll_sink_report().
 *
 * Configuration structs start with `size`; every other field may be left
 * 0, which is a `drop` sink in `lines` mode.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chardev_multiplex.h"

static int tests_run, tests_failed;

#define CHECK(cond, ...)                                                \
    do {                                                                \
        if (!(cond)) {                                                  \
            printf("# %s:%d: check failed: %s: ", __FILE__, __LINE__,   \
                   #cond);                                              \
            printf(__VA_ARGS__);                                        \
            printf("\n");                                               \
            ok = false;                                                 \
        }                                                               \
    } while (0)

/* Every cmx_result is checked (the header makes ignoring one a warning). */
#define CHECK_OK(call)                                                  \
    do {                                                                \
        cmx_result r_ = (call);                                         \
        if (r_ != CMX_RESULT_OK) {                                      \
            printf("# %s:%d: %s: %s\n", __FILE__, __LINE__, #call,      \
                   cmx_result_str(r_));                                 \
            ok = false;                                                 \
        }                                                               \
    } while (0)

static void report(bool ok, const char *name)
{
    tests_run++;
    if (!ok) {
        tests_failed++;
    }
    printf("%s %d - %s\n", ok ? "ok" : "not ok", tests_run, name);
}

/* The caller's side of a multiplexer: its sinks are fds; a fake guest. */
typedef struct {
    cmx_mux *mux;
    int sink_fd[CMX_MAX_SINKS];         /* non-blocking write ends */
    uint32_t watch;                     /* sinks to poll for POLLOUT */
    int writable_events;                /* the guest may write again */
    cmx_frontend_event events[16];      /* OPENED, CLOSED, BREAK, in order */
    int n_events;
    int sink_writes;                    /* write(2) calls on sinks */
    cmx_sink_report reports[16];        /* the first sink reports, in order */
    int n_reports;
} Harness;

/*
 * The pull loop. Run it after every call that may produce work:
 * cmx_mux_write(), cmx_mux_write_at(), cmx_mux_sink_writable(),
 * cmx_mux_sink_event(), cmx_mux_input(), cmx_mux_handle_timeout().
 */
static cmx_result drain(Harness *h)
{
    cmx_transmit t;
    cmx_frontend_event ev;
    cmx_result r;

    /* 1. Write what is due to each sink without blocking; report what it took. */
    while ((r = cmx_mux_poll_transmit(h->mux, &t)) == CMX_RESULT_OK && t.len > 0) {
        ssize_t n = write(h->sink_fd[t.sink], t.data, t.len);

        h->sink_writes++;
        r = cmx_mux_transmitted(h->mux, t.sink, n < 0 ? -errno : n);
        if (r != CMX_RESULT_OK) {
            return r;
        }
    }
    if (r != CMX_RESULT_OK) {
        return r;
    }
    /* 2. Watch the sinks that pushed back (level-triggered: while the bit is set). */
    r = cmx_mux_watch_mask(h->mux, &h->watch);
    if (r != CMX_RESULT_OK) {
        return r;
    }
    /* 3. Deliver the frontend's events, oldest first. */
    for (;;) {
        r = cmx_mux_poll_event(h->mux, &ev);
        if (r != CMX_RESULT_OK || ev == CMX_FRONTEND_EVENT_NONE) {
            break;
        }
        if (ev == CMX_FRONTEND_EVENT_WRITABLE) {
            h->writable_events++;
        } else if (h->n_events < (int)(sizeof(h->events) / sizeof(h->events[0]))) {
            h->events[h->n_events++] = ev;
        }
    }
    if (r != CMX_RESULT_OK) {
        return r;
    }
    /* 4. Take the sink reports (QEMU: QMP events; release a detached sink). */
    for (;;) {
        cmx_sink_report rep;

        r = cmx_mux_poll_sink_report(h->mux, &rep);
        if (r != CMX_RESULT_OK || rep.kind == CMX_SINK_REPORT_KIND_NONE) {
            return r;
        }
        if (h->n_reports < (int)(sizeof(h->reports) / sizeof(h->reports[0]))) {
            h->reports[h->n_reports++] = rep;
        }
    }
}

/*
 * One turn of an event loop: wait up to timeout_ms for a watched sink to
 * become writable, report the ones that are, and drain.
 */
static cmx_result service_watches(Harness *h, int timeout_ms)
{
    struct pollfd p[CMX_MAX_SINKS];
    size_t sink[CMX_MAX_SINKS];
    nfds_t n = 0;

    for (size_t k = 0; k < CMX_MAX_SINKS; k++) {
        if (h->watch & (1u << k)) {
            p[n] = (struct pollfd){ .fd = h->sink_fd[k], .events = POLLOUT };
            sink[n++] = k;
        }
    }
    if (n == 0 || poll(p, n, timeout_ms) <= 0) {
        return CMX_RESULT_OK;
    }
    for (nfds_t i = 0; i < n; i++) {
        if (p[i].revents != 0) {
            cmx_result r = cmx_mux_sink_writable(h->mux, sink[i]);
            if (r != CMX_RESULT_OK) {
                return r;
            }
        }
    }
    return drain(h);
}

static cmx_result try_config(cmx_sink_config *sinks, size_t n, size_t queue, size_t replay)
{
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = n,
        .queue_capacity = queue, .replay_capacity = replay,
    };
    cmx_mux *mux = (cmx_mux *)&cfg; /* must be left alone on failure */
    cmx_result r = cmx_mux_new(&cfg, &mux);
    if (r == CMX_RESULT_OK) {
        cmx_mux_free(mux);
    } else if (mux != (cmx_mux *)&cfg) {
        return 9999;
    }
    return r;
}

static void test_bad_configurations_and_arguments(void)
{
    bool ok = true;
    cmx_sink_config s[9] = { { 0 } };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = s, .n_sinks = 2,
        .queue_capacity = CMX_DEFAULT_QUEUE_CAPACITY,
    };
    cmx_mux *mux;
    cmx_transmit t;
    cmx_frontend_event ev;
    uint32_t mask;
    size_t n;
    bool pending;
    uint64_t deadline;

    /* A size left 0 (or from another header) is refused first. */
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_SIZE_MISMATCH, "sink size 0");
    for (size_t i = 0; i < 9; i++) {
        s[i].size = sizeof(cmx_sink_config);
    }
    s[1].size = sizeof(cmx_sink_config) + 8;
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_SIZE_MISMATCH, "sink size + 8");
    s[1].size = sizeof(cmx_sink_config);
    cfg.size = 0;
    mux = (cmx_mux *)&cfg;
    CHECK(cmx_mux_new(&cfg, &mux) == CMX_RESULT_CONFIG_SIZE_MISMATCH && mux == (cmx_mux *)&cfg,
          "mux config size 0");
    cfg.size = sizeof(cmx_mux_config);
    CHECK(try_config(s, 0, 4096, 0) == CMX_RESULT_CONFIG_NO_SINKS, "0 sinks");
    CHECK(try_config(s, 9, 4096, 0) == CMX_RESULT_CONFIG_TOO_MANY_SINKS, "9 sinks");
    CHECK(try_config(s, 2, 0, 0) == CMX_RESULT_CONFIG_ZERO_QUEUE, "zero queue");
    CHECK(try_config(s, 2, CMX_MAX_QUEUE_CAPACITY + 1, 0) == CMX_RESULT_CONFIG_QUEUE_TOO_LARGE,
          "huge queue");
    CHECK(try_config(s, 2, 4096, 4097) == CMX_RESULT_CONFIG_REPLAY_TOO_LARGE, "replay > queue");
    CHECK(try_config(NULL, 2, 4096, 0) == CMX_RESULT_NULL_PARAMETER, "NULL sinks");
    s[0].input = s[1].input = true;
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_MULTIPLE_INPUTS, "two inputs");
    s[0].input = false;
    s[1].overflow = 7;
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_UNKNOWN_OVERFLOW, "policy 7");
    s[1].overflow = CMX_OVERFLOW_BLOCK;
    cfg.coalesce_ns = CMX_MAX_COALESCE_NS + 1;
    mux = (cmx_mux *)&cfg;
    CHECK(cmx_mux_new(&cfg, &mux) == CMX_RESULT_CONFIG_COALESCE_TOO_LONG &&
          mux == (cmx_mux *)&cfg, "coalescing window over 100 ms (and *out left alone)");
    cfg.coalesce_ns = 0;
    s[1].overflow = CMX_OVERFLOW_DROP;
    CHECK(try_config(s, 8, 4096, 4096) == CMX_RESULT_OK, "8 sinks, full replay");
    CHECK(cmx_mux_new(NULL, &mux) == CMX_RESULT_NULL_PARAMETER, "NULL config");
    CHECK(cmx_mux_new(&cfg, NULL) == CMX_RESULT_NULL_PARAMETER, "NULL out");
    CHECK(strstr(cmx_result_str(CMX_RESULT_CONFIG_MULTIPLE_INPUTS), "input") != NULL,
          "message: %s", cmx_result_str(CMX_RESULT_CONFIG_MULTIPLE_INPUTS));
    CHECK(strstr(cmx_result_str(CMX_RESULT_NOT_OFFERED), "handed out") != NULL,
          "message: %s", cmx_result_str(CMX_RESULT_NOT_OFFERED));
    CHECK(strcmp(cmx_result_str(12345), "unknown cmx_result value") == 0, "unknown code");
    CHECK(strcmp(cmx_result_str(4), "unknown cmx_result value") == 0, "retired code 4");
    cmx_mux_free(NULL); /* accepted, does nothing */

    /* The pull functions check their pointers and sink indexes too. */
    CHECK_OK(cmx_mux_new(&cfg, &mux));
    CHECK(cmx_mux_poll_transmit(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "poll_transmit out");
    CHECK(cmx_mux_poll_transmit(NULL, &t) == CMX_RESULT_NULL_PARAMETER, "poll_transmit mux");
    CHECK(cmx_mux_transmitted(NULL, 0, 1) == CMX_RESULT_NULL_PARAMETER, "transmitted mux");
    CHECK(cmx_mux_transmitted(mux, 2, 1) == CMX_RESULT_INVALID_SINK, "transmitted sink 2");
    CHECK(cmx_mux_transmitted(mux, 0, 1) == CMX_RESULT_NOT_OFFERED,
          "a report for a sink with nothing out is refused, closed or not");
    CHECK(cmx_mux_watch_mask(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "watch_mask out");
    CHECK(cmx_mux_poll_event(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "poll_event out");
    CHECK(cmx_mux_poll_sink_report(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "report out");
    CHECK(cmx_mux_stats(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "stats out");
    CHECK(cmx_mux_lossless_backlog(mux, NULL) == CMX_RESULT_NULL_PARAMETER, "backlog out");
    CHECK(cmx_mux_poll_timeout(mux, &pending, NULL) == CMX_RESULT_NULL_PARAMETER,
          "poll_timeout deadline");
    CHECK(cmx_mux_input(mux, 0, 1, 1, NULL) == CMX_RESULT_NULL_PARAMETER, "input forward");
    CHECK(cmx_mux_input(mux, 2, 1, 1, &n) == CMX_RESULT_INVALID_SINK, "input sink 2");
    CHECK(cmx_mux_write(mux, NULL, 1, &n) == CMX_RESULT_NULL_PARAMETER, "write NULL data");
    CHECK(cmx_mux_poll_event(mux, &ev) == CMX_RESULT_OK && ev == CMX_FRONTEND_EVENT_NONE,
          "no sink open, no event");
    CHECK(cmx_mux_poll_transmit(mux, &t) == CMX_RESULT_OK && t.len == 0 && t.data == NULL,
          "nothing to write");
    CHECK(cmx_mux_watch_mask(mux, &mask) == CMX_RESULT_OK && mask == 0, "nothing to watch");
    CHECK(cmx_mux_poll_timeout(mux, &pending, &deadline) == CMX_RESULT_OK && !pending &&
          deadline == 0, "nothing held");
    cmx_mux_free(mux);
    report(ok, "bad configurations and arguments are refused with specific codes");
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Two non-blocking pipes whose write ends are h's sinks 0 and 1. */
static bool sink_pipes(Harness *h, int a[2], int b[2])
{
    if (pipe(a) || pipe(b)) {
        return false;
    }
    for (int i = 0; i < 2; i++) {
        set_nonblock(a[i]);
        set_nonblock(b[i]);
    }
    h->sink_fd[0] = a[1];
    h->sink_fd[1] = b[1];
    return true;
}

/* Reads everything available from fd into buf at *len. */
static void read_available(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t n;
    while (*len < cap && (n = read(fd, buf + *len, cap - *len)) > 0) {
        *len += (size_t)n;
    }
}

/* A log pipe (block, read as we go) and a stalled viewer pipe (drop). */
static void test_log_and_stalled_viewer(void)
{
    enum { TOTAL = 1 << 20, QUEUE = 4096 };
    bool ok = true;
    int log_pipe[2], view_pipe[2], typed[2];
    char *stream = malloc(TOTAL + 16), *log = malloc(TOTAL), *view = malloc(TOTAL);
    char guest[64];
    size_t log_len = 0, view_len = 0, off = 0, backlog = 0, max_backlog = 0;
    cmx_sink_config sinks[2] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_DROP,
          .drop_unit = CMX_DROP_UNIT_BYTES, .open = true, .input = true },
    };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 2, .queue_capacity = QUEUE,
    };
    Harness h = { 0 };
    cmx_sink_stats st;
    int turned_away = 0;

    for (size_t i = 0; i < TOTAL; i += 9) {
        snprintf(stream + i, 10, "%08zx", i / 9);
        stream[i + 8] = '\n';
    }
    if (!sink_pipes(&h, log_pipe, view_pipe) || pipe(typed)) {
        report(false, "pipes");
        return;
    }
    CHECK_OK(cmx_mux_new(&cfg, &h.mux));
    CHECK_OK(drain(&h));
    CHECK(h.n_events == 1 && h.events[0] == CMX_FRONTEND_EVENT_OPENED, "OPENED at creation");

    while (off < TOTAL && ok) {
        size_t n = TOTAL - off < 512 ? TOTAL - off : 512, took;
        cmx_result r = cmx_mux_write(h.mux, (const uint8_t *)stream + off, n, &took);

        CHECK(r == CMX_RESULT_OK || r == CMX_RESULT_WOULD_BLOCK, "write: %s", cmx_result_str(r));
        CHECK_OK(drain(&h));
        if (r == CMX_RESULT_WOULD_BLOCK) {
            /* Only the log can push back; read it and let the mux write again. */
            turned_away++;
            CHECK(h.watch & 1, "log watched while queued");
            CHECK_OK(cmx_mux_lossless_backlog(h.mux, &backlog));
            max_backlog = backlog > max_backlog ? backlog : max_backlog;
            read_available(log_pipe[0], log, TOTAL, &log_len);
            CHECK_OK(service_watches(&h, 1000));
            continue;
        }
        off += took;
    }
    CHECK(h.watch & 2, "the stalled viewer is watched");
    while ((h.watch & 1) && ok) {
        read_available(log_pipe[0], log, TOTAL, &log_len);
        CHECK_OK(service_watches(&h, 1000));
    }
    read_available(log_pipe[0], log, TOTAL, &log_len);
    CHECK(log_len == TOTAL && memcmp(log, stream, TOTAL) == 0, "log is byte-exact (%zu)",
          log_len);
    CHECK(turned_away > 0 && h.writable_events > 0, "back-pressure came and went (%d, %d)",
          turned_away, h.writable_events);
    CHECK(max_backlog == QUEUE, "the log's full queue was the backlog (%zu)", max_backlog);
    CHECK_OK(cmx_mux_lossless_backlog(h.mux, &backlog));
    CHECK(backlog == 0, "no backlog once the log is written (the viewer drops): %zu", backlog);

    /* The viewer never read: its pipe holds the oldest 64 KiB, its queue the newest 4 KiB. */
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(st.offered == TOTAL && st.queued == QUEUE && st.backpressure_events == 0,
          "viewer offered %llu queued %llu", (unsigned long long)st.offered,
          (unsigned long long)st.queued);
    CHECK(st.delivered + st.queued + st.dropped == st.offered, "drop accounting");
    read_available(view_pipe[0], view, TOTAL, &view_len);
    CHECK(view_len == st.delivered && memcmp(view, stream, view_len) == 0, "viewer prefix");
    CHECK_OK(cmx_mux_sink_writable(h.mux, 1));
    CHECK_OK(drain(&h));
    read_available(view_pipe[0], view, TOTAL, &view_len);
    CHECK(view_len >= QUEUE && memcmp(view + view_len - QUEUE, stream + TOTAL - QUEUE, QUEUE) == 0,
          "viewer sees the newest bytes after it reads again");
    CHECK(h.watch == 0, "nothing left to watch (%#x)", h.watch);
    CHECK_OK(cmx_mux_sink_stats(h.mux, 0, &st));
    CHECK(st.dropped == 0 && st.delivered == TOTAL, "log lost nothing");

    /*
     * Input: the viewer (the input source) types "hello" while the guest has
     * room for 3 bytes; the caller reads only what input_room allows and
     * passes the first `forward` bytes on. Input from the log is discarded.
     */
    size_t room, got, forward;
    CHECK(write(typed[1], "hello", 5) == 5, "type");
    CHECK_OK(cmx_mux_input_room(h.mux, 1, 3, &room));
    CHECK(room == 3, "room %zu", room);
    got = (size_t)read(typed[0], guest, room);
    CHECK_OK(cmx_mux_input(h.mux, 1, got, 3, &forward));
    CHECK_OK(drain(&h));
    CHECK(got == 3 && forward == 3 && memcmp(guest, "hel", 3) == 0, "guest got 'hel'");
    CHECK_OK(cmx_mux_input_room(h.mux, 0, 3, &room));
    CHECK(room == CMX_INPUT_DISCARD_CHUNK, "a non-input sink may always read");
    CHECK_OK(cmx_mux_input(h.mux, 0, 3, 64, &forward));
    CHECK(forward == 0, "input from the log is consumed, not forwarded");
    CHECK_OK(cmx_mux_sink_stats(h.mux, 0, &st));
    CHECK(st.input_discarded == 3 && st.input_forwarded == 0, "log input counted as discarded");
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(st.input_forwarded == 3 && st.input_discarded == 0, "viewer input counted");

    /* A report nobody asked for is refused, and changes nothing. */
    CHECK(cmx_mux_transmitted(h.mux, 0, 5) == CMX_RESULT_NOT_OFFERED, "unsolicited report");
    CHECK(cmx_mux_sink_event(h.mux, 1, 42) == CMX_RESULT_INVALID_EVENT, "bad event");
    CHECK(cmx_mux_sink_writable(h.mux, 2) == CMX_RESULT_INVALID_SINK, "bad sink");

    /* BREAK reaches the guest only from the input source. */
    CHECK_OK(cmx_mux_sink_event(h.mux, 0, CMX_SINK_EVENT_BREAK));
    CHECK_OK(cmx_mux_sink_event(h.mux, 1, CMX_SINK_EVENT_BREAK));
    CHECK_OK(drain(&h));
    CHECK(h.n_events == 2 && h.events[1] == CMX_FRONTEND_EVENT_BREAK, "one BREAK");
    CHECK_OK(cmx_mux_sink_event(h.mux, 0, CMX_SINK_EVENT_CLOSED));
    CHECK_OK(cmx_mux_sink_event(h.mux, 1, CMX_SINK_EVENT_CLOSED));
    CHECK_OK(drain(&h));
    CHECK(h.n_events == 3 && h.events[2] == CMX_FRONTEND_EVENT_CLOSED, "CLOSED after last");
    cmx_mux_free(h.mux);
    for (int i = 0; i < 2; i++) {
        close(log_pipe[i]);
        close(view_pipe[i]);
        close(typed[i]);
    }
    free(stream);
    free(log);
    free(view);
    report(ok, "log stays byte-exact while a stalled viewer drops and counts");
}

static void test_fd_helper_on_pipe_and_file(void)
{
    bool ok = true;
    int p[2], fd;
    char desc[64], path[] = "/tmp/cmx-c-test-XXXXXX", buf[8];
    struct stat st;
    size_t n;

    CHECK(pipe(p) == 0, "pipe");
    fd = cmx_fd_dup_flags(p[1], O_WRONLY | O_CREAT | O_TRUNC);
    CHECK(fd >= 0, "dup of a pipe with O_TRUNC: %s", strerror(errno));
    CHECK(write(fd, "ok", 2) == 2 && read(p[0], buf, 2) == 2 && memcmp(buf, "ok", 2) == 0,
          "pipe still works");
    CHECK((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0, "close-on-exec");
    close(fd);
    n = cmx_fd_describe(p[1], desc, sizeof(desc));
    CHECK(n == strlen(desc) && strstr(desc, ": pipe, write-only") != NULL, "'%s'", desc);
    n = cmx_fd_describe(p[1], desc, 5);
    CHECK(n > 4 && strlen(desc) == 4, "truncated description");
    close(p[0]);
    close(p[1]);

    fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "12345", 5) == 5, "tempfile");
    int dup = cmx_fd_dup_flags(fd, O_WRONLY | O_APPEND);
    CHECK(dup >= 0 && fstat(fd, &st) == 0 && st.st_size == 5, "append keeps the file");
    CHECK((fcntl(dup, F_GETFL) & O_APPEND) != 0, "O_APPEND applied");
    close(dup);
    dup = cmx_fd_dup_flags(fd, O_WRONLY | O_CREAT | O_TRUNC);
    CHECK(dup >= 0 && fstat(fd, &st) == 0 && st.st_size == 0, "O_TRUNC truncates a file");
    close(dup);
    errno = 0;
    CHECK(cmx_fd_dup_flags(fd, O_WRONLY | O_SYNC) == -1 && errno == EINVAL, "O_SYNC mismatch");
    close(fd);
    unlink(path);
    errno = 0;
    CHECK(cmx_fd_dup_flags(fd, O_WRONLY) == -1 && errno == EBADF, "closed fd: %d", errno);
    cmx_fd_describe(fd, desc, sizeof(desc));
    CHECK(strstr(desc, "not open") != NULL, "'%s'", desc);
    report(ok, "fd helper never truncates a pipe, still truncates a file");
}

/*
 * A 16550-like frontend: 64 KiB one byte per call, 5 us apart on a scripted
 * clock, coalesced with the default 1 ms window into two pipes. The caller's
 * timer fires at the deadline cmx_mux_poll_timeout() names.
 */
static void test_coalesced_one_byte_writes(void)
{
    enum { TOTAL = 64 * 1024, GAP_NS = 5000 };
    bool ok = true;
    int a[2], b[2];
    char *stream = malloc(TOTAL), *got_a = malloc(TOTAL), *got_b = malloc(TOTAL);
    size_t len_a = 0, len_b = 0;
    cmx_sink_config sinks[2] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_DROP,
          .drop_unit = CMX_DROP_UNIT_BYTES, .open = true, .input = true },
    };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 2,
        .queue_capacity = CMX_DEFAULT_QUEUE_CAPACITY,
        .coalesce_ns = CMX_DEFAULT_COALESCE_NS,
    };
    Harness h = { 0 };
    uint64_t now = 0, deadline = 0;
    bool pending = false;

    for (size_t i = 0; i < TOTAL; i++) {
        stream[i] = (char)(i * 7 + i / 251);
    }
    if (!sink_pipes(&h, a, b)) {
        report(false, "coalesced one-byte writes: pipes");
        return;
    }
    CHECK_OK(cmx_mux_new(&cfg, &h.mux));
    CHECK_OK(drain(&h));
    for (size_t i = 0; i < TOTAL && ok; i++) {
        size_t took = 0;

        now += GAP_NS;
        CHECK_OK(cmx_mux_poll_timeout(h.mux, &pending, &deadline));
        if (pending && deadline <= now) {
            CHECK_OK(cmx_mux_handle_timeout(h.mux, now));
            CHECK_OK(drain(&h));
        }
        CHECK_OK(cmx_mux_write_at(h.mux, (const uint8_t *)stream + i, 1, now, &took));
        CHECK_OK(drain(&h));
        CHECK(took == 1, "byte %zu", i);
        if (i % 1024 == 0) {
            read_available(a[0], got_a, TOTAL, &len_a);
            read_available(b[0], got_b, TOTAL, &len_b);
        }
    }
    CHECK_OK(cmx_mux_poll_timeout(h.mux, &pending, &deadline));
    CHECK(pending && deadline <= now + CMX_DEFAULT_COALESCE_NS,
          "the last bytes are held, briefly");
    CHECK_OK(cmx_mux_handle_timeout(h.mux, now));
    CHECK_OK(drain(&h));
    CHECK_OK(cmx_mux_poll_timeout(h.mux, &pending, &deadline));
    CHECK(!pending && deadline == 0, "nothing held after the timeout");
    read_available(a[0], got_a, TOTAL, &len_a);
    read_available(b[0], got_b, TOTAL, &len_b);
    CHECK(len_a == TOTAL && memcmp(got_a, stream, TOTAL) == 0, "sink 0 byte-exact (%zu)", len_a);
    CHECK(len_b == TOTAL && memcmp(got_b, stream, TOTAL) == 0, "sink 1 byte-exact (%zu)", len_b);
    /* 328 ms of output: one write per sink per millisecond, not per byte. */
    CHECK(h.sink_writes <= 2 * 330, "%d write calls for %d bytes", h.sink_writes, 2 * TOTAL);
    cmx_mux_free(h.mux);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    free(stream);
    free(got_a);
    free(got_b);
    report(ok, "coalesced one-byte writes: byte-exact, one write per window per sink");
}

static uint8_t stream_byte(size_t i)
{
    return (uint8_t)(i * 131 + i / 509);
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * The child: sleeps, then reads fd to end of file. Exit status 0 when it got
 * exactly `total` bytes of stream_byte(), 1 when short, 2 when they differ.
 */
static void late_reader(int fd, size_t total, unsigned delay_ms)
{
    uint8_t buf[4096];
    size_t got = 0;
    bool same = true;
    ssize_t n;

    usleep(delay_ms * 1000);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        for (ssize_t i = 0; i < n; i++) {
            same &= buf[i] == stream_byte(got + (size_t)i);
        }
        got += (size_t)n;
    }
    _exit(!same ? 2 : got != total ? 1 : 0);
}

/*
 * QEMU's qemu_chr_fe_write_all() must not return before every byte is
 * taken, and does not wait for watches: it writes, drains and writes again.
 * That must make progress as soon as the sink takes bytes again, with
 * nobody calling cmx_mux_sink_writable(), even though the pipe is full when
 * the reader (a child process) starts reading only 200 ms later.
 */
static void test_write_all_over_a_late_reader(void)
{
    enum { TOTAL = 256 * 1024, CHUNK = 100, QUEUE = 4096, DELAY_MS = 200 };
    bool ok = true;
    int p[2], status = -1;
    uint8_t *stream = malloc(TOTAL);
    cmx_sink_config sinks[1] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
    };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 1, .queue_capacity = QUEUE,
    };
    Harness h = { 0 };
    cmx_sink_stats st;
    size_t off = 0, backlog = 1;
    long would_block = 0;
    double t0, deadline;
    pid_t pid;

    for (size_t i = 0; i < TOTAL; i++) {
        stream[i] = stream_byte(i);
    }
    if (pipe(p)) {
        report(false, "write_all: pipe");
        return;
    }
    pid = fork();
    if (pid == 0) {
        /* The child checks against stream_byte(); it needs no copy (and
         * valgrind counts one it never frees as lost when it _exit()s). */
        free(stream);
        close(p[1]);
        late_reader(p[0], TOTAL, DELAY_MS);
    }
    close(p[0]);
    CHECK(pid > 0, "fork: %s", strerror(errno));
    set_nonblock(p[1]);
    h.sink_fd[0] = p[1];
    CHECK_OK(cmx_mux_new(&cfg, &h.mux));
    CHECK_OK(drain(&h));

    /* The write_all loop: write, drain, again; never a watch, never a sleep. */
    t0 = seconds_now();
    deadline = t0 + 30;
    while (off < TOTAL && ok && seconds_now() < deadline) {
        size_t n = TOTAL - off < CHUNK ? TOTAL - off : CHUNK, took = 0;
        cmx_result r = cmx_mux_write(h.mux, stream + off, n, &took);

        CHECK(r == CMX_RESULT_OK || r == CMX_RESULT_WOULD_BLOCK, "write: %s", cmx_result_str(r));
        would_block += r == CMX_RESULT_WOULD_BLOCK;
        off += took;
        CHECK_OK(drain(&h));
    }
    CHECK(off == TOTAL, "write_all made no progress after %.1f s: %zu of %d bytes",
          seconds_now() - t0, off, TOTAL);
    CHECK(would_block > 0, "the full pipe pushed back");
    printf("# write_all: %ld refused writes, done after %.0f ms (reader started at %d ms)\n",
           would_block, (seconds_now() - t0) * 1000, DELAY_MS);

    /* Done writing: what is still queued goes out through the event loop. */
    while (ok && h.watch && seconds_now() < deadline) {
        CHECK_OK(service_watches(&h, 1000));
    }
    CHECK_OK(cmx_mux_lossless_backlog(h.mux, &backlog));
    CHECK(backlog == 0, "%zu bytes still queued", backlog);
    CHECK_OK(cmx_mux_sink_stats(h.mux, 0, &st));
    CHECK(st.delivered == TOTAL && st.dropped == 0 && st.backpressure_events > 0,
          "delivered %llu, dropped %llu, back-pressure %llu", (unsigned long long)st.delivered,
          (unsigned long long)st.dropped, (unsigned long long)st.backpressure_events);
    cmx_mux_free(h.mux);
    close(p[1]);
    if (pid > 0) {
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the reader got %s", !WIFEXITED(status) ? "killed"
              : WEXITSTATUS(status) == 1 ? "too few bytes" : "wrong bytes");
    }
    free(stream);
    report(ok, "a write_all loop completes over a pipe whose reader starts late");
}

/*
 * The defaults and the management side: a sink configuration that sets
 * only `size` and `open` is a `drop` sink in `lines` mode and never holds
 * the writer back; a stalled one reports that it started dropping, and
 * once it reads again that it stopped; a detached `block` log is reported
 * DETACHED once written out, then released; cmx_mux_stats() counts what
 * the writer offered and was refused.
 */
static void test_defaults_and_sink_reports(void)
{
    enum { TOTAL = 9 * 20000, QUEUE = 4096 };
    bool ok = true;
    int log_pipe[2], view_pipe[2];
    char *stream = malloc(TOTAL + 16), *log = malloc(TOTAL), *view = malloc(TOTAL);
    size_t log_len = 0, view_len = 0, off = 0, backlog = 0;
    cmx_sink_config sinks[2] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
        { .size = sizeof(cmx_sink_config), .open = true }, /* the defaults */
    };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 2, .queue_capacity = QUEUE,
    };
    Harness h = { 0 };
    cmx_sink_stats st;
    cmx_mux_counters c;
    int refused = 0;

    for (size_t i = 0; i < TOTAL; i += 9) {
        snprintf(stream + i, 10, "%08zx", i / 9);
        stream[i + 8] = '\n';
    }
    if (!sink_pipes(&h, log_pipe, view_pipe)) {
        report(false, "defaults and sink reports: pipes");
        return;
    }
    CHECK_OK(cmx_mux_new(&cfg, &h.mux));
    CHECK_OK(drain(&h));
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(st.overflow == CMX_OVERFLOW_DROP, "the default policy is drop (%u)", st.overflow);

    /* The viewer never reads; the log is read whenever the writer is refused. */
    while (off < TOTAL && ok) {
        size_t n = TOTAL - off < 700 ? TOTAL - off : 700, took = 0;
        cmx_result r = cmx_mux_write(h.mux, (const uint8_t *)stream + off, n, &took);

        CHECK(r == CMX_RESULT_OK || r == CMX_RESULT_WOULD_BLOCK, "write: %s", cmx_result_str(r));
        refused += r == CMX_RESULT_WOULD_BLOCK || took < n;
        CHECK_OK(drain(&h));
        if (r == CMX_RESULT_OK) {
            off += took;
        } else {
            read_available(log_pipe[0], log, TOTAL, &log_len);
            CHECK_OK(service_watches(&h, 1000));
        }
    }
    CHECK(h.n_reports == 1 && h.reports[0].kind == CMX_SINK_REPORT_KIND_DROP_STARTED &&
          h.reports[0].sink == 1 && h.reports[0].drop_unit == CMX_DROP_UNIT_LINES &&
          h.reports[0].dropped > 0, "DROP_STARTED for the viewer (%d reports)", h.n_reports);
    CHECK_OK(cmx_mux_stats(h.mux, &c));
    CHECK(c.frontend_offered == c.frontend_accepted + c.frontend_refused_bytes &&
          c.frontend_accepted == TOTAL && c.frontend_refusals == (uint64_t)refused,
          "offered %llu accepted %llu refused %llu in %llu refusals",
          (unsigned long long)c.frontend_offered, (unsigned long long)c.frontend_accepted,
          (unsigned long long)c.frontend_refused_bytes, (unsigned long long)c.frontend_refusals);

    /* The viewer reads again: it catches up and says so. */
    while (h.watch && ok) {
        read_available(view_pipe[0], view, TOTAL, &view_len);
        read_available(log_pipe[0], log, TOTAL, &log_len);
        CHECK_OK(service_watches(&h, 1000));
    }
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(h.n_reports == 2 && h.reports[1].kind == CMX_SINK_REPORT_KIND_DROP_STOPPED &&
          h.reports[1].dropped == st.dropped && h.reports[1].episode == st.dropped,
          "DROP_STOPPED with the count (%d reports)", h.n_reports);

    /* Detaching the viewer (a drop sink) is done at once, and reported. */
    CHECK_OK(cmx_mux_detach(h.mux, 1, &backlog));
    CHECK_OK(drain(&h));
    CHECK(backlog == 0 && h.n_reports == 3 && h.reports[2].kind == CMX_SINK_REPORT_KIND_DETACHED &&
          h.reports[2].sink == 1, "DETACHED for the viewer");
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(st.state == CMX_SINK_STATE_DETACHED, "state %u", st.state);
    CHECK_OK(cmx_mux_release(h.mux, 1, &st));
    CHECK(st.delivered + st.queued + st.dropped == st.offered && st.queued == 0,
          "final counters add up");
    CHECK(cmx_mux_sink_stats(h.mux, 1, &st) == CMX_RESULT_INVALID_SINK, "released");
    cmx_mux_free(h.mux);
    for (int i = 0; i < 2; i++) {
        close(log_pipe[i]);
        close(view_pipe[i]);
    }
    read_available(log_pipe[0], log, TOTAL, &log_len);
    free(stream);
    free(log);
    free(view);
    report(ok, "defaults are drop/lines; sinks report drops and detaching; refusals counted");
}

/*
 * Line stamps (cmx_sink_config.timestamp): the wall clock comes with each
 * write (cmx_mux_write_at_wall()); every line the stamped sink gets starts
 * with the time its first byte was written, in QEMU's -msg timestamp=on
 * format, and the stamp follows the "\n" of a "\r\n". The plain sink gets
 * the bytes as they are; the counters keep the frontend's bytes and the
 * stamps apart.
 */
static void test_timestamps(void)
{
    bool ok = true;
    int stamped_pipe[2], plain_pipe[2];
    char got[512], plain[512];
    size_t got_len = 0, plain_len = 0, n = 0;
    cmx_sink_config sinks[2] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true,
          .timestamp = true },
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
    };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 2, .queue_capacity = 4096,
    };
    Harness h = { 0 };
    cmx_sink_stats st;
    /* 2026-12-06T18:11:04.783070999Z, and a second later. */
    const uint64_t t0 = 1796580664783070999ULL, t1 = t0 + 1000000000ULL;
    const char *first = "boot\r\nlogin", *second = ": root\r\n$ ";
    const char *want = "2026-12-06T18:11:04.783070Z boot\r\n"
                       "2026-12-06T18:11:04.783070Z login: root\r\n"
                       "2026-12-06T18:11:05.783070Z $ ";

    if (!sink_pipes(&h, stamped_pipe, plain_pipe)) {
        report(false, "timestamps: pipes");
        return;
    }
    CHECK_OK(cmx_mux_new(&cfg, &h.mux));
    CHECK_OK(drain(&h));
    CHECK_OK(cmx_mux_write_at_wall(h.mux, (const uint8_t *)first, strlen(first), 0, t0, &n));
    CHECK(n == strlen(first), "accepted %zu", n);
    CHECK_OK(drain(&h));
    CHECK_OK(cmx_mux_write_at_wall(h.mux, (const uint8_t *)second, strlen(second), 0, t1, &n));
    CHECK_OK(drain(&h));
    read_available(stamped_pipe[0], got, sizeof(got), &got_len);
    read_available(plain_pipe[0], plain, sizeof(plain), &plain_len);
    CHECK(got_len == strlen(want) && memcmp(got, want, got_len) == 0, "stamped: %.*s",
          (int)got_len, got);
    CHECK(plain_len == 21 && memcmp(plain, "boot\r\nlogin: root\r\n$ ", 21) == 0,
          "plain: %.*s", (int)plain_len, plain);
    CHECK_OK(cmx_mux_sink_stats(h.mux, 0, &st));
    CHECK(st.offered == 21 && st.delivered == 21 && st.stamps == 3 &&
          st.stamp_bytes == 3 * CMX_STAMP_LEN &&
          st.delivered + st.stamp_bytes + st.notice_bytes + st.skip_marker_bytes == got_len,
          "stamped sink counters");
    CHECK_OK(cmx_mux_sink_stats(h.mux, 1, &st));
    CHECK(st.delivered == 21 && st.stamps == 0 && st.stamp_bytes == 0, "plain sink counters");
    cmx_mux_free(h.mux);
    for (int i = 0; i < 2; i++) {
        close(stamped_pipe[i]);
        close(plain_pipe[i]);
    }
    report(ok, "a stamped sink gets each line after the time of its first byte");
}

/*
 * The replay head (replay_head_capacity, larger than the queues here) and
 * the tail, across a live migration: the source exports its replay state
 * (size first, then the blob), a new multiplexer imports it, and a viewer
 * that connects there gets the first output, one skip marker, the last
 * output. A reset (cmx_mux_reset_head()) starts the head again. Blobs that
 * are not the library's, or of another version, are refused.
 */
static void test_replay_head_and_migration(void)
{
    enum { TOTAL = 9 * 1000, HEAD = 900, TAIL = 450, QUEUE = 512 };
    bool ok = true;
    int log_pipe[2], view_pipe[2];
    char *stream = malloc(TOTAL + 16), *view = malloc(TOTAL);
    char want[2048], log[4096];
    size_t view_len = 0, log_len = 0, needed = 0, again = 0, n = 0, viewer = 0, want_len;
    uint8_t *blob = NULL;
    cmx_sink_config sinks[1] = {
        { .size = sizeof(cmx_sink_config), .overflow = CMX_OVERFLOW_BLOCK, .open = true },
    };
    cmx_sink_config view_cfg = { .size = sizeof(cmx_sink_config), .open = true };
    cmx_mux_config cfg = {
        .size = sizeof(cmx_mux_config), .sinks = sinks, .n_sinks = 1, .queue_capacity = QUEUE,
        .replay_capacity = TAIL, .replay_head_capacity = HEAD,
    };
    Harness src = { 0 }, dst = { 0 };
    cmx_mux *other = NULL;

    for (size_t i = 0; i < TOTAL; i += 9) {
        snprintf(stream + i, 10, "%08zx", i / 9);
        stream[i + 8] = '\n';
    }
    if (!sink_pipes(&src, log_pipe, view_pipe)) {
        report(false, "replay head and migration: pipes");
        return;
    }
    CHECK_OK(cmx_mux_new(&cfg, &src.mux));
    CHECK_OK(drain(&src));
    for (size_t off = 0; off < TOTAL && ok; off += n) {
        CHECK_OK(cmx_mux_write(src.mux, (const uint8_t *)stream + off,
                               TOTAL - off < 100 ? TOTAL - off : 100, &n));
        CHECK_OK(drain(&src));
        log_len = 0;
        read_available(log_pipe[0], log, sizeof(log), &log_len);
    }

    /* Export: the size, a buffer one byte short (refused), the blob. */
    CHECK_OK(cmx_mux_replay_export(src.mux, NULL, 0, &needed));
    blob = malloc(needed);
    again = 7;
    CHECK(cmx_mux_replay_export(src.mux, blob, needed - 1, &again) ==
          CMX_RESULT_BUFFER_TOO_SMALL && again == 7, "a short buffer is refused");
    CHECK_OK(cmx_mux_replay_export(src.mux, blob, needed, &again));
    CHECK(again == needed, "exported %zu of %zu", again, needed);

    /* The destination: its log closed, nothing written yet. */
    sinks[0].open = false;
    CHECK_OK(cmx_mux_new(&cfg, &dst.mux));
    CHECK(cmx_mux_replay_import(dst.mux, blob, needed - 1) == CMX_RESULT_REPLAY_BLOB_MALFORMED,
          "a cut blob is refused");
    blob[8] = 2;
    CHECK(cmx_mux_replay_import(dst.mux, blob, needed) == CMX_RESULT_REPLAY_BLOB_VERSION,
          "another version is refused");
    blob[8] = CMX_REPLAY_BLOB_VERSION;
    CHECK_OK(cmx_mux_replay_import(dst.mux, blob, needed));
    CHECK(cmx_mux_replay_import(dst.mux, blob, needed) == CMX_RESULT_REPLAY_NOT_FRESH,
          "imported twice");
    cfg.replay_capacity = TAIL - 1;
    CHECK_OK(cmx_mux_new(&cfg, &other));
    CHECK(cmx_mux_replay_import(other, blob, needed) == CMX_RESULT_REPLAY_BLOB_TOO_LARGE,
          "a smaller tail cannot take it");
    cmx_mux_free(other);

    /* A viewer connects to the destination. */
    CHECK_OK(cmx_mux_attach(dst.mux, &view_cfg, &viewer));
    dst.sink_fd[viewer] = view_pipe[1];
    CHECK_OK(drain(&dst));
    read_available(view_pipe[0], view, TOTAL, &view_len);
    memcpy(want, stream, HEAD);
    want_len = HEAD;
    want_len += (size_t)snprintf(want + want_len, 64, "\r\n[multiplex: %d bytes skipped]\r\n",
                                 TOTAL - HEAD - TAIL);
    memcpy(want + want_len, stream + TOTAL - TAIL, TAIL);
    want_len += TAIL;
    CHECK(view_len == want_len && memcmp(view, want, want_len) == 0,
          "the viewer got %zu bytes of %zu", view_len, want_len);

    /* The guest resets: the head starts again, and the tail holds it. */
    CHECK_OK(cmx_mux_reset_head(dst.mux));
    CHECK_OK(cmx_mux_release(dst.mux, viewer, NULL));
    CHECK_OK(cmx_mux_write(dst.mux, (const uint8_t *)"new\n", 4, &n));
    CHECK_OK(cmx_mux_attach(dst.mux, &view_cfg, &viewer));
    dst.sink_fd[viewer] = view_pipe[1];
    CHECK_OK(drain(&dst));
    view_len = 0;
    read_available(view_pipe[0], view, TOTAL, &view_len);
    CHECK(view_len == TAIL && memcmp(view, stream + TOTAL - TAIL + 4, TAIL - 4) == 0 &&
          memcmp(view + TAIL - 4, "new\n", 4) == 0, "after the reset: %zu bytes", view_len);

    cmx_mux_free(src.mux);
    cmx_mux_free(dst.mux);
    for (int i = 0; i < 2; i++) {
        close(log_pipe[i]);
        close(view_pipe[i]);
    }
    free(blob);
    free(stream);
    free(view);
    report(ok, "the replay head, marker and tail survive a migration; a reset restarts the head");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    printf("1..8\n");
    printf("# chardev-multiplex %s\n", cmx_version());
    fflush(stdout); /* the fork below must not print this twice */
    test_bad_configurations_and_arguments();
    test_log_and_stalled_viewer();
    test_fd_helper_on_pipe_and_file();
    test_coalesced_one_byte_writes();
    test_defaults_and_sink_reports();
    test_timestamps();
    test_replay_head_and_migration();
    fflush(stdout);
    test_write_all_over_a_late_reader();
    return tests_failed ? 1 : 0;
}
