/* download_floor: the floor for a durable download of the small-file case. Downloads the
 * URLs listed in URLFILE (one a line) with one libcurl multi handle on the main thread, 16
 * transfers at once (an easy handle is reused for the next URL as soon as it finishes),
 * gathers each body in memory and hands it to a pool of J publisher threads that make it
 * durable exactly the way ohreq's publishers (and benches/durable_floor.c) do: an unnamed
 * O_TMPFILE file in OUT, write, writeback started for the batch, then per file fdatasync
 * and a link to its name, then one fsync of the directory per batch. A batch is whatever
 * is queued when a publisher wakes, up to 64 files. There is no database, no event, no
 * bookkeeping, no part file: it is the least a downloader can do that makes each of these
 * files durable that way, so its time against plain curl's (same URLs, same nginx, same
 * 16 transfers at once) tells whether a target relative to curl is reachable at all, and
 * J=0 (no syncs) splits that time into network + write and the cost of durability. Prints
 * the seconds from before curl_multi_init to the last file linked and the last directory
 * fsync done (setup before that - reading URLFILE, curl_global_init - is untimed, but a
 * timer around the process sees it: ~5 ms), then checks (untimed) that every file exists
 * with 16384 bytes; exits non-zero otherwise, or when any transfer or write fails.
 *
 *   download_floor J OUT URLFILE   (OUT must exist and not hold the names yet; names are
 *                                   the URLs' last segments)
 *
 *   J = 1..64   that many publisher threads, durable as above (3 is ohreq's default)
 *   J = 0       no syncs at all: the curl thread itself writes each body with
 *               open(O_CREAT|O_EXCL) + write + close, i.e. network plus write alone
 *   NOSYNC=1    (environment) the J publisher threads do that plain write instead
 *   BATCH=N     (environment) largest batch, 1..64 (default 64)
 *   PAR=N       (environment) transfers at once, 1..256 (default 16)
 *   EARLY=1     (environment) the curl thread itself creates the O_TMPFILE file and writes
 *               the body; the publishers only start writeback, fdatasync, link and fsync
 *   EMPTYPATH=1 (environment) link with linkat(fd, "", AT_EMPTY_PATH) instead of through
 *               /proc/self/fd/N (needs CAP_DAC_READ_SEARCH, e.g. root)
 *   TRACE=1     (environment) also print, to stderr, when the last transfer finished and
 *               how many batches the publishers made
 *
 * Build (static libcurl 8.x of the cargo build, system OpenSSL and zlib):
 *   cc -O2 -std=c11 -Wall -Wextra -Werror -I$CURL/include benches/download_floor.c \
 *      -o download_floor $CURL/build/libcurl.a $NGHTTP2/libnghttp2.a \
 *      -lssl -lcrypto -lz -lpthread -ldl
 * with CURL=target/release/build/curl-sys-<hash>/out and
 * NGHTTP2=target/release/build/libnghttp2-sys-<hash>/out/i/lib. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 64
#define MAX_PAR 256
#define EXPECT_SIZE 16384

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *arg) {
    int e = errno;
    fprintf(stderr, "download_floor: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "",
            strerror(e));
    exit(1);
}

static void fail(const char *what, const char *arg) {
    fprintf(stderr, "download_floor: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
    exit(1);
}

static int env_int(const char *name, int def, int lo, int hi) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    int x = atoi(v);
    if (x < lo || x > hi) fail("bad value of", name);
    return x;
}

/* A finished body on its way to a publisher. */
typedef struct item {
    struct item *next;
    int fd; /* the O_TMPFILE file already written (EARLY=1), else -1 */
    const char *name;
    char *data;
    size_t len;
} item;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    item *head, *tail;
    int closed;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

static const char *out_path;
static int out_dir, batch_max, nosync, early, empty_path, batches;

static void push(item *it) {
    pthread_mutex_lock(&q.mu);
    it->next = NULL;
    if (q.tail) q.tail->next = it;
    else q.head = it;
    q.tail = it;
    pthread_cond_signal(&q.cv);
    pthread_mutex_unlock(&q.mu);
}

/* Up to max queued items, waiting for at least one; 0 once the queue is closed and empty. */
static int take(item **got, int max) {
    int n = 0;
    pthread_mutex_lock(&q.mu);
    while (!q.head && !q.closed) pthread_cond_wait(&q.cv, &q.mu);
    while (q.head && n < max) {
        got[n++] = q.head;
        q.head = q.head->next;
    }
    batches += n > 0;
    if (!q.head) q.tail = NULL;
    pthread_mutex_unlock(&q.mu);
    return n;
}

static void write_all(int fd, const char *data, size_t len, const char *name) {
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("write", name);
        data += w;
        len -= (size_t)w;
    }
}

/* An unnamed new file in OUT holding the body. */
static int write_tmpfile(const item *it) {
    int fd = open(out_path, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) die("O_TMPFILE in", out_path);
    write_all(fd, it->data, it->len, it->name);
    return fd;
}

/* The no-sync publish: a plain new file, written and closed. */
static void write_plain(const item *it) {
    int fd = openat(out_dir, it->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) die("create", it->name);
    write_all(fd, it->data, it->len, it->name);
    if (close(fd) != 0) die("close", it->name);
}

static void *publish(void *arg) {
    (void)arg;
    item *got[MAX_BATCH];
    int fds[MAX_BATCH];
    int count;
    while ((count = take(got, batch_max)) > 0) {
        if (nosync) {
            for (int k = 0; k < count; k++) write_plain(got[k]);
        } else {
            for (int k = 0; k < count; k++)
                fds[k] = got[k]->fd >= 0 ? got[k]->fd : write_tmpfile(got[k]);
            for (int k = 0; count > 1 && k < count; k++)
                sync_file_range(fds[k], 0, 0, SYNC_FILE_RANGE_WRITE);
            for (int k = 0; k < count; k++) {
                if (fdatasync(fds[k]) != 0) die("fdatasync", got[k]->name);
                char from[64];
                snprintf(from, sizeof from, "/proc/self/fd/%d", fds[k]);
                int r = empty_path
                            ? linkat(fds[k], "", out_dir, got[k]->name, AT_EMPTY_PATH)
                            : linkat(AT_FDCWD, from, out_dir, got[k]->name, AT_SYMLINK_FOLLOW);
                if (r != 0) die("linkat", got[k]->name);
                close(fds[k]);
            }
            if (fsync(out_dir) != 0) die("fsync", out_path);
        }
        for (int k = 0; k < count; k++) {
            free(got[k]->data);
            free(got[k]);
        }
    }
    return NULL;
}

/* One transfer slot: an easy handle and the body it is gathering. */
typedef struct {
    CURL *easy;
    const char *name;
    char *data;
    size_t len, cap;
} slot;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    slot *s = userdata;
    size_t n = size * nmemb;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : EXPECT_SIZE;
        while (cap < s->len + n) cap *= 2;
        char *p = realloc(s->data, cap);
        if (!p) return 0; /* makes the transfer fail */
        s->data = p;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    return n;
}

static const char *file_name(const char *url) {
    const char *name = strrchr(url, '/');
    return name ? name + 1 : url;
}

static void start(CURLM *multi, slot *s, const char *url) {
    s->name = file_name(url);
    if (!*s->name) fail("URL without a file name:", url);
    s->data = malloc(EXPECT_SIZE);
    if (!s->data) die("malloc", NULL);
    s->len = 0;
    s->cap = EXPECT_SIZE;
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    if (curl_multi_add_handle(multi, s->easy) != CURLM_OK) fail("curl_multi_add_handle", url);
}

int main(int argc, char **argv) {
    if (argc != 4 || atoi(argv[1]) < 0 || atoi(argv[1]) > 64) {
        fprintf(stderr, "usage: download_floor J OUT URLFILE   (J = 0..64, 0: no syncs)\n");
        return 2;
    }
    int threads = atoi(argv[1]);
    out_path = argv[2];
    nosync = threads == 0 || env_int("NOSYNC", 0, 0, 1);
    batch_max = env_int("BATCH", MAX_BATCH, 1, MAX_BATCH);
    int par = env_int("PAR", 16, 1, MAX_PAR);
    early = !nosync && env_int("EARLY", 0, 0, 1);
    empty_path = env_int("EMPTYPATH", 0, 0, 1);
    int trace = env_int("TRACE", 0, 0, 1);

    /* Untimed: the URL list, the output directory, libcurl's global state. */
    FILE *f = fopen(argv[3], "r");
    if (!f) die("open", argv[3]);
    size_t n = 0, cap = 0;
    char **urls = NULL, line[4096];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            urls = realloc(urls, cap * sizeof *urls);
            if (!urls) die("realloc", NULL);
        }
        if (!(urls[n++] = strdup(line))) die("strdup", NULL);
    }
    fclose(f);
    if (n == 0) fail("no URLs in", argv[3]);
    out_dir = open(out_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (out_dir < 0) die("open", out_path);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) fail("curl_global_init", NULL);

    double t0 = now_s();
    CURLM *multi = curl_multi_init();
    if (!multi) fail("curl_multi_init", NULL);
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)par);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)par);

    pthread_t tid[64];
    for (int t = 0; t < threads; t++)
        if ((errno = pthread_create(&tid[t], NULL, publish, NULL)) != 0)
            die("pthread_create", NULL);

    if ((size_t)par > n) par = (int)n;
    slot slots[MAX_PAR];
    size_t next = 0, done = 0;
    double t_net = 0;
    for (int i = 0; i < par; i++) {
        slot *s = &slots[i];
        memset(s, 0, sizeof *s);
        if (!(s->easy = curl_easy_init())) fail("curl_easy_init", NULL);
        curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
        curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(s->easy, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(s->easy, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
        start(multi, s, urls[next++]);
    }

    while (done < n) {
        int running;
        if (curl_multi_perform(multi, &running) != CURLM_OK) fail("curl_multi_perform", NULL);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE) continue;
            char *priv = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
            slot *s = (slot *)(void *)priv;
            if (m->data.result != CURLE_OK) fail(curl_easy_strerror(m->data.result), s->name);
            curl_multi_remove_handle(multi, s->easy);
            item *it = malloc(sizeof *it);
            if (!it) die("malloc", NULL);
            *it = (item){NULL, -1, s->name, s->data, s->len};
            if (early) {
                it->fd = write_tmpfile(it);
                free(it->data);
                it->data = NULL;
            }
            if (threads == 0) {
                write_plain(it);
                free(it->data);
                free(it);
            } else {
                push(it);
            }
            done++;
            if (next < n) start(multi, s, urls[next++]);
        }
        if (done == n) t_net = now_s();
        if (done < n && curl_multi_poll(multi, NULL, 0, 1000, NULL) != CURLM_OK)
            fail("curl_multi_poll", NULL);
    }

    pthread_mutex_lock(&q.mu);
    q.closed = 1;
    pthread_cond_broadcast(&q.cv);
    pthread_mutex_unlock(&q.mu);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    double t1 = now_s();
    printf("%.3f\n", t1 - t0);
    fflush(stdout);
    if (trace)
        fprintf(stderr, "last transfer done %.4f s, all durable %.4f s, %d batches\n",
                t_net - t0, t1 - t0, batches);

    /* Untimed: every file is there with the right size. */
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = file_name(urls[i]);
        struct stat st;
        if (fstatat(out_dir, name, &st, 0) != 0 || st.st_size != EXPECT_SIZE) {
            fprintf(stderr, "download_floor: %s missing or wrong size\n", name);
            bad = 1;
        }
    }
    for (int i = 0; i < par; i++) curl_easy_cleanup(slots[i].easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return bad;
}
