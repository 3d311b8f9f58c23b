/* ohreq: a curl-like command line over the ohreq C API.
 *
 *   ohreq get [-d DIR] [-o NAME] [-H 'K: V']... [--cacert FILE] [--allow-http]
 *             [--parallel N] [--state DIR] [--quiet] URL...
 *   ohreq upload [-X POST|PUT] [-F 'name=@path[;filename=F][;type=T]']... [-f name=value]...
 *                [-H 'K: V']... [--cacert FILE] [--allow-http] [-i] [--quiet] URL
 *
 * Downloads each URL into DIR (the client's sandbox, default "."), up to N at once, with a
 * progress bar per transfer on a terminal. Exits 0 only if every URL succeeded. With
 * --state DIR the task store lives there: run the same command again after a crash or a
 * kill and it finishes what was left, fetching only the missing bytes.
 *
 * It drives the library in poll mode: callbacks run on this thread inside
 * ohreq_service_dispatch(), woken by ohreq_service_event_fd(). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ohreq.h"

#define CLI_UID 100000
#define MAX_HEADERS 64

typedef struct {
    const char *url;
    char target[2 * PATH_MAX + 2];
    ohreq_task *task;
    int done;      /* 1 ok, -1 failed */
    int fail_code; /* OHREQ_ERROR_* */
    char detail[512];
    long long got, total;
    long long t0_ms, last_ms, last_got;
    double speed;
} transfer;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *error_name(int code) {
    static const char *names[] = {
        "ERROR_CANNOT_RESUME",     "ERROR_DEVICE_NOT_FOUND",    "ERROR_FILE_ALREADY_EXISTS",
        "ERROR_FILE_ERROR",        "ERROR_HTTP_DATA_ERROR",     "ERROR_INSUFFICIENT_SPACE",
        "ERROR_TOO_MANY_REDIRECTS", "ERROR_UNHANDLED_HTTP_CODE", "ERROR_UNKNOWN",
        "ERROR_OFFLINE",           "ERROR_UNSUPPORTED_NETWORK_TYPE",
    };
    return code >= 0 && code <= 10 ? names[code] : "ERROR_UNKNOWN";
}

static void last_error(char *buf, size_t len) {
    size_t n = 0;
    if (ohreq_last_error_message(buf, len, &n) != OHREQ_OK) snprintf(buf, len, "(no detail)");
}

static void usage(void) {
    fprintf(stderr,
            "usage: ohreq get [-d DIR] [-o NAME] [-H 'K: V']... [--cacert FILE] [--allow-http]\n"
            "                 [--parallel N] [--state DIR] [--quiet] URL...\n"
            "       ohreq upload [-X POST|PUT] [-F 'name=@path[;filename=F][;type=T]']...\n"
            "                    [-f name=value]... [-H 'K: V']... [--cacert FILE] [--allow-http]\n"
            "                    [-i] [--quiet] URL\n");
    exit(2);
}

/* Splits each "Name: value" of -H into names[i] and values[i]; -1 (after a message) on a
 * malformed one. */
static int parse_headers(const char **raw, int n, char names[][256], const char **values) {
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(raw[i], ':');
        if (!colon || colon == raw[i] || (size_t)(colon - raw[i]) >= 256) {
            fprintf(stderr, "ohreq: bad header '%s' (want 'Name: value')\n", raw[i]);
            return -1;
        }
        snprintf(names[i], 256, "%.*s", (int)(colon - raw[i]), raw[i]);
        const char *v = colon + 1;
        while (*v == ' ') v++;
        values[i] = v;
    }
    return 0;
}

/* Makes a private data dir for one run (no --state) into data. Nothing can resume from it
 * (its name is random and it is removed at the end), so it goes to memory-backed /dev/shm
 * when there is one: the store's writes, its closing sync and the removal then cost no disk
 * work. Otherwise $TMPDIR, else /tmp. 0 on success. */
static int make_temp_state(char *data, size_t cap) {
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!bases[i] || !*bases[i]) continue;
        snprintf(data, cap, "%s/ohreq-cli-XXXXXX", bases[i]);
        if (mkdtemp(data)) return 0;
    }
    perror("mkdtemp");
    return -1;
}

/* Removes a private data dir the CLI made for one run (no --state). */
static void remove_state_dir(const char *data) {
    const char *files[] = {"ohreq.db", "ohreq.db-wal", "ohreq.db-shm", "ohreq.lock"};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/%s", data, files[k]);
        unlink(p);
    }
    rmdir(data);
}

static void on_event(void *ud, const ohreq_event *ev) {
    transfer *t = ud;
    switch (ohreq_event_kind(ev)) {
    case OHREQ_EVENT_PROGRESS:
        t->got = (long long)ohreq_event_processed(ev);
        t->total = ohreq_event_total(ev);
        break;
    case OHREQ_EVENT_COMPLETE:
        t->done = 1;
        break;
    case OHREQ_EVENT_FAIL:
        t->done = -1;
        t->fail_code = ohreq_event_code(ev);
        break;
    default:
        break;
    }
}

/* Fills progress and, for finished tasks, the outcome from a DownloadInfo snapshot. */
static void refresh(transfer *t) {
    ohreq_download_info *info = NULL;
    if (ohreq_task_get_download_info(t->task, &info) != OHREQ_OK) return;
    t->got = (long long)ohreq_download_info_downloaded_bytes(info);
    t->total = ohreq_download_info_total_bytes(info);
    int st = ohreq_download_info_status(info);
    if (st == OHREQ_SESSION_SUCCESSFUL) t->done = 1;
    if (st == OHREQ_SESSION_FAILED && !t->done) {
        t->done = -1;
        t->fail_code = ohreq_download_info_failed_reason(info);
    }
    if (t->done < 0) snprintf(t->detail, sizeof t->detail, "%s", ohreq_download_info_detail(info).data);
    ohreq_download_info_free(info);
}

static void human(long long n, char *buf, size_t len) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void draw(transfer *ts, int n, int first) {
    if (!first) fprintf(stderr, "\033[%dA", n);
    long long now = now_ms();
    for (int i = 0; i < n; i++) {
        transfer *t = &ts[i];
        if (now - t->last_ms >= 500) {
            double dt = (double)(now - t->last_ms) / 1000.0;
            if (t->last_ms) t->speed = (double)(t->got - t->last_got) / dt;
            t->last_ms = now;
            t->last_got = t->got;
        }
        const char *name = strrchr(t->target, '/');
        name = name ? name + 1 : t->target;
        char got[32], speed[32];
        human(t->got, got, sizeof got);
        human((long long)t->speed, speed, sizeof speed);
        char bar[21];
        int pct = t->total > 0 ? (int)(t->got * 100 / t->total) : 0;
        if (t->done > 0) pct = 100;
        for (int k = 0; k < 20; k++) bar[k] = k < pct / 5 ? '#' : '.';
        bar[20] = 0;
        const char *state = t->done > 0 ? "done" : t->done < 0 ? "FAILED" : "";
        fprintf(stderr, "\033[2K%-24.24s [%s] %3d%% %10s %10s/s %s\n", name, bar, pct, got, speed, state);
    }
}

static int cmd_get(int argc, char **argv) {
    const char *dir = ".", *out_name = NULL, *cacert = NULL, *state = NULL;
    const char *headers[MAX_HEADERS];
    int n_headers = 0, allow_http = 0, parallel = 8, quiet = 0;
    const char *urls[4096];
    int n_urls = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-d") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(a, "-o") && i + 1 < argc) out_name = argv[++i];
        else if (!strcmp(a, "-H") && i + 1 < argc && n_headers < MAX_HEADERS) headers[n_headers++] = argv[++i];
        else if (!strcmp(a, "--cacert") && i + 1 < argc) cacert = argv[++i];
        else if (!strcmp(a, "--allow-http")) allow_http = 1;
        else if (!strcmp(a, "--parallel") && i + 1 < argc) parallel = atoi(argv[++i]);
        else if (!strcmp(a, "--state") && i + 1 < argc) state = argv[++i];
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (a[0] == '-') usage();
        else if (n_urls < 4096) urls[n_urls++] = a;
    }
    if (n_urls == 0 || parallel < 1) usage();
    char hnames[MAX_HEADERS][256];
    const char *hvalues[MAX_HEADERS];
    if (parse_headers(headers, n_headers, hnames, hvalues) != 0) return 2;
    if (out_name && n_urls != 1) {
        fprintf(stderr, "ohreq: -o needs exactly one URL\n");
        return 2;
    }
    char root[PATH_MAX], data[PATH_MAX], err[512];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        perror(dir);
        return 2;
    }
    if (!realpath(dir, root)) {
        perror(dir);
        return 2;
    }
    int temp_state = state == NULL;
    if (temp_state) {
        if (make_temp_state(data, sizeof data) != 0) return 2;
    } else {
        if ((mkdir(state, 0755) != 0 && errno != EEXIST) || !realpath(state, data)) {
            perror(state);
            return 2;
        }
    }

    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    ohreq_code rc = ohreq_service_options_set_data_dir(so, data);
    if (!rc) rc = ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL);
    if (!rc) rc = ohreq_service_options_set_max_running(so, (uint32_t)parallel);
    if (!rc) rc = ohreq_service_options_set_user_agent(so, "ohreq-cli/" "0.1");
    if (!rc) rc = ohreq_service_new(so, &svc);
    ohreq_service_options_free(so);
    if (rc) {
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: cannot start the service: %s (%s)\n", ohreq_code_message(rc), err);
        return 2;
    }
    ohreq_client_options *co = ohreq_client_options_new();
    ohreq_client *cli = NULL;
    rc = ohreq_client_options_set_uid(co, CLI_UID);
    if (!rc) rc = ohreq_client_options_set_bundle(co, "ohreq.cli");
    if (!rc) rc = ohreq_client_options_add_permission(co, "ohos.permission.INTERNET");
    if (!rc) rc = ohreq_client_options_set_cache_dir(co, root);
    if (!rc) rc = ohreq_client_options_set_cleartext_permitted(co, allow_http != 0);
    if (!rc && cacert) rc = ohreq_client_options_set_ca_file(co, cacert);
    if (!rc) rc = ohreq_client_new(svc, co, &cli);
    ohreq_client_options_free(co);
    if (rc) {
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: %s (%s)\n", ohreq_code_message(rc), err);
        ohreq_service_free(svc);
        return 2;
    }

    /* Tasks this state dir already knows: a rerun attaches to them instead of starting over. */
    uint32_t known[8192];
    size_t n_known = 0;
    ohreq_filter *f = ohreq_filter_new();
    if (ohreq_filter_set_after(f, 0) != OHREQ_OK || ohreq_filter_set_action(f, OHREQ_ACTION_DOWNLOAD) != OHREQ_OK ||
        ohreq_search(cli, f, known, 8192, &n_known) != OHREQ_OK)
        n_known = 0;
    if (n_known > 8192) n_known = 8192;
    ohreq_filter_free(f);

    transfer *ts = calloc((size_t)n_urls, sizeof *ts);
    int failures = 0;
    for (int i = 0; i < n_urls; i++) {
        transfer *t = &ts[i];
        t->url = urls[i];
        t->total = -1;
        t->t0_ms = now_ms();
        ohreq_download_config *c = ohreq_download_config_new();
        rc = ohreq_download_config_set_url(c, urls[i]);
        if (!rc && out_name) rc = ohreq_download_config_set_file_path(c, out_name);
        for (int h = 0; h < n_headers && !rc; h++) rc = ohreq_download_config_add_header(c, hnames[h], hvalues[h]);
        /* The target this config resolves to: attach to a known task for the same URL and file. */
        const char *seg = out_name;
        if (!seg) {
            const char *p = strstr(urls[i], "://");
            p = p ? p + 3 : urls[i];
            const char *q = p + strcspn(p, "?#");
            const char *s = q;
            while (s > p && s[-1] != '/') s--;
            static char nm[PATH_MAX];
            snprintf(nm, sizeof nm, "%.*s", (int)(q - s), s);
            seg = nm;
        }
        snprintf(t->target, sizeof t->target, "%s/%s", root, seg);
        int attached = 0;
        for (size_t k = 0; k < n_known && !rc; k++) {
            ohreq_task *cand = NULL;
            ohreq_download_info *info = NULL;
            if (ohreq_task_open(cli, known[k], &cand) != OHREQ_OK) continue;
            if (ohreq_task_get_download_info(cand, &info) == OHREQ_OK &&
                !strcmp(ohreq_download_info_target_uri(info).data, urls[i]) &&
                !strcmp(ohreq_download_info_file_path(info).data, t->target) &&
                ohreq_download_info_status(info) != OHREQ_SESSION_FAILED) {
                t->task = cand;
                attached = 1;
            } else {
                ohreq_task_free(cand);
            }
            ohreq_download_info_free(info);
            if (attached) break;
        }
        if (!rc && !attached) rc = ohreq_download(cli, c, &t->task);
        ohreq_download_config_free(c);
        if (rc) {
            last_error(err, sizeof err);
            fprintf(stderr, "ohreq: %s: %s (%d: %s)\n", urls[i], err, rc, ohreq_code_message(rc));
            t->done = -1;
            t->fail_code = -1;
            continue;
        }
        if (attached && !quiet) {
            /* A paused task needs a restore; a restored running one is already queued. */
            if (ohreq_task_restore(t->task) != OHREQ_OK) { /* not paused: nothing to do */ }
            refresh(t);
            fprintf(stderr, "ohreq: continuing %s from byte %lld\n", urls[i], t->got);
        } else if (attached && ohreq_task_restore(t->task) != OHREQ_OK) {
            /* not paused: it is already queued */
        }
        for (unsigned k = OHREQ_EVENT_PROGRESS; k <= OHREQ_EVENT_FAIL; k++)
            if (ohreq_task_on(t->task, k, on_event, t, NULL) != OHREQ_OK) fprintf(stderr, "ohreq: subscribe failed\n");
        /* A task we created had our handle from the start: an event it sent before these
         * listeners is delivered to them. One we attached to may have finished before. */
        if (attached) refresh(t);
    }

    /* Events drive the outcome (nothing that happened before subscribing is missed, see
     * above); snapshots are only taken to draw the bars. */
    int tty = isatty(2) && !quiet;
    int fd = ohreq_service_event_fd(svc), first = 1, open_count;
    long long last_draw = 0;
    do {
        struct pollfd p = {fd, POLLIN, 0};
        (void)poll(&p, 1, 200);
        size_t delivered = 0;
        if (ohreq_service_dispatch(svc, &delivered) != OHREQ_OK) break;
        int redraw = tty && now_ms() - last_draw >= 200;
        open_count = 0;
        for (int i = 0; i < n_urls; i++) {
            if (redraw && ts[i].task && ts[i].done == 0) refresh(&ts[i]);
            if (ts[i].done == 0) open_count++;
        }
        if (redraw || (tty && open_count == 0)) {
            draw(ts, n_urls, first);
            first = 0;
            last_draw = now_ms();
        }
    } while (open_count > 0);

    for (int i = 0; i < n_urls; i++) {
        transfer *t = &ts[i];
        if (t->done < 0) {
            failures++;
            if (t->task) {
                refresh(t);
                fprintf(stderr, "ohreq: %s: %s: %s\n", t->url, error_name(t->fail_code), t->detail);
            }
        } else if (!quiet && !tty) {
            char got[32];
            human(t->got, got, sizeof got);
            fprintf(stderr, "ohreq: %s -> %s (%s)\n", t->url, t->target, got);
        }
        ohreq_task_free(t->task);
    }
    free(ts);
    ohreq_client_free(cli);
    ohreq_service_free(svc);
    if (temp_state) remove_state_dir(data);
    return failures ? 1 : 0;
}

/* ---- upload ---- */

typedef struct {
    int done;          /* 1 ok, -1 failed */
    int fail_code;
    int show_headers;  /* -i */
    int quiet;
    int last_status;
    unsigned long long sent;
    long long total;
} upload_state;

/* Files given on the command line may live anywhere the user can read: the CLI hands them to
 * the library as dataability://file/<absolute path> URIs, which this resolver maps back. */
static ohreq_code resolve_uri(void *ud, const char *uri, char *path, size_t len) {
    (void)ud;
    const char *prefix = "dataability://file";
    if (strncmp(uri, prefix, strlen(prefix)) != 0) return OHREQ_ERR_FILE_PATH;
    const char *p = uri + strlen(prefix);
    if (p[0] != '/' || strlen(p) + 1 > len) return OHREQ_ERR_FILE_PATH;
    snprintf(path, len, "%s", p);
    return OHREQ_OK;
}

static void on_upload_event(void *ud, const ohreq_event *ev) {
    upload_state *u = ud;
    switch (ohreq_event_kind(ev)) {
    case OHREQ_EVENT_PROGRESS:
        u->sent = ohreq_event_total_processed(ev);
        u->total = ohreq_event_total_size(ev);
        break;
    case OHREQ_EVENT_HEADER_RECEIVE: {
        u->last_status = (int)ohreq_event_http_status(ev);
        FILE *head_out = u->show_headers ? stdout : stderr;
        if (u->show_headers || !u->quiet)
            fprintf(head_out, "%s %u %s\n", ohreq_event_http_version(ev).data, ohreq_event_http_status(ev),
                    ohreq_event_http_reason(ev).data);
        if (u->show_headers) {
            for (size_t i = 0; i < ohreq_event_header_count(ev); i++)
                printf("%s: %s\n", ohreq_event_header_name(ev, i).data, ohreq_event_header_value(ev, i).data);
            printf("\n");
        }
        ohreq_bytes b = ohreq_event_body(ev);
        if (b.len) fwrite(b.data, 1, b.len, stdout);
        fflush(stdout);
        break;
    }
    case OHREQ_EVENT_COMPLETE:
        u->done = 1;
        break;
    case OHREQ_EVENT_FAIL:
        u->done = -1;
        u->fail_code = ohreq_event_code(ev);
        for (size_t i = 0; i < ohreq_event_task_state_count(ev); i++)
            if (ohreq_event_task_state_code(ev, i) != 0)
                fprintf(stderr, "ohreq: %s: %s\n", ohreq_event_task_state_path(ev, i).data,
                        ohreq_event_task_state_message(ev, i).data);
        break;
    default:
        break;
    }
}

static int cmd_upload(int argc, char **argv) {
    const char *method = "POST", *cacert = NULL, *url = NULL;
    const char *headers[MAX_HEADERS], *forms[256], *fields[256];
    int n_headers = 0, n_forms = 0, n_fields = 0, allow_http = 0;
    upload_state u;
    memset(&u, 0, sizeof u);
    u.total = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-X") && i + 1 < argc) method = argv[++i];
        else if (!strcmp(a, "-F") && i + 1 < argc && n_forms < 256) forms[n_forms++] = argv[++i];
        else if (!strcmp(a, "-f") && i + 1 < argc && n_fields < 256) fields[n_fields++] = argv[++i];
        else if (!strcmp(a, "-H") && i + 1 < argc && n_headers < MAX_HEADERS) headers[n_headers++] = argv[++i];
        else if (!strcmp(a, "--cacert") && i + 1 < argc) cacert = argv[++i];
        else if (!strcmp(a, "--allow-http")) allow_http = 1;
        else if (!strcmp(a, "-i")) u.show_headers = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) u.quiet = 1;
        else if (a[0] == '-' || url) usage();
        else url = a;
    }
    if (!url || n_forms == 0) usage();
    char hnames[MAX_HEADERS][256];
    const char *hvalues[MAX_HEADERS];
    if (parse_headers(headers, n_headers, hnames, hvalues) != 0) return 2;

    char data[PATH_MAX], err[512];
    if (make_temp_state(data, sizeof data) != 0) return 2;
    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    ohreq_code rc = ohreq_service_options_set_data_dir(so, data);
    if (!rc) rc = ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL);
    if (!rc) rc = ohreq_service_new(so, &svc);
    ohreq_service_options_free(so);
    ohreq_client_options *co = ohreq_client_options_new();
    ohreq_client *cli = NULL;
    if (!rc) rc = ohreq_client_options_set_uid(co, CLI_UID);
    if (!rc) rc = ohreq_client_options_add_permission(co, "ohos.permission.INTERNET");
    if (!rc) rc = ohreq_client_options_set_cache_dir(co, data);
    if (!rc) rc = ohreq_client_options_set_cleartext_permitted(co, allow_http != 0);
    if (!rc && cacert) rc = ohreq_client_options_set_ca_file(co, cacert);
    if (!rc) rc = ohreq_client_options_set_uri_resolver(co, resolve_uri, NULL, NULL);
    if (!rc) rc = ohreq_client_new(svc, co, &cli);
    ohreq_client_options_free(co);

    ohreq_upload_config *c = ohreq_upload_config_new();
    if (!rc) rc = ohreq_upload_config_set_url(c, url);
    if (!rc) rc = ohreq_upload_config_set_method(c, method);
    for (int h = 0; h < n_headers && !rc; h++) rc = ohreq_upload_config_add_header(c, hnames[h], hvalues[h]);
    for (int i = 0; i < n_fields && !rc; i++) {
        char name[256];
        const char *eq = strchr(fields[i], '=');
        if (!eq || (size_t)(eq - fields[i]) >= sizeof name) usage();
        snprintf(name, sizeof name, "%.*s", (int)(eq - fields[i]), fields[i]);
        rc = ohreq_upload_config_add_data(c, name, eq + 1);
    }
    for (int i = 0; i < n_forms && !rc; i++) {
        /* name=@path[;filename=F][;type=T] */
        char spec[PATH_MAX], real[PATH_MAX], uri[PATH_MAX + 32];
        const char *filename = "", *type = "";
        snprintf(spec, sizeof spec, "%s", forms[i]);
        char *at = strstr(spec, "=@");
        if (!at) {
            fprintf(stderr, "ohreq: -F wants name=@path, got '%s'\n", forms[i]);
            return 2;
        }
        *at = 0;
        const char *name = spec;
        char *save = NULL, *path = strtok_r(at + 2, ";", &save);
        for (char *opt = strtok_r(NULL, ";", &save); opt; opt = strtok_r(NULL, ";", &save)) {
            if (!strncmp(opt, "filename=", 9)) filename = opt + 9;
            else if (!strncmp(opt, "type=", 5)) type = opt + 5;
        }
        if (!path) usage();
        if (!realpath(path, real)) {
            perror(path);
            return 2;
        }
        snprintf(uri, sizeof uri, "dataability://file%s", real);
        rc = ohreq_upload_config_add_file(c, filename, name, uri, type);
    }
    ohreq_task *t = NULL;
    if (!rc) rc = ohreq_upload(cli, c, &t);
    ohreq_upload_config_free(c);
    if (rc) {
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: %s: %s (%d: %s)\n", url, err, rc, ohreq_code_message(rc));
        ohreq_client_free(cli);
        ohreq_service_free(svc);
        return 2;
    }
    for (unsigned k = OHREQ_EVENT_PROGRESS; k <= OHREQ_EVENT_HEADER_RECEIVE; k++)
        if (ohreq_task_on(t, k, on_upload_event, &u, NULL) != OHREQ_OK) fprintf(stderr, "ohreq: subscribe failed\n");
    /* It may have ended before we subscribed. */
    ohreq_download_info *info = NULL;
    if (ohreq_task_get_download_info(t, &info) == OHREQ_OK) {
        int st = ohreq_download_info_status(info);
        if (st == OHREQ_SESSION_SUCCESSFUL) u.done = 1;
        if (st == OHREQ_SESSION_FAILED) u.done = -1, u.fail_code = ohreq_download_info_failed_reason(info);
        ohreq_download_info_free(info);
    }
    int tty = isatty(2) && !u.quiet;
    int fd = ohreq_service_event_fd(svc);
    while (!u.done) {
        struct pollfd p = {fd, POLLIN, 0};
        (void)poll(&p, 1, 200);
        size_t delivered = 0;
        if (ohreq_service_dispatch(svc, &delivered) != OHREQ_OK) break;
        if (tty && u.total > 0) {
            char sent[32], total[32];
            human((long long)u.sent, sent, sizeof sent);
            human(u.total, total, sizeof total);
            fprintf(stderr, "\r\033[2Kuploading %s / %s (%d%%)", sent, total, (int)(u.sent * 100 / (unsigned long long)u.total));
        }
    }
    size_t delivered = 0;
    if (ohreq_service_dispatch(svc, &delivered) != OHREQ_OK) { /* nothing more to show */ }
    if (tty) fprintf(stderr, "\r\033[2K");
    if (u.done < 0) {
        if (ohreq_task_get_download_info(t, &info) == OHREQ_OK) {
            fprintf(stderr, "ohreq: %s: %s: %s\n", url, error_name(u.fail_code), ohreq_download_info_detail(info).data);
            ohreq_download_info_free(info);
        }
    }
    ohreq_task_free(t);
    ohreq_client_free(cli);
    ohreq_service_free(svc);
    remove_state_dir(data);
    return u.done > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (!strcmp(argv[1], "get")) return cmd_get(argc - 2, argv + 2);
    if (!strcmp(argv[1], "upload")) return cmd_upload(argc - 2, argv + 2);
    if (!strcmp(argv[1], "--version")) {
        printf("ohreq %s\n", ohreq_version());
        return 0;
    }
    usage();
    return 2;
}
