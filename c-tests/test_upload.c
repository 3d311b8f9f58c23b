/* test_upload.c: the legacy upload API end to end against testserver's receivers:
 * multipart and PUT bodies byte for byte, names and MIME types, index/begins/ends slices,
 * create-time errors, the dataability resolver, HTTP errors and TaskStates, retries after
 * dropped connections, delete of a running upload, HTTPS, HTTP/2 and a large body.
 * Every wait is bounded; only 127.0.0.1 is used. */
#include "harness.h"

#include <limits.h>
#include <strings.h>

static th_server srv;

#define MiB (1024 * 1024)
#define MAXH 8    /* headerReceive events kept */
#define MAXS 8    /* TaskStates kept */
#define BODY_CAP (256 * 1024)

typedef struct {
    char dir[400];
    char data[600];
    char cache[600];
    ohreq_service *svc;
    ohreq_client *cli;
} env;

static void env_open(env *e) {
    th_tmpdir(e->dir, sizeof e->dir);
    snprintf(e->data, sizeof e->data, "%s/data", e->dir);
    snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
    mkdir(e->cache, 0755);
    char ca[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", srv.certs);
    e->svc = th_service(e->data, 0);
    e->cli = th_client(e->svc, e->cache, ca, 0);
}

static void env_close(env *e) {
    ohreq_client_free(e->cli);
    ohreq_service_free(e->svc);
}

/* "<cache>/<rel>" into out. */
static const char *in_cache(const env *e, const char *rel, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", e->cache, rel);
    return out;
}

/* Writes `size` pattern bytes to <cache>/<rel>; the path into out. */
static const char *mkfile(const env *e, const char *rel, size_t size, unsigned seed, char *out, size_t cap) {
    in_cache(e, rel, out, cap);
    th_write_pattern(out, size, seed);
    return out;
}

/* Writes a text file. */
static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* Copies `len` bytes from offset `off` of src into dst (a slice for the expected hash). */
static void write_slice(const char *src, long long off, long long len, const char *dst) {
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out || fseeko(in, off, SEEK_SET) != 0) {
        perror("write_slice");
        exit(2);
    }
    char buf[65536];
    while (len > 0) {
        size_t k = len < (long long)sizeof buf ? (size_t)len : sizeof buf;
        size_t n = fread(buf, 1, k, in);
        if (n == 0) break;
        fwrite(buf, 1, n, out);
        len -= (long long)n;
    }
    fclose(in);
    fclose(out);
}

static const char *real_of(const char *path, char *out) {
    if (!realpath(path, out)) snprintf(out, PATH_MAX, "%s", path);
    return out;
}

/* ---- JSON (the receivers' small, flat answers) ---- */

/* The value of "key" in `obj` (a string, unescaped, or a bare token such as a number or
 * null) into out; "<missing>" when absent. */
static const char *json_get(const char *obj, const char *key, char *out, size_t cap) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = obj ? strstr(obj, pat) : NULL;
    size_t n = 0;
    if (!p) {
        snprintf(out, cap, "<missing>");
        return out;
    }
    p += strlen(pat);
    if (*p == '"') {
        for (p++; *p && *p != '"' && n + 1 < cap; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
            } else {
                out[n++] = *p;
            }
        }
    } else {
        while (*p && *p != ',' && *p != '}' && n + 1 < cap) out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

static long long json_num(const char *obj, const char *key) {
    char v[64];
    json_get(obj, key, v, sizeof v);
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    return end && end != v && *end == 0 ? x : -999;
}

/* The i-th object of the "parts" array into out; 0 when there is none. */
static int json_part(const char *json, int i, char *out, size_t cap) {
    const char *p = json ? strstr(json, "\"parts\":[") : NULL;
    if (!p) return 0;
    p += 9;
    for (int k = 0;; k++) {
        const char *s = strchr(p, '{'), *rb = strchr(p, ']');
        if (!s || (rb && rb < s)) return 0;
        const char *e = strchr(s, '}');
        if (!e) return 0;
        if (k == i) {
            size_t len = (size_t)(e - s + 1);
            if (len >= cap) len = cap - 1;
            memcpy(out, s, len);
            out[len] = 0;
            return 1;
        }
        p = e + 1;
    }
}

static int json_part_count(const char *json) {
    char tmp[4096];
    int n = 0;
    while (json_part(json, n, tmp, sizeof tmp)) n++;
    return n;
}

static int field_is(const char *obj, const char *key, const char *want) {
    char v[1024];
    json_get(obj, key, v, sizeof v);
    if (strcmp(v, want) != 0) {
        fprintf(stderr, "  field %s = \"%s\", want \"%s\"\n", key, v, want);
        return 0;
    }
    return 1;
}

/* ---- the upload event recorder ---- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int seq;
    /* headerReceive */
    int n_hdr;
    int hdr_seq[MAXH];
    unsigned hdr_status[MAXH];
    char hdr_version[MAXH][16];
    char hdr_reason[MAXH][64];
    char hdr_ctype[MAXH][128];
    char hdr_received[MAXH][32]; /* X-Received-Bytes */
    size_t hdr_count[MAXH];
    char *hdr_body[MAXH];
    size_t hdr_body_len[MAXH];
    /* progress */
    int n_prog;
    long long prog_last, prog_max, prog_total;
    int prog_total_changed, prog_decreased, prog_over;
    /* complete / fail / remove */
    int n_complete, n_fail, n_remove;
    int end_seq;
    int fail_code;
    size_t n_states;
    char state_path[MAXS][PATH_MAX];
    int state_code[MAXS];
    char state_msg[MAXS][128];
} up_rec;

static void up_init(up_rec *u) {
    memset(u, 0, sizeof *u);
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    u->prog_total = -2;
    u->end_seq = -1;
}

static void up_destroy(up_rec *u) {
    for (int i = 0; i < MAXH; i++) free(u->hdr_body[i]);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
}

static void copy_str(ohreq_str s, char *out, size_t cap) {
    size_t n = s.data ? (s.len < cap - 1 ? s.len : cap - 1) : 0;
    if (n) memcpy(out, s.data, n);
    out[n] = 0;
}

static void up_cb(void *ud, const ohreq_event *ev) {
    up_rec *u = ud;
    unsigned k = ohreq_event_kind(ev);
    pthread_mutex_lock(&u->mu);
    int seq = ++u->seq;
    if (k == OHREQ_EVENT_HEADER_RECEIVE && u->n_hdr < MAXH) {
        int i = u->n_hdr++;
        u->hdr_seq[i] = seq;
        u->hdr_status[i] = ohreq_event_http_status(ev);
        copy_str(ohreq_event_http_version(ev), u->hdr_version[i], sizeof u->hdr_version[i]);
        copy_str(ohreq_event_http_reason(ev), u->hdr_reason[i], sizeof u->hdr_reason[i]);
        u->hdr_count[i] = ohreq_event_header_count(ev);
        for (size_t h = 0; h < u->hdr_count[i]; h++) {
            ohreq_str name = ohreq_event_header_name(ev, h);
            if (!name.data) continue;
            if (strcasecmp(name.data, "content-type") == 0)
                copy_str(ohreq_event_header_value(ev, h), u->hdr_ctype[i], sizeof u->hdr_ctype[i]);
            if (strcasecmp(name.data, "x-received-bytes") == 0)
                copy_str(ohreq_event_header_value(ev, h), u->hdr_received[i], sizeof u->hdr_received[i]);
        }
        ohreq_bytes b = ohreq_event_body(ev);
        size_t n = b.len < BODY_CAP ? b.len : BODY_CAP;
        u->hdr_body[i] = malloc(n + 1);
        if (n) memcpy(u->hdr_body[i], b.data, n);
        u->hdr_body[i][n] = 0;
        u->hdr_body_len[i] = b.len;
    } else if (k == OHREQ_EVENT_PROGRESS) {
        long long p = (long long)ohreq_event_total_processed(ev), t = ohreq_event_total_size(ev);
        if (u->n_prog && p < u->prog_last) u->prog_decreased = 1;
        if (u->n_prog && t != u->prog_total) u->prog_total_changed = 1;
        if (t >= 0 && p > t) u->prog_over = 1;
        u->n_prog++;
        u->prog_last = p;
        u->prog_total = t;
        if (p > u->prog_max) u->prog_max = p;
    } else if (k == OHREQ_EVENT_COMPLETE || k == OHREQ_EVENT_FAIL) {
        if (k == OHREQ_EVENT_COMPLETE) u->n_complete++;
        else {
            u->n_fail++;
            u->fail_code = ohreq_event_code(ev);
        }
        if (u->end_seq < 0) u->end_seq = seq;
        u->n_states = ohreq_event_task_state_count(ev);
        for (size_t i = 0; i < u->n_states && i < MAXS; i++) {
            copy_str(ohreq_event_task_state_path(ev, i), u->state_path[i], sizeof u->state_path[i]);
            u->state_code[i] = ohreq_event_task_state_code(ev, i);
            copy_str(ohreq_event_task_state_message(ev, i), u->state_msg[i], sizeof u->state_msg[i]);
        }
    } else if (k == OHREQ_EVENT_REMOVE) {
        u->n_remove++;
        if (u->end_seq < 0) u->end_seq = seq;
    }
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
}

static void up_attach(up_rec *u, ohreq_task *t) {
    static const unsigned kinds[] = {OHREQ_EVENT_PROGRESS, OHREQ_EVENT_COMPLETE, OHREQ_EVENT_FAIL,
                                     OHREQ_EVENT_REMOVE, OHREQ_EVENT_HEADER_RECEIVE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        CHECK_CODE(ohreq_task_on(t, kinds[i], up_cb, u, NULL), OHREQ_OK);
}

/* Waits for complete, fail or remove; returns the kind or -1. */
static int up_wait_end(up_rec *u, int timeout_ms) {
    long long deadline = th_now_ms() + timeout_ms;
    int k = -1;
    pthread_mutex_lock(&u->mu);
    for (;;) {
        k = u->n_complete ? (int)OHREQ_EVENT_COMPLETE
          : u->n_fail     ? (int)OHREQ_EVENT_FAIL
          : u->n_remove   ? (int)OHREQ_EVENT_REMOVE
                          : -1;
        if (k >= 0 || th_now_ms() >= deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&u->cv, &u->mu, &ts);
    }
    pthread_mutex_unlock(&u->mu);
    return k;
}

/* ---- creating uploads ---- */

/* A config for `path` on the server over plain HTTP. */
static ohreq_upload_config *mkcfg(const char *path) {
    char url[1024];
    ohreq_upload_config *c = ohreq_upload_config_new();
    CHECK_CODE(ohreq_upload_config_set_url(c, th_url(&srv, 0, path, url, sizeof url)), OHREQ_OK);
    return c;
}

static void add_file(ohreq_upload_config *c, const char *filename, const char *name, const char *uri,
                     const char *type) {
    CHECK_CODE(ohreq_upload_config_add_file(c, filename, name, uri, type), OHREQ_OK);
}

/* ohreq_upload starts the task at once, so an early event could be delivered before a
 * subscription made after it returns: create it offline, subscribe, go online. Frees `c`. */
static ohreq_code go_rec(env *e, ohreq_upload_config *c, ohreq_task **t, up_rec *u) {
    CHECK_CODE(ohreq_service_set_network(e->svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
    ohreq_code rc = ohreq_upload(e->cli, c, t);
    ohreq_upload_config_free(c);
    if (rc == OHREQ_OK) up_attach(u, *t);
    CHECK_CODE(ohreq_service_set_network(e->svc, true, OHREQ_NET_WIFI, false, false), OHREQ_OK);
    return rc;
}

/* Runs an upload of `c` to its end (complete expected unless want_fail); returns the kind. */
static int run_upload(env *e, ohreq_upload_config *c, up_rec *u, int timeout_ms) {
    ohreq_task *t = NULL;
    up_init(u);
    ohreq_code rc = go_rec(e, c, &t, u);
    CHECK_CODE(rc, OHREQ_OK);
    if (rc != OHREQ_OK) return -1;
    int k = up_wait_end(u, timeout_ms);
    th_sleep_ms(50);
    ohreq_task_free(t);
    return k;
}

/* The JSON body of the headerReceive event i ("" if none). */
static const char *body_of(up_rec *u, int i) {
    return i < u->n_hdr && u->hdr_body[i] ? u->hdr_body[i] : "";
}

/* Checks part `i` of the multipart answer: name, filename (NULL: a field), content type,
 * length and sha of `src` (or `value` for a field). */
static void check_file_part(const char *json, int i, const char *name, const char *filename, const char *ctype,
                            const char *src) {
    char part[4096], hex[65];
    CHECK(json_part(json, i, part, sizeof part));
    CHECK(field_is(part, "name", name));
    CHECK(field_is(part, "filename", filename));
    CHECK(field_is(part, "content_type", ctype));
    th_sha256_of(src, hex);
    CHECK_EQ(strlen(hex), 64);
    CHECK(field_is(part, "sha256", hex));
    CHECK_EQ(json_num(part, "length"), th_file_size(src));
}

static void check_field_part(const char *json, int i, const char *name, const char *value) {
    char part[8192];
    CHECK(json_part(json, i, part, sizeof part));
    CHECK(field_is(part, "name", name));
    CHECK(field_is(part, "filename", "null"));
    CHECK(field_is(part, "value", value));
    CHECK_EQ(json_num(part, "length"), strlen(value));
}

/* Checks the raw receiver's answer against `src`. */
static void check_raw(const char *json, const char *src, const char *ctype, const char *method) {
    char hex[65];
    th_sha256_of(src, hex);
    CHECK_EQ(strlen(hex), 64);
    CHECK(field_is(json, "sha256", hex));
    CHECK_EQ(json_num(json, "length"), th_file_size(src));
    CHECK(field_is(json, "content_type", ctype));
    CHECK(field_is(json, "method", method));
}

static void check_state(up_rec *u, size_t i, const char *path, int code, const char *msg) {
    char real[PATH_MAX];
    real_of(path, real);
    CHECK(i < u->n_states);
    if (i >= u->n_states || i >= MAXS) return;
    if (strcmp(u->state_path[i], real) != 0)
        fprintf(stderr, "  state %zu path \"%s\", want \"%s\"\n", i, u->state_path[i], real);
    CHECK(strcmp(u->state_path[i], real) == 0);
    CHECK_EQ(u->state_code[i], code);
    if (strcmp(u->state_msg[i], msg) != 0)
        fprintf(stderr, "  state %zu message \"%s\", want \"%s\"\n", i, u->state_msg[i], msg);
    CHECK(strcmp(u->state_msg[i], msg) == 0);
}

/* After a successful upload: headerReceive came before complete; no fail; the last progress
 * reports `sent` bytes of `total` (they differ only when files before `index` are skipped:
 * total_size sums every file's size, total_processed counts what was sent). */
static void check_success_sizes(up_rec *u, int n_hdr, long long sent, long long total) {
    CHECK_EQ(u->n_complete, 1);
    CHECK_EQ(u->n_fail, 0);
    CHECK_EQ(u->n_remove, 0);
    CHECK_EQ(u->n_hdr, n_hdr);
    for (int i = 0; i < u->n_hdr; i++) {
        CHECK_EQ(u->hdr_status[i], 200);
        CHECK(u->hdr_seq[i] < u->end_seq);
        CHECK(strcmp(u->hdr_ctype[i], "application/json") == 0);
        CHECK(u->hdr_count[i] >= 2);
    }
    CHECK(u->n_prog >= 1);
    CHECK_EQ(u->prog_last, sent);
    CHECK_EQ(u->prog_total, total);
    CHECK(!u->prog_total_changed);
    CHECK(!u->prog_over);
}

static void check_success(up_rec *u, int n_hdr, long long total) {
    check_success_sizes(u, n_hdr, total, total);
}

static void check_info(ohreq_task *t, int status, int reason) {
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    CHECK_EQ(ohreq_download_info_status(info), status);
    CHECK_EQ(ohreq_download_info_failed_reason(info), reason);
    CHECK_EQ(ohreq_download_info_id(info), ohreq_task_id(t));
    ohreq_download_info_free(info);
}

/* ------------------------------------------------------------------------------------- */

/* POST: one multipart request, the fields first in order, then the files, byte-exact. */
static void test_multipart_fields_files(void) {
    env e;
    env_open(&e);
    char a[700], b[700], stored[900];
    mkfile(&e, "alpha.bin", 300 * 1024 + 7, 1, a, sizeof a);
    mkfile(&e, "beta.bin", 99999, 2, b, sizeof b);
    ohreq_upload_config *c = mkcfg("/upload/multipart?store=mp1");
    CHECK_CODE(ohreq_upload_config_add_data(c, "first", "one"), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_data(c, "second", "zwei gr\xc3\xbc\xc3\x9f" "e & \"quoted\""), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_data(c, "empty", ""), OHREQ_OK);
    add_file(c, "", "", "internal://cache/alpha.bin", "");
    add_file(c, "", "", "beta.bin", "");
    ohreq_task *t = NULL;
    up_rec u;
    up_init(&u);
    CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
    CHECK_EQ(up_wait_end(&u, 20000), OHREQ_EVENT_COMPLETE);
    th_sleep_ms(100);
    long long total = th_file_size(a) + th_file_size(b);
    check_success(&u, 1, total);
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 5);
    check_field_part(json, 0, "first", "one");
    check_field_part(json, 1, "second", "zwei gr\xc3\xbc\xc3\x9f" "e & \"quoted\"");
    check_field_part(json, 2, "empty", "");
    check_file_part(json, 3, "file", "alpha.bin", "application/octet-stream", a);
    check_file_part(json, 4, "file", "beta.bin", "application/octet-stream", b);
    CHECK(field_is(json, "method", "POST"));
    char rct[256];
    json_get(json, "request_content_type", rct, sizeof rct);
    CHECK(strncmp(rct, "multipart/form-data", 19) == 0 && strstr(rct, "boundary=") != NULL);
    snprintf(stored, sizeof stored, "%s/uploads/mp1/3-alpha.bin", srv.root);
    CHECK(th_same_file(a, stored));
    snprintf(stored, sizeof stored, "%s/uploads/mp1/4-beta.bin", srv.root);
    CHECK(th_same_file(b, stored));
    /* One request; the server read exactly the Content-Length it was announced. */
    th_upload_log_entry l[8];
    CHECK_EQ(th_server_upload_log(&srv, "/upload/multipart?store=mp1", l, 8), 1);
    CHECK_EQ(l[0].recv, json_num(json, "content_length"));
    CHECK(strcmp(l[0].e.method, "POST") == 0);
    CHECK_EQ(atoll(u.hdr_received[0]), l[0].recv);
    /* complete: one TaskState per file, absolute path, code 0, "". */
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 0, "");
    check_state(&u, 1, b, 0, "");
    CHECK(!u.prog_decreased);
    CHECK(strcmp(u.hdr_version[0], "HTTP/1.1") == 0);
    CHECK(strcmp(u.hdr_reason[0], "OK") == 0);
    check_info(t, OHREQ_SESSION_SUCCESSFUL, -1);
    /* The sources are left alone. */
    CHECK_EQ(th_file_size(a), 300 * 1024 + 7);
    ohreq_task_free(t);
    up_destroy(&u);
    env_close(&e);
}

/* Defaults (name "file", filename = the file's name, type from the extension) and explicit
 * ones; a method other than PUT/POST becomes POST. */
static void test_names_and_types(void) {
    env e;
    env_open(&e);
    char a[700], b[700], d[700];
    mkfile(&e, "plain.dat", 1234, 3, a, sizeof a);
    mkdir(in_cache(&e, "nested", d, sizeof d), 0755);
    mkfile(&e, "nested/inner.txt", 4321, 4, b, sizeof b);
    ohreq_upload_config *c = mkcfg("/upload/multipart");
    CHECK_CODE(ohreq_upload_config_set_method(c, "PATCH"), OHREQ_OK);
    add_file(c, "", "", "plain.dat", "");
    add_file(c, "renamed.bin", "attachment", "internal://cache/nested/inner.txt", "application/x-custom");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, 1234 + 4321);
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 2);
    check_file_part(json, 0, "file", "plain.dat", "application/octet-stream", a);
    check_file_part(json, 1, "attachment", "renamed.bin", "application/x-custom", b);
    CHECK(field_is(json, "method", "POST"));
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 0, "");
    check_state(&u, 1, b, 0, "");
    up_destroy(&u);

    /* "post" in lower case, and a form name given with the default filename. */
    c = mkcfg("/upload/multipart");
    CHECK_CODE(ohreq_upload_config_set_method(c, "post"), OHREQ_OK);
    add_file(c, "", "upfile", "nested/inner.txt", "");
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, 4321);
    json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 1);
    check_file_part(json, 0, "upfile", "inner.txt", "text/plain", b);
    CHECK(field_is(json, "method", "POST"));
    up_destroy(&u);
    env_close(&e);
}

/* The part's Content-Type is a real MIME type derived from the extension. */
static void test_mime_from_extension(void) {
    env e;
    env_open(&e);
    char p[4][700];
    mkfile(&e, "notes.txt", 100, 5, p[0], sizeof p[0]);
    mkfile(&e, "photo.jpg", 200, 6, p[1], sizeof p[1]);
    mkfile(&e, "blob.qqzzx", 300, 7, p[2], sizeof p[2]);
    mkfile(&e, "noextension", 400, 8, p[3], sizeof p[3]);
    ohreq_upload_config *c = mkcfg("/upload/multipart");
    add_file(c, "", "", "notes.txt", "");
    add_file(c, "", "", "photo.jpg", "");
    add_file(c, "", "", "blob.qqzzx", "");
    add_file(c, "", "", "noextension", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, 1000);
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 4);
    check_file_part(json, 0, "file", "notes.txt", "text/plain", p[0]);
    check_file_part(json, 1, "file", "photo.jpg", "image/jpeg", p[1]);
    check_file_part(json, 2, "file", "blob.qqzzx", "application/octet-stream", p[2]);
    check_file_part(json, 3, "file", "noextension", "application/octet-stream", p[3]);
    up_destroy(&u);
    env_close(&e);
}

/* PUT: one request per file, the bytes as the body, application/octet-stream. */
static void test_put_two_files(void) {
    env e;
    env_open(&e);
    char a[700], b[700], stored[900];
    mkfile(&e, "put-a.txt", 512 * 1024 + 3, 9, a, sizeof a);
    mkfile(&e, "put-b.bin", 77777, 10, b, sizeof b);
    ohreq_upload_config *c = mkcfg("/upload/raw/put2.bin");
    CHECK_CODE(ohreq_upload_config_set_method(c, "put"), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_data(c, "ignored", "for PUT"), OHREQ_OK);
    add_file(c, "", "", "put-a.txt", "");
    add_file(c, "", "", "put-b.bin", "");
    ohreq_task *t = NULL;
    up_rec u;
    up_init(&u);
    CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
    CHECK_EQ(up_wait_end(&u, 20000), OHREQ_EVENT_COMPLETE);
    th_sleep_ms(100);
    check_success(&u, 2, th_file_size(a) + th_file_size(b));
    check_raw(body_of(&u, 0), a, "application/octet-stream", "PUT");
    check_raw(body_of(&u, 1), b, "application/octet-stream", "PUT");
    /* Both went to the same URL: the stored file is the second body. */
    snprintf(stored, sizeof stored, "%s/uploads/raw/put2.bin", srv.root);
    CHECK(th_same_file(b, stored));
    th_upload_log_entry l[8];
    CHECK_EQ(th_server_upload_log(&srv, "/upload/raw/put2.bin", l, 8), 2);
    CHECK(strcmp(l[0].e.method, "PUT") == 0 && strcmp(l[1].e.method, "PUT") == 0);
    CHECK_EQ(l[0].recv, th_file_size(a));
    CHECK_EQ(l[1].recv, th_file_size(b));
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 0, "");
    check_state(&u, 1, b, 0, "");
    CHECK(!u.prog_decreased);
    check_info(t, OHREQ_SESSION_SUCCESSFUL, -1);
    ohreq_task_free(t);
    up_destroy(&u);
    env_close(&e);
}

/* PUT with a Content-Type header: the body carries it. */
static void test_put_content_type(void) {
    env e;
    env_open(&e);
    char a[700], stored[900];
    mkfile(&e, "table.txt", 4096, 11, a, sizeof a);
    ohreq_upload_config *c = mkcfg("/upload/raw/table.csv");
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_header(c, "Content-Type", "text/csv; charset=utf-8"), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_header(c, "X-Extra", "1"), OHREQ_OK);
    add_file(c, "", "", "table.txt", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, 4096);
    check_raw(body_of(&u, 0), a, "text/csv; charset=utf-8", "PUT");
    snprintf(stored, sizeof stored, "%s/uploads/raw/table.csv", srv.root);
    CHECK(th_same_file(a, stored));
    up_destroy(&u);
    env_close(&e);
}

/* One POST slice case: files [skip.bin, main.bin], index 1, begins/ends; expects the slice
 * [off, off+len) of main.bin. */
static void post_slice_case(env *e, const char *skip, const char *main_, long long begins, long long ends,
                            long long off, long long len, const char *key) {
    char path[900], sl[900], hex[65], part[4096], target[200];
    snprintf(sl, sizeof sl, "%s/slice-%s", e->dir, key);
    write_slice(main_, off, len, sl);
    th_sha256_of(sl, hex);
    snprintf(target, sizeof target, "/upload/multipart?store=%s", key);
    ohreq_upload_config *c = mkcfg(target);
    CHECK_CODE(ohreq_upload_config_add_data(c, "k", key), OHREQ_OK);
    add_file(c, "", "", "skip.bin", "");
    add_file(c, "", "", "main.bin", "");
    CHECK_CODE(ohreq_upload_config_set_index(c, 1), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_begins(c, begins), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_ends(c, ends), OHREQ_OK);
    up_rec u;
    fprintf(stderr, "  case %s: begins %lld ends %lld\n", key, begins, ends);
    CHECK_EQ(run_upload(e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success_sizes(&u, 1, len, th_file_size(skip) + len); /* sizes range-adjusted */
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 2); /* the field and main.bin only */
    CHECK(json_part(json, 1, part, sizeof part));
    CHECK(field_is(part, "filename", "main.bin"));
    CHECK(field_is(part, "sha256", hex));
    CHECK_EQ(json_num(part, "length"), len);
    snprintf(path, sizeof path, "%s/uploads/%s/1-main.bin", srv.root, key);
    CHECK(th_same_file(sl, path));
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, skip, 0, "");
    check_state(&u, 1, main_, 0, "");
    up_destroy(&u);
}

/* index/begins/ends with POST: files before index skipped, the slice of the file at index. */
static void test_slices_post(void) {
    env e;
    env_open(&e);
    char skip[700], m[700];
    const long long size = 100000;
    mkfile(&e, "skip.bin", 5000, 12, skip, sizeof skip);
    mkfile(&e, "main.bin", (size_t)size, 13, m, sizeof m);
    post_slice_case(&e, skip, m, 100, 1099, 100, 1000, "sl-mid");      /* inclusive range */
    post_slice_case(&e, skip, m, 0, 0, 0, 1, "sl-one");                /* a single byte */
    post_slice_case(&e, skip, m, 99000, -1, 99000, 1000, "sl-eof");    /* ends < 0: to EOF */
    post_slice_case(&e, skip, m, 500, size + 50, 500, size - 500, "sl-past"); /* ends past end */
    post_slice_case(&e, skip, m, 2000, 1000, 0, size, "sl-inverted");  /* begins > ends: whole */
    post_slice_case(&e, skip, m, -7, 9, 0, 10, "sl-neg");               /* begins < 0 means 0 */
    /* Nothing of skip.bin reached the server. */
    th_upload_log_entry l[16];
    int n = th_server_upload_log(&srv, "store=sl-", l, 16);
    CHECK_EQ(n, 6);
    env_close(&e);
}

/* index/begins/ends with PUT: the slice of the file at index, later files whole. */
static void test_slices_put(void) {
    env e;
    env_open(&e);
    char f0[700], f1[700], f2[700], sl[900];
    mkfile(&e, "p0.bin", 3000, 14, f0, sizeof f0);
    mkfile(&e, "p1.bin", 50000, 15, f1, sizeof f1);
    mkfile(&e, "p2.bin", 6000, 16, f2, sizeof f2);
    snprintf(sl, sizeof sl, "%s/put-slice", e.dir);
    write_slice(f1, 10, 40000 - 10 + 1, sl);
    ohreq_upload_config *c = mkcfg("/upload/raw/pslice.bin");
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "p0.bin", "");
    add_file(c, "", "", "p1.bin", "");
    add_file(c, "", "", "p2.bin", "");
    CHECK_CODE(ohreq_upload_config_set_index(c, 1), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_begins(c, 10), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_ends(c, 40000), OHREQ_OK);
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success_sizes(&u, 2, 39991 + 6000, 3000 + 39991 + 6000);
    check_raw(body_of(&u, 0), sl, "application/octet-stream", "PUT");
    check_raw(body_of(&u, 1), f2, "application/octet-stream", "PUT");
    th_upload_log_entry l[8];
    CHECK_EQ(th_server_upload_log(&srv, "/upload/raw/pslice.bin", l, 8), 2);
    CHECK_EQ(l[0].recv, 39991);
    CHECK_EQ(l[1].recv, 6000);
    CHECK_EQ(u.n_states, 3);
    check_state(&u, 0, f0, 0, "");
    check_state(&u, 1, f1, 0, "");
    check_state(&u, 2, f2, 0, "");
    up_destroy(&u);
    env_close(&e);
}

/* One create that must fail with `want` and leave no task. */
static void expect_create_error(ohreq_client *cli, ohreq_upload_config *c, ohreq_code want,
                                const char *what) {
    ohreq_task *t = NULL;
    ohreq_code rc = ohreq_upload(cli, c, &t);
    if (rc != want) fprintf(stderr, "  case \"%s\": got %d, want %d\n", what, rc, want);
    CHECK_EQ(rc, want);
    CHECK(t == NULL);
    if (rc == OHREQ_OK) ohreq_task_free(t);
    ohreq_upload_config_free(c);
}

/* Every create-time error; nothing is created, no request is sent. */
static void test_create_errors(void) {
    env e;
    env_open(&e);
    char a[700], d[700], outside[700];
    mkfile(&e, "ok.txt", 10, 17, a, sizeof a);
    mkdir(in_cache(&e, "adir", d, sizeof d), 0755);
    snprintf(outside, sizeof outside, "%s/outside.txt", e.dir);
    write_text(outside, "outside the cache\n");
    int entries = th_count_entries(e.cache);
    int log_before = th_server_upload_log(&srv, "/upload/", NULL, 0);
    ohreq_upload_config *c;

    c = mkcfg("/upload/multipart");
    expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, "no files");

    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "ok.txt", "");
    CHECK_CODE(ohreq_upload_config_set_index(c, 1), OHREQ_OK);
    expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, "index == count");

    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "ok.txt", "");
    add_file(c, "", "", "ok.txt", "");
    CHECK_CODE(ohreq_upload_config_set_index(c, 5), OHREQ_OK);
    expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, "index > count");

    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "ok.txt", "");
    if (ohreq_upload_config_set_index(c, -1) == OHREQ_OK)
        expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, "negative index");
    else
        ohreq_upload_config_free(c); /* refused at once: also a 401 */

    /* The files of a config (one or two) and the code that refuses it. */
    static const struct {
        const char *uri[2];
        int code;
        const char *what;
    } file_cases[] = {
        {{"../outside.txt", NULL}, OHREQ_ERR_PARAMETER, "../ escapes the cache"},
        {{"internal://cache/../outside.txt", NULL}, OHREQ_ERR_PARAMETER, "internal://cache/../ escapes"},
        {{"missing.txt", NULL}, OHREQ_ERR_FILE_PATH, "missing file"},
        {{"internal://cache/missing.txt", NULL}, OHREQ_ERR_FILE_PATH, "missing internal file"},
        {{"ok.txt", "adir"}, OHREQ_ERR_FILE_PATH, "a directory"},
        {{"missing.txt", "../outside.txt"}, OHREQ_ERR_PARAMETER, "401 wins over 13400002"},
        {{"dataability:///com.example/file/1", NULL}, OHREQ_ERR_FILE_PATH, "dataability without a resolver"},
        {{"../outside.txt", "dataability:///com.example/file/1"}, OHREQ_ERR_PARAMETER,
         "401 before an unresolvable dataability uri"},
        {{"dataability:///com.example/file/1", "../outside.txt"}, OHREQ_ERR_PARAMETER,
         "401 after an unresolvable dataability uri"},
    };
    for (size_t i = 0; i < sizeof file_cases / sizeof file_cases[0]; i++) {
        c = mkcfg("/upload/multipart");
        for (int k = 0; k < 2 && file_cases[i].uri[k]; k++) add_file(c, "", "", file_cases[i].uri[k], "");
        expect_create_error(e.cli, c, file_cases[i].code, file_cases[i].what);
    }

    static const char *bad_urls[] = {"ftp://127.0.0.1/x", "not a url", "http://", ""};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        c = ohreq_upload_config_new();
        if (ohreq_upload_config_set_url(c, bad_urls[i]) != OHREQ_OK) {
            ohreq_upload_config_free(c); /* refused at once: also a 401 */
            continue;
        }
        add_file(c, "", "", "ok.txt", "");
        expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, bad_urls[i]);
    }
    c = ohreq_upload_config_new(); /* no url at all */
    add_file(c, "", "", "ok.txt", "");
    expect_create_error(e.cli, c, OHREQ_ERR_PARAMETER, "no url");

    /* NULL arguments. */
    ohreq_task *t = NULL;
    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "ok.txt", "");
    CHECK_CODE(ohreq_upload(NULL, c, &t), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_upload(e.cli, NULL, &t), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_upload(e.cli, c, NULL), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_upload_config_add_file(c, NULL, "", "ok.txt", ""), OHREQ_ERR_PARAMETER);
    ohreq_upload_config_free(c);

    /* No INTERNET permission. */
    ohreq_client *noint = th_client(e.svc, e.cache, NULL, 1);
    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "ok.txt", "");
    expect_create_error(noint, c, OHREQ_ERR_PERMISSION, "no INTERNET");
    ohreq_client_free(noint);

    /* Nothing on disk, no task, no request. */
    CHECK_EQ(th_count_entries(e.cache), entries);
    CHECK(th_exists(a) && th_exists(outside));
    size_t n = 99;
    CHECK_CODE(ohreq_search(e.cli, NULL, NULL, 0, &n), OHREQ_OK);
    CHECK_EQ(n, 0);
    th_sleep_ms(100);
    CHECK_EQ(th_server_upload_log(&srv, "/upload/", NULL, 0), log_before);
    env_close(&e);
}

/* ---- dataability ---- */

typedef struct {
    char path[700];     /* what "dataability:///com.example/good" resolves to */
    int calls;
    char last_uri[256];
    int frees;
    pthread_t thread;
} resolver_ud;

static ohreq_code resolve_cb(void *ud, const char *uri, char *buf, size_t len) {
    resolver_ud *r = ud;
    r->calls++;
    r->thread = pthread_self();
    snprintf(r->last_uri, sizeof r->last_uri, "%s", uri);
    if (strcmp(uri, "dataability:///com.example/good") != 0) return 13400002;
    if (strlen(r->path) + 1 > len) return 401;
    memcpy(buf, r->path, strlen(r->path) + 1);
    return OHREQ_OK;
}

static void resolver_free(void *ud) {
    ((resolver_ud *)ud)->frees++;
}

static void test_dataability_resolver(void) {
    env e;
    env_open(&e);
    static resolver_ud r; /* outlives the client; freed by the library's call */
    memset(&r, 0, sizeof r);
    /* A file outside the cache dir: the resolver may name any readable file. */
    snprintf(r.path, sizeof r.path, "%s/media-photo.jpg", e.dir);
    th_write_pattern(r.path, 123457, 18);

    ohreq_client_options *o = ohreq_client_options_new();
    CHECK_CODE(ohreq_client_options_set_uid(o, 20010001), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_bundle(o, "com.example.test"), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_add_permission(o, "ohos.permission.INTERNET"), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cache_dir(o, e.cache), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_cleartext_permitted(o, true), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_uri_resolver(o, NULL, &r, resolver_free), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_client_options_set_uri_resolver(o, resolve_cb, &r, resolver_free), OHREQ_OK);
    ohreq_client *cli = NULL;
    CHECK_CODE(ohreq_client_new(e.svc, o, &cli), OHREQ_OK);
    if (!cli) {
        ohreq_client_options_free(o);
        env_close(&e);
        return;
    }
    ohreq_client *saved = e.cli;
    e.cli = cli;

    /* Success: the resolved file is uploaded; its name is the default filename. */
    ohreq_upload_config *c = mkcfg("/upload/multipart");
    add_file(c, "", "", "dataability:///com.example/good", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    CHECK_EQ(r.calls, 1);
    CHECK(pthread_equal(r.thread, pthread_self()));
    CHECK(strcmp(r.last_uri, "dataability:///com.example/good") == 0);
    check_success(&u, 1, 123457);
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 1);
    check_file_part(json, 0, "file", "media-photo.jpg", "image/jpeg", r.path);
    CHECK_EQ(u.n_states, 1);
    check_state(&u, 0, r.path, 0, "");
    up_destroy(&u);

    /* The resolver refuses: 13400002, no task. */
    int before = r.calls;
    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "dataability:///com.example/refused", "");
    expect_create_error(cli, c, OHREQ_ERR_FILE_PATH, "resolver refuses");
    CHECK_EQ(r.calls, before + 1);
    CHECK(strcmp(r.last_uri, "dataability:///com.example/refused") == 0);
    size_t n = 99;
    CHECK_CODE(ohreq_search(cli, NULL, NULL, 0, &n), OHREQ_OK);
    CHECK_EQ(n, 1);

    /* Mixed: a 401 in another file wins over the resolver's refusal, in either order. */
    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "../escape", "");
    add_file(c, "", "", "dataability:///com.example/refused", "");
    expect_create_error(cli, c, OHREQ_ERR_PARAMETER, "401 before a refused uri");
    c = mkcfg("/upload/multipart");
    add_file(c, "", "", "dataability:///com.example/refused", "");
    add_file(c, "", "", "../escape", "");
    expect_create_error(cli, c, OHREQ_ERR_PARAMETER, "401 wins over a refused uri");

    /* userdata_free runs once, after both the options and the client are freed. */
    ohreq_client_options_free(o);
    CHECK_EQ(r.frees, 0);
    e.cli = saved;
    ohreq_client_free(cli);
    CHECK_EQ(r.frees, 1);
    env_close(&e);
    CHECK_EQ(r.frees, 1);

    /* Replacing a resolver releases the earlier userdata; freeing options alone releases
     * the last one. */
    static resolver_ud r1, r2;
    memset(&r1, 0, sizeof r1);
    memset(&r2, 0, sizeof r2);
    o = ohreq_client_options_new();
    CHECK_CODE(ohreq_client_options_set_uri_resolver(o, resolve_cb, &r1, resolver_free), OHREQ_OK);
    CHECK_CODE(ohreq_client_options_set_uri_resolver(o, resolve_cb, &r2, resolver_free), OHREQ_OK);
    CHECK_EQ(r1.frees, 1);
    CHECK_EQ(r2.frees, 0);
    ohreq_client_options_free(o);
    CHECK_EQ(r1.frees, 1);
    CHECK_EQ(r2.frees, 1);
}

/* HTTP 500: fail with UNHANDLED_HTTP_CODE, every file of the request has code 17. */
static void test_http_500(void) {
    env e;
    env_open(&e);
    char a[700], b[700];
    mkfile(&e, "e1.txt", 1000, 19, a, sizeof a);
    mkfile(&e, "e2.bin", 2000, 20, b, sizeof b);
    ohreq_upload_config *c = mkcfg("/upload/multipart?status=500");
    add_file(c, "", "", "e1.txt", "");
    add_file(c, "", "", "e2.bin", "");
    ohreq_task *t = NULL;
    up_rec u;
    up_init(&u);
    CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
    CHECK_EQ(up_wait_end(&u, 20000), OHREQ_EVENT_FAIL);
    th_sleep_ms(200);
    CHECK_EQ(u.n_fail, 1);
    CHECK_EQ(u.n_complete, 0);
    CHECK_EQ(u.fail_code, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    CHECK_EQ(u.n_hdr, 1);
    CHECK_EQ(u.hdr_status[0], 500);
    CHECK(strcmp(u.hdr_reason[0], "Internal Server Error") == 0);
    CHECK(u.hdr_seq[0] < u.end_seq);
    CHECK_EQ(json_part_count(body_of(&u, 0)), 2); /* the body is the receiver's JSON */
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 17, "Http protocol error: 500 Internal Server Error");
    check_state(&u, 1, b, 17, "Http protocol error: 500 Internal Server Error");
    check_info(t, OHREQ_SESSION_FAILED, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    /* No retry of a 500. */
    CHECK_EQ(th_server_upload_log(&srv, "/upload/multipart?status=500", NULL, 0), 1);
    ohreq_task_free(t);
    up_destroy(&u);
    env_close(&e);
}

/* PUT of two files, the first answered 500: the second is never sent ("not uploaded"). */
static void test_put_500_first(void) {
    env e;
    env_open(&e);
    char a[700], b[700];
    mkfile(&e, "f1.bin", 3000, 21, a, sizeof a);
    mkfile(&e, "f2.bin", 4000, 22, b, sizeof b);
    ohreq_upload_config *c = mkcfg("/upload/raw/p500.bin?status=500&times=1&key=p500");
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "f1.bin", "");
    add_file(c, "", "", "f2.bin", "");
    ohreq_task *t = NULL;
    up_rec u;
    up_init(&u);
    CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
    CHECK_EQ(up_wait_end(&u, 20000), OHREQ_EVENT_FAIL);
    th_sleep_ms(200);
    CHECK_EQ(u.n_fail, 1);
    CHECK_EQ(u.n_complete, 0);
    CHECK_EQ(u.fail_code, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    CHECK_EQ(u.n_hdr, 1);
    CHECK_EQ(u.hdr_status[0], 500);
    CHECK_EQ(json_num(body_of(&u, 0), "length"), 3000);
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 17, "Http protocol error: 500 Internal Server Error");
    check_state(&u, 1, b, 15, "not uploaded");
    check_info(t, OHREQ_SESSION_FAILED, OHREQ_ERROR_UNHANDLED_HTTP_CODE);
    CHECK_EQ(th_server_upload_log(&srv, "key=p500", NULL, 0), 1);
    ohreq_task_free(t);
    up_destroy(&u);
    env_close(&e);
}

/* A dropped connection is retried from the start of the body, and the upload succeeds. */
static void test_drop_retry(void) {
    env e;
    env_open(&e);
    char a[700], b[700], stored[900];
    mkfile(&e, "drop.bin", 2 * MiB + 11, 23, a, sizeof a);
    mkfile(&e, "drop2.bin", 1 * MiB + 5, 24, b, sizeof b);

    /* POST multipart. */
    ohreq_upload_config *c = mkcfg("/upload/multipart?store=dropmp&drop=300000&times=1&key=dropmp");
    CHECK_CODE(ohreq_upload_config_add_data(c, "f", "v"), OHREQ_OK);
    add_file(c, "", "", "drop.bin", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 30000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, th_file_size(a));
    CHECK(u.prog_max <= th_file_size(a));
    const char *json = body_of(&u, 0);
    CHECK_EQ(json_part_count(json), 2);
    check_field_part(json, 0, "f", "v");
    check_file_part(json, 1, "file", "drop.bin", "application/octet-stream", a);
    snprintf(stored, sizeof stored, "%s/uploads/dropmp/1-drop.bin", srv.root);
    CHECK(th_same_file(a, stored));
    th_upload_log_entry l[8];
    CHECK_EQ(th_server_upload_log(&srv, "key=dropmp", l, 8), 2);
    CHECK_EQ(l[0].recv, 300000);
    CHECK_EQ(l[1].recv, json_num(json, "content_length"));
    CHECK_EQ(u.n_states, 1);
    check_state(&u, 0, a, 0, "");
    up_destroy(&u);

    /* PUT of two files; the first request with the key (file 1) is dropped once, retried
     * from its start, then file 2 goes through: three requests, both bodies intact. */
    c = mkcfg("/upload/raw/dropput.bin?drop=65536&times=1&key=dropput");
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "drop.bin", "");
    add_file(c, "", "", "drop2.bin", "");
    CHECK_EQ(run_upload(&e, c, &u, 30000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 2, th_file_size(a) + th_file_size(b));
    check_raw(body_of(&u, 0), a, "application/octet-stream", "PUT");
    check_raw(body_of(&u, 1), b, "application/octet-stream", "PUT");
    snprintf(stored, sizeof stored, "%s/uploads/raw/dropput.bin", srv.root);
    CHECK(th_same_file(b, stored));
    CHECK_EQ(th_server_upload_log(&srv, "key=dropput", l, 8), 3);
    CHECK_EQ(l[0].recv, 65536);
    CHECK_EQ(l[1].recv, th_file_size(a));
    CHECK_EQ(l[2].recv, th_file_size(b));
    CHECK_EQ(u.n_states, 2);
    check_state(&u, 0, a, 0, "");
    check_state(&u, 1, b, 0, "");
    up_destroy(&u);
    env_close(&e);
}

/* A loopback listener that never accepts or reads: an upload to it fills the socket buffers
 * and then stays running, deterministically, until deleted. */
static int blackhole(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("blackhole");
        exit(2);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Delete of a running upload: remove event, no complete or fail, the source stays. */
static void test_delete_running(void) {
    env e;
    env_open(&e);
    char a[700], url[256];
    const long long size = 64LL * MiB;
    mkfile(&e, "huge.bin", (size_t)size, 25, a, sizeof a);
    int port = 0;
    int lfd = blackhole(&port);
    for (int method = 0; method < 2; method++) {
        ohreq_upload_config *c = ohreq_upload_config_new();
        snprintf(url, sizeof url, "http://127.0.0.1:%d/upload/%s", port, method ? "raw/x" : "multipart");
        CHECK_CODE(ohreq_upload_config_set_url(c, url), OHREQ_OK);
        if (method) CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
        add_file(c, "", "", "huge.bin", "");
        ohreq_task *t = NULL;
        up_rec u;
        up_init(&u);
        CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
        if (!t) break;
        /* Running, and stuck on the full socket. */
        long long deadline = th_now_ms() + 10000;
        int status = -1;
        while (th_now_ms() < deadline) {
            ohreq_download_info *info = NULL;
            if (ohreq_task_get_download_info(t, &info) == OHREQ_OK) {
                status = ohreq_download_info_status(info);
                ohreq_download_info_free(info);
            }
            if (status == OHREQ_SESSION_RUNNING) break;
            th_sleep_ms(20);
        }
        CHECK_EQ(status, OHREQ_SESSION_RUNNING);
        th_sleep_ms(1200); /* long enough for a progress event */
        CHECK_EQ(up_wait_end(&u, 0), -1);
        long long t0 = th_now_ms();
        CHECK_CODE(ohreq_task_delete(t), OHREQ_OK);
        CHECK_EQ(up_wait_end(&u, 5000), OHREQ_EVENT_REMOVE);
        CHECK(th_now_ms() - t0 < 5000);
        th_sleep_ms(300);
        CHECK_EQ(u.n_remove, 1);
        CHECK_EQ(u.n_complete, 0);
        CHECK_EQ(u.n_fail, 0);
        CHECK(u.prog_max < size);
        CHECK_CODE(ohreq_task_delete(t), OHREQ_ERR_TASK_NOT_FOUND);
        ohreq_task_free(t);
        up_destroy(&u);
    }
    close(lfd);
    /* The source file is not the task's partial data: it stays, unchanged. */
    CHECK_EQ(th_file_size(a), size);
    env_close(&e);
}

/* Losing the network fails a running legacy upload (reference C.4: API 9 uploads fail,
 * downloads wait). */
static void test_network_lost(void) {
    env e;
    env_open(&e);
    char a[700], url[256];
    mkfile(&e, "lost.bin", (size_t)(64LL * MiB), 28, a, sizeof a);
    int port = 0;
    int lfd = blackhole(&port);
    ohreq_upload_config *c = ohreq_upload_config_new();
    snprintf(url, sizeof url, "http://127.0.0.1:%d/upload/raw/x", port);
    CHECK_CODE(ohreq_upload_config_set_url(c, url), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "lost.bin", "");
    ohreq_task *t = NULL;
    up_rec u;
    up_init(&u);
    CHECK_CODE(go_rec(&e, c, &t, &u), OHREQ_OK);
    if (t) {
        int status = -1;
        for (long long deadline = th_now_ms() + 10000; th_now_ms() < deadline && status != OHREQ_SESSION_RUNNING;) {
            ohreq_download_info *info = NULL;
            if (ohreq_task_get_download_info(t, &info) == OHREQ_OK) {
                status = ohreq_download_info_status(info);
                ohreq_download_info_free(info);
            }
            th_sleep_ms(20);
        }
        CHECK_EQ(status, OHREQ_SESSION_RUNNING);
        CHECK_CODE(ohreq_service_set_network(e.svc, false, OHREQ_NET_NONE, false, false), OHREQ_OK);
        CHECK_EQ(up_wait_end(&u, 5000), OHREQ_EVENT_FAIL);
        CHECK_EQ(u.fail_code, OHREQ_ERROR_OFFLINE);
        CHECK_EQ(u.n_states, 1);
        ohreq_task_free(t);
    }
    up_destroy(&u);
    close(lfd);
    env_close(&e);
}

/* HTTPS with the client's CA file. */
static void test_https(void) {
    env e;
    env_open(&e);
    char a[700], b[700], url[256];
    mkfile(&e, "secure.txt", 700 * 1000 + 1, 26, a, sizeof a);
    mkfile(&e, "secure.bin", 5000, 27, b, sizeof b);
    ohreq_upload_config *c = ohreq_upload_config_new();
    CHECK_CODE(ohreq_upload_config_set_url(c, th_url(&srv, 1, "/upload/multipart?key=tlsmp", url, sizeof url)), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_data(c, "tls", "yes"), OHREQ_OK);
    add_file(c, "", "", "secure.txt", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, th_file_size(a));
    const char *json = body_of(&u, 0);
    check_field_part(json, 0, "tls", "yes");
    check_file_part(json, 1, "file", "secure.txt", "text/plain", a);
    CHECK(strcmp(u.hdr_version[0], "HTTP/1.1") == 0);
    th_upload_log_entry l[4];
    CHECK_EQ(th_server_upload_log(&srv, "key=tlsmp", l, 4), 1);
    CHECK_EQ(l[0].e.tls, 1);
    CHECK_EQ(l[0].recv, json_num(json, "content_length"));
    up_destroy(&u);

    /* PUT over TLS too. */
    c = ohreq_upload_config_new();
    CHECK_CODE(ohreq_upload_config_set_url(c, th_url(&srv, 1, "/upload/raw/tls-put.bin", url, sizeof url)), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "secure.bin", "");
    CHECK_EQ(run_upload(&e, c, &u, 20000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, 5000);
    check_raw(body_of(&u, 0), b, "application/octet-stream", "PUT");
    CHECK_EQ(th_server_upload_log(&srv, "/upload/raw/tls-put.bin", l, 4), 1);
    CHECK_EQ(l[0].e.tls, 1);
    up_destroy(&u);
    env_close(&e);
}

/* HTTP/2 (TLS, ALPN h2): multipart and PUT. */
static void test_http2(void) {
    int h2 = th_server_h2_port(&srv);
    if (h2 <= 0) {
        th_skip("testserver announces no HTTP/2 port");
        return;
    }
    env e;
    env_open(&e);
    char a[700], b[700], url[256];
    mkfile(&e, "h2.bin", 3 * MiB + 3, 28, a, sizeof a);
    mkfile(&e, "h2b.bin", 100001, 29, b, sizeof b);
    ohreq_upload_config *c = ohreq_upload_config_new();
    snprintf(url, sizeof url, "https://127.0.0.1:%d/upload/multipart?store=h2mp", h2);
    CHECK_CODE(ohreq_upload_config_set_url(c, url), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_add_data(c, "proto", "h2"), OHREQ_OK);
    add_file(c, "", "", "h2.bin", "");
    up_rec u;
    CHECK_EQ(run_upload(&e, c, &u, 30000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 1, th_file_size(a));
    const char *json = body_of(&u, 0);
    check_field_part(json, 0, "proto", "h2");
    check_file_part(json, 1, "file", "h2.bin", "application/octet-stream", a);
    CHECK(strcmp(u.hdr_version[0], "HTTP/2") == 0);
    CHECK(strcmp(u.hdr_reason[0], "") == 0);
    char stored[900];
    snprintf(stored, sizeof stored, "%s/uploads/h2mp/1-h2.bin", srv.root);
    CHECK(th_same_file(a, stored));
    th_upload_log_entry l[4];
    CHECK_EQ(th_server_upload_log(&srv, "store=h2mp", l, 4), 1);
    CHECK_EQ(l[0].h2, 1);
    CHECK_EQ(l[0].recv, json_num(json, "content_length"));
    up_destroy(&u);

    c = ohreq_upload_config_new();
    snprintf(url, sizeof url, "https://127.0.0.1:%d/upload/raw/h2put.bin", h2);
    CHECK_CODE(ohreq_upload_config_set_url(c, url), OHREQ_OK);
    CHECK_CODE(ohreq_upload_config_set_method(c, "PUT"), OHREQ_OK);
    add_file(c, "", "", "h2.bin", "");
    add_file(c, "", "", "h2b.bin", "");
    CHECK_EQ(run_upload(&e, c, &u, 30000), OHREQ_EVENT_COMPLETE);
    check_success(&u, 2, th_file_size(a) + th_file_size(b));
    check_raw(body_of(&u, 0), a, "application/octet-stream", "PUT");
    check_raw(body_of(&u, 1), b, "application/octet-stream", "PUT");
    CHECK(strcmp(u.hdr_version[1], "HTTP/2") == 0);
    CHECK_EQ(th_server_upload_log(&srv, "/upload/raw/h2put.bin", l, 4), 2);
    CHECK(l[0].h2 && l[1].h2);
    up_destroy(&u);
    env_close(&e);
}

/* 64 MiB in one multipart body arrives intact. */
static void test_big_multipart(void) {
    env e;
    env_open(&e);
    char a[700], stored[900];
    const long long size = 64LL * MiB + 1;
    mkfile(&e, "big.bin", (size_t)size, 30, a, sizeof a);
    ohreq_upload_config *c = mkcfg("/upload/multipart?store=big");
    CHECK_CODE(ohreq_upload_config_add_data(c, "size", "64MiB+1"), OHREQ_OK);
    add_file(c, "", "", "big.bin", "");
    up_rec u;
    long long t0 = th_now_ms();
    CHECK_EQ(run_upload(&e, c, &u, 40000), OHREQ_EVENT_COMPLETE);
    fprintf(stderr, "  64 MiB multipart in %lld ms, %d progress events\n", th_now_ms() - t0, u.n_prog);
    check_success(&u, 1, size);
    CHECK(!u.prog_decreased);
    const char *json = body_of(&u, 0);
    check_field_part(json, 0, "size", "64MiB+1");
    check_file_part(json, 1, "file", "big.bin", "application/octet-stream", a);
    snprintf(stored, sizeof stored, "%s/uploads/big/1-big.bin", srv.root);
    CHECK(th_same_file(a, stored));
    up_destroy(&u);
    env_close(&e);
}

static const th_test tests[] = {
    {"multipart_fields_files", test_multipart_fields_files},
    {"names_and_types", test_names_and_types},
    {"mime_from_extension", test_mime_from_extension},
    {"put_two_files", test_put_two_files},
    {"put_content_type", test_put_content_type},
    {"slices_post", test_slices_post},
    {"slices_put", test_slices_put},
    {"create_errors", test_create_errors},
    {"dataability_resolver", test_dataability_resolver},
    {"http_500", test_http_500},
    {"put_500_first", test_put_500_first},
    {"drop_retry", test_drop_retry},
    {"delete_running", test_delete_running},
    {"network_lost", test_network_lost},
    {"https", test_https},
    {"http2", test_http2},
    {"big_multipart", test_big_multipart},
};

int main(int argc, char **argv) {
    th_server_start(&srv);
    return th_run_skippable(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
