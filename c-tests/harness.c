/* harness.c: see harness.h. */
#include "harness.h"

#include <dirent.h>

int th_failures = 0;
int th_checks = 0;

static th_server *g_server;

static void stop_at_exit(void) {
    if (g_server) th_server_stop(g_server);
}

int th_run(int argc, char **argv, const th_test *tests, size_t n) {
    int passed = 0, failed = 0;
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0) wanted = 1;
            if (!wanted) continue;
        }
        int before = th_failures;
        long long t0 = th_now_ms();
        fprintf(stderr, "- %s\n", tests[i].name);
        tests[i].fn();
        if (th_failures == before) {
            passed++;
            fprintf(stderr, "  ok (%lld ms)\n", th_now_ms() - t0);
        } else {
            failed++;
            fprintf(stderr, "  FAILED\n");
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && th_checks > 0 ? 0 : 1;
}

void th_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long long th_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *th_tmpdir(char *buf, size_t len) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/ohreq-ct-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(2);
    }
    return buf;
}

void th_server_start(th_server *s) {
    char dir[400], portfile[600];
    th_tmpdir(dir, sizeof dir);
    snprintf(s->root, sizeof s->root, "%s/root", dir);
    snprintf(s->certs, sizeof s->certs, "%s/certs", dir);
    snprintf(portfile, sizeof portfile, "%s/ports", dir);
    snprintf(s->port_file, sizeof s->port_file, "%s", portfile);
    mkdir(s->root, 0755);
    const char *bin = getenv("OHREQ_TESTSERVER");
    if (!bin) bin = "target/release/testserver";
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        execl(bin, bin, "--root", s->root, "--port-file", portfile, "--cert-dir", s->certs, (char *)NULL);
        perror("exec testserver");
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 200; i++) { /* up to 10 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "http=%d https=%d", &s->http_port, &s->https_port) == 2;
            fclose(f);
            if (ok) {
                g_server = s;
                atexit(stop_at_exit);
                return;
            }
        }
        th_sleep_ms(50);
    }
    fprintf(stderr, "testserver did not start (%s)\n", bin);
    kill(pid, SIGKILL);
    exit(2);
}

void th_server_stop(th_server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

const char *th_url(const th_server *s, int tls, const char *path, char *buf, size_t len) {
    snprintf(buf, len, "%s://127.0.0.1:%d%s", tls ? "https" : "http", tls ? s->https_port : s->http_port, path);
    return buf;
}

int th_http_get(const th_server *s, const char *path, char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)s->http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    char *buf = malloc(1 << 20);
    ssize_t r;
    while (got < (1 << 20) - 1 && (r = read(fd, buf + got, (1 << 20) - 1 - got)) > 0) got += (size_t)r;
    close(fd);
    buf[got] = 0;
    int status = -1;
    sscanf(buf, "HTTP/%*s %d", &status);
    char *body = strstr(buf, "\r\n\r\n");
    if (out && cap) {
        snprintf(out, cap, "%s", body ? body + 4 : "");
    }
    free(buf);
    return status;
}

void th_write_pattern(const char *path, size_t size, unsigned seed) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    unsigned x = seed * 2654435761u + 1;
    char buf[65536];
    size_t left = size;
    while (left) {
        size_t k = left < sizeof buf ? left : sizeof buf;
        for (size_t i = 0; i < k; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (char)(x >> 16);
        }
        fwrite(buf, 1, k, f);
        left -= k;
    }
    fclose(f);
}

int th_same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    char ba[65536], bb[65536];
    while (same) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        if (na != nb || memcmp(ba, bb, na) != 0) same = 0;
        if (na == 0) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

int th_exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

void th_sha256_of(const char *path, char out[65]) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *f = popen(cmd, "r");
    out[0] = 0;
    if (f) {
        if (fscanf(f, "%64s", out) != 1) out[0] = 0;
        pclose(f);
    }
}

long long th_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

int th_count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

ohreq_service *th_service(const char *data, int poll) {
    ohreq_service_options *o = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    CHECK_CODE(ohreq_service_options_set_data_dir(o, data), OHREQ_OK);
    if (poll) CHECK_CODE(ohreq_service_options_set_dispatch_mode(o, OHREQ_DISPATCH_POLL), OHREQ_OK);
    CHECK_CODE(ohreq_service_new(o, &svc), OHREQ_OK);
    ohreq_service_options_free(o);
    if (!svc) exit(2);
    return svc;
}

ohreq_client *th_client(ohreq_service *svc, const char *cache, const char *ca, int no_internet) {
    ohreq_client_options *o = ohreq_client_options_new();
    ohreq_client *c = NULL;
    CHECK_CODE(ohreq_client_options_set_uid(o, 20010001), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_bundle(o, "com.example.test"), OHREQ_OK);
    if (!no_internet) CHECK_CODE(ohreq_client_options_add_permission(o, "ohos.permission.INTERNET"), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cache_dir(o, cache), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cleartext_permitted(o, true), OHREQ_OK);
    if (ca) CHECK_CODE(ohreq_client_options_set_ca_file(o, ca), OHREQ_OK);
    CHECK_CODE(ohreq_client_new(svc, o, &c), OHREQ_OK);
    ohreq_client_options_free(o);
    if (!c) exit(2);
    return c;
}

void th_rec_init(th_rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->last_total = -2;
}

void th_rec_destroy(th_rec *r) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
}

static void rec_cb(void *ud, const ohreq_event *ev) {
    th_rec *r = ud;
    unsigned k = ohreq_event_kind(ev);
    pthread_mutex_lock(&r->mu);
    if (k < TH_KINDS) r->count[k]++;
    if (r->n_order < 64) r->order[r->n_order++] = (int)k;
    if (k == OHREQ_EVENT_PROGRESS) {
        long long p = (long long)ohreq_event_processed(ev);
        r->last_processed = p;
        r->last_total = ohreq_event_total(ev);
        if (p > r->max_processed_seen) r->max_processed_seen = p;
    }
    if (k == OHREQ_EVENT_FAIL) r->last_code = ohreq_event_code(ev);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void th_rec_attach(th_rec *r, ohreq_task *t) {
    for (unsigned k = OHREQ_EVENT_PROGRESS; k <= OHREQ_EVENT_FAIL; k++)
        CHECK_CODE(ohreq_task_on(t, k, rec_cb, r, NULL), OHREQ_OK);
}

int th_rec_wait(th_rec *r, unsigned kind, int n, int timeout_ms) {
    long long deadline = th_now_ms() + timeout_ms;
    pthread_mutex_lock(&r->mu);
    while (r->count[kind] < n && th_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
    }
    int ok = r->count[kind] >= n;
    pthread_mutex_unlock(&r->mu);
    return ok;
}

int th_rec_wait_end(th_rec *r, int timeout_ms) {
    long long deadline = th_now_ms() + timeout_ms;
    while (th_now_ms() < deadline) {
        pthread_mutex_lock(&r->mu);
        int k = r->count[OHREQ_EVENT_COMPLETE] ? (int)OHREQ_EVENT_COMPLETE
              : r->count[OHREQ_EVENT_FAIL]     ? (int)OHREQ_EVENT_FAIL
              : r->count[OHREQ_EVENT_REMOVE]   ? (int)OHREQ_EVENT_REMOVE
                                                : -1;
        pthread_mutex_unlock(&r->mu);
        if (k >= 0) return k;
        th_sleep_ms(20);
    }
    return -1;
}

int th_rec_count(th_rec *r, unsigned kind) {
    pthread_mutex_lock(&r->mu);
    int n = r->count[kind];
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- more helpers (added for test_download / test_restart) ---- */

#include <strings.h>

static int g_skip_flag;
static const char *g_current_test = "?";

void th_skip(const char *fmt, ...) {
    va_list ap;
    g_skip_flag = 1;
    fprintf(stderr, "SKIP %s: ", g_current_test);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

int th_run_skippable(int argc, char **argv, const th_test *tests, size_t n) {
    int passed = 0, failed = 0, skipped = 0;
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < n; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0) wanted = 1;
            if (!wanted) continue;
        }
        int before = th_failures;
        long long t0 = th_now_ms();
        g_skip_flag = 0;
        g_current_test = tests[i].name;
        fprintf(stderr, "- %s\n", tests[i].name);
        tests[i].fn();
        if (th_failures != before) {
            failed++;
            fprintf(stderr, "  FAILED (%lld ms)\n", th_now_ms() - t0);
        } else if (g_skip_flag) {
            skipped++;
            fprintf(stderr, "  skipped (%lld ms)\n", th_now_ms() - t0);
        } else {
            passed++;
            fprintf(stderr, "  ok (%lld ms)\n", th_now_ms() - t0);
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed == 0 && (th_checks > 0 || skipped > 0) ? 0 : 1;
}

/* One HTTP/1.0 exchange with the server; the whole response (head and body, NUL-terminated,
 * truncated to cap - 1) into buf. Returns the status or -1. */
static int http_exchange(const th_server *s, const char *method, const char *path, char *buf, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)s->http_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got < cap - 1 && (r = read(fd, buf + got, cap - 1 - got)) > 0) got += (size_t)r;
    close(fd);
    buf[got] = 0;
    int status = -1;
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1) status = -1;
    return status;
}

int th_http_head(const th_server *s, const char *path, const char *name, char *out, size_t cap) {
    char buf[8192];
    int status = http_exchange(s, "HEAD", path, buf, sizeof buf);
    if (out && cap) out[0] = 0;
    size_t nl = strlen(name);
    char *line = strstr(buf, "\r\n");
    while (line && line[2] != '\r' && line[2] != 0) {
        line += 2;
        char *end = strstr(line, "\r\n");
        if (!end) break;
        if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            if (out && cap) snprintf(out, cap, "%.*s", (int)(end - v), v);
            break;
        }
        line = end;
    }
    return status;
}

/* Copies the text of `line` between `from` (excluded) and `to` (NULL: end) into out. */
static void copy_between(const char *from, const char *to, char *out, size_t cap) {
    size_t len = to ? (size_t)(to - from) : strlen(from);
    if (len >= cap) len = cap - 1;
    memcpy(out, from, len);
    out[len] = 0;
}

static int parse_log_line(char *line, th_log_entry *e) {
    memset(e, 0, sizeof *e);
    if (sscanf(line, "%d %15s %511s", &e->conn, e->method, e->target) != 3) return -1;
    char *rg = strstr(line, " range=");
    char *ir = rg ? strstr(rg, " if-range=") : NULL;
    char *tl = NULL, *p = line;
    while ((p = strstr(p, " tls=")) != NULL) tl = p++;
    char *sv = tl ? strstr(tl, " served=") : NULL;
    if (!rg || !ir || !tl || !sv) return -1;
    copy_between(rg + 7, ir, e->range, sizeof e->range);
    copy_between(ir + 10, tl, e->if_range, sizeof e->if_range);
    e->tls = atoi(tl + 5);
    e->served = atoll(sv + 8);
    return 0;
}

/* The plain view of th_server_upload_log (one parser for /__log). */
int th_server_log(const th_server *s, const char *needle, th_log_entry *out, int cap) {
    th_upload_log_entry *all = out && cap > 0 ? calloc((size_t)cap, sizeof *all) : NULL;
    int n = th_server_upload_log(s, needle, all, all ? cap : 0);
    for (int i = 0; all && i < n && i < cap; i++) out[i] = all[i].e;
    free(all);
    return n;
}

long long th_server_served(const th_server *s, const char *needle) {
    th_log_entry e[256];
    int n = th_server_log(s, needle, e, 256);
    long long sum = 0;
    for (int i = 0; i < n && i < 256; i++) sum += e[i].served;
    return n < 0 ? -1 : sum;
}

int th_server_stats(const th_server *s, long long *connections, long long *requests) {
    char buf[512];
    if (th_http_get(s, "/__stats", buf, sizeof buf) != 200) return -1;
    return sscanf(buf, "connections=%lld requests=%lld", connections, requests) == 2 ? 0 : -1;
}

long long th_wait_file_size(const char *path, long long min, int timeout_ms) {
    long long deadline = th_now_ms() + timeout_ms, size = th_file_size(path);
    while (size < min && th_now_ms() < deadline) {
        th_sleep_ms(10);
        size = th_file_size(path);
    }
    return size;
}

int th_wait_gone(const char *path, int timeout_ms) {
    long long deadline = th_now_ms() + timeout_ms;
    while (th_exists(path) && th_now_ms() < deadline) th_sleep_ms(10);
    return !th_exists(path);
}

ohreq_service *th_service_max(const char *data, uint32_t max_running) {
    ohreq_service_options *o = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    CHECK_CODE(ohreq_service_options_set_data_dir(o, data), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_max_running(o, max_running), OHREQ_OK);
    CHECK_CODE(ohreq_service_new(o, &svc), OHREQ_OK);
    ohreq_service_options_free(o);
    if (!svc) exit(2);
    return svc;
}

/* ---- HTTP/2 (added for test_http2) ---- */

int th_server_h2_port(const th_server *s) {
    FILE *f = fopen(s->port_file, "r");
    if (!f) return -1;
    int http = 0, https = 0, h2 = -1;
    if (fscanf(f, "http=%d https=%d h2=%d", &http, &https, &h2) != 3) h2 = -1;
    fclose(f);
    return h2;
}

/* ---- uploads (added for test_upload) ---- */

int th_server_upload_log(const th_server *s, const char *needle, th_upload_log_entry *out, int cap) {
    size_t sz = 4u << 20;
    char *buf = malloc(sz);
    if (!buf) return -1;
    if (http_exchange(s, "GET", "/__log", buf, sz) != 200) {
        free(buf);
        return -1;
    }
    char *body = strstr(buf, "\r\n\r\n");
    int n = 0;
    if (body) {
        char *save = NULL;
        for (char *line = strtok_r(body + 4, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            th_upload_log_entry u;
            memset(&u, 0, sizeof u);
            char *sv = NULL, *p = line;
            while ((p = strstr(p, " served=")) != NULL) sv = p++;
            u.h2 = sv && strstr(sv, " h2=1") != NULL;
            char *rv = sv ? strstr(sv, " recv=") : NULL;
            u.recv = rv ? atoll(rv + 6) : -1;
            if (parse_log_line(line, &u.e) != 0) continue;
            if (needle && !strstr(u.e.target, needle)) continue;
            if (out && n < cap) out[n] = u;
            n++;
        }
    }
    free(buf);
    return n;
}
