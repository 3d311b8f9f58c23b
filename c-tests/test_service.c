/* test_service.c: the service's life cycle: the log callback and its userdata, a clean
 * shutdown that checkpoints a running download and a reopen that finishes it. */
#include "harness.h"

#include <sys/resource.h>

static th_server srv;

/* A fresh temp dir: the service's data dir and the client's cache dir inside it (cache
 * created), and the test CA's path. Each buffer holds 600 bytes (ca 700). */
static void fresh_dirs(char *data, char *cache, char *ca) {
    char dir[400];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, 600, "%s/data", dir);
    snprintf(cache, 600, "%s/cache", dir);
    snprintf(ca, 700, "%s/ca.pem", srv.certs);
    mkdir(cache, 0755);
}

typedef struct {
    pthread_mutex_t mu;
    int lines;
    int above_level; /* records more verbose than asked for */
    int freed;
    char sample[256];
} log_rec;

static void log_cb(void *ud, uint32_t level, const char *msg, size_t len) {
    log_rec *r = ud;
    pthread_mutex_lock(&r->mu);
    r->lines++;
    if (level > OHREQ_LOG_INFO) r->above_level++;
    if (strlen(msg) != len) r->above_level += 1000; /* len must match the NUL-terminated text */
    if (!r->sample[0]) snprintf(r->sample, sizeof r->sample, "%s", msg);
    pthread_mutex_unlock(&r->mu);
}

static void log_free(void *ud) {
    log_rec *r = ud;
    pthread_mutex_lock(&r->mu);
    r->freed++;
    pthread_mutex_unlock(&r->mu);
}

static void test_log_callback(void) {
    char data[600], cache[600], ca[700], url[256];
    fresh_dirs(data, cache, ca);
    log_rec r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);

    ohreq_service_options *o = ohreq_service_options_new();
    CHECK_CODE(ohreq_service_options_set_data_dir(o, data), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_log(o, NULL, &r, log_free, OHREQ_LOG_INFO), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_service_options_set_log(o, log_cb, &r, log_free, 0), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_service_options_set_log(o, log_cb, &r, log_free, OHREQ_LOG_INFO), OHREQ_OK);
    ohreq_service *svc = NULL;
    CHECK_CODE(ohreq_service_new(o, &svc), OHREQ_OK);
    ohreq_service_options_free(o);
    CHECK_EQ(r.freed, 0); /* the service still holds the callback */

    ohreq_client *c = th_client(svc, cache, ca, 0);
    ohreq_download_config *cfg = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(cfg, th_url(&srv, 0, "/files/nope.bin?delay_ms=300", url, sizeof url)), OHREQ_OK);
    ohreq_task *t = NULL;
    CHECK_CODE(ohreq_download(c, cfg, &t), OHREQ_OK);
    ohreq_download_config_free(cfg);
    th_rec ev;
    th_rec_init(&ev);
    th_rec_attach(&ev, t);
    CHECK_EQ(th_rec_wait_end(&ev, 10000), OHREQ_EVENT_FAIL);
    ohreq_task_free(t);
    ohreq_client_free(c);
    ohreq_service_free(svc);
    pthread_mutex_lock(&r.mu);
    CHECK(r.lines > 0); /* the failure is logged at INFO */
    CHECK_EQ(r.above_level, 0);
    CHECK_EQ(r.freed, 1);
    pthread_mutex_unlock(&r.mu);
    th_rec_destroy(&ev);
    pthread_mutex_destroy(&r.mu);
}

/* Log userdata is released when options that never made a service are freed. */
static void test_log_userdata_freed_with_options(void) {
    log_rec r;
    memset(&r, 0, sizeof r);
    pthread_mutex_init(&r.mu, NULL);
    ohreq_service_options *o = ohreq_service_options_new();
    CHECK_CODE(ohreq_service_options_set_log(o, log_cb, &r, log_free, OHREQ_LOG_ERROR), OHREQ_OK);
    /* A second setting replaces the first, releasing its userdata. */
    CHECK_CODE(ohreq_service_options_set_log(o, log_cb, &r, log_free, OHREQ_LOG_ERROR), OHREQ_OK);
    CHECK_EQ(r.freed, 1);
    ohreq_service_options_free(o);
    CHECK_EQ(r.freed, 2);
    pthread_mutex_destroy(&r.mu);
}

/* Freeing the service mid-download checkpoints it; a new service on the same data dir
 * resumes with a Range request and completes byte-exact. */
static void test_shutdown_and_reopen_resumes(void) {
    char data[600], cache[600], ca[700], url[256], src[700], dst[700], log[65536];
    fresh_dirs(data, cache, ca);
    snprintf(src, sizeof src, "%s/reopen.bin", srv.root);
    snprintf(dst, sizeof dst, "%s/reopen.bin", cache);
    th_write_pattern(src, 2 * 1024 * 1024, 7);
    th_http_get(&srv, "/__log?clear=1", NULL, 0);

    ohreq_service *svc = th_service(data, 0);
    ohreq_client *c = th_client(svc, cache, ca, 0);
    ohreq_download_config *cfg = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(cfg, th_url(&srv, 0, "/files/reopen.bin?rate=1000000", url, sizeof url)), OHREQ_OK);
    ohreq_task *t = NULL;
    CHECK_CODE(ohreq_download(c, cfg, &t), OHREQ_OK);
    uint32_t id = ohreq_task_id(t);
    th_sleep_ms(1200);
    ohreq_task_free(t);
    ohreq_client_free(c);
    ohreq_service_free(svc);
    long long part = th_file_size(strcat(strcpy(log, dst), ".ohreq-part"));
    CHECK(part > 0 && part < 2 * 1024 * 1024);
    CHECK(!th_exists(dst));

    svc = th_service(data, 0);
    c = th_client(svc, cache, ca, 0);
    CHECK_CODE(ohreq_task_open(c, id, &t), OHREQ_OK);
    th_rec ev;
    th_rec_init(&ev);
    th_rec_attach(&ev, t);
    ohreq_download_info *info = NULL;
    int done = 0;
    for (int i = 0; i < 200 && !done; i++) { /* up to 10 s */
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        done = ohreq_download_info_status(info) == OHREQ_SESSION_SUCCESSFUL;
        ohreq_download_info_free(info);
        if (!done) th_sleep_ms(50);
    }
    CHECK(done);
    CHECK(th_same_file(src, dst));
    CHECK(th_http_get(&srv, "/__log", log, sizeof log) == 200);
    if (!strstr(log, "range=bytes=")) fprintf(stderr, "log:\n%s\n", log);
    CHECK(strstr(log, "range=bytes=") != NULL); /* the second run resumed */
    ohreq_task_free(t);
    ohreq_client_free(c);
    ohreq_service_free(svc);
    th_rec_destroy(&ev);
}

static void count_kind(void *ud, const ohreq_event *ev) {
    int *counts = ud;
    unsigned k = ohreq_event_kind(ev);
    if (k < TH_KINDS) counts[k]++;
}

/* Poll mode: events of a task whose handle is open wait in the queue, so subscribing after
 * the task already finished still delivers its complete event at the next dispatch. */
static void test_poll_mode_keeps_early_events(void) {
    char data[600], cache[600], ca[700], url[256], src[700];
    fresh_dirs(data, cache, ca);
    snprintf(src, sizeof src, "%s/early.bin", srv.root);
    th_write_pattern(src, 1000, 3);
    ohreq_service *svc = th_service(data, 1);
    ohreq_client *c = th_client(svc, cache, ca, 0);
    ohreq_download_config *cfg = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(cfg, th_url(&srv, 0, "/files/early.bin", url, sizeof url)), OHREQ_OK);
    ohreq_task *t = NULL;
    CHECK_CODE(ohreq_download(c, cfg, &t), OHREQ_OK);
    ohreq_download_config_free(cfg);
    /* Let it finish before anyone subscribes. */
    ohreq_download_info *info = NULL;
    int done = 0;
    for (int i = 0; i < 200 && !done; i++) {
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        done = ohreq_download_info_status(info) == OHREQ_SESSION_SUCCESSFUL;
        ohreq_download_info_free(info);
        if (!done) th_sleep_ms(20);
    }
    CHECK(done);
    int counts[TH_KINDS] = {0};
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_COMPLETE, count_kind, counts, NULL), OHREQ_OK);
    size_t n = 0;
    CHECK_CODE(ohreq_service_dispatch(svc, &n), OHREQ_OK);
    CHECK(n >= 1);
    CHECK_EQ(counts[OHREQ_EVENT_COMPLETE], 1);
    ohreq_task_free(t);
    ohreq_client_free(c);
    ohreq_service_free(svc);
}

/* An embedder with many open files: the transfer sockets get descriptors above 1023, which
 * select() cannot watch (libcurl must be built to use poll()). HTTP, HTTPS and a parallel
 * batch all complete. */
static void test_descriptors_above_1024(void) {
    enum { LOW = 1100, MAX_FDS = 1200 };
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        th_skip("getrlimit failed");
        return;
    }
    if (rl.rlim_cur < MAX_FDS + 256) {
        rl.rlim_cur = rl.rlim_max < MAX_FDS + 256 ? rl.rlim_max : MAX_FDS + 256;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < MAX_FDS + 256) {
            th_skip("cannot raise RLIMIT_NOFILE above %d", MAX_FDS + 256);
            return;
        }
    }
    static int held[MAX_FDS];
    int n_held = 0;
    for (int fd = open("/dev/null", O_RDONLY); fd >= 0 && n_held < MAX_FDS; fd = open("/dev/null", O_RDONLY)) {
        held[n_held++] = fd;
        if (fd >= LOW) break;
    }
    CHECK(n_held > 0 && held[n_held - 1] >= LOW);

    char data[600], cache[600], ca[700], url[256], src[700], dst[700], name[32];
    fresh_dirs(data, cache, ca);
    snprintf(src, sizeof src, "%s/fds.bin", srv.root);
    th_write_pattern(src, 300 * 1000, 11);
    ohreq_service *svc = th_service(data, 0);
    ohreq_client *c = th_client(svc, cache, ca, 0);
    enum { N = 6 };
    ohreq_task *t[N];
    th_rec r[N];
    CHECK_CODE(ohreq_service_set_network(svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    for (int i = 0; i < N; i++) {
        ohreq_download_config *cfg = ohreq_download_config_new();
        CHECK_CODE(ohreq_download_config_set_url(cfg, th_url(&srv, i % 2, "/files/fds.bin", url, sizeof url)), OHREQ_OK);
        snprintf(name, sizeof name, "fds%d.bin", i);
        CHECK_CODE(ohreq_download_config_set_file_path(cfg, name), OHREQ_OK);
        t[i] = NULL;
        th_rec_init(&r[i]);
        CHECK_CODE(ohreq_download(c, cfg, &t[i]), OHREQ_OK);
        ohreq_download_config_free(cfg);
        if (t[i]) th_rec_attach(&r[i], t[i]);
    }
    CHECK_CODE(ohreq_service_set_network(svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    for (int i = 0; i < N; i++) {
        if (!t[i]) continue;
        int end = th_rec_wait_end(&r[i], 20000);
        if (end != OHREQ_EVENT_COMPLETE) {
            ohreq_download_info *info = NULL;
            if (ohreq_task_get_download_info(t[i], &info) == OHREQ_OK) {
                fprintf(stderr, "  task %d: curl %d: %s\n", i, ohreq_download_info_curl_code(info),
                        ohreq_download_info_detail(info).data);
                ohreq_download_info_free(info);
            }
        }
        CHECK_EQ(end, OHREQ_EVENT_COMPLETE);
        snprintf(dst, sizeof dst, "%s/fds%d.bin", cache, i);
        CHECK(th_same_file(src, dst));
        ohreq_task_free(t[i]);
        th_rec_destroy(&r[i]);
    }
    ohreq_client_free(c);
    ohreq_service_free(svc);
    for (int i = 0; i < n_held; i++) close(held[i]);
}

static const th_test tests[] = {
    {"descriptors_above_1024", test_descriptors_above_1024},
    {"poll_mode_keeps_early_events", test_poll_mode_keeps_early_events},
    {"log_callback", test_log_callback},
    {"log_userdata_freed_with_options", test_log_userdata_freed_with_options},
    {"shutdown_and_reopen_resumes", test_shutdown_and_reopen_resumes},
};

int main(int argc, char **argv) {
    th_server_start(&srv);
    return th_run_skippable(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
