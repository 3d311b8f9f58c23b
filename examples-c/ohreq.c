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
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ohreq.h"

#define CLI_UID 100000
#define MAX_HEADERS 64
#define MAX_URLS 4096
#define MAX_PARALLEL 1024 /* the library's limit on running transfers */

typedef struct {
    const char *url;
    char target[2 * PATH_MAX + 2];
    ohreq_task *task;
    int done;      /* 1 ok, -1 failed */
    int fail_code; /* OHREQ_ERROR_* */
    char detail[512];
    long long got, total;
    long long t0_ms, end_ms;
    long long seen_ms, seen_got; /* when `got` last changed, and to what */
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

static void print_usage(FILE *f) {
    fprintf(f,
            "usage: ohreq get [-d DIR] [-o NAME] [-H 'K: V']... [--cacert FILE] [--allow-http]\n"
            "                 [--parallel N] [--state DIR] [--quiet] URL...\n"
            "       ohreq upload [-X POST|PUT] [-F 'name=@path[;filename=F][;type=T]']...\n"
            "                    [-f name=value]... [-H 'K: V']... [--cacert FILE] [--allow-http]\n"
            "                    [-i] [--quiet] URL\n"
            "       ohreq --version\n");
}

static void usage(void) {
    print_usage(stderr);
    exit(2);
}

/* A command line the CLI cannot run: says why, then how it is used; exit status 2. */
static void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ohreq: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage();
}

/* The value of option argv[*i]; a usage error if it has none. */
static const char *option_value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) usage_error("%s needs a value", argv[*i]);
    return argv[++*i];
}

/* A whole decimal number from lo to hi, else a usage error naming the option. */
static long parse_count(const char *opt, const char *s, long lo, long hi) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        usage_error("%s wants a whole number from %ld to %ld, not '%s'", opt, lo, hi, s);
    return v;
}

/* The library takes absolute paths only: `path` made absolute (and checked to exist) into
 * buf, or NULL after a message. */
static const char *absolute_file(const char *path, char *buf) {
    if (!realpath(path, buf)) {
        perror(path);
        return NULL;
    }
    return buf;
}

/* Names of the ohreq_code values a create can answer, for failure lines. */
static const char *code_name(ohreq_code rc) {
    switch (rc) {
    case OHREQ_ERR_PERMISSION: return "OHREQ_ERR_PERMISSION";
    case OHREQ_ERR_PARAMETER: return "OHREQ_ERR_PARAMETER";
    case OHREQ_ERR_FILE_IO: return "OHREQ_ERR_FILE_IO";
    case OHREQ_ERR_FILE_PATH: return "OHREQ_ERR_FILE_PATH";
    case OHREQ_ERR_SERVICE: return "OHREQ_ERR_SERVICE";
    case OHREQ_ERR_TASK_QUEUE_FULL: return "OHREQ_ERR_TASK_QUEUE_FULL";
    default: return "OHREQ_ERR_OTHERS";
    }
}

/* SIGINT or SIGTERM: the wait loops end, the library is shut down in order (running
 * transfers checkpoint), and the CLI exits 128 + the signal. No SA_RESTART: poll() returns. */
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
    stop_signal = sig;
}

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Appends path component `c` (len n) to the absolute path out: "" and "." add nothing, ".."
 * drops the last component. */
static void push_component(char *out, size_t cap, const char *c, size_t n) {
    if (n == 0 || (n == 1 && c[0] == '.')) return;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        char *slash = strrchr(out, '/');
        if (slash) *slash = 0;
        return;
    }
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "/%.*s", (int)n, c);
}

/* The file a download of `url` with file path `name` (NULL: none) goes to, worked out the
 * way the library does it (reference B.3): relative to root, "." dropped and ".." popping, a
 * trailing '/' or an empty name meaning the URL's last path segment in that directory. Only
 * used to find this run's task among those a --state dir knows; the library's own answer
 * replaces it once a task exists. */
static void resolve_target(const char *root, const char *name, const char *url, char *out, size_t cap) {
    const char *rel = name ? name : "";
    while (*rel == ' ') rel++;
    if (!strncmp(rel, "internal://cache/", 17)) rel += 17;
    out[0] = 0;
    if (rel[0] != '/') snprintf(out, cap, "%s", strcmp(root, "/") ? root : "");
    for (const char *c = rel; *c;) {
        size_t n = strcspn(c, "/");
        push_component(out, cap, c, n);
        c += n;
        if (*c == '/') c++;
    }
    size_t rl = strlen(rel);
    if (rl == 0 || rel[rl - 1] == '/') {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        const char *q = p + strcspn(p, "?#");
        const char *path = memchr(p, '/', (size_t)(q - p));
        const char *seg = q;
        while (path && seg > path && seg[-1] != '/') seg--;
        push_component(out, cap, seg, (size_t)(q - seg));
    }
    if (!out[0]) snprintf(out, cap, "/");
}

/* Splits each "Name: value" of -H into names[i] and values[i]; -1 (after a message) on a
 * malformed one. "Name:" and curl's "Name;" both send the header with an empty value
 * (there are no default headers here for curl's "Name:" to remove). */
static int parse_headers(const char **raw, int n, char names[][256], const char **values) {
    for (int i = 0; i < n; i++) {
        const char *colon = strchr(raw[i], ':');
        size_t len = strlen(raw[i]);
        if (!colon && len > 1 && raw[i][len - 1] == ';') colon = raw[i] + len - 1;
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

/* mkdir -p: `path` and any missing parents. 0, or -1 with errno set. */
static int make_dirs(const char *path) {
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = p + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        int r = mkdir(p, 0777);
        *c = '/';
        if (r != 0 && errno != EEXIST) return -1;
    }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
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

/* Records that t has `got` bytes. The speed is measured from one change to the next (progress
 * arrives about once a second, so a shorter window would flicker between 0 and twice the
 * rate) and smoothed over the last few. */
static void note_progress(transfer *t, long long got) {
    long long now = now_ms();
    if (got != t->seen_got || !t->seen_ms) {
        if (t->seen_ms && now > t->seen_ms) {
            double rate = (double)(got - t->seen_got) * 1000.0 / (double)(now - t->seen_ms);
            t->speed = t->speed > 0 ? 0.5 * t->speed + 0.5 * rate : rate;
        }
        t->seen_ms = now;
        t->seen_got = got;
    }
    t->got = got;
}

static void on_event(void *ud, const ohreq_event *ev) {
    transfer *t = ud;
    switch (ohreq_event_kind(ev)) {
    case OHREQ_EVENT_PROGRESS:
        note_progress(t, (long long)ohreq_event_processed(ev));
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
    note_progress(t, (long long)ohreq_download_info_downloaded_bytes(info));
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
        if (t->done && !t->end_ms) t->end_ms = now;
        if (t->done > 0) /* the average over the whole transfer */
            t->speed = t->end_ms > t->t0_ms ? (double)t->got * 1000.0 / (double)(t->end_ms - t->t0_ms) : 0;
        else if (t->done < 0 || (t->seen_ms && now - t->seen_ms > 3000))
            t->speed = 0; /* failed, or no byte for 3 s */
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

/* A download task an earlier run left in the --state store. */
typedef struct {
    ohreq_task *task; /* NULL once handed to a transfer or ended */
    char *url, *path;
    int status;  /* OHREQ_SESSION_* */
} earlier;

/* The download tasks of the store, with their URL, file and status (*n_out of them; NULL
 * when there are none). */
static earlier *load_earlier(ohreq_client *cli, size_t *n_out) {
    static uint32_t ids[MAX_URLS];
    size_t n = 0, kept = 0;
    *n_out = 0;
    ohreq_filter *f = ohreq_filter_new();
    if (ohreq_filter_set_after(f, 0) != OHREQ_OK || ohreq_filter_set_action(f, OHREQ_ACTION_DOWNLOAD) != OHREQ_OK ||
        ohreq_search(cli, f, ids, MAX_URLS, &n) != OHREQ_OK)
        n = 0;
    ohreq_filter_free(f);
    if (n > MAX_URLS) n = MAX_URLS;
    earlier *out = n ? calloc(n, sizeof *out) : NULL;
    if (!out) return NULL;
    for (size_t k = 0; k < n; k++) {
        earlier *e = &out[kept];
        ohreq_download_info *info = NULL;
        if (ohreq_task_open(cli, ids[k], &e->task) != OHREQ_OK) continue;
        if (ohreq_task_get_download_info(e->task, &info) != OHREQ_OK) {
            ohreq_task_free(e->task);
            e->task = NULL;
            continue;
        }
        e->url = strdup(ohreq_download_info_target_uri(info).data);
        e->path = strdup(ohreq_download_info_file_path(info).data);
        e->status = ohreq_download_info_status(info);
        ohreq_download_info_free(info);
        if (!e->url || !e->path) {
            free(e->url);
            free(e->path);
            ohreq_task_free(e->task);
            memset(e, 0, sizeof *e);
            continue;
        }
        kept++;
    }
    *n_out = kept;
    return out;
}

/* A run downloads only what it names: the service keeps the store's unfinished tasks
 * paused (ohreq_service_options_set_restart_unfinished), and a URL of this run resumes its
 * own. An unfinished earlier task for a file this run writes from another URL is deleted:
 * the new URL takes the file over (the old task would hold it for good otherwise). Any
 * other one stays paused, for a later run that names it. */
static void settle_earlier(earlier *known, size_t n_known, const transfer *ts, const char **urls, int n_urls,
                           int quiet) {
    for (size_t k = 0; k < n_known; k++) {
        earlier *e = &known[k];
        if (e->status == OHREQ_SESSION_SUCCESSFUL || e->status == OHREQ_SESSION_FAILED) continue;
        int named = 0, same_file = 0;
        for (int i = 0; i < n_urls; i++) {
            if (strcmp(e->path, ts[i].target) != 0) continue;
            same_file = 1;
            named = named || strcmp(e->url, urls[i]) == 0;
        }
        if (named) continue;
        if (same_file) {
            if (ohreq_task_delete(e->task) == OHREQ_OK && !quiet)
                fprintf(stderr, "ohreq: %s: dropping the unfinished download of it from %s\n", e->path, e->url);
            ohreq_task_free(e->task);
            e->task = NULL;
        }
    }
}

static void free_earlier(earlier *known, size_t n) {
    for (size_t k = 0; k < n; k++) {
        ohreq_task_free(known[k].task);
        free(known[k].url);
        free(known[k].path);
    }
    free(known);
}

static int cmd_get(int argc, char **argv) {
    const char *dir = ".", *out_name = NULL, *cacert = NULL, *state = NULL;
    const char *headers[MAX_HEADERS];
    int n_headers = 0, allow_http = 0, parallel = 8, quiet = 0;
    static const char *urls[MAX_URLS];
    int n_urls = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-d")) dir = option_value(argc, argv, &i);
        else if (!strcmp(a, "-o")) out_name = option_value(argc, argv, &i);
        else if (!strcmp(a, "-H")) {
            const char *h = option_value(argc, argv, &i);
            if (n_headers == MAX_HEADERS) usage_error("at most %d -H headers", MAX_HEADERS);
            headers[n_headers++] = h;
        } else if (!strcmp(a, "--cacert")) cacert = option_value(argc, argv, &i);
        else if (!strcmp(a, "--allow-http")) allow_http = 1;
        else if (!strcmp(a, "--parallel"))
            parallel = (int)parse_count(a, option_value(argc, argv, &i), 1, MAX_PARALLEL);
        else if (!strcmp(a, "--state")) state = option_value(argc, argv, &i);
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) usage_error("unknown option '%s'", a);
        else if (n_urls == MAX_URLS) usage_error("at most %d URLs in one run", MAX_URLS);
        else urls[n_urls++] = a;
    }
    if (n_urls == 0) usage_error("get needs at least one URL");
    char hnames[MAX_HEADERS][256];
    const char *hvalues[MAX_HEADERS];
    if (parse_headers(headers, n_headers, hnames, hvalues) != 0) return 2;
    if (out_name && n_urls != 1) usage_error("-o needs exactly one URL");
    char root[PATH_MAX], data[PATH_MAX], ca[PATH_MAX], err[512];
    if (cacert && !(cacert = absolute_file(cacert, ca))) return 2;
    if (make_dirs(dir) != 0) {
        perror(dir);
        return 2;
    }
    if (!realpath(dir, root)) {
        perror(dir);
        return 2;
    }
    /* From here on every exit goes through `out`, which removes a throwaway store. */
    int temp_state = state == NULL, status = 2;
    if (temp_state) {
        if (make_temp_state(data, sizeof data) != 0) return 2;
    } else {
        if (make_dirs(state) != 0 || !realpath(state, data)) {
            perror(state);
            return 2;
        }
    }
    catch_stop_signals();
    transfer *ts = NULL;
    earlier *known = NULL;
    size_t n_known = 0;
    ohreq_client *cli = NULL;
    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    ohreq_code rc = ohreq_service_options_set_data_dir(so, data);
    if (!rc) rc = ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL);
    if (!rc) rc = ohreq_service_options_set_max_running(so, (uint32_t)parallel);
    if (!rc) rc = ohreq_service_options_set_user_agent(so, "ohreq-cli/" "0.1");
    if (!rc) rc = ohreq_service_options_set_restart_unfinished(so, false);
    if (!rc) rc = ohreq_service_new(so, &svc);
    ohreq_service_options_free(so);
    if (rc) {
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: cannot start the service: %s (%s)\n", ohreq_code_message(rc), err);
        goto out;
    }
    ohreq_client_options *co = ohreq_client_options_new();
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
        goto out;
    }

    /* Tasks this state dir already knows: a rerun attaches to them instead of starting over. */
    known = load_earlier(cli, &n_known);

    ts = calloc((size_t)n_urls, sizeof *ts);
    if (!ts) {
        perror("calloc");
        goto out;
    }
    for (int i = 0; i < n_urls; i++) resolve_target(root, out_name, urls[i], ts[i].target, sizeof ts[i].target);
    settle_earlier(known, n_known, ts, urls, n_urls, quiet);
    int failures = 0;
    for (int i = 0; i < n_urls && !stop_signal; i++) {
        transfer *t = &ts[i];
        t->url = urls[i];
        t->total = -1;
        t->t0_ms = now_ms();
        /* A task of an earlier run for the same URL and file: attach to it, unless it failed
         * (a new task starts over) or it finished and its file is gone since. */
        int attached = 0, finished = 0;
        for (size_t k = 0; k < n_known && !attached; k++) {
            earlier *e = &known[k];
            if (!e->task || strcmp(e->url, urls[i]) != 0 || strcmp(e->path, t->target) != 0) continue;
            finished = e->status == OHREQ_SESSION_SUCCESSFUL;
            attached = e->status != OHREQ_SESSION_FAILED && (!finished || access(t->target, F_OK) == 0);
            if (attached) {
                t->task = e->task;
                e->task = NULL;
            }
        }
        if (!attached) {
            ohreq_download_config *c = ohreq_download_config_new();
            rc = ohreq_download_config_set_url(c, urls[i]);
            if (!rc && out_name) rc = ohreq_download_config_set_file_path(c, out_name);
            for (int h = 0; h < n_headers && !rc; h++) rc = ohreq_download_config_add_header(c, hnames[h], hvalues[h]);
            if (!rc) rc = ohreq_download(cli, c, &t->task);
            ohreq_download_config_free(c);
            if (rc) {
                last_error(err, sizeof err);
                fprintf(stderr, "ohreq: %s: %s: %s (%d)\n", urls[i], code_name(rc), err, rc);
                t->done = -1;
                t->fail_code = -1;
                t->task = NULL;
                continue;
            }
            /* The library's word on where the file goes. */
            ohreq_download_info *info = NULL;
            if (ohreq_task_get_download_info(t->task, &info) == OHREQ_OK)
                snprintf(t->target, sizeof t->target, "%s", ohreq_download_info_file_path(info).data);
            ohreq_download_info_free(info);
        } else {
            /* A paused task needs a restore; one that is queued or running refuses it. */
            if (ohreq_task_restore(t->task) != OHREQ_OK) { /* not paused: nothing to do */ }
            refresh(t);
            if (!quiet && !finished) fprintf(stderr, "ohreq: continuing %s from byte %lld\n", urls[i], t->got);
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
        if (!stop_signal) (void)poll(&p, 1, 200);
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
    } while (open_count > 0 && !stop_signal);

    int unfinished = 0;
    for (int i = 0; i < n_urls; i++) {
        transfer *t = &ts[i];
        if (t->done == 0) {
            unfinished++;
            /* Nothing can resume from a throwaway store: take the part file away too. */
            if (temp_state && t->task && ohreq_task_delete(t->task) != OHREQ_OK) { /* already ended */ }
        } else if (t->done < 0) {
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
    }
    status = failures ? 1 : 0;
    if (stop_signal) {
        status = 128 + stop_signal;
        if (temp_state)
            fprintf(stderr, "ohreq: interrupted; %d unfinished transfer(s) removed\n", unfinished);
        else
            fprintf(stderr,
                    "ohreq: interrupted; %d unfinished transfer(s) kept in %s: run the same command to finish\n",
                    unfinished, data);
    }
out:
    if (ts)
        for (int i = 0; i < n_urls; i++) ohreq_task_free(ts[i].task);
    free(ts);
    free_earlier(known, n_known);
    ohreq_client_free(cli);
    ohreq_service_free(svc);
    if (temp_state) remove_state_dir(data);
    return status;
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
        if (!strcmp(a, "-X")) {
            method = option_value(argc, argv, &i);
            if (strcmp(method, "POST") && strcmp(method, "PUT")) usage_error("-X is POST or PUT, not '%s'", method);
        } else if (!strcmp(a, "-F") || !strcmp(a, "-f")) {
            const char *v = option_value(argc, argv, &i);
            int *n = a[1] == 'F' ? &n_forms : &n_fields;
            if (*n == 256) usage_error("at most 256 %s options", a);
            (a[1] == 'F' ? forms : fields)[(*n)++] = v;
        } else if (!strcmp(a, "-H")) {
            const char *h = option_value(argc, argv, &i);
            if (n_headers == MAX_HEADERS) usage_error("at most %d -H headers", MAX_HEADERS);
            headers[n_headers++] = h;
        } else if (!strcmp(a, "--cacert")) cacert = option_value(argc, argv, &i);
        else if (!strcmp(a, "--allow-http")) allow_http = 1;
        else if (!strcmp(a, "-i")) u.show_headers = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) u.quiet = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) usage_error("unknown option '%s'", a);
        else if (url) usage_error("upload takes one URL ('%s' and '%s' given)", url, a);
        else url = a;
    }
    if (!url) usage_error("upload needs a URL");
    if (n_forms == 0) usage_error("upload needs at least one -F name=@path");
    char hnames[MAX_HEADERS][256];
    const char *hvalues[MAX_HEADERS];
    if (parse_headers(headers, n_headers, hnames, hvalues) != 0) return 2;
    /* Every -f and -F is checked before anything is made. */
    char fnames[256][256];
    for (int i = 0; i < n_fields; i++) {
        const char *eq = strchr(fields[i], '=');
        if (!eq || eq == fields[i] || (size_t)(eq - fields[i]) >= sizeof fnames[i])
            usage_error("-f wants name=value, not '%s'", fields[i]);
        snprintf(fnames[i], sizeof fnames[i], "%.*s", (int)(eq - fields[i]), fields[i]);
    }
    /* name=@path[;filename=F][;type=T] */
    static char fspec[256][PATH_MAX], furi[256][PATH_MAX + 32];
    const char *fname[256], *ffile[256], *ftype[256];
    for (int i = 0; i < n_forms; i++) {
        char real[PATH_MAX];
        snprintf(fspec[i], sizeof fspec[i], "%s", forms[i]);
        char *at = strstr(fspec[i], "=@");
        if (!at || at == fspec[i]) usage_error("-F wants name=@path, not '%s'", forms[i]);
        *at = 0;
        fname[i] = fspec[i];
        ffile[i] = ftype[i] = "";
        char *save = NULL, *path = strtok_r(at + 2, ";", &save);
        for (char *opt = strtok_r(NULL, ";", &save); opt; opt = strtok_r(NULL, ";", &save)) {
            if (!strncmp(opt, "filename=", 9)) ffile[i] = opt + 9;
            else if (!strncmp(opt, "type=", 5)) ftype[i] = opt + 5;
            else usage_error("-F option '%s' is not filename= or type=", opt);
        }
        if (!path) usage_error("-F '%s' names no file", forms[i]);
        if (!absolute_file(path, real)) return 2;
        snprintf(furi[i], sizeof furi[i], "dataability://file%s", real);
    }
    char data[PATH_MAX], ca[PATH_MAX], err[512];
    if (cacert && !(cacert = absolute_file(cacert, ca))) return 2;

    /* From here on every exit goes through `out`, which removes the throwaway store. */
    if (make_temp_state(data, sizeof data) != 0) return 2;
    catch_stop_signals();
    int status = 2;
    ohreq_task *t = NULL;
    ohreq_client *cli = NULL;
    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    ohreq_code rc = ohreq_service_options_set_data_dir(so, data);
    if (!rc) rc = ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL);
    if (!rc) rc = ohreq_service_new(so, &svc);
    ohreq_service_options_free(so);
    ohreq_client_options *co = ohreq_client_options_new();
    if (!rc) rc = ohreq_client_options_set_uid(co, CLI_UID);
    if (!rc) rc = ohreq_client_options_add_permission(co, "ohos.permission.INTERNET");
    if (!rc) rc = ohreq_client_options_set_cache_dir(co, data);
    if (!rc) rc = ohreq_client_options_set_cleartext_permitted(co, allow_http != 0);
    if (!rc && cacert) rc = ohreq_client_options_set_ca_file(co, cacert);
    if (!rc) rc = ohreq_client_options_set_uri_resolver(co, resolve_uri, NULL, NULL);
    if (!rc) rc = ohreq_client_new(svc, co, &cli);
    ohreq_client_options_free(co);
    if (rc) {
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: cannot start the service: %s (%s)\n", ohreq_code_message(rc), err);
        goto out;
    }

    ohreq_upload_config *c = ohreq_upload_config_new();
    rc = ohreq_upload_config_set_url(c, url);
    if (!rc) rc = ohreq_upload_config_set_method(c, method);
    for (int h = 0; h < n_headers && !rc; h++) rc = ohreq_upload_config_add_header(c, hnames[h], hvalues[h]);
    for (int i = 0; i < n_fields && !rc; i++) rc = ohreq_upload_config_add_data(c, fnames[i], strchr(fields[i], '=') + 1);
    for (int i = 0; i < n_forms && !rc; i++) rc = ohreq_upload_config_add_file(c, ffile[i], fname[i], furi[i], ftype[i]);
    if (!rc) rc = ohreq_upload(cli, c, &t);
    ohreq_upload_config_free(c);
    if (rc) {
        /* The request was refused before it started (a bad URL, cleartext not allowed...). */
        last_error(err, sizeof err);
        fprintf(stderr, "ohreq: %s: %s: %s (%d)\n", url, code_name(rc), err, rc);
        status = 1;
        goto out;
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
    while (!u.done && !stop_signal) {
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
    status = u.done > 0 ? 0 : 1;
    if (stop_signal && !u.done) {
        if (ohreq_task_delete(t) != OHREQ_OK) { /* it ended meanwhile */ }
        fprintf(stderr, "ohreq: interrupted; the upload was stopped\n");
        status = 128 + stop_signal;
    }
out:
    ohreq_task_free(t);
    ohreq_client_free(cli);
    ohreq_service_free(svc);
    remove_state_dir(data);
    return status;
}

int main(int argc, char **argv) {
    if (argc < 2) usage_error("say get or upload");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "get")) return cmd_get(argc - 2, argv + 2);
    if (!strcmp(argv[1], "upload")) return cmd_upload(argc - 2, argv + 2);
    if (!strcmp(argv[1], "--version")) {
        printf("ohreq %s\n", ohreq_version());
        return 0;
    }
    usage_error("unknown command '%s'", argv[1]);
    return 2;
}
