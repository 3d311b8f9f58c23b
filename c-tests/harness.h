/* harness.h: shared helpers for the C tests: a loopback testserver child process, temp
 * dirs, files, a tiny HTTP client for the server's control endpoints, an event recorder with
 * bounded waits, and CHECK macros that count failures. Every wait is bounded in time. */
#ifndef OHREQ_HARNESS_H
#define OHREQ_HARNESS_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ohreq.h"

extern int th_failures;
extern int th_checks;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        th_checks++;                                                                 \
        if (!(cond)) {                                                               \
            th_failures++;                                                           \
            fprintf(stderr, "  CHECK failed %s:%d: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);                       \
        th_checks++;                                                                    \
        if (th_a_ != th_b_) {                                                           \
            th_failures++;                                                              \
            fprintf(stderr, "  CHECK failed %s:%d: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, th_a_, th_b_);                                    \
        }                                                                               \
    } while (0)

/* Checks a call's code and prints the library's detail message when it differs. */
#define CHECK_CODE(call, want)                                                            \
    do {                                                                                  \
        ohreq_code th_c_ = (call);                                                        \
        th_checks++;                                                                      \
        if (th_c_ != (want)) {                                                            \
            char th_m_[512];                                                              \
            size_t th_n_ = 0;                                                             \
            th_m_[0] = 0;                                                                 \
            if (ohreq_last_error_message(th_m_, sizeof th_m_, &th_n_) != OHREQ_OK) th_m_[0] = 0; \
            th_failures++;                                                                \
            fprintf(stderr, "  CHECK failed %s:%d: %s gave %d, want %d (%s)\n", __FILE__, \
                    __LINE__, #call, th_c_, (int)(want), th_m_);                          \
        }                                                                                 \
    } while (0)

typedef void (*th_test_fn)(void);
typedef struct { const char *name; th_test_fn fn; } th_test;

/* Runs the tests (all, or those named in argv) and prints "N passed, N failed". */
int th_run(int argc, char **argv, const th_test *tests, size_t n);

/* ---- testserver ---- */
typedef struct {
    int http_port;
    int https_port;
    char root[512];    /* files served under /files/ */
    char certs[512];   /* ca.pem, other-ca.pem */
    pid_t pid;
    char port_file[600]; /* "http=P https=P h2=P", written by the server */
} th_server;

/* Starts target/release/testserver (or $OHREQ_TESTSERVER) on a fresh root. Exits on failure. */
void th_server_start(th_server *s);
void th_server_stop(th_server *s);
/* "http://127.0.0.1:PORT<path>" into buf. */
const char *th_url(const th_server *s, int tls, const char *path, char *buf, size_t len);
/* GET over plain HTTP; the body (NUL-terminated, truncated to cap) into out. Returns status. */
int th_http_get(const th_server *s, const char *path, char *out, size_t cap);

/* ---- files ---- */
/* A new empty directory under $TMPDIR; path into buf. */
const char *th_tmpdir(char *buf, size_t len);
/* Writes `size` deterministic bytes (pattern from `seed`) to path. */
void th_write_pattern(const char *path, size_t size, unsigned seed);
/* 1 if both files exist with identical content. */
int th_same_file(const char *a, const char *b);
int th_exists(const char *path);
long long th_file_size(const char *path);
/* The SHA-256 of a file as lowercase hex, from the system's sha256sum ("" if it fails). */
void th_sha256_of(const char *path, char out[65]);
/* Number of directory entries (excluding . and ..), -1 if unreadable. */
int th_count_entries(const char *dir);

/* ---- service / client ---- */
/* A service on data dir `data` (thread dispatch unless poll != 0). */
ohreq_service *th_service(const char *data, int poll);
/* A client with INTERNET (unless no_internet), cache dir `cache`, cleartext allowed, CA file. */
ohreq_client *th_client(ohreq_service *svc, const char *cache, const char *ca, int no_internet);

/* ---- events ---- */
#define TH_KINDS 12
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count[TH_KINDS];
    int last_code;
    long long last_processed;
    long long last_total;
    int order[64];      /* kinds in arrival order (first 64) */
    int n_order;
    int bad_thread;     /* set when a callback ran on an unexpected thread */
    long long max_processed_seen;
} th_rec;

void th_rec_init(th_rec *r);
void th_rec_destroy(th_rec *r);
/* Subscribes the recorder to every legacy kind on the task. */
void th_rec_attach(th_rec *r, ohreq_task *t);
/* Waits until `kind` was seen at least `n` times; returns 1 if so within timeout_ms. */
int th_rec_wait(th_rec *r, unsigned kind, int n, int timeout_ms);
/* Waits until any of complete/fail/remove arrived. Returns the kind seen or -1. */
int th_rec_wait_end(th_rec *r, int timeout_ms);
int th_rec_count(th_rec *r, unsigned kind);

/* Milliseconds sleep. */
void th_sleep_ms(int ms);
long long th_now_ms(void);

/* ---- more helpers (added for test_download / test_restart) ---- */

/* Marks the running test as skipped and prints "SKIP <test>: <why>". Only honoured by
 * th_run_skippable: a skipped test with no failed check counts neither as passed nor failed. */
void th_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As th_run, skip-aware; prints "N passed, N failed, N skipped". */
int th_run_skippable(int argc, char **argv, const th_test *tests, size_t n);

/* One line of the server's request log (/__log). */
typedef struct {
    int conn;
    char method[16];
    char target[512];
    char range[128];    /* the Range header, "-" when absent */
    char if_range[256]; /* the If-Range header, "-" when absent */
    int tls;
    long long served;   /* body bytes written to the socket */
} th_log_entry;

/* Reads /__log; stores the entries whose target contains `needle` (NULL: all), oldest first,
 * up to `cap` of them. Returns how many matched (may exceed cap), -1 on error. */
int th_server_log(const th_server *s, const char *needle, th_log_entry *out, int cap);
/* Sum of `served` over the log entries whose target contains `needle`. */
long long th_server_served(const th_server *s, const char *needle);
/* Reads /__stats. Returns 0 on success. */
int th_server_stats(const th_server *s, long long *connections, long long *requests);
/* HEAD <path>; copies the value of header `name` (case-insensitive; "" if absent) into out.
 * Returns the status or -1. */
int th_http_head(const th_server *s, const char *path, const char *name, char *out, size_t cap);

/* Waits until the file at `path` holds at least `min` bytes; returns its size then (or the
 * last size seen, -1 if missing, when timeout_ms passed). */
long long th_wait_file_size(const char *path, long long min, int timeout_ms);
/* Waits until nothing exists at `path`; 1 if so within timeout_ms. */
int th_wait_gone(const char *path, int timeout_ms);
/* A service (thread dispatch) on `data` with at most `max_running` concurrent transfers. */
ohreq_service *th_service_max(const char *data, uint32_t max_running);

/* ---- HTTP/2 (added for test_http2) ---- */

/* The port of the server's HTTP/2 listener (TLS, ALPN "h2" only), read from its port file;
 * -1 if the server does not announce one. */
int th_server_h2_port(const th_server *s);


/* ---- uploads (added for test_upload) ---- */

/* One /__log line of an upload endpoint: the common fields plus ` h2=1` and ` recv=N`. */
typedef struct {
    th_log_entry e;
    int h2;
    long long recv; /* request-body bytes the server read; -1 when the line has none */
} th_upload_log_entry;

/* As th_server_log, for upload lines: entries whose target contains `needle` (NULL: all),
 * oldest first, up to `cap`. Returns how many matched (may exceed cap), -1 on error. */
int th_server_upload_log(const th_server *s, const char *needle, th_upload_log_entry *out, int cap);

#endif
