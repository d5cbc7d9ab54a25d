/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * End-to-end test of include/chardev_multiplex.h from C, with real pipes.
 * Prints TAP for `meson test`.
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

static void report(bool ok, const char *name)
{
    tests_run++;
    if (!ok) {
        tests_failed++;
    }
    printf("%s %d - %s\n", ok ? "ok" : "not ok", tests_run, name);
}

/* The test's side of the multiplexer: two pipes as sinks, a fake guest. */
typedef struct {
    int sink_fd[2];
    bool watching[2];
    int writable_calls;
    int events[8];
    int n_events;
    char input[64];
    size_t input_len;
    cmx_mux *self;          /* set after creation, for the reentrancy check */
    int write_calls;
    cmx_result reentrant;
} Harness;

static ptrdiff_t h_write(void *opaque, size_t sink, const uint8_t *data, size_t len)
{
    Harness *h = opaque;
    ssize_t n;
    if (h->self) {
        size_t room;
        h->reentrant = cmx_mux_write_room(h->self, &room);
    }
    h->write_calls++;
    n = write(h->sink_fd[sink], data, len);
    return n < 0 ? -errno : n;
}

static void h_watch(void *opaque, size_t sink, bool enable)
{
    ((Harness *)opaque)->watching[sink] = enable;
}

static void h_writable(void *opaque)
{
    ((Harness *)opaque)->writable_calls++;
}

static void h_input(void *opaque, const uint8_t *data, size_t len)
{
    Harness *h = opaque;
    memcpy(h->input + h->input_len, data, len);
    h->input_len += len;
}

static void h_event(void *opaque, cmx_frontend_event ev)
{
    Harness *h = opaque;
    h->events[h->n_events++] = (int)ev;
}

static const cmx_callbacks callbacks = {
    .sink_write = h_write,
    .sink_watch = h_watch,
    .frontend_writable = h_writable,
    .frontend_input = h_input,
    .frontend_event = h_event,
};

static cmx_result try_config(cmx_sink_config *sinks, size_t n, size_t queue, size_t replay)
{
    cmx_mux_config cfg = {
        .sinks = sinks, .n_sinks = n, .queue_capacity = queue, .replay_capacity = replay,
    };
    cmx_mux *mux = (cmx_mux *)&cfg; /* must be overwritten with NULL on failure */
    Harness h = { 0 };
    cmx_result r = cmx_mux_new(&cfg, &callbacks, &h, &mux);
    if (r == CMX_RESULT_OK) {
        cmx_mux_free(mux);
    } else if (mux != NULL) {
        return 9999;
    }
    return r;
}

static void test_bad_configurations(void)
{
    bool ok = true;
    cmx_sink_config s[9] = { { 0 } };
    cmx_callbacks no_write = callbacks;
    cmx_mux_config cfg = { .sinks = s, .n_sinks = 2, .queue_capacity = CMX_DEFAULT_QUEUE_CAPACITY };
    cmx_mux *mux;

    CHECK(try_config(s, 0, 4096, 0) == CMX_RESULT_CONFIG_NO_SINKS, "0 sinks");
    CHECK(try_config(s, 9, 4096, 0) == CMX_RESULT_CONFIG_TOO_MANY_SINKS, "9 sinks");
    CHECK(try_config(s, 2, 0, 0) == CMX_RESULT_CONFIG_ZERO_QUEUE, "zero queue");
    CHECK(try_config(s, 2, CMX_MAX_QUEUE_CAPACITY + 1, 0) == CMX_RESULT_CONFIG_QUEUE_TOO_LARGE,
          "huge queue");
    CHECK(try_config(s, 2, 4096, 4097) == CMX_RESULT_CONFIG_REPLAY_TOO_LARGE, "replay > queue");
    s[0].input = s[1].input = true;
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_MULTIPLE_INPUTS, "two inputs");
    s[0].input = false;
    s[1].overflow = 7;
    CHECK(try_config(s, 2, 4096, 0) == CMX_RESULT_CONFIG_UNKNOWN_OVERFLOW, "policy 7");
    s[1].overflow = CMX_OVERFLOW_BLOCK;
    cfg.coalesce_ns = CMX_MAX_COALESCE_NS + 1;
    mux = (cmx_mux *)&cfg;
    CHECK(cmx_mux_new(&cfg, &callbacks, NULL, &mux) == CMX_RESULT_CONFIG_COALESCE_TOO_LONG &&
          mux == NULL, "coalescing window over 100 ms");
    cfg.coalesce_ns = 0;
    s[1].overflow = CMX_OVERFLOW_DROP;
    CHECK(try_config(s, 8, 4096, 4096) == CMX_RESULT_OK, "8 sinks, full replay");
    no_write.sink_write = NULL;
    CHECK(cmx_mux_new(&cfg, &no_write, NULL, &mux) == CMX_RESULT_CONFIG_NO_WRITE_CALLBACK &&
          mux == NULL, "NULL sink_write");
    no_write = callbacks;
    no_write.sink_watch = NULL;
    CHECK(cmx_mux_new(&cfg, &no_write, NULL, &mux) == CMX_RESULT_CONFIG_NO_WATCH_CALLBACK &&
          mux == NULL, "NULL sink_watch");
    CHECK(cmx_mux_new(NULL, &callbacks, NULL, &mux) == CMX_RESULT_NULL_PARAMETER, "NULL config");
    CHECK(cmx_mux_new(&cfg, &callbacks, NULL, NULL) == CMX_RESULT_NULL_PARAMETER, "NULL out");
    CHECK(strstr(cmx_result_str(CMX_RESULT_CONFIG_MULTIPLE_INPUTS), "input") != NULL,
          "message: %s", cmx_result_str(CMX_RESULT_CONFIG_MULTIPLE_INPUTS));
    CHECK(strcmp(cmx_result_str(12345), "unknown cmx_result value") == 0, "unknown code");
    CHECK(cmx_mux_free(NULL) == CMX_RESULT_OK, "free(NULL)");
    report(ok, "bad configurations are refused with specific codes");
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
static void drain(int fd, char *buf, size_t cap, size_t *len)
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
    int log_pipe[2], view_pipe[2];
    char *stream = malloc(TOTAL + 16), *log = malloc(TOTAL), *view = malloc(TOTAL);
    size_t log_len = 0, view_len = 0, off = 0;
    cmx_sink_config sinks[2] = {
        { .overflow = CMX_OVERFLOW_BLOCK, .open = true },
        { .overflow = CMX_OVERFLOW_DROP, .open = true, .input = true },
    };
    cmx_mux_config cfg = { .sinks = sinks, .n_sinks = 2, .queue_capacity = QUEUE };
    Harness h = { 0 };
    cmx_mux *mux;
    cmx_sink_stats st;
    int turned_away = 0;

    for (size_t i = 0; i < TOTAL; i += 9) {
        snprintf(stream + i, 10, "%08zx", i / 9);
        stream[i + 8] = '\n';
    }
    if (!sink_pipes(&h, log_pipe, view_pipe)) {
        report(false, "pipes");
        return;
    }
    CHECK(cmx_mux_new(&cfg, &callbacks, &h, &mux) == CMX_RESULT_OK, "new");
    CHECK(h.n_events == 1 && h.events[0] == CMX_FRONTEND_EVENT_OPENED, "OPENED at creation");

    while (off < TOTAL) {
        size_t n = TOTAL - off < 512 ? TOTAL - off : 512, took;
        cmx_result r = cmx_mux_write(mux, (const uint8_t *)stream + off, n, &took);
        if (r == CMX_RESULT_WOULD_BLOCK) {
            /* Only the log can push back; read it and let the mux flush. */
            struct pollfd p = { log_pipe[1], POLLOUT, 0 };
            turned_away++;
            drain(log_pipe[0], log, TOTAL, &log_len);
            CHECK(h.watching[0], "log watched while queued");
            poll(&p, 1, 1000);
            cmx_mux_sink_writable(mux, 0);
            continue;
        }
        CHECK(r == CMX_RESULT_OK && took > 0, "write: %s", cmx_result_str(r));
        off += took;
    }
    while (h.watching[0]) {
        drain(log_pipe[0], log, TOTAL, &log_len);
        cmx_mux_sink_writable(mux, 0);
    }
    drain(log_pipe[0], log, TOTAL, &log_len);
    CHECK(log_len == TOTAL && memcmp(log, stream, TOTAL) == 0, "log is byte-exact (%zu)",
          log_len);
    CHECK(turned_away > 0 && h.writable_calls > 0, "back-pressure came and went (%d, %d)",
          turned_away, h.writable_calls);

    /* The viewer never read: its pipe holds the oldest 64 KiB, its queue the newest 4 KiB. */
    CHECK(cmx_mux_sink_stats(mux, 1, &st) == CMX_RESULT_OK, "stats");
    CHECK(st.offered == TOTAL && st.queued == QUEUE && st.backpressure_events == 0,
          "viewer offered %llu queued %llu", (unsigned long long)st.offered,
          (unsigned long long)st.queued);
    CHECK(st.delivered + st.queued + st.dropped == st.offered, "drop accounting");
    drain(view_pipe[0], view, TOTAL, &view_len);
    CHECK(view_len == st.delivered && memcmp(view, stream, view_len) == 0, "viewer prefix");
    cmx_mux_sink_writable(mux, 1);
    drain(view_pipe[0], view, TOTAL, &view_len);
    CHECK(memcmp(view + view_len - QUEUE, stream + TOTAL - QUEUE, QUEUE) == 0,
          "viewer sees the newest bytes after it reads again");
    CHECK(cmx_mux_sink_stats(mux, 0, &st) == CMX_RESULT_OK && st.dropped == 0 &&
          st.delivered == TOTAL, "log lost nothing");

    /* Input: only the input source (the viewer) reaches the guest. */
    size_t used, room;
    CHECK(cmx_mux_input_room(mux, 1, 3, &room) == CMX_RESULT_OK && room == 3, "room");
    CHECK(cmx_mux_input(mux, 1, (const uint8_t *)"hello", 5, 3, &used) == CMX_RESULT_OK &&
          used == 3, "input limited by room");
    CHECK(cmx_mux_input(mux, 0, (const uint8_t *)"xyz", 3, 64, &used) == CMX_RESULT_OK &&
          used == 3, "input from the log is consumed");
    CHECK(h.input_len == 3 && memcmp(h.input, "hel", 3) == 0, "guest got 'hel'");

    /* Reentrancy is refused, not undefined. */
    h.self = mux;
    CHECK(cmx_mux_write(mux, (const uint8_t *)"z", 1, &used) == CMX_RESULT_OK, "write");
    CHECK(h.reentrant == CMX_RESULT_REENTRANT_CALL, "reentrant call refused: %u", h.reentrant);
    h.self = NULL;

    CHECK(cmx_mux_sink_event(mux, 1, 42) == CMX_RESULT_INVALID_EVENT, "bad event");
    CHECK(cmx_mux_sink_writable(mux, 2) == CMX_RESULT_INVALID_SINK, "bad sink");
    CHECK(cmx_mux_sink_event(mux, 0, CMX_SINK_EVENT_CLOSED) == CMX_RESULT_OK, "close 0");
    CHECK(cmx_mux_sink_event(mux, 1, CMX_SINK_EVENT_CLOSED) == CMX_RESULT_OK, "close 1");
    CHECK(h.n_events == 2 && h.events[1] == CMX_FRONTEND_EVENT_CLOSED, "CLOSED after last");
    CHECK(cmx_mux_free(mux) == CMX_RESULT_OK, "free");
    for (int i = 0; i < 2; i++) {
        close(log_pipe[i]);
        close(view_pipe[i]);
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
 * clock, coalesced with the default 1 ms window into two pipes.
 */
static void test_coalesced_one_byte_writes(void)
{
    enum { TOTAL = 64 * 1024, GAP_NS = 5000 };
    bool ok = true;
    int a[2], b[2];
    char *stream = malloc(TOTAL), *got_a = malloc(TOTAL), *got_b = malloc(TOTAL);
    size_t len_a = 0, len_b = 0;
    cmx_sink_config sinks[2] = {
        { .overflow = CMX_OVERFLOW_BLOCK, .open = true },
        { .overflow = CMX_OVERFLOW_DROP, .open = true, .input = true },
    };
    cmx_mux_config cfg = {
        .sinks = sinks, .n_sinks = 2, .queue_capacity = CMX_DEFAULT_QUEUE_CAPACITY,
        .coalesce_ns = CMX_DEFAULT_COALESCE_NS,
    };
    Harness h = { 0 };
    cmx_mux *mux;
    uint64_t now = 0, deadline = 0;
    bool pending = false;

    for (size_t i = 0; i < TOTAL; i++) {
        stream[i] = (char)(i * 7 + i / 251);
    }
    if (!sink_pipes(&h, a, b)) {
        report(false, "coalesced one-byte writes: pipes");
        return;
    }
    CHECK(cmx_mux_new(&cfg, &callbacks, &h, &mux) == CMX_RESULT_OK, "new");
    for (size_t i = 0; i < TOTAL; i++) {
        size_t took = 0;

        now += GAP_NS;
        CHECK(cmx_mux_flush_deadline(mux, &pending, &deadline) == CMX_RESULT_OK, "deadline");
        if (pending && deadline <= now) {
            CHECK(cmx_mux_flush(mux, now) == CMX_RESULT_OK, "flush");
        }
        CHECK(cmx_mux_write_at(mux, (const uint8_t *)stream + i, 1, now, &took) ==
              CMX_RESULT_OK && took == 1, "byte %zu", i);
        if (i % 1024 == 0) {
            drain(a[0], got_a, TOTAL, &len_a);
            drain(b[0], got_b, TOTAL, &len_b);
        }
        if (!ok) {
            break;
        }
    }
    CHECK(cmx_mux_flush_deadline(mux, &pending, &deadline) == CMX_RESULT_OK && pending &&
          deadline <= now + CMX_DEFAULT_COALESCE_NS, "the last bytes are held, briefly");
    CHECK(cmx_mux_flush(mux, now) == CMX_RESULT_OK, "final flush");
    CHECK(cmx_mux_flush_deadline(mux, &pending, &deadline) == CMX_RESULT_OK && !pending &&
          deadline == 0, "nothing held after the flush");
    drain(a[0], got_a, TOTAL, &len_a);
    drain(b[0], got_b, TOTAL, &len_b);
    CHECK(len_a == TOTAL && memcmp(got_a, stream, TOTAL) == 0, "sink 0 byte-exact (%zu)", len_a);
    CHECK(len_b == TOTAL && memcmp(got_b, stream, TOTAL) == 0, "sink 1 byte-exact (%zu)", len_b);
    /* 328 ms of output: one write per sink per millisecond, not per byte. */
    CHECK(h.write_calls <= 2 * 330, "%d write calls for %d bytes", h.write_calls, 2 * TOTAL);
    CHECK(cmx_mux_free(mux) == CMX_RESULT_OK, "free");
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    free(stream);
    free(got_a);
    free(got_b);
    report(ok, "coalesced one-byte writes: byte-exact, one write per window per sink");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    printf("1..4\n");
    printf("# chardev-multiplex %s\n", cmx_version());
    test_bad_configurations();
    test_log_and_stalled_viewer();
    test_fd_helper_on_pipe_and_file();
    test_coalesced_one_byte_writes();
    return tests_failed ? 1 : 0;
}
