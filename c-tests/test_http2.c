/* test_http2.c: downloads over HTTP/2 (TLS with ALPN "h2") against testserver's h2 listener:
 * a 5 MiB file byte-exact and logged as h2, 8 downloads at once, a 404 (an "HTTP/2 404"
 * status line has no reason phrase), and a reset stream resumed with Range. Every wait is
 * bounded. */
#include "harness.h"

static th_server srv;
static int h2_port = -1;

#define MiB (1024 * 1024)

typedef struct {
    char dir[400];
    char data[600];
    char cache[600];
    ohreq_service *svc;
    ohreq_client *cli;
} env;

/* A service (at most `max_running` transfers, 0: default) + client trusting srv's CA. */
static void env_open(env *e, uint32_t max_running) {
    th_tmpdir(e->dir, sizeof e->dir);
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    mkdir(e->cache, 0755);
    char ca[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", srv.certs);
    e->svc = max_running ? th_service_max(e->data, max_running) : th_service(e->data, 0);
    e->cli = th_client(e->svc, e->cache, ca, 0);
}

static void env_close(env *e) {
    ohreq_client_free(e->cli);
    ohreq_service_free(e->svc);
}

static void set_online(env *e, int online) {
    if (online)
        CHECK_CODE(ohreq_service_set_network(e->svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    else
        CHECK_CODE(ohreq_service_set_network(e->svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
}

/* Starts a download of https://127.0.0.1:<h2>/<path> into the cache as `file_path` and
 * subscribes `r`. Call while offline so no early event is missed. */
static ohreq_code start_h2(env *e, const char *path, const char *file_path, ohreq_task **t, th_rec *r) {
    char url[1024];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", h2_port, path);
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, url), OHREQ_OK);
    if (file_path) CHECK_CODE(ohreq_download_config_set_file_path(c, file_path), OHREQ_OK);
    ohreq_code rc = ohreq_download(e->cli, c, t);
    ohreq_download_config_free(c);
    if (rc == OHREQ_OK) th_rec_attach(r, *t);
    return rc;
}

static const char *in_cache(const env *e, const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", e->cache, rel);
    return out;
}

static int str_starts(ohreq_str s, const char *want) {
    return s.data && strncmp(s.data, want, strlen(want)) == 0;
}

/* The server's whole /__log (malloc'ed, NUL-terminated), or NULL. */
static char *server_log_text(void) {
    size_t cap = 1u << 20;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    if (th_http_get(&srv, "/__log", buf, cap) != 200) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* How many /__log lines contain `needle`, and how many of those end with " h2=1" (with
 * tls=1). */
static int log_h2_lines(const char *needle, int *h2_lines) {
    char *log = server_log_text();
    *h2_lines = 0;
    if (!log) return -1;
    int n = 0;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strstr(line, needle)) continue;
        n++;
        size_t len = strlen(line);
        if (len > 5 && strcmp(line + len - 5, " h2=1") == 0 && strstr(line, " tls=1 ")) (*h2_lines)++;
    }
    free(log);
    return n;
}

/* ------------------------------------------------------------------------------------- */

/* 1. A 5 MiB file over HTTP/2, byte-exact; the server logged it as an h2 request. */
static void test_h2_download(void) {
    env e;
    env_open(&e, 0);
    const long long size = 5 * MiB;
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/h2big.bin", srv.root);
    th_write_pattern(src, (size_t)size, 42);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    set_online(&e, 0);
    CHECK_CODE(start_h2(&e, "/files/h2big.bin", NULL, &t, &r), OHREQ_OK);
    set_online(&e, 1);
    CHECK_EQ(th_rec_wait_end(&r, 30000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "h2big.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    if (t) {
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
            CHECK_EQ(ohreq_download_info_http_status(info), 200);
            CHECK_EQ(ohreq_download_info_downloaded_bytes(info), size);
            CHECK_EQ(ohreq_download_info_total_bytes(info), size);
        }
        ohreq_download_info_free(info);
    }
    int h2 = 0;
    int n = log_h2_lines("/files/h2big.bin", &h2);
    CHECK(n >= 1);
    CHECK_EQ(h2, n);
    CHECK_EQ(th_server_served(&srv, "/files/h2big.bin"), size);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 2. Eight downloads at once over HTTP/2 all complete byte-exact, sharing the connection of
 * an earlier download from the same server (which showed the engine it multiplexes). */
static void test_h2_parallel(void) {
    enum { N = 8 };
    env e;
    env_open(&e, N);
    long long c0 = 0, q0 = 0, c1 = 0, q1 = 0;
    CHECK_EQ(th_server_stats(&srv, &c0, &q0), 0);
    ohreq_task *t[N];
    th_rec r[N];
    char name[64], path[128], src[700], dst[700];
    snprintf(src, sizeof src, "%s/h2warm.bin", srv.root);
    th_write_pattern(src, 1000, 199);
    t[0] = NULL;
    th_rec_init(&r[0]);
    set_online(&e, 0);
    CHECK_CODE(start_h2(&e, "/files/h2warm.bin", "h2warm.bin", &t[0], &r[0]), OHREQ_OK);
    set_online(&e, 1);
    CHECK_EQ(th_rec_wait_end(&r[0], 30000), OHREQ_EVENT_COMPLETE);
    ohreq_task_free(t[0]);
    th_rec_destroy(&r[0]);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "h2par%d.bin", i);
        snprintf(src, sizeof src, "%s/%s", srv.root, name);
        th_write_pattern(src, (size_t)(MiB + 7919 * i), 200u + (unsigned)i);
    }
    /* all are created offline and subscribed, then the network comes up; throttled so the
     * transfers overlap */
    set_online(&e, 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "h2par%d.bin", i);
        snprintf(path, sizeof path, "/files/%s?rate=2000000", name);
        t[i] = NULL;
        th_rec_init(&r[i]);
        CHECK_CODE(start_h2(&e, path, name, &t[i], &r[i]), OHREQ_OK);
    }
    set_online(&e, 1);
    int done = 0;
    for (int i = 0; i < N; i++) {
        if (!t[i]) continue;
        int end = th_rec_wait_end(&r[i], 30000);
        CHECK_EQ(end, OHREQ_EVENT_COMPLETE);
        snprintf(name, sizeof name, "h2par%d.bin", i);
        snprintf(src, sizeof src, "%s/%s", srv.root, name);
        int same = th_same_file(src, in_cache(&e, name, dst, sizeof dst));
        CHECK(same);
        done += end == OHREQ_EVENT_COMPLETE && same;
    }
    CHECK_EQ(done, N);
    CHECK_EQ(th_count_entries(e.cache), N + 1);
    int h2 = 0;
    int n = log_h2_lines("/files/h2par", &h2);
    CHECK(n >= N);
    CHECK_EQ(h2, n);
    CHECK_EQ(th_server_stats(&srv, &c1, &q1), 0);
    /* the stats and log requests use one plain connection each */
    long long conns = c1 - c0 - 2, reqs = q1 - q0 - 2;
    fprintf(stderr, "  %lld requests over %lld connections\n", reqs, conns);
    /* HTTP/2 multiplexes: the transfers wait for the known connection (PIPEWAIT) instead of
     * each opening its own */
    CHECK(reqs >= N + 1);
    CHECK(conns >= 1 && conns <= 2);
    for (int i = 0; i < N; i++) {
        ohreq_task_free(t[i]);
        th_rec_destroy(&r[i]);
    }
    env_close(&e);
}

/* 3. A 404 over HTTP/2 fails with code 7 and http status 404, leaving no file. */
static void test_h2_404(void) {
    env e;
    env_open(&e, 0);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    set_online(&e, 0);
    CHECK_CODE(start_h2(&e, "/files/h2missing.bin", "h2missing.bin", &t, &r), OHREQ_OK);
    set_online(&e, 1);
    CHECK_EQ(th_rec_wait_end(&r, 15000), OHREQ_EVENT_FAIL);
    CHECK_EQ(r.last_code, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    CHECK_EQ(th_rec_count(&r, OHREQ_EVENT_COMPLETE), 0);
    if (t) {
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_FAILED);
            CHECK_EQ(ohreq_download_info_failed_reason(info), OHREQ_ERROR_UNHANDLED_HTTP_CODE);
            CHECK_EQ(ohreq_download_info_http_status(info), 404);
            /* HTTP/2 has no reason phrase */
            CHECK(str_starts(ohreq_download_info_detail(info), "Http protocol error: 404"));
        }
        ohreq_download_info_free(info);
    }
    char dst[700], part[800];
    in_cache(&e, "h2missing.bin", dst, sizeof dst);
    snprintf(part, sizeof part, "%s.ohreq-part", dst);
    CHECK(th_wait_gone(part, 3000));
    CHECK(!th_exists(dst));
    int h2 = 0;
    CHECK(log_h2_lines("/files/h2missing.bin", &h2) >= 1);
    CHECK(h2 >= 1);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

/* 4. A stream reset mid-body (RST_STREAM INTERNAL_ERROR after 300000 bytes) is retried with
 * Range + If-Range and completes byte-exact. */
static void test_h2_reset_resumes(void) {
    env e;
    env_open(&e, 0);
    const long long size = MiB + 3;
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/h2drop.bin", srv.root);
    th_write_pattern(src, (size_t)size, 7);
    char etag[128] = "";
    CHECK_EQ(th_http_head(&srv, "/files/h2drop.bin", "ETag", etag, sizeof etag), 200);
    ohreq_task *t = NULL;
    th_rec r;
    th_rec_init(&r);
    set_online(&e, 0);
    CHECK_CODE(start_h2(&e, "/files/h2drop.bin?drop=300000&times=1&key=h2drop", "h2drop.bin", &t, &r), OHREQ_OK);
    set_online(&e, 1);
    CHECK_EQ(th_rec_wait_end(&r, 20000), OHREQ_EVENT_COMPLETE);
    CHECK(th_same_file(src, in_cache(&e, "h2drop.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(e.cache), 1);
    th_log_entry ent[8];
    int n = th_server_log(&srv, "/files/h2drop.bin?drop", ent, 8);
    CHECK_EQ(n, 2);
    if (n == 2) {
        CHECK_EQ(strcmp(ent[0].range, "-"), 0);
        CHECK_EQ(ent[0].served, 300000);
        CHECK_EQ(strcmp(ent[1].range, "bytes=300000-"), 0);
        CHECK(strcmp(ent[1].if_range, etag) == 0);
        CHECK_EQ(ent[1].served, size - 300000);
    }
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

static const th_test tests[] = {
    {"h2_download", test_h2_download},
    {"h2_parallel", test_h2_parallel},
    {"h2_404", test_h2_404},
    {"h2_reset_resumes", test_h2_reset_resumes},
};

int main(int argc, char **argv) {
    th_server_start(&srv);
    h2_port = th_server_h2_port(&srv);
    if (h2_port <= 0) {
        fprintf(stderr, "testserver announced no h2 port\n");
        return 2;
    }
    return th_run_skippable(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
