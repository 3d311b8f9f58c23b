/* test_cli.c: the ohreq command line (build/ohreq, from examples-c/ohreq.c) end to end
 * against testserver: parallel gets into a new nested dir, exit statuses, -o, -H, TLS and
 * cleartext, --state resume after a SIGKILL, SIGINT/SIGTERM, usage errors, uploads.
 *
 * The CLI runs as a child process (fork + execv) with the test's temp dir as its working
 * directory and its stdout and stderr in files there. Every run is bounded in time: a CLI
 * still running after RUN_TIMEOUT_MS is killed and the check fails. $OHREQ_CLI overrides
 * the CLI's path (default build/ohreq, relative to the repo root the tests run from). */
#include "harness.h"

#include <dirent.h>
#include <limits.h>
#include <strings.h>

static th_server srv;
static char cli[PATH_MAX]; /* the CLI, absolute */

#define MiB (1024 * 1024)
#define RUN_TIMEOUT_MS 30000
#define RATE_2MIB "2097152"

/* One test's temp dir: the CLI's working directory; run N writes runN.out and runN.err. */
typedef struct {
    char dir[400];
    int runs;
} ctx;

/* What a finished run left: its exit status (128 + N when signal N ended it, -1 when it had
 * to be killed after the timeout or could not start) and its output (malloc'd). */
typedef struct {
    int status;
    char *out;
    char *err;
} result;

static void ctx_open(ctx *c) {
    th_tmpdir(c->dir, sizeof c->dir);
    c->runs = 0;
}

/* "<test dir>/<rel>" into out. */
static const char *in_dir(const ctx *c, const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", c->dir, rel);
    return out;
}

/* Writes `size` pattern bytes to <server root>/<name>; the path into out. */
static const char *mksrc(const char *name, size_t size, unsigned seed, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", srv.root, name);
    th_write_pattern(out, size, seed);
    return out;
}

/* The whole file as a NUL-terminated string ("" if unreadable); free() it. */
static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) exit(2);
    if (f) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - 1 - len, f)) > 0) {
            len += n;
            if (cap - 1 - len == 0) {
                cap *= 2;
                char *nb = realloc(buf, cap);
                if (!nb) exit(2);
                buf = nb;
            }
        }
        fclose(f);
    }
    buf[len] = 0;
    return buf;
}

/* Starts the CLI with `args` (NULL-terminated, without argv[0]) in c's dir, stdin from
 * /dev/null, stdout and stderr into files whose paths go to out_path and err_path. */
static pid_t cli_spawn(ctx *c, const char *const *args, char *out_path, char *err_path, size_t cap) {
    const char *argv[128];
    int n = 0;
    argv[n++] = cli;
    for (int i = 0; args[i] && n < 127; i++) argv[n++] = args[i];
    argv[n] = NULL;
    c->runs++;
    snprintf(out_path, cap, "%s/run%d.out", c->dir, c->runs);
    snprintf(err_path, cap, "%s/run%d.err", c->dir, c->runs);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls from here to execv. */
        int in = open("/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0 || chdir(c->dir) != 0) _exit(126);
        if (dup2(in, 0) < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(126);
        /* Plain dispositions and mask: the harness ignores SIGPIPE, and a shell may have
         * started us with SIGINT ignored. */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(cli, (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) perror("fork");
    return pid;
}

typedef void (*tick_fn)(void *arg);

/* Waits for the CLI to end, calling tick (if any) every few ms meanwhile. Returns the exit
 * status, 128 + the signal that ended it, or -1 (it was still running after timeout_ms and
 * was killed, or never started). */
static int cli_wait(pid_t pid, int timeout_ms, tick_fn tick, void *arg) {
    if (pid <= 0) return -1;
    long long deadline = th_now_ms() + timeout_ms;
    for (;;) {
        int st = 0;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st)) return WEXITSTATUS(st);
            if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
            return -1;
        }
        if (r < 0 && errno != EINTR) return -1;
        if (th_now_ms() >= deadline) {
            fprintf(stderr, "  ohreq (pid %d) still running after %d ms: killed\n", (int)pid, timeout_ms);
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            return -1;
        }
        if (tick) tick(arg);
        th_sleep_ms(5);
    }
}

/* Waits for a spawned run and collects its output into r. */
static void cli_collect(result *r, pid_t pid, int timeout_ms, tick_fn tick, void *arg, const char *out_path,
                        const char *err_path) {
    r->status = cli_wait(pid, timeout_ms, tick, arg);
    r->out = slurp(out_path);
    r->err = slurp(err_path);
}

/* Runs the CLI with `args` to its end (bounded by RUN_TIMEOUT_MS). */
static void cli_run(ctx *c, result *r, const char *const *args) {
    char o[600], e[600];
    pid_t pid = cli_spawn(c, args, o, e, sizeof o);
    cli_collect(r, pid, RUN_TIMEOUT_MS, NULL, NULL, o, e);
}

#define RUN(c, r, ...) cli_run((c), (r), (const char *const[]){__VA_ARGS__, NULL})

static void result_free(result *r) {
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Checks the exit status; shows what the CLI printed when it differs. */
#define CHECK_STATUS(r, want)                                                                      \
    do {                                                                                           \
        int cs_ = (r)->status;                                                                     \
        CHECK_EQ(cs_, (want));                                                                     \
        if (cs_ != (want)) fprintf(stderr, "  ohreq stdout: [%s]\n  ohreq stderr: [%s]\n", (r)->out, (r)->err); \
    } while (0)

static int has(const char *hay, const char *needle) {
    return hay && strstr(hay, needle) != NULL;
}

/* The first line of `text` that contains `needle` into out ("" if none). */
static const char *line_with(const char *text, const char *needle, char *out, size_t cap) {
    out[0] = 0;
    const char *p = text ? strstr(text, needle) : NULL;
    if (!p) return out;
    const char *b = p, *e = p;
    while (b > text && b[-1] != '\n') b--;
    while (*e && *e != '\n') e++;
    snprintf(out, cap, "%.*s", (int)(e - b), b);
    return out;
}

/* 1 if some line of `text`, without trailing blanks and CR, is exactly `want`. */
static int has_line(const char *text, const char *want) {
    size_t wl = strlen(want);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r')) len--;
        if (len == wl && memcmp(p, want, wl) == 0) return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

/* Number of *.ohreq-part files in dir. */
static int count_parts(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 11 && strcmp(e->d_name + l - 11, ".ohreq-part") == 0) n++;
    }
    closedir(d);
    return n;
}

/* 1 if the file holds `token` (only its first 16 MiB are read). */
static int file_holds(const char *path, const char *token) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 16u << 20;
    char *buf = malloc(cap);
    size_t n = buf ? fread(buf, 1, cap, f) : 0;
    fclose(f);
    int found = buf && memmem(buf, n, token, strlen(token)) != NULL;
    free(buf);
    return found;
}

/* The throwaway stores (ohreq-cli-* under /dev/shm, $TMPDIR, /tmp) a run without --state
 * left behind that mention `token` (a URL only this test uses). Stores of other processes
 * never mention it, so they are not counted. */
static int leftover_state_dirs(const char *token) {
    const char *bases[] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    int found = 0;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (!bases[i] || !*bases[i]) continue;
        DIR *d = opendir(bases[i]);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strncmp(e->d_name, "ohreq-cli-", 10) != 0) continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", bases[i], e->d_name);
            DIR *sd = opendir(sub);
            if (!sd) continue;
            struct dirent *f;
            while ((f = readdir(sd))) {
                char p[PATH_MAX + 256];
                snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
                if (f->d_name[0] != '.' && file_holds(p, token)) {
                    fprintf(stderr, "  leftover store %s mentions %s\n", sub, token);
                    found++;
                    break;
                }
            }
            closedir(sd);
        }
        closedir(d);
    }
    return found;
}

/* How many requests the server logged whose target contains `needle`. */
static int requests_for(const char *needle) {
    return th_server_log(&srv, needle, NULL, 0);
}

/* ------------------------------------------------------------------------------------- */

typedef struct {
    char dir[700];
    int max_parts;
} part_watch;

static void watch_parts(void *arg) {
    part_watch *w = arg;
    int n = count_parts(w->dir);
    if (n > w->max_parts) w->max_parts = n;
}

/* 1. 20 files of different sizes (an empty one, four of 1-4 MiB), --parallel 4, into a
 * nested -d dir that does not exist yet: all byte-identical, nothing else there, never more
 * than 4 connections, nothing printed with --quiet. */
static void test_get_many(void) {
    enum { N = 20 };
    ctx c;
    ctx_open(&c);
    static char names[N][32], srcs[N][700], urls[N][256];
    const char *args[N + 16];
    int k = 0;
    args[k++] = "get";
    args[k++] = "--allow-http";
    args[k++] = "--parallel";
    args[k++] = "4";
    args[k++] = "--quiet";
    args[k++] = "-d";
    args[k++] = "out/a/b";
    for (int i = 0; i < N; i++) {
        /* Throttled to 8 MiB/s per transfer, so that several overlap (about 1 s in all). */
        size_t size = i % 5 == 0 ? (size_t)(1 + i / 5) * MiB + (size_t)i : i == 1 ? 0 : 4096u * (size_t)(i * i) + (size_t)i;
        char path[128];
        snprintf(names[i], sizeof names[i], "many-%02d.bin", i);
        mksrc(names[i], size, 100u + (unsigned)i, srcs[i], sizeof srcs[i]);
        snprintf(path, sizeof path, "/files/%s?rate=%d", names[i], 8 * MiB);
        args[k++] = th_url(&srv, 0, path, urls[i], sizeof urls[i]);
    }
    args[k] = NULL;
    part_watch w;
    in_dir(&c, "out/a/b", w.dir, sizeof w.dir);
    w.max_parts = 0;
    char o[600], e[600];
    result r;
    long long c0 = 0, q0 = 0, c1 = 0, q1 = 0;
    CHECK_EQ(th_server_stats(&srv, &c0, &q0), 0);
    pid_t pid = cli_spawn(&c, args, o, e, sizeof o);
    cli_collect(&r, pid, RUN_TIMEOUT_MS, watch_parts, &w, o, e);
    CHECK_STATUS(&r, 0);
    CHECK_EQ(th_server_stats(&srv, &c1, &q1), 0);
    for (int i = 0; i < N; i++) {
        char dst[800];
        snprintf(dst, sizeof dst, "%s/%.31s", w.dir, names[i]);
        int same = th_same_file(srcs[i], dst);
        CHECK(same);
        if (!same) fprintf(stderr, "  %s differs (%lld bytes, want %lld)\n", dst, th_file_size(dst), th_file_size(srcs[i]));
    }
    CHECK_EQ(th_count_entries(w.dir), N); /* no part file, nothing else */
    CHECK_EQ(count_parts(w.dir), 0);
    char p[700];
    CHECK_EQ(th_count_entries(in_dir(&c, "out/a", p, sizeof p)), 1);
    CHECK_EQ(th_count_entries(in_dir(&c, "out", p, sizeof p)), 1);
    CHECK(r.out[0] == 0); /* --quiet: nothing on success */
    CHECK(r.err[0] == 0);
    /* --parallel 4: at most 4 connections (kept alive and reused; the second stats
     * request has one of its own). Part files alone do not show it: a finished one waits
     * for its publisher's sync while the next transfers already write theirs. */
    CHECK(c1 - c0 - 1 <= 4);
    CHECK(w.max_parts >= 2); /* and they did overlap */
    fprintf(stderr, "  at most %d part files at once\n", w.max_parts);
    CHECK_EQ(requests_for("/files/many-"), N); /* one request per file */
    CHECK_EQ(leftover_state_dirs(urls[0]), 0);
    result_free(&r);
}

/* 2. One good URL and one 404: exit 1, the good file whole, nothing for the 404, and a
 * line on stderr naming the failing URL, ERROR_UNHANDLED_HTTP_CODE and 404. */
static void test_get_failure_exit(void) {
    ctx c;
    ctx_open(&c);
    char src[700], good[256], bad[256], loop[256], dst[700], out[700], line[1024];
    mksrc("fail-good.bin", 300007, 7, src, sizeof src);
    th_url(&srv, 0, "/files/fail-good.bin", good, sizeof good);
    th_url(&srv, 0, "/files/fail-missing.bin", bad, sizeof bad);
    result r;
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out", good, bad);
    CHECK_STATUS(&r, 1);
    CHECK(th_same_file(src, in_dir(&c, "out/fail-good.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(in_dir(&c, "out", out, sizeof out)), 1);
    line_with(r.err, bad, line, sizeof line);
    CHECK(line[0] != 0);
    CHECK(has(line, "ERROR_UNHANDLED_HTTP_CODE"));
    CHECK(has(line, "404"));
    CHECK(!has(r.err, good)); /* the good one is no failure (and --quiet says nothing of it) */
    CHECK_EQ(leftover_state_dirs(good), 0);
    result_free(&r);

    /* Every URL failing is exit 1 too; each failure names its own ERROR_*. */
    th_url(&srv, 0, "/loop", loop, sizeof loop);
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out2", loop, bad);
    CHECK_STATUS(&r, 1);
    CHECK(has(line_with(r.err, loop, line, sizeof line), "ERROR_TOO_MANY_REDIRECTS"));
    CHECK(has(line_with(r.err, bad, line, sizeof line), "ERROR_UNHANDLED_HTTP_CODE"));
    CHECK(th_count_entries(in_dir(&c, "out2", out, sizeof out)) <= 0);
    result_free(&r);
}

/* 3. -o with a relative sub path lands under -d; -o with two URLs is a usage error that
 * downloads nothing; -o escaping -d is refused. */
static void test_get_output_name(void) {
    ctx c;
    ctx_open(&c);
    char src[700], url[256], dst[700], p[700];
    mksrc("named.bin", 123457, 9, src, sizeof src);
    th_url(&srv, 0, "/files/named.bin", url, sizeof url);
    result r;
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out", "-o", "sub/x.bin", url);
    CHECK_STATUS(&r, 0);
    CHECK(th_same_file(src, in_dir(&c, "out/sub/x.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(in_dir(&c, "out", p, sizeof p)), 1);
    CHECK_EQ(th_count_entries(in_dir(&c, "out/sub", p, sizeof p)), 1);
    result_free(&r);

    char u1[256], u2[256];
    th_url(&srv, 0, "/files/named.bin?two=1", u1, sizeof u1);
    th_url(&srv, 0, "/files/named.bin?two=2", u2, sizeof u2);
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out2", "-o", "y.bin", u1, u2);
    CHECK_STATUS(&r, 2);
    CHECK(has(r.err, "-o"));
    CHECK(!th_exists(in_dir(&c, "out2", p, sizeof p)));
    CHECK_EQ(requests_for("named.bin?two="), 0);
    result_free(&r);

    char u3[256];
    th_url(&srv, 0, "/files/named.bin?escape=1", u3, sizeof u3);
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out3/in", "-o", "../escape.bin", u3);
    CHECK_STATUS(&r, 1);
    CHECK(has(r.err, u3));
    CHECK(!th_exists(in_dir(&c, "out3/escape.bin", p, sizeof p)));
    CHECK(!th_exists(in_dir(&c, "escape.bin", p, sizeof p)));
    CHECK_EQ(th_count_entries(in_dir(&c, "out3/in", p, sizeof p)), 0);
    CHECK_EQ(requests_for("named.bin?escape="), 0);
    result_free(&r);
}

/* 4. -H 'X-A: 1', curl's 'X-Empty:' and 'X-Semi;' (both an empty value) reach /echo, which
 * answers with the request's header lines. */
static void test_get_headers(void) {
    ctx c;
    ctx_open(&c);
    char url[256], p[700];
    th_url(&srv, 0, "/echo?cli=headers", url, sizeof url);
    result r;
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out", "-H", "X-A: 1", "-H", "X-Empty:", "-H", "X-Semi;", url);
    CHECK_STATUS(&r, 0);
    char *body = slurp(in_dir(&c, "out/echo", p, sizeof p));
    CHECK(has_line(body, "GET /echo?cli=headers HTTP/1.1"));
    CHECK(has_line(body, "X-A: 1"));
    CHECK(has_line(body, "X-Empty:"));
    CHECK(has_line(body, "X-Semi:"));
    CHECK(!has(body, "X-Semi;"));
    if (!has_line(body, "X-A: 1") || !has_line(body, "X-Empty:") || !has_line(body, "X-Semi:"))
        fprintf(stderr, "  echo body: [%s]\n", body);
    free(body);
    result_free(&r);
}

/* A TLS failure: exit 1, a line naming the URL and an ERROR_* that speaks of the
 * certificate, nothing in dir. */
static void expect_tls_failure(const ctx *c, result *r, const char *url, const char *dir) {
    char line[1024], p[700];
    CHECK_STATUS(r, 1);
    line_with(r->err, url, line, sizeof line);
    CHECK(has(line, "ERROR_"));
    CHECK(strcasestr(line, "SSL") || strcasestr(line, "TLS") || strcasestr(line, "certificate"));
    CHECK(th_count_entries(in_dir(c, dir, p, sizeof p)) <= 0);
}

/* 5. https with --cacert (the server's CA); without it, or with another CA, a TLS error;
 * plain http without --allow-http refused before any request. */
static void test_get_https(void) {
    ctx c;
    ctx_open(&c);
    char src[700], url[256], dst[700], ca[700], other[700], p[700];
    mksrc("tls.bin", 200003, 11, src, sizeof src);
    th_url(&srv, 1, "/files/tls.bin", url, sizeof url);
    snprintf(ca, sizeof ca, "%s/ca.pem", srv.certs);
    snprintf(other, sizeof other, "%s/other-ca.pem", srv.certs);
    result r;
    RUN(&c, &r, "get", "--quiet", "-d", "ok", "--cacert", ca, url);
    CHECK_STATUS(&r, 0);
    CHECK(th_same_file(src, in_dir(&c, "ok/tls.bin", dst, sizeof dst)));
    CHECK_EQ(th_count_entries(in_dir(&c, "ok", p, sizeof p)), 1);
    result_free(&r);

    RUN(&c, &r, "get", "--quiet", "-d", "missingca", "--cacert", "missing-ca.pem", url);
    CHECK_STATUS(&r, 2);
    CHECK(has(r.err, "missing-ca.pem"));
    CHECK(!th_exists(in_dir(&c, "missingca", p, sizeof p)));
    result_free(&r);

    RUN(&c, &r, "get", "--quiet", "-d", "noca", url);
    expect_tls_failure(&c, &r, url, "noca");
    result_free(&r);

    RUN(&c, &r, "get", "--quiet", "-d", "otherca", "--cacert", other, url);
    expect_tls_failure(&c, &r, url, "otherca");
    result_free(&r);

    char plain[256], line[1024];
    th_url(&srv, 0, "/files/tls.bin?plain=1", plain, sizeof plain);
    RUN(&c, &r, "get", "--quiet", "-d", "plain", plain);
    CHECK(r.status != 0);
    CHECK_STATUS(&r, 1);
    line_with(r.err, plain, line, sizeof line);
    CHECK(has(line, "cleartext"));
    CHECK(th_count_entries(in_dir(&c, "plain", p, sizeof p)) <= 0);
    CHECK_EQ(requests_for("tls.bin?plain="), 0);
    result_free(&r);
}

/* 6. --state: a throttled download is SIGKILLed, the same command run again finishes it,
 * asking only for the bytes after the last checkpoint; a third run has nothing to do. */
static void test_get_state_resume_after_kill(void) {
    ctx c;
    ctx_open(&c);
    const long long size = 10LL * MiB + 123;
    char src[700], url[256], part[700], target[700], p[700];
    mksrc("resume.bin", (size_t)size, 13, src, sizeof src);
    th_url(&srv, 0, "/files/resume.bin?rate=" RATE_2MIB, url, sizeof url);
    in_dir(&c, "out/resume.bin.ohreq-part", part, sizeof part);
    in_dir(&c, "out/resume.bin", target, sizeof target);
    const char *args[] = {"get", "--allow-http", "--quiet", "-d", "out", "--state", "st", url, NULL};
    char o[600], e[600];
    long long t0 = th_now_ms();
    pid_t pid = cli_spawn(&c, args, o, e, sizeof o);
    long long got = th_wait_file_size(part, 2 * MiB, 15000);
    CHECK(got >= 2 * MiB);
    /* The library checkpoints (syncs the part file and stores the offset) 2 s after the
     * transfer starts, then every 2 s or 16 MiB: wait until one was surely made, still well
     * before the end (10 MiB at 2 MiB/s cannot end before 5 s). */
    while (th_now_ms() - t0 < 3300) th_sleep_ms(10);
    if (pid > 0) kill(pid, SIGKILL);
    CHECK_EQ(cli_wait(pid, 10000, NULL, NULL), 128 + SIGKILL);
    long long on_disk = th_file_size(part);
    fprintf(stderr, "  killed after %lld ms with %lld bytes in the part file\n", th_now_ms() - t0, on_disk);
    CHECK(on_disk >= 2 * MiB && on_disk < size);
    CHECK(!th_exists(target));

    result r;
    cli_run(&c, &r, args);
    CHECK_STATUS(&r, 0);
    CHECK(th_same_file(src, target));
    CHECK_EQ(th_count_entries(in_dir(&c, "out", p, sizeof p)), 1);
    th_log_entry le[8];
    int n = th_server_log(&srv, "/files/resume.bin", le, 8);
    CHECK_EQ(n, 2);
    if (n == 2) {
        long long off = -1;
        CHECK(strcmp(le[0].range, "-") == 0);
        CHECK(sscanf(le[1].range, "bytes=%lld-", &off) == 1);
        fprintf(stderr, "  rerun asked for %s (served %lld + %lld of %lld)\n", le[1].range, le[0].served,
                le[1].served, size);
        CHECK(off > 0);
        CHECK(off <= on_disk);
        CHECK_EQ(le[1].served, size - off);
        CHECK(le[0].served + le[1].served < 2 * size);
    }
    result_free(&r);

    /* Done already: the same command again is a no-op that succeeds. */
    cli_run(&c, &r, args);
    CHECK_STATUS(&r, 0);
    CHECK(th_same_file(src, target));
    CHECK_EQ(requests_for("/files/resume.bin"), 2);
    result_free(&r);
}

/* A throttled download of /files/<name> into dir, stopped by `sig` once its part file has
 * data: exit 128 + sig. Without --state (state NULL) nothing is left in dir and the
 * throwaway store is gone. With --state the part file stays and the same command run again
 * finishes the file, asking for exactly the bytes that were not on disk. */
static void interrupt_one(ctx *c, const char *name, const char *dir, int sig, const char *state) {
    char url[256], path[128], part[700], d[700], o[600], e[600], src[700];
    snprintf(path, sizeof path, "/files/%s?rate=" RATE_2MIB, name);
    th_url(&srv, 0, path, url, sizeof url);
    snprintf(part, sizeof part, "%s/%s/%s.ohreq-part", c->dir, dir, name);
    const char *args[] = {"get", "--allow-http", "--quiet", "-d", dir, url, state ? "--state" : NULL, state, NULL};
    pid_t pid = cli_spawn(c, args, o, e, sizeof o);
    CHECK(th_wait_file_size(part, 512 * 1024, 15000) >= 512 * 1024);
    if (pid > 0) kill(pid, sig);
    result r;
    cli_collect(&r, pid, 15000, NULL, NULL, o, e);
    CHECK_STATUS(&r, 128 + sig);
    CHECK(has(r.err, "interrupted"));
    if (!state) {
        CHECK_EQ(th_count_entries(in_dir(c, dir, d, sizeof d)), 0); /* no part file, no target */
        CHECK_EQ(leftover_state_dirs(url), 0);
        result_free(&r);
        return;
    }
    CHECK(has(r.err, "kept in"));
    result_free(&r);
    long long kept = th_file_size(part);
    CHECK(kept >= 512 * 1024);
    cli_run(c, &r, args);
    CHECK_STATUS(&r, 0);
    snprintf(src, sizeof src, "%s/%s", srv.root, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(th_same_file(src, in_dir(c, path, d, sizeof d)));
    CHECK_EQ(th_count_entries(in_dir(c, dir, d, sizeof d)), 1);
    th_log_entry le[4];
    snprintf(path, sizeof path, "/files/%s", name);
    int n = th_server_log(&srv, path, le, 4);
    CHECK_EQ(n, 2);
    if (n == 2) {
        /* An orderly stop checkpoints all that is on disk: the rerun starts right there. */
        char want[64];
        snprintf(want, sizeof want, "bytes=%lld-", kept);
        CHECK(strcmp(le[1].range, want) == 0);
        if (strcmp(le[1].range, want) != 0) fprintf(stderr, "  rerun asked for %s, want %s\n", le[1].range, want);
    }
    result_free(&r);
}

/* 7. SIGINT and SIGTERM during a download without --state; SIGINT with --state. */
static void test_get_sigint(void) {
    ctx c;
    ctx_open(&c);
    char src[700];
    mksrc("sigint.bin", 8 * MiB, 17, src, sizeof src);
    mksrc("sigterm.bin", 8 * MiB, 18, src, sizeof src);
    mksrc("sigint-state.bin", 4 * MiB + 5, 19, src, sizeof src);
    interrupt_one(&c, "sigint.bin", "out", SIGINT, NULL);
    interrupt_one(&c, "sigterm.bin", "out2", SIGTERM, NULL);
    interrupt_one(&c, "sigint-state.bin", "out3", SIGINT, "st");
}

/* 7b. --state after a SIGKILL, rerun with a different URL for the same file (a signed URL whose
 * token changed, say): the file should be fetched, and the old URL no longer used. */
static void test_get_state_url_changed(void) {
    ctx c;
    ctx_open(&c);
    char src[700], old_url[256], new_url[256], part[700], target[700], o[600], e[600], p[700];
    mksrc("rotate.bin", 4 * MiB + 11, 23, src, sizeof src);
    th_url(&srv, 0, "/files/rotate.bin?rate=" RATE_2MIB "&token=old", old_url, sizeof old_url);
    th_url(&srv, 0, "/files/rotate.bin?rate=" RATE_2MIB "&token=new", new_url, sizeof new_url);
    in_dir(&c, "out/rotate.bin.ohreq-part", part, sizeof part);
    in_dir(&c, "out/rotate.bin", target, sizeof target);
    const char *first[] = {"get", "--allow-http", "--quiet", "-d", "out", "--state", "st", old_url, NULL};
    pid_t pid = cli_spawn(&c, first, o, e, sizeof o);
    CHECK(th_wait_file_size(part, 512 * 1024, 15000) >= 512 * 1024);
    if (pid > 0) kill(pid, SIGKILL);
    CHECK_EQ(cli_wait(pid, 10000, NULL, NULL), 128 + SIGKILL);
    int old_before = requests_for("rotate.bin?rate=" RATE_2MIB "&token=old");
    CHECK_EQ(old_before, 1);

    result r;
    RUN(&c, &r, "get", "--allow-http", "--quiet", "-d", "out", "--state", "st", new_url);
    int old_after = requests_for("rotate.bin?rate=" RATE_2MIB "&token=old");
    CHECK_STATUS(&r, 0);
    CHECK(th_same_file(src, target));
    CHECK_EQ(th_count_entries(in_dir(&c, "out", p, sizeof p)), 1);
    CHECK_EQ(old_after, old_before); /* nothing fetched from a URL no longer asked for */
    result_free(&r);
}

/* 8. Command lines the CLI cannot run: exit 2, a message on stderr, nothing on stdout,
 * nothing made, no request. --help and --version: exit 0, the text on stdout. */
static void test_usage_errors(void) {
    ctx c;
    ctx_open(&c);
    char u[256], up[256], p[700];
    th_url(&srv, 0, "/files/usage-never.bin", u, sizeof u);
    th_url(&srv, 0, "/upload/multipart?usage=1", up, sizeof up);
    in_dir(&c, "in.bin", p, sizeof p);
    th_write_pattern(p, 100, 1);
    struct {
        const char *args[10];
        const char *msg;
    } cases[] = {
        {{"get", "--allow-http", "-d", "out", "--bogus", u}, "unknown option '--bogus'"},
        {{"get", "--allow-http", "-d", "out", "--parallel", "0", u}, "--parallel"},
        {{"get", "--allow-http", "-d", "out", "--parallel", "abc", u}, "--parallel"},
        {{"get", "--allow-http", "-d", "out", "--parallel", "1025", u}, "--parallel"},
        {{"get", "--allow-http", "-d", "out", "--parallel", "4x", u}, "--parallel"},
        {{"get", "--allow-http", "-d", "out"}, "URL"},
        {{"get", "--allow-http", u, "-d"}, "-d needs a value"},
        {{"get", "--allow-http", "-d", "out", "-H", "NoColon", u}, "bad header"},
        {{"get", "--allow-http", "-d", "out", "-H", ": v", u}, "bad header"},
        {{NULL}, "get or upload"},
        {{"frobnicate", u}, "unknown command"},
        {{"upload", "--allow-http", up}, "-F"},
        {{"upload", "--allow-http", "-F", "f=@in.bin"}, "URL"},
        {{"upload", "--allow-http", "-X", "GET", "-F", "f=@in.bin", up}, "-X"},
        {{"upload", "--allow-http", "-F", "f=in.bin", up}, "-F"},
        {{"upload", "--allow-http", "-F", "f=@in.bin", "-f", "novalue", up}, "-f"},
        {{"upload", "--allow-http", "-F", "f=@in.bin", up, u}, "one URL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        result r;
        cli_run(&c, &r, cases[i].args);
        int before = th_failures;
        CHECK_STATUS(&r, 2);
        CHECK(r.out[0] == 0);
        CHECK(has(r.err, cases[i].msg));
        CHECK(!th_exists(in_dir(&c, "out", p, sizeof p)));
        if (th_failures != before)
            fprintf(stderr, "  (case %zu: ohreq %s %s ..., want '%s' on stderr)\n", i,
                    cases[i].args[0] ? cases[i].args[0] : "", cases[i].args[0] && cases[i].args[1] ? cases[i].args[1] : "",
                    cases[i].msg);
        result_free(&r);
    }
    CHECK_EQ(requests_for("usage"), 0);

    const char *helps[][3] = {{"--help", NULL, NULL}, {"-h", NULL, NULL}, {"get", "--help", NULL}, {"upload", "--help", NULL}};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        result r;
        cli_run(&c, &r, helps[i]);
        CHECK_STATUS(&r, 0);
        CHECK(has(r.out, "usage: ohreq get"));
        CHECK(has(r.out, "ohreq upload"));
        CHECK(r.err[0] == 0);
        result_free(&r);
    }
    result r;
    RUN(&c, &r, "--version");
    CHECK_STATUS(&r, 0);
    char want[128];
    snprintf(want, sizeof want, "ohreq %s\n", ohreq_version());
    CHECK(strcmp(r.out, want) == 0);
    result_free(&r);
}

/* Parses "\"key\":NUMBER" out of a JSON answer (-1 if absent). */
static long long json_num(const char *json, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = json ? strstr(json, k) : NULL;
    return p ? atoll(p + strlen(k)) : -1;
}

/* 9. ohreq upload: a multipart POST (a file and a field) and a PUT arrive byte for byte
 * (the server answers with lengths and SHA-256 on stdout, and stores the file); a 500 is
 * exit 1 with the error on stderr. */
static void test_upload(void) {
    ctx c;
    ctx_open(&c);
    const long long size = 50003;
    char src[700], sha[65], url[256], stored[800];
    in_dir(&c, "up.bin", src, sizeof src);
    th_write_pattern(src, (size_t)size, 21);
    th_sha256_of(src, sha);
    CHECK(strlen(sha) == 64);

    /* multipart POST, the file by a relative path (the CLI runs in the test dir) */
    th_url(&srv, 0, "/upload/multipart?store=cli", url, sizeof url);
    result r;
    RUN(&c, &r, "upload", "--allow-http", "--quiet", "-F", "file=@up.bin", "-f", "note=hi", url);
    CHECK_STATUS(&r, 0);
    CHECK(has(r.out, "\"filename\":\"up.bin\""));
    CHECK(has(r.out, "\"length\":50003"));
    CHECK(has(r.out, sha));
    CHECK(has(r.out, "\"value\":\"hi\""));
    CHECK(has(r.out, "\"method\":\"POST\""));
    snprintf(stored, sizeof stored, "%s/uploads/cli/1-up.bin", srv.root);
    CHECK(th_same_file(src, stored));
    th_upload_log_entry ul[4];
    CHECK_EQ(th_server_upload_log(&srv, "/upload/multipart?store=cli", ul, 4), 1);
    CHECK(ul[0].recv > size);
    CHECK_EQ(ul[0].recv, json_num(r.out, "content_length"));
    result_free(&r);

    /* PUT with -i: the status line and headers first on stdout, then the answer */
    th_url(&srv, 0, "/upload/raw/cli-put.bin", url, sizeof url);
    RUN(&c, &r, "upload", "--allow-http", "-i", "-X", "PUT", "-F", "file=@up.bin", url);
    CHECK_STATUS(&r, 0);
    CHECK(strncmp(r.out, "HTTP/1.1 200", 12) == 0);
    CHECK(has(r.out, "\"length\":50003"));
    CHECK(has(r.out, sha));
    CHECK(has(r.out, "\"method\":\"PUT\""));
    snprintf(stored, sizeof stored, "%s/uploads/raw/cli-put.bin", srv.root);
    CHECK(th_same_file(src, stored));
    CHECK_EQ(th_server_upload_log(&srv, "/upload/raw/cli-put.bin", ul, 4), 1);
    CHECK_EQ(ul[0].recv, size);
    result_free(&r);

    /* The server answers 500: exit 1 and the reason on stderr. */
    char line[1024];
    th_url(&srv, 0, "/upload/multipart?status=500", url, sizeof url);
    RUN(&c, &r, "upload", "--allow-http", "--quiet", "-F", "file=@up.bin", url);
    CHECK_STATUS(&r, 1);
    line_with(r.err, url, line, sizeof line);
    CHECK(has(line, "ERROR_UNHANDLED_HTTP_CODE"));
    CHECK(has(line, "500"));
    CHECK_EQ(leftover_state_dirs(url), 0);
    result_free(&r);
}

static const th_test tests[] = {
    {"get_many", test_get_many},
    {"get_failure_exit", test_get_failure_exit},
    {"get_output_name", test_get_output_name},
    {"get_headers", test_get_headers},
    {"get_https", test_get_https},
    {"get_state_resume_after_kill", test_get_state_resume_after_kill},
    {"get_sigint", test_get_sigint},
    {"get_state_url_changed", test_get_state_url_changed},
    {"usage_errors", test_usage_errors},
    {"upload", test_upload},
};

int main(int argc, char **argv) {
    const char *p = getenv("OHREQ_CLI");
    if (!p || !*p) p = "build/ohreq";
    if (!realpath(p, cli) || access(cli, X_OK) != 0) {
        fprintf(stderr, "test_cli: no CLI at %s (run from the repo root after make build/ohreq, or set OHREQ_CLI)\n", p);
        return 2;
    }
    th_server_start(&srv);
    return th_run_skippable(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
