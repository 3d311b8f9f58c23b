/* test_api.c: the C API surface without depending on transfers succeeding: NULL arguments,
 * typed defaults, error codes and messages, constants, input validation (each failure leaves
 * the disk untouched), handle and callback rules (dedupe, off/free barriers, userdata_free
 * exactly once, re-entrancy), poll and thread dispatch, search, and calls after shutdown.
 * Also the valgrind subset of `make test`: keep it fast and bounded. */
#include "harness.h"

#include <limits.h>
#include <poll.h>
#include <stdatomic.h>

static th_server srv;
static int srv_up;

#define UID_A 20010001ULL /* th_client's uid */
#define UID_B 20020002ULL

static void need_server(void) {
    if (srv_up) return;
    th_server_start(&srv);
    char p[700];
    snprintf(p, sizeof p, "%s/slow.bin", srv.root);
    th_write_pattern(p, 512 * 1024, 7);
    srv_up = 1;
}

/* A throttled URL of the server whose last segment is `name` (a file name per task). */
static const char *slow(const char *name, char *buf, size_t len) {
    char path[256];
    snprintf(path, sizeof path, "/files/slow.bin?rate=20000&n=%s", name);
    return th_url(&srv, 0, path, buf, len);
}

/* ---- detail message helpers ---- */

static size_t last_len(void) {
    size_t n = (size_t)-1;
    if (ohreq_last_error_message(NULL, 0, &n) != OHREQ_OK) return (size_t)-1;
    return n;
}

static const char *last_msg(char *buf, size_t cap) {
    size_t n = 0;
    if (ohreq_last_error_message(buf, cap, &n) != OHREQ_OK) snprintf(buf, cap, "<none>");
    return buf;
}

/* A failing call: its code, and a non-empty detail message afterwards. */
#define CHECK_FAIL(call, want)                                                      \
    do {                                                                            \
        CHECK_CODE(call, want);                                                     \
        size_t th_l_ = last_len();                                                  \
        th_checks++;                                                                \
        if (th_l_ == 0 || th_l_ == (size_t)-1) {                                    \
            th_failures++;                                                          \
            fprintf(stderr, "  CHECK failed %s:%d: no detail message after %s\n",   \
                    __FILE__, __LINE__, #call);                                     \
        }                                                                           \
    } while (0)
#define CHECK_401(call) CHECK_FAIL(call, OHREQ_ERR_PARAMETER)

/* ---- environment ---- */

typedef struct {
    char dir[400];
    char data[600];
    char cache[600];
    ohreq_service *svc;
    ohreq_client *cli;
} env;

static void env_open(env *e, int poll) {
    th_tmpdir(e->dir, sizeof e->dir);
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    mkdir(e->cache, 0755);
    e->svc = th_service(e->data, poll);
    e->cli = th_client(e->svc, e->cache, NULL, 0);
}

static void env_close(env *e) {
    ohreq_client_free(e->cli);
    ohreq_service_free(e->svc);
}

/* A client with the given identity; cleartext: -1 leaves the default. */
static ohreq_client *mk_client(ohreq_service *svc, const char *cache, uint64_t uid, int internet,
                               int cleartext, const char *domain, int domain_ok) {
    ohreq_client_options *o = ohreq_client_options_new();
    ohreq_client *c = NULL;
    CHECK_CODE(ohreq_client_options_set_uid(o, uid), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_bundle(o, "com.example.api"), OHREQ_OK);
    if (internet) CHECK_CODE(ohreq_client_options_add_permission(o, "ohos.permission.INTERNET"), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cache_dir(o, cache), OHREQ_OK);
    if (cleartext >= 0) CHECK_CODE(ohreq_client_options_set_cleartext_permitted(o, cleartext != 0), OHREQ_OK);
    if (domain) CHECK_CODE(ohreq_client_options_add_cleartext_domain(o, domain, domain_ok != 0, false), OHREQ_OK);
    CHECK_CODE(ohreq_client_new(svc, o, &c), OHREQ_OK);
    ohreq_client_options_free(o);
    if (!c) exit(2);
    return c;
}

/* ohreq_download with a config built from url / file path (either may be NULL). */
static ohreq_code dl(ohreq_client *cli, const char *url, const char *file_path, ohreq_task **t) {
    ohreq_download_config *c = ohreq_download_config_new();
    if (url) CHECK_CODE(ohreq_download_config_set_url(c, url), OHREQ_OK);
    if (file_path) CHECK_CODE(ohreq_download_config_set_file_path(c, file_path), OHREQ_OK);
    ohreq_code rc = ohreq_download(cli, c, t);
    ohreq_download_config_free(c);
    return rc;
}

/* Starts a download that stays active (throttled) and returns its handle. */
static ohreq_task *slow_task(ohreq_client *cli, const char *name) {
    char url[512];
    ohreq_task *t = NULL;
    CHECK_CODE(dl(cli, slow(name, url, sizeof url), name, &t), OHREQ_OK);
    if (!t) {
        fprintf(stderr, "  cannot create a task\n");
        exit(2);
    }
    return t;
}

static int fd_readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    int r;
    do {
        r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    return r == 1 && (p.revents & POLLIN);
}

/* Dispatches (poll mode) until `n` events were delivered or ~3 s passed; returns the total. */
static size_t dispatch_n(ohreq_service *svc, size_t n) {
    size_t total = 0;
    int fd = ohreq_service_event_fd(svc);
    for (int i = 0; i < 60 && total < n; i++) {
        if (!fd_readable(fd, 50)) continue;
        size_t k = 0;
        CHECK_CODE(ohreq_service_dispatch(svc, &k), OHREQ_OK);
        total += k;
    }
    return total;
}

/* ---- a counting callback and its userdata ---- */

typedef struct {
    atomic_int calls[TH_KINDS];
    atomic_int total;
    atomic_int freed;
    atomic_int after_free_calls; /* calls that started after `handle_freed` was set */
    atomic_int handle_freed;
    atomic_int off_thread;       /* calls not on the main thread */
    atomic_int on_main;          /* calls on the main thread */
    pthread_t main;
    /* re-entrancy probes (poll mode, main thread) */
    int action;
    ohreq_task *task;
    ohreq_service *svc;
    ohreq_code rc_nested;
    ohreq_code rc_info;
    ohreq_code rc_off;
    int info_status;
    int info_paused_reason;
    int freed_during_cb;
    uint32_t ev_task_id;
    uint32_t ev_state;
    int32_t ev_code;
    uint32_t ev_index;
    int sleep_ms;
} ud_t;

enum { ACT_NONE, ACT_NESTED, ACT_OFF_SELF, ACT_FREE_SELF };

static void ud_init(ud_t *u) {
    memset(u, 0, sizeof *u);
    u->main = pthread_self();
    u->rc_nested = u->rc_info = u->rc_off = -1;
    u->info_status = -2;
    u->info_paused_reason = -2;
}

static void ud_free_fn(void *p) {
    ud_t *u = p;
    atomic_fetch_add(&u->freed, 1);
}

static void count_cb(void *p, const ohreq_event *ev) {
    ud_t *u = p;
    if (atomic_load(&u->handle_freed)) atomic_fetch_add(&u->after_free_calls, 1);
    if (pthread_equal(pthread_self(), u->main))
        atomic_fetch_add(&u->on_main, 1);
    else
        atomic_fetch_add(&u->off_thread, 1);
    uint32_t k = ohreq_event_kind(ev);
    if (k < TH_KINDS) atomic_fetch_add(&u->calls[k], 1);
    u->ev_task_id = ohreq_event_task_id(ev);
    u->ev_state = ohreq_event_state(ev);
    u->ev_code = ohreq_event_code(ev);
    u->ev_index = ohreq_event_index(ev);
    switch (u->action) {
    case ACT_NESTED: {
        size_t n = 77;
        u->rc_nested = ohreq_service_dispatch(u->svc, &n);
        ohreq_download_info *info = NULL;
        u->rc_info = ohreq_task_get_download_info(u->task, &info);
        u->info_status = ohreq_download_info_status(info);
        u->info_paused_reason = ohreq_download_info_paused_reason(info);
        ohreq_download_info_free(info);
        break;
    }
    case ACT_OFF_SELF:
        u->rc_off = ohreq_task_off(u->task, k, count_cb, u);
        u->freed_during_cb = atomic_load(&u->freed);
        break;
    case ACT_FREE_SELF:
        ohreq_task_free(u->task);
        u->task = NULL;
        u->freed_during_cb = atomic_load(&u->freed);
        break;
    default:
        break;
    }
    if (u->sleep_ms) th_sleep_ms(u->sleep_ms);
    atomic_fetch_add(&u->total, 1);
}

static void other_cb(void *p, const ohreq_event *ev) {
    count_cb(p, ev);
}

/* ========================================================================================= */

static void test_version_and_code_messages(void) {
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", OHREQ_VERSION_MAJOR, OHREQ_VERSION_MINOR, OHREQ_VERSION_PATCH);
    const char *v = ohreq_version();
    CHECK(v != NULL);
    CHECK(v && strcmp(v, want) == 0);
    CHECK_EQ(OHREQ_VERSION_NUMBER, OHREQ_VERSION_MAJOR * 10000 + OHREQ_VERSION_MINOR * 100 + OHREQ_VERSION_PATCH);
    CHECK(ohreq_version() == v); /* static */

    static const struct { ohreq_code code; const char *msg; } table[] = {
        {OHREQ_ERR_PERMISSION, "The permissions check fails"},
        {OHREQ_ERR_NOT_SYSTEM_APP,
         "permission verification failed, application which is not a system application uses system API"},
        {OHREQ_ERR_PARAMETER, "The parameters check fails"},
        {OHREQ_ERR_UNSUPPORTED, "Call unsupported api"},
        {OHREQ_ERR_FILE_IO, "Invalid file or file system error"},
        {OHREQ_ERR_FILE_PATH, "File path not supported or invalid"},
        {OHREQ_ERR_SERVICE, "Task service ability error"},
        {OHREQ_ERR_OTHERS, "Others error"},
        {OHREQ_ERR_TASK_QUEUE_FULL, "The application task queue is full"},
        {OHREQ_ERR_TASK_MODE, "Operation with wrong task mode"},
        {OHREQ_ERR_TASK_NOT_FOUND, "Task removed or not found"},
        {OHREQ_ERR_TASK_STATE, "Operation with wrong task state"},
        {OHREQ_ERR_GROUP_NOT_FOUND, "Group deleted or not found"},
        {OHREQ_OK, "OK"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const char *m = ohreq_code_message(table[i].code);
        th_checks++;
        if (!m || strcmp(m, table[i].msg) != 0) {
            th_failures++;
            fprintf(stderr, "  CHECK failed: ohreq_code_message(%d) = \"%s\", want \"%s\"\n",
                    table[i].code, m ? m : "(null)", table[i].msg);
        }
    }
    static const ohreq_code unknown[] = {1,        -1,       200,      203,      400,      402,
                                         800,      13400000, 13400004, 13499998, 21900003, 21900009,
                                         INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *m = ohreq_code_message(unknown[i]);
        th_checks++;
        if (!m || strcmp(m, "Unknown error code") != 0) {
            th_failures++;
            fprintf(stderr, "  CHECK failed: ohreq_code_message(%d) = \"%s\"\n", unknown[i], m ? m : "(null)");
        }
    }
}

static void test_constants(void) {
    /* result codes (A.1 EXCEPTION_*, B.5) */
    CHECK_EQ(OHREQ_OK, 0);
    CHECK_EQ(OHREQ_ERR_PERMISSION, 201);
    CHECK_EQ(OHREQ_ERR_NOT_SYSTEM_APP, 202);
    CHECK_EQ(OHREQ_ERR_PARAMETER, 401);
    CHECK_EQ(OHREQ_ERR_UNSUPPORTED, 801);
    CHECK_EQ(OHREQ_ERR_FILE_IO, 13400001);
    CHECK_EQ(OHREQ_ERR_FILE_PATH, 13400002);
    CHECK_EQ(OHREQ_ERR_SERVICE, 13400003);
    CHECK_EQ(OHREQ_ERR_OTHERS, 13499999);
    CHECK_EQ(OHREQ_ERR_TASK_QUEUE_FULL, 21900004);
    CHECK_EQ(OHREQ_ERR_TASK_MODE, 21900005);
    CHECK_EQ(OHREQ_ERR_TASK_NOT_FOUND, 21900006);
    CHECK_EQ(OHREQ_ERR_TASK_STATE, 21900007);
    CHECK_EQ(OHREQ_ERR_GROUP_NOT_FOUND, 21900008);
    /* A.1 legacy */
    CHECK_EQ(OHREQ_NETWORK_MOBILE, 0x00000001);
    CHECK_EQ(OHREQ_NETWORK_WIFI, 0x00010000);
    CHECK_EQ(OHREQ_ERROR_CANNOT_RESUME, 0);
    CHECK_EQ(OHREQ_ERROR_DEVICE_NOT_FOUND, 1);
    CHECK_EQ(OHREQ_ERROR_FILE_ALREADY_EXISTS, 2);
    CHECK_EQ(OHREQ_ERROR_FILE_ERROR, 3);
    CHECK_EQ(OHREQ_ERROR_HTTP_DATA_ERROR, 4);
    CHECK_EQ(OHREQ_ERROR_INSUFFICIENT_SPACE, 5);
    CHECK_EQ(OHREQ_ERROR_TOO_MANY_REDIRECTS, 6);
    CHECK_EQ(OHREQ_ERROR_UNHANDLED_HTTP_CODE, 7);
    CHECK_EQ(OHREQ_ERROR_UNKNOWN, 8);
    CHECK_EQ(OHREQ_ERROR_OFFLINE, 9);
    CHECK_EQ(OHREQ_ERROR_UNSUPPORTED_NETWORK_TYPE, 10);
    CHECK_EQ(OHREQ_PAUSED_QUEUED_FOR_WIFI, 0);
    CHECK_EQ(OHREQ_PAUSED_WAITING_FOR_NETWORK, 1);
    CHECK_EQ(OHREQ_PAUSED_WAITING_TO_RETRY, 2);
    CHECK_EQ(OHREQ_PAUSED_BY_USER, 3);
    CHECK_EQ(OHREQ_PAUSED_UNKNOWN, 4);
    CHECK_EQ(OHREQ_SESSION_SUCCESSFUL, 0);
    CHECK_EQ(OHREQ_SESSION_RUNNING, 1);
    CHECK_EQ(OHREQ_SESSION_PENDING, 2);
    CHECK_EQ(OHREQ_SESSION_PAUSED, 3);
    CHECK_EQ(OHREQ_SESSION_FAILED, 4);
    CHECK_EQ(OHREQ_VISIBILITY_COMPLETION, 1);
    CHECK_EQ(OHREQ_VISIBILITY_PROGRESS, 2);
    /* A.6 agent enums */
    CHECK_EQ(OHREQ_ACTION_DOWNLOAD, 0);
    CHECK_EQ(OHREQ_ACTION_UPLOAD, 1);
    CHECK_EQ(OHREQ_MODE_BACKGROUND, 0);
    CHECK_EQ(OHREQ_MODE_FOREGROUND, 1);
    CHECK_EQ(OHREQ_NETWORK_ANY, 0);
    CHECK_EQ(OHREQ_NETWORK_WIFI_ONLY, 1);
    CHECK_EQ(OHREQ_NETWORK_CELLULAR, 2);
    CHECK_EQ(OHREQ_STATE_INITIALIZED, 0x00);
    CHECK_EQ(OHREQ_STATE_WAITING, 0x10);
    CHECK_EQ(OHREQ_STATE_RUNNING, 0x20);
    CHECK_EQ(OHREQ_STATE_RETRYING, 0x21);
    CHECK_EQ(OHREQ_STATE_PAUSED, 0x30);
    CHECK_EQ(OHREQ_STATE_STOPPED, 0x31);
    CHECK_EQ(OHREQ_STATE_COMPLETED, 0x40);
    CHECK_EQ(OHREQ_STATE_FAILED, 0x41);
    CHECK_EQ(OHREQ_STATE_REMOVED, 0x50);
    CHECK_EQ(OHREQ_FAULT_DISCONNECTED, 0x00);
    CHECK_EQ(OHREQ_FAULT_TIMEOUT, 0x10);
    CHECK_EQ(OHREQ_FAULT_PROTOCOL, 0x20);
    CHECK_EQ(OHREQ_FAULT_PARAM, 0x30);
    CHECK_EQ(OHREQ_FAULT_FSIO, 0x40);
    CHECK_EQ(OHREQ_FAULT_DNS, 0x50);
    CHECK_EQ(OHREQ_FAULT_TCP, 0x60);
    CHECK_EQ(OHREQ_FAULT_SSL, 0x70);
    CHECK_EQ(OHREQ_FAULT_REDIRECT, 0x80);
    CHECK_EQ(OHREQ_FAULT_LOW_SPEED, 0x90);
    CHECK_EQ(OHREQ_FAULT_OTHERS, 0xFF);
    CHECK_EQ(OHREQ_WAITING_TASK_QUEUE_FULL, 0x00);
    CHECK_EQ(OHREQ_WAITING_NETWORK_NOT_MATCH, 0x01);
    CHECK_EQ(OHREQ_WAITING_APP_BACKGROUND, 0x02);
    CHECK_EQ(OHREQ_WAITING_USER_INACTIVATED, 0x03);
    /* events, dispatch, net, log, limits */
    CHECK_EQ(OHREQ_EVENT_PROGRESS, 0);
    CHECK_EQ(OHREQ_EVENT_COMPLETE, 1);
    CHECK_EQ(OHREQ_EVENT_PAUSE, 2);
    CHECK_EQ(OHREQ_EVENT_REMOVE, 3);
    CHECK_EQ(OHREQ_EVENT_FAIL, 4);
    CHECK_EQ(OHREQ_EVENT_HEADER_RECEIVE, 5);
    CHECK_EQ(OHREQ_EVENT_COMPLETED, 6);
    CHECK_EQ(OHREQ_EVENT_FAILED, 7);
    CHECK_EQ(OHREQ_EVENT_RESUME, 8);
    CHECK_EQ(OHREQ_EVENT_RESPONSE, 9);
    CHECK_EQ(OHREQ_EVENT_WAIT, 10);
    CHECK_EQ(OHREQ_EVENT_FAULT_OCCUR, 11);
    CHECK_EQ(OHREQ_DISPATCH_THREAD, 0);
    CHECK_EQ(OHREQ_DISPATCH_POLL, 1);
    CHECK_EQ(OHREQ_NET_NONE, 0);
    CHECK_EQ(OHREQ_NET_WIFI, 1);
    CHECK_EQ(OHREQ_NET_CELLULAR, 2);
    CHECK_EQ(OHREQ_NET_OTHER, 3);
    CHECK_EQ(OHREQ_LOG_ERROR, 1);
    CHECK_EQ(OHREQ_LOG_TRACE, 5);
    CHECK_EQ(OHREQ_URL_MAX_BYTES, 8192);
    CHECK_EQ(OHREQ_MAX_TOTAL_TIMEOUT_S, 604800);
    CHECK_EQ(OHREQ_DEFAULT_CONNECT_TIMEOUT_S, 60);
    CHECK_EQ(OHREQ_DEFAULT_MAX_RUNNING, 48);
}

/* Builder objects with NULL: every setter 401 with a detail, every _free(NULL) a no-op. */
static void test_null_builders(void) {
    ohreq_client_options_free(NULL);
    ohreq_service_options_free(NULL);
    ohreq_download_config_free(NULL);
    ohreq_filter_free(NULL);
    ohreq_download_info_free(NULL);
    ohreq_client_free(NULL);
    ohreq_service_free(NULL);
    ohreq_task_free(NULL);

    ohreq_client_options *co = ohreq_client_options_new();
    CHECK(co != NULL);
    CHECK_401(ohreq_client_options_set_uid(NULL, 1));
    CHECK_401(ohreq_client_options_set_bundle(NULL, "b"));
    CHECK_401(ohreq_client_options_set_bundle(co, NULL));
    CHECK_401(ohreq_client_options_set_system_app(NULL, true));
    CHECK_401(ohreq_client_options_add_permission(NULL, "ohos.permission.INTERNET"));
    CHECK_401(ohreq_client_options_add_permission(co, NULL));
    CHECK_401(ohreq_client_options_set_cache_dir(NULL, "/tmp"));
    CHECK_401(ohreq_client_options_set_cache_dir(co, NULL));
    CHECK_401(ohreq_client_options_set_files_dir(NULL, "/tmp"));
    CHECK_401(ohreq_client_options_set_files_dir(co, NULL));
    CHECK_401(ohreq_client_options_add_base_dir(NULL, "/tmp"));
    CHECK_401(ohreq_client_options_add_base_dir(co, NULL));
    CHECK_401(ohreq_client_options_set_cleartext_permitted(NULL, true));
    CHECK_401(ohreq_client_options_add_cleartext_domain(NULL, "127.0.0.1", true, false));
    CHECK_401(ohreq_client_options_add_cleartext_domain(co, NULL, true, false));
    CHECK_401(ohreq_client_options_set_ca_file(NULL, "/etc/hostname"));
    CHECK_401(ohreq_client_options_set_ca_file(co, NULL));
    ohreq_client_options_free(co);

    ohreq_service_options *so = ohreq_service_options_new();
    CHECK(so != NULL);
    CHECK_401(ohreq_service_options_set_data_dir(NULL, "/tmp/x"));
    CHECK_401(ohreq_service_options_set_data_dir(so, NULL));
    CHECK_401(ohreq_service_options_set_dispatch_mode(NULL, OHREQ_DISPATCH_POLL));
    CHECK_401(ohreq_service_options_set_max_running(NULL, 4));
    CHECK_401(ohreq_service_options_set_user_agent(NULL, "ua"));
    CHECK_401(ohreq_service_options_set_user_agent(so, NULL));
    CHECK_401(ohreq_service_options_set_ca_bundle(NULL, "/etc/hostname"));
    CHECK_401(ohreq_service_options_set_ca_bundle(so, NULL));
    CHECK_401(ohreq_service_options_set_log(NULL, NULL, NULL, NULL, OHREQ_LOG_INFO));
    CHECK_401(ohreq_service_options_set_log(so, NULL, NULL, NULL, OHREQ_LOG_INFO));
    ohreq_service *svc = (ohreq_service *)&svc; /* sentinel: must stay untouched */
    CHECK_401(ohreq_service_new(NULL, &svc));
    CHECK(svc == (ohreq_service *)&svc);
    CHECK_401(ohreq_service_new(so, NULL));
    ohreq_service_options_free(so);

    ohreq_download_config *dc = ohreq_download_config_new();
    CHECK(dc != NULL);
    CHECK_401(ohreq_download_config_set_url(NULL, "https://127.0.0.1/x"));
    CHECK_401(ohreq_download_config_set_url(dc, NULL));
    CHECK_401(ohreq_download_config_add_header(NULL, "A", "b"));
    CHECK_401(ohreq_download_config_add_header(dc, NULL, "b"));
    CHECK_401(ohreq_download_config_add_header(dc, "A", NULL));
    CHECK_401(ohreq_download_config_set_enable_metered(NULL, true));
    CHECK_401(ohreq_download_config_set_enable_roaming(NULL, true));
    CHECK_401(ohreq_download_config_set_description(NULL, "d"));
    CHECK_401(ohreq_download_config_set_description(dc, NULL));
    CHECK_401(ohreq_download_config_set_network_type(NULL, OHREQ_NETWORK_WIFI));
    CHECK_401(ohreq_download_config_set_file_path(NULL, "a.bin"));
    CHECK_401(ohreq_download_config_set_file_path(dc, NULL));
    CHECK_401(ohreq_download_config_set_title(NULL, "t"));
    CHECK_401(ohreq_download_config_set_title(dc, NULL));
    CHECK_401(ohreq_download_config_set_background(NULL, true));
    CHECK_401(ohreq_download_config_set_timeout(NULL, 1, 1));
    CHECK_401(ohreq_download_config_set_min_speed(NULL, 1, 1));
    /* the non-NULL setters themselves work */
    CHECK_CODE(ohreq_download_config_set_enable_metered(dc, true), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_enable_roaming(dc, true), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_network_type(dc, 12345), OHREQ_OK); /* = any */
    CHECK_CODE(ohreq_download_config_set_background(dc, true), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_min_speed(dc, 0, 0), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_timeout(dc, 0, 0), OHREQ_OK); /* checked by ohreq_download */
    ohreq_download_config_free(dc);

    ohreq_filter *f = ohreq_filter_new();
    CHECK(f != NULL);
    CHECK_401(ohreq_filter_set_before(NULL, 1));
    CHECK_401(ohreq_filter_set_after(NULL, 1));
    CHECK_401(ohreq_filter_set_state(NULL, OHREQ_STATE_RUNNING));
    CHECK_401(ohreq_filter_set_action(NULL, OHREQ_ACTION_DOWNLOAD));
    CHECK_401(ohreq_filter_set_mode(NULL, OHREQ_MODE_BACKGROUND));
    ohreq_filter_free(f);

    /* info and event getters: typed defaults */
    CHECK_EQ(ohreq_download_info_id(NULL), 0);
    CHECK_EQ(ohreq_download_info_failed_reason(NULL), -1);
    CHECK_EQ(ohreq_download_info_paused_reason(NULL), -1);
    CHECK_EQ(ohreq_download_info_status(NULL), -1);
    CHECK_EQ(ohreq_download_info_total_bytes(NULL), -1);
    CHECK_EQ(ohreq_download_info_downloaded_bytes(NULL), 0);
    CHECK_EQ(ohreq_download_info_http_status(NULL), 0);
    CHECK_EQ(ohreq_download_info_curl_code(NULL), 0);
    ohreq_str s[6] = {ohreq_download_info_file_name(NULL),   ohreq_download_info_file_path(NULL),
                      ohreq_download_info_target_uri(NULL),  ohreq_download_info_title(NULL),
                      ohreq_download_info_description(NULL), ohreq_download_info_detail(NULL)};
    for (int i = 0; i < 6; i++) {
        CHECK(s[i].data != NULL);
        CHECK_EQ(s[i].len, 0);
        CHECK(s[i].data && s[i].data[0] == 0);
    }
    CHECK_EQ(ohreq_event_kind(NULL), UINT32_MAX);
    CHECK_EQ(ohreq_event_task_id(NULL), 0);
    CHECK_EQ(ohreq_event_state(NULL), UINT32_MAX);
    CHECK_EQ(ohreq_event_index(NULL), 0);
    CHECK_EQ(ohreq_event_processed(NULL), 0);
    CHECK_EQ(ohreq_event_total(NULL), -1);
    CHECK_EQ(ohreq_event_code(NULL), -1);
    CHECK_EQ(ohreq_task_id(NULL), 0);
    CHECK_EQ(ohreq_service_event_fd(NULL), -1);
}

/* Service, client and task calls with NULL pointers; out-params untouched on failure. */
static void test_null_handles(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_client_options *co = ohreq_client_options_new();
    CHECK_CODE(ohreq_client_options_set_uid(co, UID_A), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cache_dir(co, e.cache), OHREQ_OK);
    ohreq_client *c = (ohreq_client *)&c;
    CHECK_401(ohreq_client_new(NULL, co, &c));
    CHECK_401(ohreq_client_new(e.svc, NULL, &c));
    CHECK_401(ohreq_client_new(e.svc, co, NULL));
    CHECK(c == (ohreq_client *)&c);
    ohreq_client_options_free(co);
    CHECK_401(ohreq_client_set_foreground(NULL, true));
    CHECK_CODE(ohreq_client_set_foreground(e.cli, true), OHREQ_OK);

    CHECK_401(ohreq_service_set_network(NULL, true, OHREQ_NET_WIFI, false, false));
    size_t n = 12345;
    CHECK_401(ohreq_service_dispatch(NULL, &n));
    CHECK_EQ(n, 12345);
    CHECK_CODE(ohreq_service_dispatch(e.svc, NULL), OHREQ_OK); /* delivered_out may be NULL */

    ohreq_download_config *dc = ohreq_download_config_new();
    char url[512];
    CHECK_CODE(ohreq_download_config_set_url(dc, slow("nullh.bin", url, sizeof url)), OHREQ_OK);
    ohreq_task *t = (ohreq_task *)&t;
    CHECK_401(ohreq_download(NULL, dc, &t));
    CHECK_401(ohreq_download(e.cli, NULL, &t));
    CHECK_401(ohreq_download(e.cli, dc, NULL));
    CHECK(t == (ohreq_task *)&t);
    CHECK_EQ(th_count_entries(e.cache), 0);
    CHECK_CODE(ohreq_download(e.cli, dc, &t), OHREQ_OK);
    ohreq_download_config_free(dc);
    CHECK(ohreq_task_id(t) != 0);

    ohreq_task *t2 = (ohreq_task *)&t2;
    CHECK_401(ohreq_task_open(NULL, ohreq_task_id(t), &t2));
    CHECK_401(ohreq_task_open(e.cli, ohreq_task_id(t), NULL));
    CHECK(t2 == (ohreq_task *)&t2);

    ud_t u;
    ud_init(&u);
    CHECK_401(ohreq_task_on(NULL, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn));
    CHECK_401(ohreq_task_on(t, OHREQ_EVENT_PAUSE, NULL, &u, ud_free_fn));
    CHECK_401(ohreq_task_off(NULL, OHREQ_EVENT_PAUSE, count_cb, &u));
    CHECK_401(ohreq_task_suspend(NULL));
    CHECK_401(ohreq_task_restore(NULL));
    CHECK_401(ohreq_task_delete(NULL));
    ohreq_download_info *info = (ohreq_download_info *)&info;
    CHECK_401(ohreq_task_get_download_info(NULL, &info));
    CHECK_401(ohreq_task_get_download_info(t, NULL));
    CHECK(info == (ohreq_download_info *)&info);
    char buf[64] = "untouched";
    n = 999;
    CHECK_401(ohreq_task_get_mime_type(NULL, buf, sizeof buf, &n));
    CHECK_401(ohreq_task_get_mime_type(t, buf, sizeof buf, NULL));
    CHECK_401(ohreq_task_get_mime_type(t, NULL, 5, &n));
    CHECK_EQ(n, 999);
    CHECK(strcmp(buf, "untouched") == 0);

    /* the mime-type buffer rules: (NULL, 0) length, len+1 works, len fails and keeps buf */
    size_t mlen = 999;
    CHECK_CODE(ohreq_task_get_mime_type(t, NULL, 0, &mlen), OHREQ_OK);
    CHECK(mlen < sizeof buf);
    if (mlen < sizeof buf) {
        memset(buf, 'Z', sizeof buf);
        size_t k = 777;
        CHECK_401(ohreq_task_get_mime_type(t, buf, mlen, &k));
        CHECK_EQ(k, 777);
        CHECK(buf[0] == 'Z' && buf[mlen] == 'Z');
        /* the content type may arrive meanwhile: ask again with room to spare */
        CHECK_CODE(ohreq_task_get_mime_type(t, buf, sizeof buf, &k), OHREQ_OK);
        CHECK(k < sizeof buf && buf[k] == 0 && strlen(buf) == k);
    }

    /* search */
    ohreq_filter *f = ohreq_filter_new();
    uint32_t ids[4];
    n = 4242;
    CHECK_401(ohreq_search(NULL, f, ids, 4, &n));
    CHECK_401(ohreq_search(e.cli, f, ids, 4, NULL));
    CHECK_401(ohreq_search(e.cli, f, NULL, 4, &n));
    CHECK_EQ(n, 4242);
    CHECK_CODE(ohreq_search(e.cli, NULL, NULL, 0, &n), OHREQ_OK); /* NULL filter: defaults */
    CHECK_EQ(n, 1);
    ohreq_filter_free(f);

    ohreq_task_free(t);
    env_close(&e);
    CHECK_EQ(atomic_load(&u.freed), 0); /* failed _on never owned the userdata */
}

static void *thread_last_error(void *arg) {
    size_t *out = arg;
    size_t n = 99;
    char b[8] = "xxxxxxx";
    if (ohreq_last_error_message(NULL, 0, &n) != OHREQ_OK) n = 1000;
    out[0] = n;
    n = 99;
    if (ohreq_last_error_message(b, sizeof b, &n) != OHREQ_OK) n = 1000;
    out[1] = n;
    out[2] = (size_t)(unsigned char)b[0];
    /* a failure here does not change the main thread's message */
    if (ohreq_client_options_set_uid(NULL, 1) == OHREQ_OK) out[3] = 1;
    return NULL;
}

static void test_last_error_message(void) {
    /* a failure with a known detail: an overlong url */
    char dir[400], data[600], cache[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    mkdir(cache, 0755);
    ohreq_service *svc = th_service(data, 1);
    ohreq_client *cli = th_client(svc, cache, NULL, 0);
    char *url = malloc(OHREQ_URL_MAX_BYTES + 2);
    memset(url, 'a', OHREQ_URL_MAX_BYTES + 1);
    memcpy(url, "https://127.0.0.1:1/x?", 22);
    url[OHREQ_URL_MAX_BYTES + 1] = 0;
    ohreq_task *t = NULL;
    CHECK_401(dl(cli, url, "x.bin", &t));
    free(url);
    CHECK(t == NULL);

    size_t len = 0;
    CHECK_CODE(ohreq_last_error_message(NULL, 0, &len), OHREQ_OK);
    CHECK(len > 0 && len < 1000);
    char *exact = malloc(len + 1);
    memset(exact, 'Q', len + 1);
    size_t n = 5555;
    /* len bytes: one short of the NUL: 401, nothing written */
    CHECK_CODE(ohreq_last_error_message(exact, len, &n), OHREQ_ERR_PARAMETER);
    CHECK_EQ(n, 5555);
    int untouched = 1;
    for (size_t i = 0; i < len + 1; i++)
        if (exact[i] != 'Q') untouched = 0;
    CHECK(untouched);
    /* the stored message is kept after that failure */
    size_t len2 = 0;
    CHECK_CODE(ohreq_last_error_message(NULL, 0, &len2), OHREQ_OK);
    CHECK_EQ(len2, len);
    /* len + 1 works */
    CHECK_CODE(ohreq_last_error_message(exact, len + 1, &n), OHREQ_OK);
    CHECK_EQ(n, len);
    CHECK(exact[len] == 0);
    CHECK_EQ(strlen(exact), len);
    CHECK(strstr(exact, "8192") != NULL); /* "the length of url exceeds 8192 ..." */
    free(exact);
    /* out_n NULL, or buf NULL with len > 0 */
    char b[8] = "keep";
    CHECK_CODE(ohreq_last_error_message(b, sizeof b, NULL), OHREQ_ERR_PARAMETER);
    CHECK(strcmp(b, "keep") == 0);
    n = 31;
    CHECK_CODE(ohreq_last_error_message(NULL, 8, &n), OHREQ_ERR_PARAMETER);
    CHECK_EQ(n, 31);

    /* a different failure replaces the message */
    CHECK_401(ohreq_client_options_set_uid(NULL, 1));
    char m[512];
    last_msg(m, sizeof m);
    CHECK(strstr(m, "8192") == NULL);
    CHECK(m[0] != 0);

    /* per thread: a new thread has "" */
    size_t res[4] = {0, 0, 0, 0};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, thread_last_error, res), 0);
    pthread_join(th, NULL);
    CHECK_EQ(res[0], 0);
    CHECK_EQ(res[1], 0);
    CHECK_EQ(res[2], 0); /* "" written */
    CHECK_EQ(res[3], 0);
    char m2[512];
    last_msg(m2, sizeof m2);
    CHECK(strcmp(m, m2) == 0);

    ohreq_client_free(cli);
    ohreq_service_free(svc);
}

static void test_invalid_utf8(void) {
    const char *bad = "\xff\xfe";
    const char *bad_abs = "/tmp/\xff\xfe";
    ohreq_client_options *co = ohreq_client_options_new();
    CHECK_401(ohreq_client_options_set_bundle(co, bad));
    CHECK_401(ohreq_client_options_add_permission(co, bad));
    CHECK_401(ohreq_client_options_set_cache_dir(co, bad_abs));
    CHECK_401(ohreq_client_options_set_files_dir(co, bad_abs));
    CHECK_401(ohreq_client_options_add_base_dir(co, bad_abs));
    CHECK_401(ohreq_client_options_add_cleartext_domain(co, bad, true, false));
    CHECK_401(ohreq_client_options_set_ca_file(co, bad_abs));
    /* a truncated multi-byte sequence and an overlong encoding are invalid too */
    CHECK_401(ohreq_client_options_set_bundle(co, "com.\xe2\x82"));
    CHECK_401(ohreq_client_options_set_bundle(co, "\xc0\xaf"));
    CHECK_CODE(ohreq_client_options_set_bundle(co, "com.\xe2\x82\xac"), OHREQ_OK); /* valid € */
    ohreq_client_options_free(co);

    ohreq_service_options *so = ohreq_service_options_new();
    CHECK_401(ohreq_service_options_set_data_dir(so, bad_abs));
    CHECK_401(ohreq_service_options_set_user_agent(so, bad));
    CHECK_401(ohreq_service_options_set_ca_bundle(so, bad_abs));
    ohreq_service_options_free(so);

    ohreq_download_config *dc = ohreq_download_config_new();
    CHECK_401(ohreq_download_config_set_url(dc, "https://127.0.0.1/\xff\xfe"));
    CHECK_401(ohreq_download_config_add_header(dc, bad, "v"));
    CHECK_401(ohreq_download_config_add_header(dc, "X-A", bad));
    CHECK_401(ohreq_download_config_set_description(dc, bad));
    CHECK_401(ohreq_download_config_set_file_path(dc, bad));
    CHECK_401(ohreq_download_config_set_title(dc, bad));
    ohreq_download_config_free(dc);
}

static void test_out_of_range_values(void) {
    ohreq_service_options *so = ohreq_service_options_new();
    CHECK_401(ohreq_service_options_set_dispatch_mode(so, 2));
    CHECK_401(ohreq_service_options_set_dispatch_mode(so, UINT32_MAX));
    CHECK_CODE(ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_THREAD), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL), OHREQ_OK);
    CHECK_401(ohreq_service_options_set_max_running(so, 0));
    CHECK_401(ohreq_service_options_set_max_running(so, 1025));
    CHECK_401(ohreq_service_options_set_max_running(so, UINT32_MAX));
    CHECK_CODE(ohreq_service_options_set_max_running(so, 1), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_max_running(so, 1024), OHREQ_OK);
    CHECK_401(ohreq_service_options_set_log(so, (ohreq_log_callback)NULL, NULL, NULL, OHREQ_LOG_INFO));
    ohreq_service_options_free(so);

    ohreq_filter *f = ohreq_filter_new();
    CHECK_401(ohreq_filter_set_state(f, 0x22));
    CHECK_401(ohreq_filter_set_state(f, 1));
    CHECK_401(ohreq_filter_set_state(f, 0x150)); /* truncates to 0x50 as a u8: must not pass */
    CHECK_401(ohreq_filter_set_action(f, 2));
    CHECK_401(ohreq_filter_set_action(f, 0x100)); /* truncates to 0 as a u8 */
    CHECK_401(ohreq_filter_set_mode(f, 2));
    static const uint32_t states[] = {OHREQ_STATE_INITIALIZED, OHREQ_STATE_WAITING, OHREQ_STATE_RUNNING,
                                      OHREQ_STATE_RETRYING,    OHREQ_STATE_PAUSED,  OHREQ_STATE_STOPPED,
                                      OHREQ_STATE_COMPLETED,   OHREQ_STATE_FAILED,  OHREQ_STATE_REMOVED};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        CHECK_CODE(ohreq_filter_set_state(f, states[i]), OHREQ_OK);
    CHECK_CODE(ohreq_filter_set_action(f, OHREQ_ACTION_UPLOAD), OHREQ_OK);
    CHECK_CODE(ohreq_filter_set_mode(f, OHREQ_MODE_FOREGROUND), OHREQ_OK);
    ohreq_filter_free(f);

    /* network type and event kinds need live handles */
    char dir[400], data[600], cache[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    mkdir(cache, 0755);
    ohreq_service *svc = th_service(data, 1);
    CHECK_401(ohreq_service_set_network(svc, true, 4, false, false));
    CHECK_401(ohreq_service_set_network(svc, true, UINT32_MAX, false, false));
    for (uint32_t ty = OHREQ_NET_NONE; ty <= OHREQ_NET_OTHER; ty++)
        CHECK_CODE(ohreq_service_set_network(svc, ty != OHREQ_NET_NONE, ty, false, false), OHREQ_OK);
    CHECK_CODE(ohreq_service_set_network(svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);

    ohreq_client *cli = th_client(svc, cache, NULL, 0);
    ohreq_task *t = NULL;
    /* port 1: refused; the task fails in the background, which is fine here */
    CHECK_CODE(dl(cli, "https://127.0.0.1:1/kinds.bin", NULL, &t), OHREQ_OK);
    if (t) {
        ud_t u;
        ud_init(&u);
        CHECK_401(ohreq_task_on(t, 99, count_cb, &u, ud_free_fn));
        CHECK_401(ohreq_task_on(t, 12, count_cb, &u, ud_free_fn));
        CHECK_401(ohreq_task_on(t, UINT32_MAX, count_cb, &u, ud_free_fn));
        CHECK_401(ohreq_task_off(t, 99, count_cb, &u));
        CHECK_401(ohreq_task_off(t, 99, NULL, NULL));
        ohreq_task_free(t);
        CHECK_EQ(atomic_load(&u.freed), 0);
    }
    ohreq_client_free(cli);
    ohreq_service_free(svc);
}

static void test_service_options_validation(void) {
    char dir[400], p[600];
    th_tmpdir(dir, sizeof dir);
    ohreq_service_options *so = ohreq_service_options_new();
    CHECK_401(ohreq_service_options_set_data_dir(so, "relative/data"));
    CHECK_401(ohreq_service_options_set_data_dir(so, "./data"));
    CHECK_401(ohreq_service_options_set_data_dir(so, ""));
    ohreq_service *svc = (ohreq_service *)&svc;
    CHECK_401(ohreq_service_new(so, &svc)); /* no data dir */
    CHECK(svc == (ohreq_service *)&svc);
    snprintf(p, sizeof p, "%s/nope.pem", dir);
    CHECK_401(ohreq_service_options_set_ca_bundle(so, p));
    CHECK_401(ohreq_service_options_set_ca_bundle(so, dir)); /* a directory */
    CHECK_401(ohreq_service_options_set_user_agent(so, "ua\r\nX-Injected: 1"));
    CHECK_CODE(ohreq_service_options_set_user_agent(so, "ohreq-test/1"), OHREQ_OK);
    snprintf(p, sizeof p, "%s/data", dir);
    CHECK_CODE(ohreq_service_options_set_data_dir(so, p), OHREQ_OK);
    CHECK_CODE(ohreq_service_new(so, &svc), OHREQ_OK);
    ohreq_service_options_free(so); /* options are borrowed: the service outlives them */
    CHECK(svc != NULL && svc != (ohreq_service *)&svc);
    CHECK(th_exists(p)); /* the data dir is created */
    CHECK_EQ(ohreq_service_event_fd(svc), -1); /* thread mode */
    ohreq_service_free(svc);
}

static void test_client_options_validation(void) {
    char dir[400], data[600], cache[600], p[700];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    mkdir(cache, 0755);
    ohreq_service *svc = th_service(data, 1);
    ohreq_client *c = (ohreq_client *)&c;

    ohreq_client_options *co = ohreq_client_options_new();
    CHECK_CODE(ohreq_client_options_set_cache_dir(co, cache), OHREQ_OK);
    CHECK_401(ohreq_client_new(svc, co, &c)); /* no uid */
    ohreq_client_options_free(co);

    co = ohreq_client_options_new();
    CHECK_CODE(ohreq_client_options_set_uid(co, UID_A), OHREQ_OK);
    CHECK_401(ohreq_client_new(svc, co, &c)); /* no cache dir */
    snprintf(p, sizeof p, "%s/missing", dir);
    if (ohreq_client_options_set_cache_dir(co, p) == OHREQ_OK)
        CHECK_401(ohreq_client_new(svc, co, &c)); /* cache dir does not exist */
    snprintf(p, sizeof p, "%s/afile", dir);
    th_write_pattern(p, 10, 1);
    if (ohreq_client_options_set_cache_dir(co, p) == OHREQ_OK)
        CHECK_401(ohreq_client_new(svc, co, &c)); /* not a directory */
    CHECK_CODE(ohreq_client_options_set_cache_dir(co, cache), OHREQ_OK);
    snprintf(p, sizeof p, "%s/missing-files", dir);
    if (ohreq_client_options_set_files_dir(co, p) == OHREQ_OK)
        CHECK_401(ohreq_client_new(svc, co, &c)); /* files dir does not exist */
    ohreq_client_options_free(co);
    CHECK(c == (ohreq_client *)&c);

    co = ohreq_client_options_new();
    snprintf(p, sizeof p, "%s/nope.pem", dir);
    CHECK_401(ohreq_client_options_set_ca_file(co, p));
    CHECK_401(ohreq_client_options_set_ca_file(co, dir));
    CHECK_401(ohreq_client_options_add_cleartext_domain(co, "", true, true));
    CHECK_CODE(ohreq_client_options_set_uid(co, UID_A), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cache_dir(co, cache), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_system_app(co, true), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_add_base_dir(co, dir), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_files_dir(co, cache), OHREQ_OK);
    CHECK_CODE(ohreq_client_new(svc, co, &c), OHREQ_OK);
    ohreq_client_options_free(co); /* borrowed */
    CHECK(c != NULL && c != (ohreq_client *)&c);
    if (c != (ohreq_client *)&c) ohreq_client_free(c);
    ohreq_service_free(svc);
}

static void test_data_dir_lock(void) {
    char dir[400], data[600], data2[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(data2, sizeof data2, "%s/data2", dir);
    ohreq_service *a = th_service(data, 0);
    ohreq_service_options *so = ohreq_service_options_new();
    CHECK_CODE(ohreq_service_options_set_data_dir(so, data), OHREQ_OK);
    ohreq_service *b = (ohreq_service *)&b;
    CHECK_FAIL(ohreq_service_new(so, &b), OHREQ_ERR_SERVICE);
    CHECK(b == (ohreq_service *)&b);
    CHECK_CODE(ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL), OHREQ_OK);
    CHECK_FAIL(ohreq_service_new(so, &b), OHREQ_ERR_SERVICE); /* whatever the mode */
    /* another data dir is independent */
    ohreq_service *c = th_service(data2, 1);
    ohreq_service_free(a);
    b = NULL;
    CHECK_CODE(ohreq_service_new(so, &b), OHREQ_OK);
    CHECK(b != NULL);
    ohreq_service_free(b);
    /* and again after that one is gone */
    b = NULL;
    CHECK_CODE(ohreq_service_new(so, &b), OHREQ_OK);
    ohreq_service_free(b);
    ohreq_service_options_free(so);
    ohreq_service_free(c);
}

static atomic_int log_freed_1, log_freed_2, log_calls;
static void log_cb(void *ud, uint32_t level, const char *msg, size_t len) {
    (void)ud;
    if (level >= 1 && level <= 5 && msg && strlen(msg) == len) atomic_fetch_add(&log_calls, 1);
}
static void log_free_1(void *ud) {
    (void)ud;
    atomic_fetch_add(&log_freed_1, 1);
}
static void log_free_2(void *ud) {
    (void)ud;
    atomic_fetch_add(&log_freed_2, 1);
}

/* The log userdata is released exactly once: by the options when no service took it, or
 * after the options and every service made from them are gone; a replaced setting too. */
static void test_log_userdata_free(void) {
    atomic_store(&log_freed_1, 0);
    atomic_store(&log_freed_2, 0);
    ohreq_service_options *so = ohreq_service_options_new();
    CHECK_401(ohreq_service_options_set_log(so, log_cb, NULL, log_free_1, 0));
    CHECK_401(ohreq_service_options_set_log(so, log_cb, NULL, log_free_1, 6));
    CHECK_EQ(atomic_load(&log_freed_1), 0); /* failures keep nothing */
    CHECK_CODE(ohreq_service_options_set_log(so, log_cb, NULL, log_free_1, OHREQ_LOG_ERROR), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_log(so, log_cb, NULL, log_free_2, OHREQ_LOG_TRACE), OHREQ_OK);
    ohreq_service_options_free(so);
    CHECK_EQ(atomic_load(&log_freed_1), 1);
    CHECK_EQ(atomic_load(&log_freed_2), 1);

    atomic_store(&log_freed_1, 0);
    char dir[400], data[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    so = ohreq_service_options_new();
    CHECK_CODE(ohreq_service_options_set_data_dir(so, data), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_log(so, log_cb, NULL, log_free_1, OHREQ_LOG_DEBUG), OHREQ_OK);
    ohreq_service *svc = NULL;
    CHECK_CODE(ohreq_service_new(so, &svc), OHREQ_OK);
    ohreq_service_options_free(so);
    CHECK_EQ(atomic_load(&log_freed_1), 0); /* the service still logs */
    ohreq_service_free(svc);
    CHECK_EQ(atomic_load(&log_freed_1), 1);
}

/* ---- ohreq_download validation: 401s that leave the cache dir empty ---- */

#define CHECK_DL_FAIL(cli, url, fp, want, cache)                    \
    do {                                                            \
        ohreq_task *t_ = (ohreq_task *)&t_;                         \
        CHECK_FAIL(dl(cli, url, fp, &t_), want);                    \
        CHECK(t_ == (ohreq_task *)&t_);                             \
        CHECK_EQ(th_count_entries(cache), 0);                       \
    } while (0)

static void test_download_url_rules(void) {
    env e;
    env_open(&e, 1);
    ohreq_task *t = (ohreq_task *)&t;
    /* no url */
    CHECK_DL_FAIL(e.cli, NULL, "x.bin", OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, NULL, NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* length: 8193 bytes is one too many (checked before anything else) */
    const char *pre = "https://127.0.0.1:1/long.bin?p=";
    char *url = malloc(OHREQ_URL_MAX_BYTES + 2);
    memset(url, 'a', OHREQ_URL_MAX_BYTES + 1);
    memcpy(url, pre, strlen(pre));
    url[OHREQ_URL_MAX_BYTES + 1] = 0;
    CHECK_EQ(strlen(url), 8193);
    CHECK_DL_FAIL(e.cli, url, NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* schemes and syntax */
    CHECK_DL_FAIL(e.cli, "ftp://127.0.0.1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://", "x.bin", OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "http://", "x.bin", OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "", "x.bin", OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "127.0.0.1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "HTTPS://127.0.0.1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* line breaks anywhere, whitespace in the host (a space or tab in the path is valid and
     * percent-encoded on the wire: test_download url_percent_encoded) */
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1/a\r\nb.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1/a\nb.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1/a\rb.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://a b/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://a\tb/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* a URL ending in "/" names no file */
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1:1/dir/", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1:1/dir/", "sub/", OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(e.cli, "https://127.0.0.1:1/dir/", "internal://cache/", OHREQ_ERR_PARAMETER, e.cache);

    /* exactly 8192 bytes is accepted (the transfer itself fails later: port 1) */
    url[OHREQ_URL_MAX_BYTES] = 0;
    CHECK_EQ(strlen(url), 8192);
    CHECK_CODE(dl(e.cli, url, NULL, &t), OHREQ_OK);
    CHECK(t != (ohreq_task *)&t && t != NULL);
    if (t != (ohreq_task *)&t) {
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        ohreq_str u = ohreq_download_info_target_uri(info);
        CHECK_EQ(u.len, 8192);
        CHECK(u.data && strcmp(u.data, url) == 0);
        CHECK(strcmp(ohreq_download_info_file_name(info).data, "long.bin") == 0);
        ohreq_download_info_free(info);
        ohreq_task_free(t);
    }
    free(url);
    env_close(&e);
}

static void test_download_cleartext(void) {
    env e;
    env_open(&e, 1);
    ohreq_task *t = NULL;
    /* HTTPS only */
    ohreq_client *strict = mk_client(e.svc, e.cache, UID_A, 1, 0, NULL, 0);
    CHECK_DL_FAIL(strict, "http://127.0.0.1:1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    ohreq_client *dflt = mk_client(e.svc, e.cache, UID_A, 1, -1, NULL, 0); /* default: HTTPS only */
    CHECK_DL_FAIL(dflt, "http://127.0.0.1:1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* a per-domain rule not covering the host, or not its subdomains */
    ohreq_client *other = mk_client(e.svc, e.cache, UID_A, 1, 0, "example.test", 1);
    CHECK_DL_FAIL(other, "http://127.0.0.1:1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    CHECK_DL_FAIL(other, "http://a.example.test/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* base permitted, but the host's rule forbids it */
    ohreq_client *deny = mk_client(e.svc, e.cache, UID_A, 1, 1, "127.0.0.1", 0);
    CHECK_DL_FAIL(deny, "http://127.0.0.1:1/x.bin", NULL, OHREQ_ERR_PARAMETER, e.cache);
    /* https is fine for the strict client */
    CHECK_CODE(dl(strict, "https://127.0.0.1:1/s1.bin", NULL, &t), OHREQ_OK);
    ohreq_task_free(t);
    t = NULL;
    /* base forbidden, the host's rule permits it */
    ohreq_client *allow = mk_client(e.svc, e.cache, UID_A, 1, 0, "127.0.0.1", 1);
    CHECK_CODE(dl(allow, "http://127.0.0.1:1/c1.bin", NULL, &t), OHREQ_OK);
    ohreq_task_free(t);
    ohreq_client_free(strict);
    ohreq_client_free(dflt);
    ohreq_client_free(other);
    ohreq_client_free(deny);
    ohreq_client_free(allow);
    env_close(&e);
}

static ohreq_code dl_cfg(ohreq_client *cli, const char *url, const char *fp, const char *hn, const char *hv,
                         uint64_t conn, uint64_t total, ohreq_task **t) {
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, url), OHREQ_OK);
    if (fp) CHECK_CODE(ohreq_download_config_set_file_path(c, fp), OHREQ_OK);
    if (hn) CHECK_CODE(ohreq_download_config_add_header(c, hn, hv), OHREQ_OK);
    if (conn || total) CHECK_CODE(ohreq_download_config_set_timeout(c, conn, total), OHREQ_OK);
    ohreq_code rc = ohreq_download(cli, c, t);
    ohreq_download_config_free(c);
    return rc;
}

#define CHECK_CFG_FAIL(e, url, fp, hn, hv, conn, total)                                   \
    do {                                                                                  \
        ohreq_task *t_ = (ohreq_task *)&t_;                                               \
        CHECK_401(dl_cfg((e)->cli, url, fp, hn, hv, conn, total, &t_));                   \
        CHECK(t_ == (ohreq_task *)&t_);                                                   \
        CHECK_EQ(th_count_entries((e)->cache), 0);                                        \
    } while (0)

static void test_download_header_path_timeout_rules(void) {
    env e;
    env_open(&e, 1);
    const char *u = "https://127.0.0.1:1/f.bin";
    /* headers */
    CHECK_CFG_FAIL(&e, u, NULL, "X Bad", "v", 0, 0);
    CHECK_CFG_FAIL(&e, u, NULL, "X-Ok", "a\r\nInjected: 1", 0, 0);
    CHECK_CFG_FAIL(&e, u, NULL, "X-Ok", "a\nb", 0, 0);
    CHECK_CFG_FAIL(&e, u, NULL, "", "v", 0, 0);
    CHECK_CFG_FAIL(&e, u, NULL, "X:Y", "v", 0, 0);
    /* paths escaping the cache dir */
    CHECK_CFG_FAIL(&e, u, "../x", NULL, NULL, 0, 0);
    CHECK_CFG_FAIL(&e, u, "a/../../x", NULL, NULL, 0, 0);
    CHECK_CFG_FAIL(&e, u, "internal://cache/../x", NULL, NULL, 0, 0);
    CHECK_CFG_FAIL(&e, u, "/etc/x", NULL, NULL, 0, 0);
    CHECK_CFG_FAIL(&e, u, "/../../etc/x", NULL, NULL, 0, 0);
    char p[800];
    snprintf(p, sizeof p, "%s/../escape.bin", e.cache); /* absolute, normalizes outside */
    CHECK_CFG_FAIL(&e, u, p, NULL, NULL, 0, 0);
    /* the cache dir itself, or ".": in the sandbox, but a directory (13400001, B.6) */
    for (int i = 0; i < 2; i++) {
        ohreq_task *t_ = (ohreq_task *)&t_;
        CHECK_CODE(dl_cfg(e.cli, u, i ? "." : e.cache, NULL, NULL, 0, 0, &t_), OHREQ_ERR_FILE_IO);
        CHECK(t_ == (ohreq_task *)&t_);
        char m[512];
        CHECK(strstr(last_msg(m, sizeof m), "is a directory") != NULL);
        CHECK_EQ(th_count_entries(e.cache), 0);
    }
    /* timeouts */
    CHECK_CFG_FAIL(&e, u, "t0.bin", NULL, NULL, 0, 100);
    CHECK_CFG_FAIL(&e, u, "t1.bin", NULL, NULL, 1, 604801);
    CHECK_CFG_FAIL(&e, u, "t2.bin", NULL, NULL, 1, 0);
    CHECK_CFG_FAIL(&e, u, "t3.bin", NULL, NULL, 10, UINT64_MAX);
    CHECK_CFG_FAIL(&e, u, "t5.bin", NULL, NULL, UINT64_MAX, 100); /* libcurl takes a long */
    CHECK_CFG_FAIL(&e, u, "t6.bin", NULL, NULL, 604801, 100);
    /* accepted forms (the transfers themselves fail: port 1) */
    ohreq_task *t = NULL;
    CHECK_CODE(dl_cfg(e.cli, u, "t4.bin", NULL, NULL, 1, 604800, &t), OHREQ_OK);
    ohreq_task_free(t);
    t = NULL;
    CHECK_CODE(dl_cfg(e.cli, u, "sub/dir/h.bin", "X-Key", "v a l", 0, 0, &t), OHREQ_OK);
    ohreq_task_free(t);
    t = NULL;
    CHECK_CODE(dl_cfg(e.cli, u, "internal://cache/ic.bin", NULL, NULL, 0, 0, &t), OHREQ_OK);
    if (t) {
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        char real[PATH_MAX], want[PATH_MAX + 16];
        CHECK(realpath(e.cache, real) != NULL);
        snprintf(want, sizeof want, "%s/ic.bin", real);
        CHECK(strcmp(ohreq_download_info_file_path(info).data, want) == 0);
        CHECK(strcmp(ohreq_download_info_file_name(info).data, "ic.bin") == 0);
        ohreq_download_info_free(info);
    }
    ohreq_task_free(t);
    t = NULL;
    CHECK_CODE(dl_cfg(e.cli, u, "a/../inside.bin", NULL, NULL, 0, 0, &t), OHREQ_OK);
    ohreq_task_free(t);
    /* title and description reach DownloadInfo */
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, u), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_file_path(c, "td.bin"), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_title(c, "My title"), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_description(c, "My description \xe2\x82\xac"), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_network_type(c, OHREQ_NETWORK_WIFI), OHREQ_OK);
    t = NULL;
    CHECK_CODE(ohreq_download(e.cli, c, &t), OHREQ_OK);
    ohreq_download_config_free(c);
    if (t) {
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        CHECK(strcmp(ohreq_download_info_title(info).data, "My title") == 0);
        CHECK_EQ(ohreq_download_info_title(info).len, 8);
        CHECK(strcmp(ohreq_download_info_description(info).data, "My description \xe2\x82\xac") == 0);
        CHECK(strcmp(ohreq_download_info_target_uri(info).data, u) == 0);
        CHECK_EQ(ohreq_download_info_id(info), ohreq_task_id(t));
        ohreq_download_info_free(info);
        ohreq_task_free(t);
    }
    env_close(&e);
}

static void test_download_target_rules(void) {
    need_server();
    env e;
    env_open(&e, 1);
    char p[800], ref[800], url[512];
    /* an existing file: 13400002, untouched, no part file */
    snprintf(p, sizeof p, "%s/exists.bin", e.cache);
    snprintf(ref, sizeof ref, "%s/ref.bin", e.dir);
    th_write_pattern(p, 4096, 3);
    th_write_pattern(ref, 4096, 3);
    ohreq_task *t = (ohreq_task *)&t;
    CHECK_FAIL(dl(e.cli, "https://127.0.0.1:1/exists.bin", NULL, &t), OHREQ_ERR_FILE_PATH);
    CHECK_FAIL(dl(e.cli, "https://127.0.0.1:1/zz.bin", "exists.bin", &t), OHREQ_ERR_FILE_PATH);
    CHECK_FAIL(dl(e.cli, "https://127.0.0.1:1/zz.bin", "internal://cache/exists.bin", &t), OHREQ_ERR_FILE_PATH);
    CHECK_FAIL(dl(e.cli, "https://127.0.0.1:1/zz.bin", p, &t), OHREQ_ERR_FILE_PATH);
    CHECK(t == (ohreq_task *)&t);
    CHECK(th_same_file(p, ref));
    CHECK_EQ(th_count_entries(e.cache), 1);
    /* a 401 wins over the existing target */
    CHECK_401(dl_cfg(e.cli, "https://127.0.0.1:1/exists.bin", NULL, "X Bad", "v", 0, 0, &t));
    CHECK_401(dl(e.cli, "ftp://127.0.0.1:1/exists.bin", NULL, &t));
    /* a directory at the target: 13400001 */
    snprintf(p, sizeof p, "%s/adir", e.cache);
    mkdir(p, 0755);
    CHECK_FAIL(dl(e.cli, "https://127.0.0.1:1/adir", NULL, &t), OHREQ_ERR_FILE_IO);
    CHECK(t == (ohreq_task *)&t);
    CHECK_EQ(th_count_entries(e.cache), 2);
    CHECK_EQ(th_count_entries(p), 0);

    /* no INTERNET: 201, nothing created, and no task to find */
    ohreq_client *noi = th_client(e.svc, e.cache, NULL, 1);
    CHECK_FAIL(dl(noi, "https://127.0.0.1:1/noi.bin", NULL, &t), OHREQ_ERR_PERMISSION);
    CHECK_FAIL(dl(noi, "https://127.0.0.1:1/d/noi.bin", "deep/dir/noi.bin", &t), OHREQ_ERR_PERMISSION);
    CHECK(t == (ohreq_task *)&t);
    CHECK_EQ(th_count_entries(e.cache), 2);
    size_t n = 99;
    CHECK_CODE(ohreq_search(noi, NULL, NULL, 0, &n), OHREQ_OK);
    CHECK_EQ(n, 0);
    /* 401 still wins over 201 */
    CHECK_401(dl(noi, "ftp://127.0.0.1:1/noi.bin", NULL, &t));

    /* a target another live task is downloading: 13400002, and nothing new on disk */
    ohreq_task *a = NULL;
    CHECK_CODE(dl(e.cli, slow("busy.bin", url, sizeof url), "busy.bin", &a), OHREQ_OK);
    int before = th_count_entries(e.cache);
    CHECK_FAIL(dl(e.cli, slow("busy.bin", url, sizeof url), "busy.bin", &t), OHREQ_ERR_FILE_PATH);
    CHECK(t == (ohreq_task *)&t);
    CHECK_EQ(th_count_entries(e.cache), before);
    /* a handle of a client without INTERNET (same uid, so it may open the task): the
     * operations that need the permission answer 201 */
    ohreq_task *a2 = NULL;
    CHECK_CODE(ohreq_task_open(noi, ohreq_task_id(a), &a2), OHREQ_OK);
    if (a2) {
        CHECK_FAIL(ohreq_task_suspend(a2), OHREQ_ERR_PERMISSION);
        CHECK_FAIL(ohreq_task_delete(a2), OHREQ_ERR_PERMISSION);
        char mb[64];
        size_t mn = 0;
        CHECK_FAIL(ohreq_task_get_mime_type(a2, mb, sizeof mb, &mn), OHREQ_ERR_PERMISSION);
        ohreq_download_info *ai = NULL;
        CHECK_CODE(ohreq_task_get_download_info(a2, &ai), OHREQ_OK); /* query needs no permission */
        ohreq_download_info_free(ai);
        ohreq_task_free(a2);
    }
    ohreq_task_free(a);
    ohreq_client_free(noi);
    env_close(&e);
}

/* ---- task handles and callbacks (poll mode: deterministic delivery) ---- */

static void pause_cycle(ohreq_task *t) {
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
}

static void test_task_on_validation(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "onval.bin");
    ud_t u;
    ud_init(&u);
    CHECK_401(ohreq_task_on(t, OHREQ_EVENT_PAUSE, NULL, &u, ud_free_fn));
    /* agent-only kinds: a legacy task never emits them */
    static const uint32_t agent_only[] = {OHREQ_EVENT_COMPLETED, OHREQ_EVENT_FAILED, OHREQ_EVENT_RESUME,
                                          OHREQ_EVENT_RESPONSE, OHREQ_EVENT_WAIT, OHREQ_EVENT_FAULT_OCCUR};
    for (size_t i = 0; i < sizeof agent_only / sizeof agent_only[0]; i++)
        CHECK_401(ohreq_task_on(t, agent_only[i], count_cb, &u, ud_free_fn));
    CHECK_EQ(atomic_load(&u.freed), 0); /* nothing kept, nothing released */
    /* every legacy kind is accepted */
    for (uint32_t k = OHREQ_EVENT_PROGRESS; k <= OHREQ_EVENT_HEADER_RECEIVE; k++)
        CHECK_CODE(ohreq_task_on(t, k, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_EQ(atomic_load(&u.freed), 0);
    ohreq_task_free(t);
    /* one userdata_free per successful (kind, cb, userdata) registration */
    CHECK_EQ(atomic_load(&u.freed), OHREQ_EVENT_HEADER_RECEIVE + 1);
    env_close(&e);
}

static void test_task_on_dedupe(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "dedupe.bin");
    uint32_t id = ohreq_task_id(t);
    ud_t u, v;
    ud_init(&u);
    ud_init(&v);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK); /* stored once */
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, NULL), OHREQ_OK);       /* same key */
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, other_cb, &u, NULL), OHREQ_OK);       /* another cb */
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &v, ud_free_fn), OHREQ_OK); /* another ud */
    CHECK_EQ(atomic_load(&u.freed), 0);

    int fd = ohreq_service_event_fd(e.svc);
    CHECK(fd >= 0);
    pause_cycle(t);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.calls[OHREQ_EVENT_PAUSE]), 2); /* count_cb once + other_cb once */
    CHECK_EQ(atomic_load(&v.calls[OHREQ_EVENT_PAUSE]), 1);
    CHECK_EQ(u.ev_task_id, id);
    CHECK_EQ(u.ev_state, OHREQ_STATE_PAUSED);
    CHECK_EQ(u.ev_code, 0);
    CHECK_EQ(u.ev_index, 0);
    CHECK_EQ(atomic_load(&u.on_main), 2); /* poll mode: inside dispatch, on this thread */
    pause_cycle(t);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.calls[OHREQ_EVENT_PAUSE]), 4);
    CHECK_EQ(atomic_load(&v.calls[OHREQ_EVENT_PAUSE]), 2);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1); /* the deduplicated registration: once */
    CHECK_EQ(atomic_load(&v.freed), 1);
    /* after free, nothing is queued for the handle any more */
    size_t k = 9;
    CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
    CHECK_EQ(k, 0);
    env_close(&e);
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&v.freed), 1);
}

static void test_task_off_semantics(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "off.bin");
    ud_t a, b, c, r;
    ud_init(&a);
    ud_init(&b);
    ud_init(&c);
    ud_init(&r);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &a, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &b, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, other_cb, &c, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_REMOVE, count_cb, &r, ud_free_fn), OHREQ_OK);

    /* off of one (cb, userdata): released before off returns */
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PAUSE, count_cb, &a), OHREQ_OK);
    CHECK_EQ(atomic_load(&a.freed), 1);
    /* unknown callbacks are no-ops: wrong userdata, wrong cb, wrong kind, twice */
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PAUSE, count_cb, &a), OHREQ_OK);
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PAUSE, other_cb, &b), OHREQ_OK);
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PROGRESS, count_cb, &b), OHREQ_OK);
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_FAIL, NULL, NULL), OHREQ_OK);
    CHECK_EQ(atomic_load(&a.freed), 1);
    CHECK_EQ(atomic_load(&b.freed), 0);
    CHECK_EQ(atomic_load(&c.freed), 0);
    CHECK_EQ(atomic_load(&r.freed), 0);

    pause_cycle(t);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&a.total), 0);
    CHECK_EQ(atomic_load(&b.total), 1);
    CHECK_EQ(atomic_load(&c.total), 1);

    /* off(kind, NULL, NULL): every callback of that kind, the other kinds stay */
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PAUSE, NULL, NULL), OHREQ_OK);
    CHECK_EQ(atomic_load(&b.freed), 1);
    CHECK_EQ(atomic_load(&c.freed), 1);
    CHECK_EQ(atomic_load(&r.freed), 0);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK_CODE(ohreq_task_delete(t), OHREQ_OK);
    /* The pause (and a final progress) are queued too, since a handle is open, but only
     * the remove callback is still subscribed. */
    CHECK(dispatch_n(e.svc, 1) >= 1);
    CHECK_EQ(atomic_load(&b.total), 1);
    CHECK_EQ(atomic_load(&c.total), 1);
    CHECK_EQ(atomic_load(&r.calls[OHREQ_EVENT_REMOVE]), 1);
    CHECK_EQ(r.ev_state, OHREQ_STATE_REMOVED);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&a.freed), 1);
    CHECK_EQ(atomic_load(&b.freed), 1);
    CHECK_EQ(atomic_load(&c.freed), 1);
    CHECK_EQ(atomic_load(&r.freed), 1);
    env_close(&e);
}

/* Two handles on one task subscribe independently; freeing one leaves the other. */
static void test_two_handles(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "two.bin");
    ohreq_task *t2 = NULL;
    CHECK_CODE(ohreq_task_open(e.cli, ohreq_task_id(t), &t2), OHREQ_OK);
    if (!t2) exit(2);
    CHECK_EQ(ohreq_task_id(t2), ohreq_task_id(t));
    ud_t u, v;
    ud_init(&u);
    ud_init(&v);
    /* the same (kind, cb, userdata) on two handles is two registrations */
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t2, OHREQ_EVENT_PAUSE, count_cb, &v, ud_free_fn), OHREQ_OK);
    pause_cycle(t2);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK_EQ(atomic_load(&v.total), 1);
    /* off on t2 does not touch t's registration */
    CHECK_CODE(ohreq_task_off(t2, OHREQ_EVENT_PAUSE, NULL, NULL), OHREQ_OK);
    CHECK_EQ(atomic_load(&v.freed), 1);
    CHECK_EQ(atomic_load(&u.freed), 0);
    CHECK_CODE(ohreq_task_on(t2, OHREQ_EVENT_PAUSE, count_cb, &v, ud_free_fn), OHREQ_OK);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&v.freed), 1);
    pause_cycle(t2);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK_EQ(atomic_load(&v.total), 2);
    ohreq_task_free(t2);
    CHECK_EQ(atomic_load(&v.freed), 2);
    env_close(&e);
}

static void test_poll_mode(void) {
    need_server();
    env e;
    env_open(&e, 1);
    int fd = ohreq_service_event_fd(e.svc);
    CHECK(fd >= 0);
    CHECK_EQ(ohreq_service_event_fd(e.svc), fd); /* stable */
    CHECK(!fd_readable(fd, 0));
    size_t k = 5;
    CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
    CHECK_EQ(k, 0);

    ohreq_task *t = slow_task(e.cli, "poll.bin");
    ud_t u;
    ud_init(&u);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    /* nothing delivered without dispatch */
    pause_cycle(t);
    CHECK(fd_readable(fd, 2000));
    th_sleep_ms(50);
    CHECK_EQ(atomic_load(&u.total), 0);
    pause_cycle(t);
    CHECK(fd_readable(fd, 2000));
    k = 0;
    CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
    CHECK_EQ(k, 2);
    CHECK_EQ(atomic_load(&u.total), 2);
    CHECK_EQ(atomic_load(&u.on_main), 2);
    CHECK(!fd_readable(fd, 0)); /* drained */
    k = 5;
    CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
    CHECK_EQ(k, 0);

    /* dispatch on a thread-mode service is refused */
    char d2[700];
    snprintf(d2, sizeof d2, "%s/data-thread", e.dir);
    ohreq_service *ts = th_service(d2, 0);
    CHECK_EQ(ohreq_service_event_fd(ts), -1);
    k = 33;
    CHECK_401(ohreq_service_dispatch(ts, &k));
    CHECK_EQ(k, 33);
    ohreq_service_free(ts);

    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    env_close(&e);
}

static void test_callback_reentrancy(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "reent.bin");
    ud_t u;
    ud_init(&u);
    u.action = ACT_NESTED;
    u.svc = e.svc;
    u.task = t;
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK_EQ(u.rc_nested, OHREQ_ERR_OTHERS); /* nested dispatch refused */
    CHECK_EQ(u.rc_info, OHREQ_OK);           /* other calls work */
    CHECK_EQ(u.info_status, OHREQ_SESSION_PAUSED);
    CHECK_EQ(u.info_paused_reason, OHREQ_PAUSED_BY_USER);
    CHECK_EQ(u.ev_state, OHREQ_STATE_PAUSED);
    CHECK_EQ(u.ev_task_id, ohreq_task_id(t));

    /* the paused task's DownloadInfo (C.14) */
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    CHECK_EQ(ohreq_download_info_id(info), ohreq_task_id(t));
    CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
    CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_BY_USER);
    CHECK_EQ(ohreq_download_info_failed_reason(info), -1);
    CHECK(strcmp(ohreq_download_info_title(info).data, "download") == 0);
    CHECK_EQ(ohreq_download_info_description(info).len, 0);
    CHECK(strcmp(ohreq_download_info_file_name(info).data, "reent.bin") == 0);
    ohreq_download_info_free(info);

    /* suspend on a paused task: wrong state */
    CHECK_FAIL(ohreq_task_suspend(t), OHREQ_ERR_TASK_STATE);
    CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
    CHECK_FAIL(ohreq_task_restore(t), OHREQ_ERR_TASK_STATE); /* not paused */
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    env_close(&e);
}

static void test_off_inside_callback(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "offin.bin");
    ud_t u, w;
    ud_init(&u);
    ud_init(&w);
    u.action = ACT_OFF_SELF;
    u.task = t;
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, other_cb, &w, ud_free_fn), OHREQ_OK); /* witness */
    pause_cycle(t);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK_EQ(u.rc_off, OHREQ_OK);
    CHECK_EQ(u.freed_during_cb, 0); /* released only after the callback returned */
    CHECK_EQ(atomic_load(&u.freed), 1);
    pause_cycle(t);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1); /* not called again */
    CHECK_EQ(atomic_load(&w.total), 2);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&w.freed), 1);
    env_close(&e);
}

static void test_free_inside_callback(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "freein.bin");
    uint32_t id = ohreq_task_id(t);
    ud_t u, u2;
    ud_init(&u);
    ud_init(&u2);
    u.action = ACT_FREE_SELF;
    u.task = t;
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_REMOVE, count_cb, &u2, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK(u.task == NULL);
    CHECK_EQ(u.freed_during_cb, 0);
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&u2.freed), 1); /* the handle's other subscriptions ended too */
    /* the task lives on: open it again and remove it; the freed handle hears nothing */
    ohreq_task *t2 = NULL;
    CHECK_CODE(ohreq_task_open(e.cli, id, &t2), OHREQ_OK);
    if (t2) {
        CHECK_CODE(ohreq_task_restore(t2), OHREQ_OK);
        CHECK_CODE(ohreq_task_suspend(t2), OHREQ_OK);
        CHECK_CODE(ohreq_task_delete(t2), OHREQ_OK);
        size_t k = 9;
        CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
        CHECK_EQ(atomic_load(&u.total), 1);
        CHECK_EQ(atomic_load(&u2.total), 0);
        ohreq_task_free(t2);
    }
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&u2.freed), 1);
    env_close(&e);
}

static void test_remove_and_states(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_task *t = slow_task(e.cli, "rm.bin");
    ud_t u;
    ud_init(&u);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_REMOVE, count_cb, &u, ud_free_fn), OHREQ_OK);
    CHECK_CODE(ohreq_task_delete(t), OHREQ_OK);
    CHECK_EQ(dispatch_n(e.svc, 1), 1);
    CHECK_EQ(atomic_load(&u.calls[OHREQ_EVENT_REMOVE]), 1);
    CHECK_EQ(u.ev_state, OHREQ_STATE_REMOVED);
    CHECK_EQ(u.ev_task_id, ohreq_task_id(t));
    /* a second delete: not found (reference C.1 / E.3) */
    CHECK_FAIL(ohreq_task_delete(t), OHREQ_ERR_TASK_NOT_FOUND);
    /* suspend / restore on REMOVED: C.1 says 21900007; the header also allows 21900006 */
    ohreq_code rc = ohreq_task_suspend(t);
    CHECK(rc == OHREQ_ERR_TASK_STATE || rc == OHREQ_ERR_TASK_NOT_FOUND);
    fprintf(stderr, "  note: suspend on a REMOVED task gives %d\n", rc);
    CHECK_EQ(rc, OHREQ_ERR_TASK_STATE); /* reference C.1: pause on REMOVED → 21900007 */
    rc = ohreq_task_restore(t);
    CHECK(rc == OHREQ_ERR_TASK_STATE || rc == OHREQ_ERR_TASK_NOT_FOUND);
    CHECK_EQ(rc, OHREQ_ERR_TASK_STATE); /* reference C.1: resume on REMOVED → 21900007 */
    size_t k = 9;
    CHECK_CODE(ohreq_service_dispatch(e.svc, &k), OHREQ_OK);
    CHECK_EQ(k, 0); /* no second remove event */
    CHECK_EQ(atomic_load(&u.calls[OHREQ_EVENT_REMOVE]), 1);
    /* the part file is gone once the engine has let go of the run (bounded wait: up to 5 s,
     * which valgrind needs; natively it takes milliseconds) */
    char part[800];
    snprintf(part, sizeof part, "%s/rm.bin", e.cache);
    for (int i = 0; i < 250 && th_count_entries(e.cache) != 0; i++) th_sleep_ms(20);
    CHECK_EQ(th_count_entries(e.cache), 0);
    CHECK(!th_exists(part));
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    env_close(&e);
}

/* Thread mode: callbacks on a library thread; ohreq_task_free is a barrier. */
static void test_thread_mode_barrier(void) {
    need_server();
    env e;
    env_open(&e, 0);
    CHECK_EQ(ohreq_service_event_fd(e.svc), -1);
    ohreq_task *t = slow_task(e.cli, "thr.bin");
    ud_t u;
    ud_init(&u);
    u.sleep_ms = 30; /* widen the window in which a callback is running */
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    pause_cycle(t);
    for (int i = 0; i < 200 && atomic_load(&u.total) < 1; i++) th_sleep_ms(10);
    CHECK_EQ(atomic_load(&u.total), 1);
    CHECK_EQ(atomic_load(&u.on_main), 0);
    CHECK_EQ(atomic_load(&u.off_thread), 1);
    /* queue several events, free while they are being delivered */
    pause_cycle(t);
    pause_cycle(t);
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    th_sleep_ms(5);
    ohreq_task_free(t);
    atomic_store(&u.handle_freed, 1);
    int freed_at_return = atomic_load(&u.freed);
    int total_at_return = atomic_load(&u.total);
    th_sleep_ms(300);
    CHECK_EQ(freed_at_return, 1); /* released before ohreq_task_free returned */
    CHECK_EQ(atomic_load(&u.after_free_calls), 0);
    CHECK_EQ(atomic_load(&u.total), total_at_return); /* no callback finished after it either */
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK(atomic_load(&u.total) >= 1 && atomic_load(&u.total) <= 4);
    env_close(&e);
    CHECK_EQ(atomic_load(&u.freed), 1);
}

/* Thread mode: ohreq_task_off from another thread is a barrier too. */
static void test_thread_mode_off_barrier(void) {
    need_server();
    env e;
    env_open(&e, 0);
    ohreq_task *t = slow_task(e.cli, "thoff.bin");
    ud_t u;
    ud_init(&u);
    u.sleep_ms = 40;
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    pause_cycle(t);
    pause_cycle(t);
    /* wait until a callback is running, then off */
    for (int i = 0; i < 200 && atomic_load(&u.on_main) + atomic_load(&u.off_thread) < 1; i++) th_sleep_ms(2);
    CHECK_CODE(ohreq_task_off(t, OHREQ_EVENT_PAUSE, count_cb, &u), OHREQ_OK);
    atomic_store(&u.handle_freed, 1);
    int started = atomic_load(&u.on_main) + atomic_load(&u.off_thread);
    CHECK_EQ(atomic_load(&u.total), started); /* the running one finished before off returned */
    CHECK_EQ(atomic_load(&u.freed), 1);
    th_sleep_ms(200);
    CHECK_EQ(atomic_load(&u.after_free_calls), 0);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    env_close(&e);
}

/* Freeing the task handle, the client and the service from inside a callback (allowed: the
 * shutdown finishes on a helper thread after the callback returns). No crash, no deadlock,
 * and the data dir is released within a bounded time. Both dispatch modes. */
typedef struct {
    ohreq_service *svc;
    ohreq_client *cli;
    ohreq_task *t;
    atomic_int calls;
} free_all_ud;

static void free_all_cb(void *p, const ohreq_event *ev) {
    free_all_ud *u = p;
    (void)ev;
    atomic_fetch_add(&u->calls, 1);
    ohreq_task_free(u->t);
    u->t = NULL;
    ohreq_client_free(u->cli);
    u->cli = NULL;
    ohreq_service_free(u->svc);
    u->svc = NULL;
}

static void free_all_inside_callback(int poll) {
    char dir[400], data[600], cache[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(cache, sizeof cache, "%s/cache", dir);
    mkdir(cache, 0755);
    free_all_ud u;
    memset(&u, 0, sizeof u);
    u.svc = th_service(data, poll);
    u.cli = th_client(u.svc, cache, NULL, 0);
    u.t = slow_task(u.cli, "freeall.bin");
    ohreq_service *svc = u.svc;
    CHECK_CODE(ohreq_task_on(u.t, OHREQ_EVENT_PAUSE, free_all_cb, &u, NULL), OHREQ_OK);
    CHECK_CODE(ohreq_task_suspend(u.t), OHREQ_OK);
    if (poll) {
        CHECK(fd_readable(ohreq_service_event_fd(svc), 2000));
        size_t n = 0;
        CHECK_CODE(ohreq_service_dispatch(svc, &n), OHREQ_OK);
        /* the pause, and the run's last progress if the engine already let go of it */
        CHECK(n == 1 || n == 2);
    }
    for (int i = 0; i < 300 && atomic_load(&u.calls) == 0; i++) th_sleep_ms(10);
    CHECK_EQ(atomic_load(&u.calls), 1);
    ohreq_service_options *o = ohreq_service_options_new();
    CHECK_CODE(ohreq_service_options_set_data_dir(o, data), OHREQ_OK);
    ohreq_service *s2 = NULL;
    int ok = 0;
    for (int i = 0; i < 250 && !ok; i++) {
        if (ohreq_service_new(o, &s2) == OHREQ_OK)
            ok = 1;
        else
            th_sleep_ms(20);
    }
    CHECK(ok); /* the helper thread finished the shutdown */
    ohreq_service_options_free(o);
    if (ok) ohreq_service_free(s2);
}

static void test_free_all_inside_callback_thread(void) {
    need_server();
    free_all_inside_callback(0);
}

static void test_free_all_inside_callback_poll(void) {
    need_server();
    free_all_inside_callback(1);
}

static ohreq_client *client_b(ohreq_service *svc, const char *dir) {
    char cache[700];
    snprintf(cache, sizeof cache, "%s/cache-b", dir);
    mkdir(cache, 0755);
    return mk_client(svc, cache, UID_B, 1, 1, NULL, 0);
}

static int has_id(const uint32_t *ids, size_t n, uint32_t id) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id) return 1;
    return 0;
}

static void test_search_and_open(void) {
    need_server();
    env e;
    env_open(&e, 1);
    ohreq_client *b = client_b(e.svc, e.dir);
    size_t n = 77;
    CHECK_CODE(ohreq_search(e.cli, NULL, NULL, 0, &n), OHREQ_OK);
    CHECK_EQ(n, 0);
    ohreq_task *a1 = slow_task(e.cli, "sa1.bin");
    ohreq_task *a2 = slow_task(e.cli, "sa2.bin");
    ohreq_task *b1 = slow_task(b, "sb1.bin");
    uint32_t ia1 = ohreq_task_id(a1), ia2 = ohreq_task_id(a2), ib1 = ohreq_task_id(b1);
    CHECK(ia1 != ia2 && ia1 != ib1 && ia2 != ib1);

    ohreq_filter *f = ohreq_filter_new();
    n = 0;
    CHECK_CODE(ohreq_search(e.cli, f, NULL, 0, &n), OHREQ_OK); /* count only */
    CHECK_EQ(n, 2);
    uint32_t ids[8];
    for (int i = 0; i < 8; i++) ids[i] = 0xdeadbeef;
    n = 0;
    CHECK_CODE(ohreq_search(e.cli, f, ids, 1, &n), OHREQ_OK); /* cap smaller than the count */
    CHECK_EQ(n, 2);
    CHECK(ids[0] == ia1 || ids[0] == ia2);
    CHECK_EQ(ids[1], 0xdeadbeef);
    n = 0;
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 2);
    CHECK(has_id(ids, n, ia1) && has_id(ids, n, ia2));
    CHECK(!has_id(ids, n, ib1));
    CHECK_EQ(ids[2], 0xdeadbeef);
    n = 0;
    CHECK_CODE(ohreq_search(b, NULL, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], ib1);

    /* filter criteria */
    CHECK_CODE(ohreq_filter_set_action(f, OHREQ_ACTION_UPLOAD), OHREQ_OK);
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 0);
    CHECK_CODE(ohreq_filter_set_action(f, OHREQ_ACTION_DOWNLOAD), OHREQ_OK);
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 2);
    CHECK_CODE(ohreq_task_suspend(a1), OHREQ_OK);
    CHECK_CODE(ohreq_filter_set_state(f, OHREQ_STATE_PAUSED), OHREQ_OK);
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 1);
    CHECK_EQ(ids[0], ia1);
    ohreq_filter_free(f);

    /* time window: before < after is 401; a window in the past finds nothing */
    f = ohreq_filter_new();
    CHECK_CODE(ohreq_filter_set_before(f, 1000), OHREQ_OK);
    CHECK_CODE(ohreq_filter_set_after(f, 2000), OHREQ_OK);
    n = 55;
    CHECK_401(ohreq_search(e.cli, f, ids, 8, &n));
    CHECK_EQ(n, 55);
    CHECK_CODE(ohreq_filter_set_after(f, 1000), OHREQ_OK); /* before == after is fine */
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 0);
    CHECK_CODE(ohreq_filter_set_before(f, UINT64_MAX / 2), OHREQ_OK);
    CHECK_CODE(ohreq_filter_set_after(f, 0), OHREQ_OK);
    CHECK_CODE(ohreq_search(e.cli, f, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 2);
    ohreq_filter_free(f);

    /* open: own task yes, another uid's task and bogus ids are "not found" */
    ohreq_task *o = (ohreq_task *)&o;
    CHECK_FAIL(ohreq_task_open(e.cli, ib1, &o), OHREQ_ERR_TASK_NOT_FOUND);
    CHECK_FAIL(ohreq_task_open(b, ia1, &o), OHREQ_ERR_TASK_NOT_FOUND);
    uint32_t bogus = 1;
    while (bogus == ia1 || bogus == ia2 || bogus == ib1) bogus++;
    CHECK_FAIL(ohreq_task_open(e.cli, bogus, &o), OHREQ_ERR_TASK_NOT_FOUND);
    CHECK_FAIL(ohreq_task_open(e.cli, 0, &o), OHREQ_ERR_TASK_NOT_FOUND);
    CHECK_FAIL(ohreq_task_open(e.cli, UINT32_MAX, &o), OHREQ_ERR_TASK_NOT_FOUND);
    CHECK(o == (ohreq_task *)&o);
    CHECK_CODE(ohreq_task_open(b, ib1, &o), OHREQ_OK);
    if (o != (ohreq_task *)&o) ohreq_task_free(o);

    ohreq_task_free(a1);
    ohreq_task_free(a2);
    ohreq_task_free(b1);
    ohreq_client_free(b);
    env_close(&e);
}

/* Handles outlive their service: calls answer 13400003, frees work. */
static void test_after_service_free(void) {
    need_server();
    env e;
    env_open(&e, 0);
    ohreq_task *t = slow_task(e.cli, "late.bin");
    uint32_t id = ohreq_task_id(t);
    ud_t u;
    ud_init(&u);
    CHECK_CODE(ohreq_task_on(t, OHREQ_EVENT_PAUSE, count_cb, &u, ud_free_fn), OHREQ_OK);
    ohreq_download_config *dc = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(dc, "https://127.0.0.1:1/late2.bin"), OHREQ_OK);
    /* thread mode: events queued at shutdown are still delivered */
    u.sleep_ms = 20;
    CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
    ohreq_service_free(e.svc);
    e.svc = NULL;
    CHECK_EQ(atomic_load(&u.calls[OHREQ_EVENT_PAUSE]), 1);
    CHECK_EQ(atomic_load(&u.total), 1);

    CHECK_EQ(ohreq_task_id(t), id);
    CHECK_FAIL(ohreq_task_suspend(t), OHREQ_ERR_SERVICE);
    CHECK_FAIL(ohreq_task_restore(t), OHREQ_ERR_SERVICE);
    CHECK_FAIL(ohreq_task_delete(t), OHREQ_ERR_SERVICE);
    ohreq_download_info *info = (ohreq_download_info *)&info;
    CHECK_FAIL(ohreq_task_get_download_info(t, &info), OHREQ_ERR_SERVICE);
    if (info != (ohreq_download_info *)&info) ohreq_download_info_free(info);
    char buf[64];
    size_t n = 0;
    CHECK_FAIL(ohreq_task_get_mime_type(t, buf, sizeof buf, &n), OHREQ_ERR_SERVICE);
    ohreq_task *t2 = (ohreq_task *)&t2;
    CHECK_FAIL(ohreq_download(e.cli, dc, &t2), OHREQ_ERR_SERVICE);
    CHECK(t2 == (ohreq_task *)&t2);
    CHECK_FAIL(ohreq_task_open(e.cli, id, &t2), OHREQ_ERR_SERVICE);
    if (t2 != (ohreq_task *)&t2) ohreq_task_free(t2);
    n = 0;
    CHECK_FAIL(ohreq_search(e.cli, NULL, NULL, 0, &n), OHREQ_ERR_SERVICE);
    ud_t v;
    ud_init(&v);
    ohreq_code rc = ohreq_task_on(t, OHREQ_EVENT_REMOVE, count_cb, &v, ud_free_fn);
    CHECK_EQ(rc, OHREQ_ERR_SERVICE);
    /* off and set_foreground: whatever they answer, no crash */
    ohreq_code rc2 = ohreq_task_off(t, OHREQ_EVENT_PROGRESS, NULL, NULL);
    CHECK(rc2 == OHREQ_OK || rc2 == OHREQ_ERR_SERVICE);
    rc2 = ohreq_client_set_foreground(e.cli, false);
    CHECK(rc2 == OHREQ_OK || rc2 == OHREQ_ERR_SERVICE);
    CHECK_EQ(atomic_load(&u.freed), 0);
    ohreq_task_free(t);
    CHECK_EQ(atomic_load(&u.freed), 1);
    CHECK_EQ(atomic_load(&v.freed), rc == OHREQ_OK ? 1 : 0);
    CHECK_EQ(atomic_load(&u.after_free_calls), 0);
    ohreq_download_config_free(dc);
    ohreq_client_free(e.cli);
    /* the data dir is free again: a new service restores the task */
    ohreq_service *s2 = th_service(e.data, 1);
    ohreq_client *c2 = th_client(s2, e.cache, NULL, 0);
    ohreq_task *t3 = NULL;
    CHECK_CODE(ohreq_task_open(c2, id, &t3), OHREQ_OK);
    ohreq_task_free(t3);
    ohreq_client_free(c2);
    ohreq_service_free(s2);
}

/* Thread mode: a task that ends before anyone listens (the dispatcher runs meanwhile) still
 * tells its first listeners: the last unheard event of each kind goes to the first listener
 * of that kind; kinds already heard are not replayed to later listeners. */
static void test_late_listener_gets_unheard_events(void) {
    need_server();
    env e;
    env_open(&e, 0);
    char url[512], src[700], dst[700];
    snprintf(src, sizeof src, "%s/late.bin", srv.root);
    th_write_pattern(src, 5000, 9);
    snprintf(dst, sizeof dst, "%s/late.bin", e.cache);
    ohreq_task *ok = NULL, *bad = NULL;
    CHECK_CODE(dl(e.cli, th_url(&srv, 0, "/files/late.bin", url, sizeof url), "late.bin", &ok), OHREQ_OK);
    CHECK_CODE(dl(e.cli, th_url(&srv, 0, "/files/no-such-file.bin", url, sizeof url), "none.bin", &bad), OHREQ_OK);
    if (!ok || !bad) {
        ohreq_task_free(ok);
        ohreq_task_free(bad);
        env_close(&e);
        return;
    }
    CHECK_EQ(th_wait_file_size(dst, 5000, 5000), 5000);
    ohreq_download_info *info = NULL;
    for (int i = 0; i < 100; i++) { /* until the 404 has failed the other one, up to 5 s */
        int failed = 0;
        if (ohreq_task_get_download_info(bad, &info) == OHREQ_OK) {
            failed = ohreq_download_info_status(info) == OHREQ_SESSION_FAILED;
            ohreq_download_info_free(info);
        }
        if (failed) break;
        th_sleep_ms(50);
    }
    th_sleep_ms(200); /* the dispatcher has had every event by now, with nobody listening */
    th_rec a, b, c;
    th_rec_init(&a);
    th_rec_init(&b);
    th_rec_init(&c);
    th_rec_attach(&a, ok);
    CHECK_EQ(th_rec_wait_end(&a, 3000), OHREQ_EVENT_COMPLETE);
    CHECK_EQ(th_rec_count(&a, OHREQ_EVENT_PROGRESS), 1); /* the last progress only */
    CHECK_EQ(a.last_processed, 5000);
    CHECK_EQ(a.n_order >= 2 ? a.order[0] : -1, OHREQ_EVENT_PROGRESS); /* in the task's order */
    th_rec_attach(&b, bad);
    CHECK_EQ(th_rec_wait_end(&b, 3000), OHREQ_EVENT_FAIL);
    CHECK_EQ(b.last_code, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    /* a second handle's listeners come after the kinds were heard: nothing old for them */
    ohreq_task *again = NULL;
    CHECK_CODE(ohreq_task_open(e.cli, ohreq_task_id(ok), &again), OHREQ_OK);
    if (again) th_rec_attach(&c, again);
    th_sleep_ms(300);
    int heard = 0;
    for (unsigned k = 0; k < TH_KINDS; k++) heard += th_rec_count(&c, k);
    CHECK_EQ(heard, 0);
    ohreq_task_free(again);
    ohreq_task_free(ok);
    ohreq_task_free(bad);
    th_rec_destroy(&a);
    th_rec_destroy(&b);
    th_rec_destroy(&c);
    env_close(&e);
}

static const th_test tests[] = {
    {"late_listener_gets_unheard_events", test_late_listener_gets_unheard_events},
    {"version_and_code_messages", test_version_and_code_messages},
    {"constants", test_constants},
    {"null_builders", test_null_builders},
    {"null_handles", test_null_handles},
    {"last_error_message", test_last_error_message},
    {"invalid_utf8", test_invalid_utf8},
    {"out_of_range_values", test_out_of_range_values},
    {"service_options_validation", test_service_options_validation},
    {"client_options_validation", test_client_options_validation},
    {"data_dir_lock", test_data_dir_lock},
    {"log_userdata_free", test_log_userdata_free},
    {"download_url_rules", test_download_url_rules},
    {"download_cleartext", test_download_cleartext},
    {"download_header_path_timeout_rules", test_download_header_path_timeout_rules},
    {"download_target_rules", test_download_target_rules},
    {"task_on_validation", test_task_on_validation},
    {"task_on_dedupe", test_task_on_dedupe},
    {"task_off_semantics", test_task_off_semantics},
    {"two_handles", test_two_handles},
    {"poll_mode", test_poll_mode},
    {"callback_reentrancy", test_callback_reentrancy},
    {"off_inside_callback", test_off_inside_callback},
    {"free_inside_callback", test_free_inside_callback},
    {"remove_and_states", test_remove_and_states},
    {"thread_mode_barrier", test_thread_mode_barrier},
    {"thread_mode_off_barrier", test_thread_mode_off_barrier},
    {"free_all_inside_callback_thread", test_free_all_inside_callback_thread},
    {"free_all_inside_callback_poll", test_free_all_inside_callback_poll},
    {"search_and_open", test_search_and_open},
    {"after_service_free", test_after_service_free},
};

int main(int argc, char **argv) {
    int rc = th_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
    if (srv_up) th_server_stop(&srv);
    return rc;
}
