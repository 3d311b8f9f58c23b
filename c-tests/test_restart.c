/* test_restart.c: persistence across a killed process. A child process (this binary run with
 * --child) owns a service and a throttled download; the parent SIGKILLs it and then opens a
 * service on the same data dir: the task is restored and resumes with Range. */
#include "harness.h"

static th_server srv;

#define MiB (1024 * 1024)
#define SIZE (4 * MiB + 123)

/* ---- the child: --child <run|pause|created> <data> <cache> <url> <file_path> <marker> ---- */

static void write_marker(const char *path, const char *text) {
    char tmp[900];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

static int child_main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "child: bad arguments\n");
        return 2;
    }
    const char *mode = argv[2], *data = argv[3], *cache = argv[4], *url = argv[5];
    const char *file_path = argv[6], *marker = argv[7];
    ohreq_service *svc = th_service(data, 0);
    ohreq_client *cli = th_client(svc, cache, NULL, 0);
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, url), OHREQ_OK);
    CHECK_CODE(ohreq_download_config_set_file_path(c, file_path), OHREQ_OK);
    ohreq_task *t = NULL;
    CHECK_CODE(ohreq_download(cli, c, &t), OHREQ_OK);
    ohreq_download_config_free(c);
    if (!t) return 3;
    /* Killed the moment the create returns: the task must be in the store already. */
    if (strcmp(mode, "created") == 0) raise(SIGKILL);
    th_rec r;
    th_rec_init(&r);
    th_rec_attach(&r, t);
    if (strcmp(mode, "pause") == 0) {
        char part[900];
        snprintf(part, sizeof part, "%s/%s.ohreq-part", cache, file_path);
        if (th_wait_file_size(part, 1 * MiB, 20000) < 1 * MiB) return 4;
        CHECK_CODE(ohreq_task_suspend(t), OHREQ_OK);
        if (!th_rec_wait(&r, OHREQ_EVENT_PAUSE, 1, 5000)) return 5;
        write_marker(marker, "paused\n");
    } else {
        write_marker(marker, "running\n");
    }
    /* Wait to be killed (bounded: the parent kills within seconds). */
    for (int i = 0; i < 600; i++) th_sleep_ms(100);
    fprintf(stderr, "child: not killed\n");
    return 6;
}

/* ---- the parent ---- */

typedef struct {
    char dir[400];
    char data[600];
    char cache[600];
    char marker[600];
} dirs;

static void dirs_make(dirs *d) {
    th_tmpdir(d->dir, sizeof d->dir);
    snprintf(d->data, sizeof d->data, "%s/data", d->dir);
    snprintf(d->cache, sizeof d->cache, "%s/cache", d->dir);
    snprintf(d->marker, sizeof d->marker, "%s/marker", d->dir);
    mkdir(d->cache, 0755);
}

static pid_t spawn_child(const dirs *d, const char *mode, const char *url, const char *file_path) {
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {"/proc/self/exe", "--child", (char *)mode, (char *)d->data, (char *)d->cache,
                        (char *)url, (char *)file_path, (char *)d->marker, NULL};
        execv("/proc/self/exe", args);
        perror("execv");
        _exit(127);
    }
    CHECK(pid > 0);
    return pid;
}

/* SIGKILLs the child and reaps it; 1 if it died of the signal. */
static int kill_child(pid_t pid) {
    int status = 0;
    if (kill(pid, SIGKILL) != 0) return 0;
    if (waitpid(pid, &status, 0) != pid) return 0;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

/* 1 while the child has not exited (reaps it if it has). */
static int child_alive(pid_t pid) {
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

/* Opens the one task of the client (found with ohreq_search). */
static ohreq_task *find_task(ohreq_client *cli) {
    uint32_t ids[8];
    size_t n = 0;
    CHECK_CODE(ohreq_search(cli, NULL, ids, 8, &n), OHREQ_OK);
    CHECK_EQ(n, 1);
    if (n < 1) return NULL;
    ohreq_task *t = NULL;
    CHECK_CODE(ohreq_task_open(cli, ids[0], &t), OHREQ_OK);
    return t;
}

/* A service reopened on a killed child's data dir, with its one task and a recorder on it. */
typedef struct {
    ohreq_service *svc;
    ohreq_client *cli;
    ohreq_task *t; /* NULL (and a CHECK failed) if the task was not found */
    th_rec r;
} reopened;

static void reopen(reopened *o, const dirs *d) {
    o->svc = th_service(d->data, 0);
    o->cli = th_client(o->svc, d->cache, NULL, 0);
    o->t = find_task(o->cli);
    th_rec_init(&o->r);
    if (o->t) th_rec_attach(&o->r, o->t);
}

static void reopened_close(reopened *o) {
    ohreq_task_free(o->t);
    th_rec_destroy(&o->r);
    ohreq_client_free(o->cli);
    ohreq_service_free(o->svc);
}

/* Checks the requests logged for `needle` after the first `before` ones: the first of them
 * resumed with Range from 0 < N <= part_at_kill and If-Range = etag; all served < 2 x size. */
static void check_resumed_log(const char *needle, int before, long long part_at_kill, const char *etag) {
    th_log_entry ent[32];
    int n = th_server_log(&srv, needle, ent, 32);
    CHECK(n > before);
    if (n <= before || n > 32) return;
    long long from = -1;
    CHECK(sscanf(ent[before].range, "bytes=%lld-", &from) == 1);
    CHECK(from > 0);
    CHECK(from <= part_at_kill);
    CHECK(strcmp(ent[before].if_range, etag) == 0);
    fprintf(stderr, "  part at kill %lld, resumed from %lld (range=%s if-range=%s), %d request(s) after restart\n",
            part_at_kill, from, ent[before].range, ent[before].if_range, n - before);
    long long served = 0;
    for (int i = 0; i < n; i++) served += ent[i].served;
    CHECK(served < 2LL * SIZE);
    CHECK(served >= SIZE);
    if (n - before == 1) CHECK_EQ(ent[before].served, SIZE - from);
}

/* One download killed mid-way: the file `name` (SIZE pattern bytes, `seed`) served at
 * 400 kB/s, downloaded by a child until its part file holds over 1 MiB, then SIGKILLed. */
typedef struct {
    dirs d;
    char src[700], dst[800], part[900], etag[256], needle[128];
    long long part_at_kill;
    int before; /* requests logged for `needle` before the restart */
} killed;

/* 0 on success (the child got going and was killed). */
static int kill_mid_download(killed *k, const char *name, unsigned seed) {
    char url[700], path[160];
    dirs_make(&k->d);
    snprintf(k->src, sizeof k->src, "%s/%s", srv.root, name);
    th_write_pattern(k->src, SIZE, seed);
    snprintf(path, sizeof path, "/files/%s", name);
    CHECK_EQ(th_http_head(&srv, path, "ETag", k->etag, sizeof k->etag), 200);
    snprintf(path, sizeof path, "/files/%s?rate=400000", name);
    th_url(&srv, 0, path, url, sizeof url);
    snprintf(k->needle, sizeof k->needle, "/files/%s?", name);
    snprintf(k->dst, sizeof k->dst, "%s/%s", k->d.cache, name);
    snprintf(k->part, sizeof k->part, "%s.ohreq-part", k->dst);
    pid_t pid = spawn_child(&k->d, "run", url, name);
    if (pid <= 0) return -1;
    long long deadline = th_now_ms() + 15000;
    while (th_file_size(k->part) <= 1 * MiB && th_now_ms() < deadline && child_alive(pid)) th_sleep_ms(10);
    CHECK(th_file_size(k->part) > 1 * MiB);
    CHECK(kill_child(pid));
    k->part_at_kill = th_file_size(k->part);
    CHECK(k->part_at_kill > 1 * MiB && k->part_at_kill < SIZE);
    CHECK(!th_exists(k->dst));
    k->before = th_server_log(&srv, k->needle, NULL, 0);
    CHECK_EQ(k->before, 1);
    return 0;
}

/* Killed while running: the restarted service resumes the download by itself. */
static void test_kill_while_running(void) {
    killed k;
    if (kill_mid_download(&k, "restart1.bin", 21) != 0) return;
    reopened o;
    reopen(&o, &k.d);
    if (o.t) {
        CHECK_EQ(th_rec_wait_end(&o.r, 30000), OHREQ_EVENT_COMPLETE);
        CHECK(th_same_file(k.src, k.dst));
        CHECK(!th_exists(k.part));
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(o.t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
            CHECK_EQ(ohreq_download_info_downloaded_bytes(info), SIZE);
            CHECK_EQ(ohreq_download_info_total_bytes(info), SIZE);
        }
        ohreq_download_info_free(info);
        check_resumed_log(k.needle, k.before, k.part_at_kill, k.etag);
    }
    reopened_close(&o);
}

/* Killed while running, reopened with restart_unfinished = false: the task comes back
 * PAUSED and sends nothing until ohreq_task_restore, which resumes it with Range. */
static void test_kill_then_reopen_paused(void) {
    killed k;
    if (kill_mid_download(&k, "restart4.bin", 24) != 0) return;
    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_service *svc = NULL;
    CHECK_CODE(ohreq_service_options_set_data_dir(so, k.d.data), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_restart_unfinished(so, false), OHREQ_OK);
    CHECK_CODE(ohreq_service_options_set_restart_unfinished(NULL, false), OHREQ_ERR_PARAMETER);
    CHECK_CODE(ohreq_service_new(so, &svc), OHREQ_OK);
    ohreq_service_options_free(so);
    if (!svc) return;
    ohreq_client *cli = th_client(svc, k.d.cache, NULL, 0);
    ohreq_task *t = find_task(cli);
    if (t) {
        th_rec r;
        th_rec_init(&r);
        th_rec_attach(&r, t);
        th_sleep_ms(700);
        CHECK_EQ(th_server_log(&srv, k.needle, NULL, 0), k.before); /* nothing sent */
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
            CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_UNKNOWN);
        }
        ohreq_download_info_free(info);
        CHECK(th_exists(k.part));
        CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
        CHECK_EQ(th_rec_wait_end(&r, 30000), OHREQ_EVENT_COMPLETE);
        CHECK(th_same_file(k.src, k.dst));
        CHECK(!th_exists(k.part));
        check_resumed_log(k.needle, k.before, k.part_at_kill, k.etag);
        th_rec_destroy(&r);
        ohreq_task_free(t);
    }
    ohreq_client_free(cli);
    ohreq_service_free(svc);
}

/* Killed while paused: after the restart the task is still paused; restore completes it. */
static void test_kill_while_paused(void) {
    dirs d;
    dirs_make(&d);
    char src[700], url[700], dst[800], part[900], etag[256];
    snprintf(src, sizeof src, "%s/restart2.bin", srv.root);
    th_write_pattern(src, SIZE, 22);
    CHECK_EQ(th_http_head(&srv, "/files/restart2.bin", "ETag", etag, sizeof etag), 200);
    th_url(&srv, 0, "/files/restart2.bin?rate=400000", url, sizeof url);
    snprintf(dst, sizeof dst, "%s/restart2.bin", d.cache);
    snprintf(part, sizeof part, "%s.ohreq-part", dst);

    pid_t pid = spawn_child(&d, "pause", url, "restart2.bin");
    if (pid <= 0) return;
    long long deadline = th_now_ms() + 15000;
    while (!th_exists(d.marker) && th_now_ms() < deadline && child_alive(pid)) th_sleep_ms(10);
    CHECK(th_exists(d.marker));
    th_sleep_ms(300);
    CHECK(kill_child(pid));
    long long part_at_kill = th_file_size(part);
    CHECK(part_at_kill >= 1 * MiB && part_at_kill < SIZE);
    CHECK(!th_exists(dst));
    int before = th_server_log(&srv, "/files/restart2.bin?", NULL, 0);
    CHECK_EQ(before, 1);

    reopened o;
    reopen(&o, &d);
    ohreq_task *t = o.t;
    if (t) {
        th_sleep_ms(1000);
        ohreq_download_info *info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_PAUSED);
            CHECK_EQ(ohreq_download_info_paused_reason(info), OHREQ_PAUSED_BY_USER);
            CHECK((long long)ohreq_download_info_downloaded_bytes(info) <= part_at_kill);
        }
        ohreq_download_info_free(info);
        CHECK_EQ(th_server_log(&srv, "/files/restart2.bin?", NULL, 0), before); /* stays paused */
        CHECK_EQ(th_rec_wait_end(&o.r, 10), -1);
        CHECK(th_exists(part));
        CHECK_CODE(ohreq_task_restore(t), OHREQ_OK);
        CHECK_EQ(th_rec_wait_end(&o.r, 30000), OHREQ_EVENT_COMPLETE);
        CHECK(th_same_file(src, dst));
        CHECK(!th_exists(part));
        info = NULL;
        CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
        if (info) {
            CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
            CHECK_EQ(ohreq_download_info_downloaded_bytes(info), SIZE);
        }
        ohreq_download_info_free(info);
        check_resumed_log("/files/restart2.bin?", before, part_at_kill, etag);
    }
    reopened_close(&o);
}

/* Killed right after ohreq_download returned (before the task's later state changes can
 * reach the store): the restarted service has the task and completes it. */
static void test_kill_right_after_create(void) {
    char src[700];
    snprintf(src, sizeof src, "%s/restart3.bin", srv.root);
    th_write_pattern(src, 64 * 1024 + 7, 23);
    for (int round = 0; round < 3; round++) {
        dirs d;
        dirs_make(&d);
        char url[700], dst[800];
        th_url(&srv, 0, "/files/restart3.bin?rate=200000", url, sizeof url);
        snprintf(dst, sizeof dst, "%s/restart3.bin", d.cache);
        pid_t pid = spawn_child(&d, "created", url, "restart3.bin");
        if (pid <= 0) return;
        int status = 0;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        reopened o;
        reopen(&o, &d);
        if (o.t) {
            CHECK_EQ(th_rec_wait_end(&o.r, 30000), OHREQ_EVENT_COMPLETE);
            CHECK(th_same_file(src, dst));
        }
        reopened_close(&o);
    }
}

static const th_test tests[] = {
    {"kill_right_after_create", test_kill_right_after_create},
    {"kill_while_running", test_kill_while_running},
    {"kill_while_paused", test_kill_while_paused},
    {"kill_then_reopen_paused", test_kill_then_reopen_paused},
};

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child_main(argc, argv);
    th_server_start(&srv);
    return th_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
