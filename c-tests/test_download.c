/* test_download.c: the legacy download API end to end against testserver. */
#include "harness.h"

static th_server srv;

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

/* Starts a download of `path` on the server into file_path (NULL = default). */
static ohreq_code start(env *e, int tls, const char *path, const char *file_path, ohreq_task **t) {
    char url[512];
    ohreq_download_config *c = ohreq_download_config_new();
    CHECK_CODE(ohreq_download_config_set_url(c, th_url(&srv, tls, path, url, sizeof url)), OHREQ_OK);
    if (file_path) CHECK_CODE(ohreq_download_config_set_file_path(c, file_path), OHREQ_OK);
    ohreq_code rc = ohreq_download(e->cli, c, t);
    ohreq_download_config_free(c);
    return rc;
}

static void test_simple_download(void) {
    env e;
    env_open(&e);
    char src[700], dst[700];
    snprintf(src, sizeof src, "%s/simple.bin", srv.root);
    th_write_pattern(src, 3 * 1024 * 1024 + 17, 1);
    ohreq_task *t = NULL;
    CHECK_CODE(start(&e, 0, "/files/simple.bin", NULL, &t), OHREQ_OK);
    th_rec r;
    th_rec_init(&r);
    th_rec_attach(&r, t);
    CHECK_EQ(th_rec_wait_end(&r, 20000), OHREQ_EVENT_COMPLETE);
    snprintf(dst, sizeof dst, "%s/simple.bin", e.cache);
    CHECK(th_same_file(src, dst));
    CHECK_EQ(th_count_entries(e.cache), 1); /* no part file left */
    ohreq_download_info *info = NULL;
    CHECK_CODE(ohreq_task_get_download_info(t, &info), OHREQ_OK);
    CHECK_EQ(ohreq_download_info_status(info), OHREQ_SESSION_SUCCESSFUL);
    CHECK_EQ(ohreq_download_info_downloaded_bytes(info), 3 * 1024 * 1024 + 17);
    CHECK_EQ(ohreq_download_info_total_bytes(info), 3 * 1024 * 1024 + 17);
    CHECK_EQ(ohreq_download_info_id(info), ohreq_task_id(t));
    CHECK(strcmp(ohreq_download_info_file_name(info).data, "simple.bin") == 0);
    CHECK(strcmp(ohreq_download_info_file_path(info).data, dst) == 0);
    CHECK_EQ(ohreq_download_info_failed_reason(info), -1);
    ohreq_download_info_free(info);
    char mime[64];
    size_t n = 0;
    CHECK_CODE(ohreq_task_get_mime_type(t, mime, sizeof mime, &n), OHREQ_OK);
    CHECK(strcmp(mime, "application/octet-stream") == 0);
    ohreq_task_free(t);
    th_rec_destroy(&r);
    env_close(&e);
}

static const th_test tests[] = {
    {"simple_download", test_simple_download},
};

int main(int argc, char **argv) {
    th_server_start(&srv);
    return th_run(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
