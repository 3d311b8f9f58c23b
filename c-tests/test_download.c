/* test_download.c: the legacy download API end to end against testserver: events, paths,
 * pause/resume with Range, retries, HTTP errors, redirects, TLS, timeouts, disk full,
 * network state, parallelism. Every wait is bounded. */
#include "harness.h"

static th_server srv;

#define MiB (1024 * 1024)

typedef struct {
    char dir[400];
    char data[600];
    char cache[600];
    ohreq_service *svc;
    ohreq_client *cli;
} env;

/* A service + client on fresh dirs; `ca` names the client's CA file in srv.certs (NULL:
 * ca.pem), `max_running` caps the service (0: default). */
static void env_open_ex(env *e, const char *ca_name, uint32_t max_running) {
    th_tmpdir(e->dir, sizeof e->dir);
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    mkdir(e->cache, 0755);
    char ca[700];
    snprintf(ca, sizeof ca, "%s/%s", srv.certs, ca_name ? ca_name : "ca.pem");
    e->svc = max_running ? th_service_max(e->data, max_running) : th_service(e->data, 0);
    e->cli = th_client(e->svc, e->cache, ca, 0);
}

static void env_open(env *e) {
    env_open_ex(e, NULL, 0);
}

static void env_close(env *e) {
    ohreq_client_free(e->cli);
    ohreq_service_free(e->svc);
}

/* A config for `path` on the server (file_path NULL = default). */
static ohreq_download_config *mkcfg(int tls, const char *path, const char *file_path) {
    char url[1024];
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, th_url(&srv, tls, path, url, sizeof url)), OHREQ_OK);
    if (file_path) CHECK_CODE(ohreq_download_config_set_file_path(c, file_path), OHREQ_OK);
    return c;
}

/* ohreq_download with `c`, which it frees. */
static ohreq_code go(env *e, ohreq_download_config *c, ohreq_task **t) {
    ohreq_code rc = ohreq_download(e->cli, c, t);
    ohreq_download_config_free(c);
    return rc;
}

/* Starts a download of `path` on the server into file_path (NULL = default). */
static ohreq_code start(env *e, int tls, const char *path, const char *file_path, ohreq_task **t) {
    return go(e, mkcfg(tls, path, file_path), t);
}

/* Writes `size` pattern bytes to <root>/<name>; the path into out. */
static const char *mksrc(const char *name, size_t size, unsigned seed, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", srv.root, name);
    th_write_pattern(out, size, seed);
    return out;
}

/* "<cache>/<rel>" into out. */
static const char *in_cache(const env *e, const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", e->cache, rel);
    return out;
}

static const char *part_of(const char *target, char *out, size_t cap) {
    snprintf(out, cap, "%s.ohreq-part", target);
    return out;
}

/* A snapshot of the task (NULL if the call failed, counted as a failed check). */
static ohreq_download_info *info_of(ohreq_task *t) {
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    return info;
}

static int str_eq(ohreq_str s, const char *want) {
    return s.data && strcmp(s.data, want) == 0;
}

/* Every progress event: (processed, total), in order. */
typedef struct {
    pthread_mutex_t mu;
    int n;
    long long processed[512];
    long long total[512];
} prog_log;

static void prog_cb(void *ud, const ohreq_event *ev) {
    prog_log *p = ud;
    pthread_mutex_lock(&p->mu);
    if (p->n < 512) {
        p->processed[p->n] = (long long)ohreq_event_processed(ev);
        p->total[p->n] = ohreq_event_total(ev);
        p->n++;
    }
    pthread_mutex_unlock(&p->mu);
}

static void prog_attach(prog_log *p, ohreq_task *t) {
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PROGRESS, prog_cb, p, NULL), OHREQ_OK);
}

/* ohreq_download starts the task at once, so an early event (a fast fail or complete) could
 * be delivered before a subscription made after it returns. These create the task while the
 * service is offline, subscribe `r` (and `p` if not NULL), then bring the network back. */
static ohreq_code go_rec(env *e, ohreq_download_config *c, ohreq_task **t, th_rec *r, prog_log *p) {
    CHECK_CODE(ohreq_service_set_network(e->svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    ohreq_code rc = go(e, c, t);
    if (rc == OHREQ_OK) {
        if (p) prog_attach(p, *t);
        th_rec_attach(r, *t);
    }
    CHECK_CODE(ohreq_service_set_network(e->svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    return rc;
}

static ohreq_code start_rec(env *e, int tls, const char *path, const char *file_path, ohreq_task **t, th_rec *r,
                            prog_log *p) {
    return go_rec(e, mkcfg(tls, path, file_path), t, r, p);
}

/* Waits for the end of a download and checks it failed with `code`; returns the ms it took
 * from `t0`. */
static long long expect_fail(th_rec *r, int code, long long t0, int timeout_ms) {
    CHECK_EQ(th_rec_wait_end(r, timeout_ms), OHREQ_EVENT_FAIL);
    CHECK_EQ(r->last_code, code);
    CHECK_EQ(th_rec_count(r, OHREQ_EVENT_COMPLETE), 0);
    return th_now_ms() - t0;
}

/* The DownloadInfo of a completed download of `size` bytes. */
static void expect_info_complete(ohreq_task *t, long long size) {
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
        CHECK_EQ(ohreq_download_info_downloaded_bytes(info), size);
        CHECK_EQ(ohreq_download_info_total_bytes(info), size);
    }
    ohreq_download_info_free(info);
}

/* After a failure or remove: neither the target nor its part file is left. */
static void expect_no_files(const char *target) {
    char part[800];
    CHECK(th_wait_gone(part_of(target, part, sizeof part), 3000));
    CHECK(!th_exists(target));
}

/* ------------------------------------------------------------------------------------- */

static void test_simple_download(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/simple.bin", srv.root);
    th_write_pattern(src, 3 * 1024 * 1024 + 17, 1);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/simple.bin", NULL, &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 20000), OHREQ_EVENT_COMPLETE);
    snprintf(dst, sizeof dst, "%s/simple.bin", e.cache);
    CHECK(th_same_file(src, dst));
    CHECK_EQ(th_count_entries(e.cache), 1); /* no part file left */
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
    CHECK_EQ(ohreq_download_info_downloaded_bytes(info), 3 * 1024 * 1024 + 17);
    CHECK_EQ(ohreq_download_info_total_bytes(info), 3 * 1024 * 1024 + 17);
    CHECK_EQ(ohreq_download_info_id(info), ohreq_task_id(t));
    CHECK(strcmp(ohreq_download_info_file_name(info).data, "simple.bin") == 0);
    CHECK(strcmp(ohreq_download_info_file_path(info).data, dst) == 0);
    CHECK_EQ(ohreq_download_info_failed_reason(info), -1);
    ohreq_download_info_free(info);
    char mime[64];
    size_t n = 0;
    CHECK_CODE(ohreq_task_get_mime_type(t, mime, sizeof mime, &n), OHREQ_OK);
    CHECK(strcmp(mime, "application/octet-stream") == 0);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 1. Progress events of a throttled download, then exactly one complete, in that order. */
static void test_progress_events(void) {
    env e;
    env_open(&e);
    const long long size = 2 * MiB + 5;
    char src[700], dst[700];
    mksrc("progress.bin", (size_t)size, 2, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    prog_log p;
    CHECK_CODE(start_rec(&e, 0, "/files/progress.bin?rate=800000", "progress.bin", &t, &r, &p), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 20000), OHREQ_EVENT_COMPLETE);
    th_sleep_ms(300); /* a second complete would show up now */
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_COMPLETE), 1);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_FAIL), 0);
    CHECK(th_same_file(src, in_cache(&e, "progress.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);

    pthread_mutex_lock(&p.mu);
    int mid = 0, monotonic = 1;
    for (int i = 0; i < p.n; i++) {
        if (p.processed[i] < size && p.total[i] == size) mid++;
        if (i > 0 && p.processed[i] < p.processed[i - 1]) monotonic = 0;
    }
    CHECK(p.n >= 2);
    CHECK(mid >= 1); /* at least one progress with processed < total == size */
    CHECK(monotonic);
    if (p.n > 0) {
        CHECK_EQ(p.processed[p.n - 1], size);
        CHECK_EQ(p.total[p.n - 1], size);
    }
    pthread_mutex_unlock(&p.mu);

    /* order: progress ... progress complete */
    pthread_mutex_lock(&r.mu);
    CHECK(r.n_order >= 2);
    for (int i = 0; i + 1 < r.n_order; i++) CHECK_EQ(r.order[i], OHREQ_EVENT_PROGRESS);
    if (r.n_order > 0) CHECK_EQ(r.order[r.n_order - 1], OHREQ_EVENT_COMPLETE);
    pthread_mutex_unlock(&r.mu);

    ohreq_task_free(t);
    pthread_mutex_destroy(&p.mu);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 2. Where files land: default, relative with dirs, "dir/", internal://cache/, absolute. */
static void test_file_paths(void) {
    env e;
    env_open(&e);
    char src[700];
    mksrc("paths.bin", 100000, 3, src, sizeof src);
    char abs_path[700];
    in_cache(&e, "abs.bin", abs_path, sizeof abs_path);
    struct {
        const char *file_path; /* config value; NULL = default */
        const char *rel;       /* expected location under the cache dir */
        const char *name;      /* expected fileName */
    } cases[] = {
        {NULL, "paths.bin", "paths.bin"},
        {"sub/dir/x.bin", "sub/dir/x.bin", "x.bin"},
        {"dir/", "dir/paths.bin", "paths.bin"},
        {"internal://cache/y.bin", "y.bin", "y.bin"},
        {abs_path, "abs.bin", "abs.bin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[800], part[900];
        in_cache(&e, cases[i].rel, want, sizeof want);
        ohreq_task *t = NULL;
        th_rec r;
        th_rec_init(&r);
        ohreq_code rc = start_rec(&e, 0, "/files/paths.bin", cases[i].file_path, &t, &r, NULL);
        CHECK_CODE(rc, OHREQ_OK);
        if (rc != OHREQ_OK) {
            fprintf(stderr, "  (case %zu: %s)\n", i, cases[i].file_path ? cases[i].file_path : "default");
            th_rec_destroy(&r);
            continue;
        }
        int end = th_rec_wait_end(&r, 10000);
        CHECK_EQ(end, OHREQ_EVENT_COMPLETE);
        int same = th_same_file(src, want);
        CHECK(same);
        CHECK(!th_exists(part_of(want, part, sizeof part)));
        ohreq_download_info *info = info_of(t);
        if (info) {
            CHECK(str_eq(ohreq_download_info_file_path(info), want));
            CHECK(str_eq(ohreq_download_info_file_name(info), cases[i].name));
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
            if (!same || end != OHREQ_EVENT_COMPLETE)
                fprintf(stderr, "  (case %zu: %s -> %s)\n", i, cases[i].file_path ? cases[i].file_path : "default",
                        ohreq_download_info_file_path(info).data);
        }
        ohreq_download_info_free(info);
        ohreq_task_free(t);
        th_rec_destroy(&r);
    }
    env_close(&e);
}

/* Sums up one download's requests in the server log (entries whose target contains needle). */
static int log_of(const char *needle, th_log_entry *ent, int cap) {
    int n = th_server_log(&srv, needle, ent, cap);
    CHECK(n >= 0);
    return n < 0 ? 0 : n > cap ? cap : n;
}

/* 3. suspend / restore of a throttled download resumes with Range + If-Range. */
static void test_suspend_restore(void) {
    env e;
    env_open(&e);
    const long long size = 2 * MiB + 333;
    char src[700], dst[700], part[800], etag[256];
    mksrc("pause.bin", (size_t)size, 4, src, sizeof src);
    CHECK_EQ(th_http_head(&srv, "/files/pause.bin", "ETag", etag, sizeof etag), 200);
    CHECK(etag[0] != 0);
    in_cache(&e, "pause.bin", dst, sizeof dst);
    part_of(dst, part, sizeof part);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/pause.bin?rate=1000000", "pause.bin", &t, &r, NULL), OHREQ_OK);
    CHECK(th_wait_file_size(part, 400000, 10000) >= 400000);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK(th_rec_wait(&r, OHREQ_EVENT_PAUSE, 1, 3000));
    th_sleep_ms(300);
    long long paused_size = th_file_size(part);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
        CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_BY_USER);
        CHECK_EQ(ohreq_download_info_failed_reason(info), -1);
        CHECK(ohreq_download_info_downloaded_bytes(info) > 0);
        CHECK((long long)ohreq_download_info_downloaded_bytes(info) <= paused_size);
    }
    ohreq_download_info_free(info);
    th_sleep_ms(500);
    CHECK(paused_size > 0 && paused_size < size);
    CHECK_EQ(th_file_size(part), paused_size); /* nothing written while paused */
    CHECK(!th_exists(dst));
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_COMPLETE), 0);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_FAIL), 0);

    CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, dst));
    CHECK(!th_exists(part));

    th_log_entry ent[16];
    int n = log_of("/files/pause.bin?rate", ent, 16);
    CHECK_EQ(n, 2);
    if (n >= 2) {
        long long from = -1;
        CHECK_EQ(strcmp(ent[0].range, "-"), 0);
        CHECK(sscanf(ent[1].range, "bytes=%lld-", &from) == 1);
        CHECK(from > 0 && from <= paused_size);
        CHECK(strcmp(ent[1].if_range, etag) == 0);
        long long served = ent[0].served + ent[1].served;
        CHECK(served >= size);
        CHECK(served <= size + 512 * 1024); /* no full re-download */
        CHECK_EQ(ent[1].served, size - from);
        if (strcmp(ent[1].if_range, etag) != 0 || from <= 0)
            fprintf(stderr, "  resumed request: range=%s if-range=%s (etag %s)\n", ent[1].range, ent[1].if_range, etag);
    }
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 4. A server that ignores Range: the resumed download restarts from zero, still byte-exact. */
static void test_resume_norange(void) {
    env e;
    env_open(&e);
    const long long size = 1 * MiB + 77;
    char src[700], dst[700], part[800];
    mksrc("norange.bin", (size_t)size, 5, src, sizeof src);
    in_cache(&e, "norange.bin", dst, sizeof dst);
    part_of(dst, part, sizeof part);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/norange.bin?norange=1&rate=1000000", "norange.bin", &t, &r, NULL), OHREQ_OK);
    CHECK(th_wait_file_size(part, 300000, 10000) >= 300000);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK(th_rec_wait(&r, OHREQ_EVENT_PAUSE, 1, 3000));
    th_sleep_ms(200);
    CHECK(th_file_size(part) > 0);
    CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, dst));
    CHECK(!th_exists(part));
    th_log_entry ent[16];
    int n = log_of("/files/norange.bin", ent, 16);
    CHECK_EQ(n, 2);
    if (n >= 2) CHECK_EQ(ent[1].served, size); /* the server sent it all again */
    expect_info_complete(t, size);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 5. A drop on a resource without validators: the retry cannot resume, restarts from zero. */
static void test_drop_without_validators(void) {
    env e;
    env_open(&e);
    const long long size = 1 * MiB + 1;
    char src[700], dst[700];
    mksrc("noval.bin", (size_t)size, 6, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/noval.bin?drop=300000&times=1&key=noval&noetag=1&nolm=1", "noval.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "noval.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_FAIL), 0);
    th_log_entry ent[16];
    int n = log_of("/files/noval.bin", ent, 16);
    CHECK_EQ(n, 2);
    if (n >= 2) {
        CHECK_EQ(ent[0].served, 300000);
        CHECK_EQ(strcmp(ent[1].range, "-"), 0); /* no validator: no Range */
        CHECK_EQ(strcmp(ent[1].if_range, "-"), 0);
        CHECK_EQ(ent[1].served, size);
    }
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 6. Drops mid-body with validators: automatic retries resume with Range; no fail. */
static void test_drop_resumes(void) {
    env e;
    env_open(&e);
    const long long size = 1 * MiB + 999;
    char src[700], dst[700], etag[256];
    mksrc("drop.bin", (size_t)size, 7, src, sizeof src);
    CHECK_EQ(th_http_head(&srv, "/files/drop.bin", "ETag", etag, sizeof etag), 200);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/drop.bin?drop=300000&times=2&key=drop6", "drop.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "drop.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_FAIL), 0);
    th_log_entry ent[16];
    int n = log_of("/files/drop.bin?drop", ent, 16);
    CHECK_EQ(n, 3);
    if (n >= 3) {
        CHECK_EQ(strcmp(ent[0].range, "-"), 0);
        CHECK_EQ(strcmp(ent[1].range, "bytes=300000-"), 0);
        CHECK_EQ(strcmp(ent[2].range, "bytes=600000-"), 0);
        CHECK(strcmp(ent[1].if_range, etag) == 0);
        CHECK(strcmp(ent[2].if_range, etag) == 0);
        CHECK_EQ(ent[0].served + ent[1].served + ent[2].served, size);
    }
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* The connection drops after the last body byte but before the end of the chunked body:
 * the retry asks for the rest from the end and gets 416 "bytes *\/size". The part file holds
 * the whole resource, so the task completes with it (as `curl -C -` and wget do), byte-exact. */
static void test_drop_at_end_416(void) {
    env e;
    env_open(&e);
    const long long size = 1 * MiB;
    char src[700], dst[700];
    mksrc("end416.bin", (size_t)size, 17, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/end416.bin?chunked=1&drop=1048576&times=1&key=end416", "end416.bin", &t, &r, NULL),
               OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "end416.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    th_log_entry ent[8];
    int n = log_of("/files/end416.bin", ent, 8);
    CHECK_EQ(n, 2);
    if (n >= 2) {
        CHECK_EQ(strcmp(ent[0].range, "-"), 0);
        CHECK_EQ(ent[0].served, size);
        CHECK_EQ(strcmp(ent[1].range, "bytes=1048576-"), 0);
    }
    expect_info_complete(t, size);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* A URL with a space, a non-ASCII name and a trailing tab is valid (`^https?://.+`): it goes
 * on the wire percent-encoded (reference C.6) and, with no filePath, names the file as
 * written, without the tab. DownloadInfo keeps the URL as given. */
static void test_url_percent_encoded(void) {
    env e;
    env_open(&e);
    char src[700], dst[700], path[128];
    mksrc("sp ace-\xc3\xbc.bin", 70000, 18, src, sizeof src);
    snprintf(path, sizeof path, "/files/sp ace-\xc3\xbc.bin\t");
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, path, NULL, &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "sp ace-\xc3\xbc.bin", dst, sizeof dst)));
    th_log_entry ent[4];
    CHECK_EQ(log_of("/files/sp%20ace-%C3%BC.bin", ent, 4), 1);
    ohreq_download_info *info = info_of(t);
    if (info) {
        const char *u = ohreq_download_info_target_uri(info).data;
        CHECK(strstr(u, "/files/sp ace-\xc3\xbc.bin\t") != NULL);
    }
    ohreq_download_info_free(info);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* Config headers are sent verbatim, an empty value too (libcurl would drop "Name:"). */
static void test_headers_sent(void) {
    env e;
    env_open(&e);
    ohreq_download_config *c = mkcfg(0, "/echo", "echo.txt");
    CHECK_CODE(ohreq_download_config_add_header(c, "X-Empty", ""), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_add_header(c, "X-Blank", "  "), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_add_header(c, "X-Val", "a b"), OHREQ_OK);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    char dst[700], buf[4096];
    FILE *f = fopen(in_cache(&e, "echo.txt", dst, sizeof dst), "r");
    CHECK(f != NULL);
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    CHECK(strstr(buf, "\nX-Empty:\n") != NULL);
    CHECK(strstr(buf, "\nX-Blank:\n") != NULL);
    CHECK(strstr(buf, "\nX-Val: a b\n") != NULL);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* One HTTP error download: fail code 7, DownloadInfo, nothing left on disk. */
static void http_error_case(env *e, int status, const char *phrase) {
    char path[64], name[64], dst[700], detail[128];
    snprintf(path, sizeof path, "/status/%d", status);
    snprintf(name, sizeof name, "status%d.bin", status);
    in_cache(e, name, dst, sizeof dst);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(e, 0, path, name, &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_UNHANDLED_HTTP_CODE, th_now_ms(), 10000);
    ohreq_download_info *info = info_of(t);
    if (info) {
        snprintf(detail, sizeof detail, "Http protocol error: %d %s", status, phrase);
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_UNHANDLED_HTTP_CODE);
        CHECK_EQ(ohreq_download_info_paused_reason(info), -1);
        CHECK_EQ(ohreq_download_info_http_status(info), status);
        CHECK(str_eq(ohreq_download_info_detail(info), detail));
        if (!str_eq(ohreq_download_info_detail(info), detail))
            fprintf(stderr, "  detail: \"%s\", want \"%s\"\n", ohreq_download_info_detail(info).data, detail);
    }
    ohreq_download_info_free(info);
    expect_no_files(dst);
    ohreq_task_free(t);
    th_rec_destroy(&r);
}

/* 7. HTTP errors: 404 and 500 fail at once; 408 is retried twice first. */
static void test_http_errors(void) {
    env e;
    env_open(&e);
    http_error_case(&e, 404, "Not Found");
    http_error_case(&e, 500, "Internal Server Error");

    th_log_entry ent[16];
    int before = log_of("/status/408", ent, 16);
    char dst[700];
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/status/408", "s408.bin", &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_UNHANDLED_HTTP_CODE, th_now_ms(), 10000);
    CHECK_EQ(log_of("/status/408", ent, 16) - before, 3);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_http_status(info), 408);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "s408.bin", dst, sizeof dst));
    CHECK_EQ(th_count_entries(e.cache), 0);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 8. A redirect chain is followed; a loop fails with TOO_MANY_REDIRECTS. */
static void test_redirects(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    mksrc("redir.bin", 200000, 8, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/redirect/3?to=/files/redir.bin", "redir.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "redir.bin", dst, sizeof dst)));
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_total_bytes(info), 200000);
        CHECK_EQ(ohreq_download_info_http_status(info), 200);
    }
    ohreq_download_info_free(info);
    ohreq_task_free(t);
    th_rec_destroy(&r);

    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/loop", "loop.bin", &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_TOO_MANY_REDIRECTS, th_now_ms(), 15000);
    info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_TOO_MANY_REDIRECTS);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "loop.bin", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 9. HTTPS with the right CA completes; with another CA it fails (curl code 60). */
static void test_tls(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    mksrc("tls.bin", 1 * MiB + 3, 9, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 1, "/files/tls.bin", "tls.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "tls.bin", dst, sizeof dst)));
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);

    env_open_ex(&e, "other-ca.pem", 0);
    th_rec_init(&r);
    long long t0 = th_now_ms();
    CHECK_CODE(start_rec(&e, 1, "/files/tls.bin", "tls.bin", &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_HTTP_DATA_ERROR, t0, 15000);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_HTTP_DATA_ERROR);
        CHECK_EQ(ohreq_download_info_curl_code(info), 60); /* CURLE_PEER_FAILED_VERIFICATION */
        CHECK(ohreq_download_info_detail(info).len > 0);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "tls.bin", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 10. Nothing listens: fails after the library's retries with HTTP_DATA_ERROR. */
static void test_unreachable(void) {
    env e;
    env_open(&e);
    char url[] = "http://127.0.0.1:1/x", dst[700];
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, url), OHREQ_OK);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    long long t0 = th_now_ms();
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    long long took = expect_fail(&r, OHREQ_ERROR_HTTP_DATA_ERROR, t0, 20000);
    CHECK(took < 15000);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_HTTP_DATA_ERROR);
        CHECK_EQ(ohreq_download_info_curl_code(info), 7); /* CURLE_COULDNT_CONNECT */
        CHECK_EQ(ohreq_download_info_http_status(info), 0);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "x", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 11. A stalled body trips the min-speed rule; a slow one trips the total timeout. */
static void test_stall_and_timeout(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    mksrc("stall.bin", 1 * MiB, 10, src, sizeof src);
    ohreq_download_config *c = mkcfg(0, "/files/stall.bin?stall=100000", "stall.bin");
    CHECK_CODE(ohreq_download_config_set_min_speed(c, 1000, 2), OHREQ_OK);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    long long t0 = th_now_ms();
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    long long took = expect_fail(&r, OHREQ_ERROR_HTTP_DATA_ERROR, t0, 15000);
    /* Below 1000 B/s for 2 s: the rule fires 2 s after the stall begins (plus one tick). */
    CHECK(took >= 2000 && took < 5000);
    fprintf(stderr, "  stall failed after %lld ms\n", took);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK(strstr(ohreq_download_info_detail(info).data, "below 1000 B/s for 2 s") != NULL);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "stall.bin", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);

    c = mkcfg(0, "/files/stall.bin?rate=10000", "slow.bin");
    CHECK_CODE(ohreq_download_config_set_timeout(c, 5, 2), OHREQ_OK);
    th_rec_init(&r);
    t0 = th_now_ms();
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    took = expect_fail(&r, OHREQ_ERROR_HTTP_DATA_ERROR, t0, 15000);
    CHECK(took < 6000);
    fprintf(stderr, "  total timeout failed after %lld ms\n", took);
    info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_HTTP_DATA_ERROR);
        CHECK_EQ(ohreq_download_info_curl_code(info), 28);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "slow.bin", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 12. No Content-Length: total -1 until the end, then the real size. */
static void test_no_length(void) {
    env e;
    env_open(&e);
    const long long size = 2 * MiB + 11;
    char src[700], dst[700];
    mksrc("nolen.bin", (size_t)size, 12, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    prog_log p;
    CHECK_CODE(start_rec(&e, 0, "/files/nolen.bin?nolength=1&rate=1000000", "nolen.bin", &t, &r, &p), OHREQ_OK);
    /* mid-way the size is unknown */
    CHECK(th_rec_wait(&r, OHREQ_EVENT_PROGRESS, 1, 5000));
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_RUNNING);
        CHECK_EQ(ohreq_download_info_total_bytes(info), -1);
    }
    ohreq_download_info_free(info);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "nolen.bin", dst, sizeof dst)));
    pthread_mutex_lock(&p.mu);
    CHECK(p.n >= 2);
    for (int i = 0; i + 1 < p.n; i++) CHECK_EQ(p.total[i], -1);
    if (p.n > 0) {
        CHECK_EQ(p.total[p.n - 1], size);
        CHECK_EQ(p.processed[p.n - 1], size);
    }
    pthread_mutex_unlock(&p.mu);
    info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_total_bytes(info), size);
        CHECK_EQ(ohreq_download_info_downloaded_bytes(info), size);
    }
    ohreq_download_info_free(info);
    ohreq_task_free(t);
    pthread_mutex_destroy(&p.mu);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 13. delete while running removes the part file; delete after completion keeps the file. */
static void test_delete(void) {
    env e;
    env_open(&e);
    char src[700], dst[700], part[800];
    mksrc("del.bin", 2 * MiB, 13, src, sizeof src);
    in_cache(&e, "del.bin", dst, sizeof dst);
    part_of(dst, part, sizeof part);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/del.bin?rate=1000000", "del.bin", &t, &r, NULL), OHREQ_OK);
    CHECK(th_wait_file_size(part, 200000, 10000) >= 200000);
    CHECK_CODE(ohreq_task_delete(t), OHREQ_OK);
    CHECK(th_rec_wait(&r, OHREQ_EVENT_REMOVE, 1, 3000));
    CHECK(th_wait_gone(part, 3000));
    /* as for pause, the run's one final progress (reference C.2) follows `remove`, with
     * the bytes the run got and the length the response gave */
    CHECK(th_rec_wait(&r, OHREQ_EVENT_PROGRESS, 1, 3000));
    pthread_mutex_lock(&r.mu);
    CHECK(r.n_order >= 2 && r.order[r.n_order - 1] == (int)OHREQ_EVENT_PROGRESS);
    CHECK(r.n_order >= 2 && r.order[r.n_order - 2] == (int)OHREQ_EVENT_REMOVE);
    CHECK(r.last_processed >= 200000);
    CHECK_EQ(r.last_total, 2 * MiB);
    pthread_mutex_unlock(&r.mu);
    th_sleep_ms(1200); /* the transfer must not come back and publish */
    CHECK(!th_exists(dst));
    CHECK(!th_exists(part));
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_COMPLETE), 0);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_FAIL), 0);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_REMOVE), 1);
    CHECK_EQ(th_count_entries(e.cache), 0);
    CHECK_CODE(ohreq_task_delete(t), OHREQ_ERR_TASK_NOT_FOUND);
    ohreq_task_free(t);
    th_rec_destroy(&r);

    /* completed, then deleted: the file stays */
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/del.bin", "done.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK_CODE(ohreq_task_delete(t), OHREQ_OK);
    CHECK(th_rec_wait(&r, OHREQ_EVENT_REMOVE, 1, 3000));
    th_sleep_ms(300);
    CHECK(th_same_file(src, in_cache(&e, "done.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 14. ENOSPC: fail with INSUFFICIENT_SPACE and no part file (needs a tmpfs mount). */
static void test_disk_full(void) {
    env e;
    env_open(&e);
    char mnt[700], cmd[1600], src[700], dst[700];
    in_cache(&e, "full", mnt, sizeof mnt);
    mkdir(mnt, 0755);
    snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1m tmpfs '%s' 2>/dev/null", mnt);
    if (system(cmd) != 0) {
        th_skip("cannot mount tmpfs");
        env_close(&e);
        return;
    }
    mksrc("full.bin", 4 * MiB, 14, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/full.bin", "full/full.bin", &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_INSUFFICIENT_SPACE, th_now_ms(), 15000);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
        CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_INSUFFICIENT_SPACE);
    }
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "full/full.bin", dst, sizeof dst));
    CHECK_EQ(th_count_entries(mnt), 0);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
    snprintf(cmd, sizeof cmd, "umount '%s' 2>/dev/null || umount -l '%s'", mnt, mnt);
    CHECK_EQ(system(cmd), 0);
}

/* Number of requests the server saw whose target contains needle. */
static int requests_for(const char *needle) {
    int n = th_server_log(&srv, needle, NULL, 0);
    CHECK(n >= 0);
    return n;
}

/* 15. Offline: waits (PAUSED, WAITING_FOR_NETWORK) without touching the server; Wi-Fi-only
 * waits on cellular. */
static void test_network_state(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    mksrc("net1.bin", 300000, 15, src, sizeof src);
    CHECK_CODE(ohreq_service_set_network(e.svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start(&e, 0, "/files/net1.bin", "net1.bin", &t), OHREQ_OK);
    th_rec_attach(&r, t); /* cannot miss anything: it waits for the network */
    th_sleep_ms(500);
    ohreq_download_info *info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
        CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_WAITING_FOR_NETWORK);
        CHECK_EQ(ohreq_download_info_failed_reason(info), -1);
    }
    ohreq_download_info_free(info);
    CHECK_EQ(requests_for("/files/net1.bin"), 0);
    CHECK_EQ(th_rec_wait_end(&r, 10), -1);
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "net1.bin", dst, sizeof dst)));
    ohreq_task_free(t);
    th_rec_destroy(&r);

    /* Wi-Fi only, on cellular */
    mksrc("net2.bin", 300000, 16, src, sizeof src);
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_CELLULAR, false, false), OHREQ_OK);
    ohreq_download_config *c = mkcfg(0, "/files/net2.bin", "net2.bin");
    CHECK_CODE(ohreq_download_config_set_network_type(c, OHREQ_NETWORK_WIFI), OHREQ_OK);
    th_rec_init(&r);
    CHECK_CODE(go(&e, c, &t), OHREQ_OK);
    th_rec_attach(&r, t);
    th_sleep_ms(500);
    info = info_of(t);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
        CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_WAITING_FOR_NETWORK);
    }
    ohreq_download_info_free(info);
    CHECK_EQ(requests_for("/files/net2.bin"), 0);
    CHECK_EQ(th_rec_wait_end(&r, 10), -1);
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "net2.bin", dst, sizeof dst)));
    CHECK_EQ(requests_for("/files/net2.bin"), 1);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* With every slot taken, a waiting task still says whether it waits for the network: it
 * does on cellular (Wi-Fi only), and no longer once Wi-Fi is back while it waits for a slot. */
static void test_network_reason_while_slots_full(void) {
    env e;
    env_open_ex(&e, NULL, 1);
    char src[700], dst[700];
    mksrc("netslow.bin", 400000, 17, src, sizeof src);
    mksrc("netwifi.bin", 30000, 18, src, sizeof src);
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_CELLULAR, false, false), OHREQ_OK);
    ohreq_task *slow = NULL, *wifi = NULL;
    th_rec rs, rw;
    th_rec_init(&rs);
    th_rec_init(&rw);
    CHECK_CODE(start(&e, 0, "/files/netslow.bin?rate=400000", "netslow.bin", &slow), OHREQ_OK);
    th_rec_attach(&rs, slow);
    ohreq_download_config *c = mkcfg(0, "/files/netwifi.bin", "netwifi.bin");
    CHECK_CODE(ohreq_download_config_set_network_type(c, OHREQ_NETWORK_WIFI), OHREQ_OK);
    CHECK_CODE(go(&e, c, &wifi), OHREQ_OK);
    th_rec_attach(&rw, wifi);
    ohreq_download_info *info = info_of(wifi);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
        CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_WAITING_FOR_NETWORK);
    }
    ohreq_download_info_free(info);
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    info = info_of(wifi);
    if (info) {
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
        CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_UNKNOWN);
    }
    ohreq_download_info_free(info);
    CHECK_EQ(requests_for("/files/netwifi.bin"), 0); /* the slot is still taken */
    CHECK_EQ(th_rec_wait_end(&rs, 10000), OHREQ_EVENT_COMPLETE);
    CHECK_EQ(th_rec_wait_end(&rw, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "netwifi.bin", dst, sizeof dst)));
    ohreq_task_free(slow);
    ohreq_task_free(wifi);
    th_rec_destroy(&rs);
    th_rec_destroy(&rw);
    env_close(&e);
}

/* 16. 40 small downloads at once (8 transfers at a time) all complete; connections reused. */
static void test_many_parallel(void) {
    enum { N = 40 };
    env e;
    env_open_ex(&e, NULL, 8);
    long long c0 = 0, q0 = 0, c1 = 0, q1 = 0;
    CHECK_EQ(th_server_stats(&srv, &c0, &q0), 0);
    ohreq_task *t[N];
    th_rec r[N];
    char name[64], path[128], src[700], dst[700];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "many%02d.bin", i);
        mksrc(name, (size_t)(20000 + 997 * i), 100u + (unsigned)i, src, sizeof src);
    }
    /* all 40 are created offline and subscribed, then the network comes up */
    CHECK_CODE(ohreq_service_set_network(e.svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "many%02d.bin", i);
        snprintf(path, sizeof path, "/files/%s", name);
        t[i] = NULL;
        th_rec_init(&r[i]);
        CHECK_CODE(start(&e, 0, path, NULL, &t[i]), OHREQ_OK);
        if (t[i]) th_rec_attach(&r[i], t[i]);
    }
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    int done = 0;
    for (int i = 0; i < N; i++) {
        if (!t[i]) continue;
        int end = th_rec_wait_end(&r[i], 20000);
        CHECK_EQ(end, OHREQ_EVENT_COMPLETE);
        snprintf(name, sizeof name, "many%02d.bin", i);
        snprintf(src, sizeof src, "%s/%s", srv.root, name);
        int same = th_same_file(src, in_cache(&e, name, dst, sizeof dst));
        CHECK(same);
        done += end == OHREQ_EVENT_COMPLETE && same;
    }
    CHECK_EQ(done, N);
    CHECK_EQ(th_count_entries(e.cache), N);
    CHECK_EQ(th_server_stats(&srv, &c1, &q1), 0);
    /* the stats requests themselves use one connection each */
    long long conns = c1 - c0 - 1, reqs = q1 - q0 - 1;
    fprintf(stderr, "  %lld requests over %lld connections\n", reqs, conns);
    CHECK(reqs >= N);
    CHECK(conns < reqs);
    for (int i = 0; i < N; i++) {
        ohreq_task_free(t[i]);
        th_rec_destroy(&r[i]);
    }
    env_close(&e);
}

/* Finished tasks beyond the few hundred kept in memory live in the store only: searching,
 * reading, deleting and re-opening them still works, in this service and the next one. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int complete, fail;
} end_count;
static void end_cb(void *ud, const ohreq_event *ev) {
    end_count *c = ud;
    pthread_mutex_lock(&c->mu);
    if (ohreq_event_kind(ev) == OHREQ_EVENT_COMPLETE) c->complete++;
    else c->fail++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}
static size_t search_all(ohreq_client *cli, uint32_t *ids, size_t cap) {
    size_t n = 0;
    CHECK_CODE(ohreq_search(cli, NULL, ids, cap, &n), OHREQ_OK);
    return n;
}
static void test_many_finished(void) {
    enum { N = 600, SIZE = 1500 };
    env e;
    env_open(&e);
    char src[700], file[64];
    mksrc("tiny.bin", SIZE, 77, src, sizeof src);
    end_count c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    static ohreq_task *t[N];
    CHECK_CODE(ohreq_service_set_network(e.svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    for (int i = 0; i < N; i++) {
        snprintf(file, sizeof file, "f%03d.bin", i);
        t[i] = NULL;
        CHECK_CODE(start(&e, 0, "/files/tiny.bin", file, &t[i]), OHREQ_OK);
        if (!t[i]) continue;
        CHECK_CODE(ohreq_task_on(t[i], OHREQ_EVENT_COMPLETE, end_cb, &c, NULL), OHREQ_OK);
        CHECK_CODE(ohreq_task_on(t[i], OHREQ_EVENT_FAIL, end_cb, &c, NULL), OHREQ_OK);
    }
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    long long deadline = th_now_ms() + 60000;
    pthread_mutex_lock(&c.mu);
    while (c.complete + c.fail < N && th_now_ms() < deadline) {
        pthread_mutex_unlock(&c.mu);
        th_sleep_ms(20);
        pthread_mutex_lock(&c.mu);
    }
    int complete = c.complete, fail = c.fail;
    pthread_mutex_unlock(&c.mu);
    CHECK_EQ(complete, N);
    CHECK_EQ(fail, 0);
    static uint32_t ids[N + 8];
    CHECK_EQ(search_all(e.cli, ids, N + 8), (size_t)N);
    /* the first tasks finished longest ago: read back from the store */
    for (int i = 0; i < 3; i++) {
        ohreq_download_info *info = info_of(t[i]);
        if (!info) continue;
        snprintf(file, sizeof file, "f%03d.bin", i);
        CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
        CHECK_EQ(ohreq_download_info_downloaded_bytes(info), SIZE);
        CHECK_EQ(ohreq_download_info_total_bytes(info), SIZE);
        CHECK(str_eq(ohreq_download_info_file_name(info), file));
        ohreq_download_info_free(info);
    }
    char mime[64];
    size_t mime_n = 0;
    CHECK_CODE(ohreq_task_get_mime_type(t[1], mime, sizeof mime, &mime_n), OHREQ_OK);
    CHECK(strcmp(mime, "application/octet-stream") == 0);
    uint32_t id0 = ohreq_task_id(t[0]), id1 = ohreq_task_id(t[1]);
    /* a task that left memory can be deleted, once */
    CHECK_CODE(ohreq_task_delete(t[0]), OHREQ_OK);
    CHECK_CODE(ohreq_task_delete(t[0]), OHREQ_ERR_TASK_NOT_FOUND);
    CHECK(th_exists(in_cache(&e, "f000.bin", src, sizeof src))); /* a delete keeps the published file */
    for (int i = 0; i < N; i++) ohreq_task_free(t[i]);
    /* and the next service on the same store knows them all without loading them */
    ohreq_client_free(e.cli);
    ohreq_service_free(e.svc);
    char ca[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", srv.certs);
    e.svc = th_service(e.data, 0);
    e.cli = th_client(e.svc, e.cache, ca, 0);
    CHECK_EQ(search_all(e.cli, ids, N + 8), (size_t)N);
    ohreq_task *a = NULL;
    CHECK_CODE(ohreq_task_open(e.cli, id1, &a), OHREQ_OK);
    if (a) {
        ohreq_download_info *info = info_of(a);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
            CHECK_EQ(ohreq_download_info_downloaded_bytes(info), SIZE);
            ohreq_download_info_free(info);
        }
        ohreq_task_free(a);
    }
    /* the removed one is still found until retention lets it go (30 s after removal) */
    CHECK_CODE(ohreq_task_open(e.cli, id0, &a), OHREQ_OK);
    if (a) {
        CHECK_CODE(ohreq_task_delete(a), OHREQ_ERR_TASK_NOT_FOUND);
        ohreq_task_free(a);
    }
    env_close(&e);
}

/* 17. The MIME type is the server's Content-Type. */
static void test_mime_type(void) {
    env e;
    env_open(&e);
    char src[700];
    mksrc("mime.txt", 1000, 17, src, sizeof src);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/mime.txt", NULL, &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    char mime[64] = "";
    size_t n = 0;
    CHECK_CODE(ohreq_task_get_mime_type(t, NULL, 0, &n), OHREQ_OK);
    CHECK_EQ(n, strlen("text/plain"));
    CHECK_CODE(ohreq_task_get_mime_type(t, mime, sizeof mime, &n), OHREQ_OK);
    CHECK(strcmp(mime, "text/plain") == 0);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* ohreq extension: an expected SHA-256 is checked before the file is published. */
static void test_sha256(void) {
    env e;
    env_open(&e);
    char src[700], dst[700], hex[65];
    mksrc("digest.bin", 700 * 1000, 19, src, sizeof src);
    th_sha256_of(src, hex);
    CHECK_EQ(strlen(hex), 64);

    ohreq_download_config *c = mkcfg(0, "/files/digest.bin", "good.bin");
    CHECK_CODE(ohreq_download_config_set_sha256(c, hex), OHREQ_OK);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 10000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "good.bin", dst, sizeof dst)));
    ohreq_task_free(t);
    th_rec_destroy(&r);

    hex[0] = hex[0] == '0' ? '1' : '0'; /* one digit off */
    c = mkcfg(0, "/files/digest.bin", "bad.bin");
    CHECK_CODE(ohreq_download_config_set_sha256(c, hex), OHREQ_OK);
    th_rec_init(&r);
    CHECK_CODE(go_rec(&e, c, &t, &r, NULL), OHREQ_OK);
    expect_fail(&r, OHREQ_ERROR_HTTP_DATA_ERROR, th_now_ms(), 10000);
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    CHECK(strstr(ohreq_download_info_detail(info).data, "sha256 mismatch") != NULL);
    ohreq_download_info_free(info);
    expect_no_files(in_cache(&e, "bad.bin", dst, sizeof dst));
    ohreq_task_free(t);
    th_rec_destroy(&r);

    /* A malformed digest is a 401 and creates nothing. */
    c = mkcfg(0, "/files/digest.bin", "malformed.bin");
    CHECK_CODE(ohreq_download_config_set_sha256(c, "abc"), OHREQ_OK);
    CHECK_CODE(ohreq_download(e.cli, c, &t), OHREQ_ERR_PARAMETER);
    ohreq_download_config_free(c);
    CHECK(!th_exists(in_cache(&e, "malformed.bin.ohreq-part", dst, sizeof dst)));
    env_close(&e);
}

/* A part file that no task owns (a killed process without its store left it) is replaced by
 * a new download to the same target that goes to disk: the target is byte-exact and no part
 * file is left beside it. (A body small enough to stay in memory never opens the part file;
 * such a leftover stays until retention removes it with its task's row, if it has one.) */
static void test_leftover_part(void) {
    env e;
    env_open(&e);
    char src[700], dst[700], part[800];
    mksrc("left-big.bin", 3 * 1024 * 1024 + 5, 40, src, sizeof src);
    in_cache(&e, "left-big.bin", dst, sizeof dst);
    th_write_pattern(part_of(dst, part, sizeof part), 4 * 1024 * 1024, 99);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    CHECK_CODE(start_rec(&e, 0, "/files/left-big.bin", "left-big.bin", &t, &r, NULL), OHREQ_OK);
    CHECK_EQ(th_rec_wait_end(&r, 20000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, dst));
    CHECK(!th_exists(part));
    CHECK_EQ(th_count_entries(e.cache), 1);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* Two downloads from one HTTP/1.1 server at once each get a connection of their own: neither
 * waits for the other to end (libcurl's PIPEWAIT, meant for HTTP/2, would make the second
 * wait for the first's connection and run them one after the other). */
static void test_parallel_http1(void) {
    env e;
    env_open_ex(&e, NULL, 8);
    char src[2][700], dst[700], path[128];
    ohreq_task *t[2] = {NULL, NULL};
    th_rec r[2];
    mksrc("par-a.bin", 600000, 51, src[0], sizeof src[0]);
    mksrc("par-b.bin", 600000, 52, src[1], sizeof src[1]);
    long long c0 = 0, q0 = 0, c1 = 0, q1 = 0;
    CHECK_EQ(th_server_stats(&srv, &c0, &q0), 0);
    CHECK_CODE(ohreq_service_set_network(e.svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/files/par-%c.bin?rate=600000", 'a' + i);
        th_rec_init(&r[i]);
        CHECK_CODE(start(&e, 0, path, NULL, &t[i]), OHREQ_OK);
        if (t[i]) th_rec_attach(&r[i], t[i]);
    }
    CHECK_CODE(ohreq_service_set_network(e.svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(th_rec_wait_end(&r[i], 20000), OHREQ_EVENT_COMPLETE);
        CHECK(th_same_file(src[i], in_cache(&e, i ? "par-b.bin" : "par-a.bin", dst, sizeof dst)));
    }
    CHECK_EQ(th_server_stats(&srv, &c1, &q1), 0);
    /* the second stats request uses a connection of its own */
    CHECK_EQ(c1 - c0 - 1, 2);
    for (int i = 0; i < 2; i++) {
        ohreq_task_free(t[i]);
        th_rec_destroy(&r[i]);
    }
    env_close(&e);
}

static const th_test tests[] = {
    {"simple_download", test_simple_download},
    {"progress_events", test_progress_events},
    {"file_paths", test_file_paths},
    {"suspend_restore", test_suspend_restore},
    {"resume_norange", test_resume_norange},
    {"drop_without_validators", test_drop_without_validators},
    {"drop_resumes", test_drop_resumes},
    {"drop_at_end_416", test_drop_at_end_416},
    {"url_percent_encoded", test_url_percent_encoded},
    {"headers_sent", test_headers_sent},
    {"http_errors", test_http_errors},
    {"redirects", test_redirects},
    {"tls", test_tls},
    {"unreachable", test_unreachable},
    {"stall_and_timeout", test_stall_and_timeout},
    {"no_length", test_no_length},
    {"delete", test_delete},
    {"disk_full", test_disk_full},
    {"network_state", test_network_state},
    {"network_reason_while_slots_full", test_network_reason_while_slots_full},
    {"many_parallel", test_many_parallel},
    {"many_finished", test_many_finished},
    {"mime_type", test_mime_type},
    {"sha256", test_sha256},
    {"leftover_part", test_leftover_part},
    {"parallel_http1", test_parallel_http1},
};

int main(int argc, char **argv) {
    th_server_start(&srv);
    return th_run_skippable(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
