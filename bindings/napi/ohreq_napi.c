/* ohreq_napi.c: module setup, the service in poll mode on the libuv loop, contexts (clients),
 * error objects. See README.md in this directory. */
#include "ohreq_napi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAPI_OK(call)                                                                              \
    do {                                                                                           \
        if ((call) != napi_ok) return NULL;                                                        \
    } while (0)

/* Tags so that a task object is never unwrapped as a context and vice versa. */
static const napi_type_tag CLIENT_TAG = {0x6f68726571636c69ULL, 0x656e74a1b2c3d4e5ULL};

typedef struct {
    addon *ad;
    ohreq_client *cli;
} client_wrap;

addon *addon_get(napi_env env) {
    addon *ad = NULL;
    if (napi_get_instance_data(env, (void **)&ad) != napi_ok) return NULL;
    return ad;
}

/* ---------------------------------------------------------------- strings and errors */

char *dup_string(napi_env env, napi_value v, int *has_nul) {
    size_t len = 0;
    if (has_nul) *has_nul = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
        free(s);
        return NULL;
    }
    if (strlen(s) != len) {
        if (has_nul) *has_nul = 1;
        free(s);
        return NULL;
    }
    return s;
}

int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, napi_valuetype *type) {
    napi_value v;
    napi_valuetype t = napi_undefined;
    if (napi_get_named_property(env, obj, name, &v) != napi_ok) return 0;
    if (napi_typeof(env, v, &t) != napi_ok) return 0;
    if (out) *out = v;
    if (type) *type = t;
    return t != napi_undefined && t != napi_null;
}

char *code_message(ohreq_code code, const char *detail) {
    char small[512];
    char *owned = NULL;
    if (!detail) {
        size_t n = 0;
        if (ohreq_last_error_message(small, sizeof small, &n) == OHREQ_OK) {
            detail = small;
        } else if (ohreq_last_error_message(NULL, 0, &n) == OHREQ_OK && (owned = malloc(n + 1)) &&
                   ohreq_last_error_message(owned, n + 1, &n) == OHREQ_OK) {
            detail = owned;
        } else {
            detail = "";
        }
    }
    const char *stat = ohreq_code_message(code);
    size_t len = strlen(stat) + strlen(detail) + 8;
    char *msg = malloc(len);
    if (msg) {
        if (detail[0])
            snprintf(msg, len, "%s   %s", stat, detail);
        else
            snprintf(msg, len, "%s", stat);
    }
    free(owned);
    return msg;
}

napi_value throw_code(napi_env env, ohreq_code code, const char *detail) {
    char *msg = code_message(code, detail);
    napi_value jmsg, err, jcode;
    if (napi_create_string_utf8(env, msg ? msg : "ohreq error", NAPI_AUTO_LENGTH, &jmsg) == napi_ok &&
        napi_create_error(env, NULL, jmsg, &err) == napi_ok && napi_create_int32(env, code, &jcode) == napi_ok &&
        napi_set_named_property(env, err, "code", jcode) == napi_ok)
        napi_throw(env, err);
    else
        napi_throw_error(env, NULL, msg ? msg : "ohreq error");
    free(msg);
    return NULL;
}

/* ---------------------------------------------------------------- the loop */

void addon_update_ref(addon *ad) {
    if (!ad->poll || ad->shut) return;
    int want = ad->active > 0;
    if (want && !ad->poll_ref) uv_ref((uv_handle_t *)ad->poll);
    if (!want && ad->poll_ref) uv_unref((uv_handle_t *)ad->poll);
    ad->poll_ref = want;
}

static void on_poll(uv_poll_t *h, int status, int events) {
    (void)events;
    addon *ad = h->data;
    if (status < 0 || !ad || ad->shut || !ad->svc) return;
    napi_env env = ad->env;
    napi_handle_scope hs;
    if (napi_open_handle_scope(env, &hs) != napi_ok) return;
    napi_value resource;
    napi_callback_scope cs = NULL;
    if (napi_get_reference_value(env, ad->resource, &resource) == napi_ok)
        (void)napi_open_callback_scope(env, resource, ad->actx, &cs);
    size_t delivered = 0;
    /* 13499999 would mean a nested dispatch, which cannot happen from the loop. */
    if (ohreq_service_dispatch(ad->svc, &delivered) != OHREQ_OK) { /* nothing delivered */
    }
    task_process_pending(ad);
    /* Closing the outermost callback scope runs process.nextTick callbacks and microtasks. */
    if (cs) (void)napi_close_callback_scope(env, cs);
    (void)napi_close_handle_scope(env, hs);
}

static void on_poll_closed(uv_handle_t *h) { free(h); }

static void log_to_stderr(void *ud, uint32_t level, const char *msg, size_t len) {
    (void)ud;
    static const char *names[] = {"", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    fprintf(stderr, "ohreq %s: %.*s\n", level <= 5 ? names[level] : "?", (int)len, msg);
}

/* start(dataDir, {maxRunning, userAgent, caBundle, logLevel}) -> undefined; throws on failure. */
static napi_value js_start(napi_env env, napi_callback_info info) {
    addon *ad = addon_get(env);
    size_t argc = 2;
    napi_value argv[2];
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (ad->svc) return NULL;
    if (ad->shut) return throw_code(env, OHREQ_ERR_SERVICE, "the service was shut down");
    if (argc < 1) return throw_code(env, OHREQ_ERR_PARAMETER, "dataDir is required");
    int nul = 0;
    char *dir = dup_string(env, argv[0], &nul);
    if (!dir) return throw_code(env, OHREQ_ERR_PARAMETER, "dataDir is not a string");
    ohreq_service_options *so = ohreq_service_options_new();
    ohreq_code rc = ohreq_service_options_set_data_dir(so, dir);
    free(dir);
    if (!rc) rc = ohreq_service_options_set_dispatch_mode(so, OHREQ_DISPATCH_POLL);
    if (!rc && argc > 1) {
        napi_value v;
        napi_valuetype t;
        char ua_default[64];
        snprintf(ua_default, sizeof ua_default, "ohreq-node/%s", ohreq_version());
        if (get_prop(env, argv[1], "maxRunning", &v, &t) && t == napi_number) {
            uint32_t n = 0;
            if (napi_get_value_uint32(env, v, &n) == napi_ok) rc = ohreq_service_options_set_max_running(so, n);
        }
        if (!rc && get_prop(env, argv[1], "userAgent", &v, &t) && t == napi_string) {
            char *s = dup_string(env, v, NULL);
            rc = s ? ohreq_service_options_set_user_agent(so, s) : OHREQ_ERR_PARAMETER;
            free(s);
        } else if (!rc) {
            rc = ohreq_service_options_set_user_agent(so, ua_default);
        }
        if (!rc && get_prop(env, argv[1], "caBundle", &v, &t) && t == napi_string) {
            char *s = dup_string(env, v, NULL);
            rc = s ? ohreq_service_options_set_ca_bundle(so, s) : OHREQ_ERR_PARAMETER;
            free(s);
        }
        if (!rc && get_prop(env, argv[1], "logLevel", &v, &t) && t == napi_number) {
            uint32_t lvl = 0;
            if (napi_get_value_uint32(env, v, &lvl) == napi_ok && lvl > 0)
                rc = ohreq_service_options_set_log(so, log_to_stderr, NULL, NULL, lvl);
        }
    }
    ohreq_service *svc = NULL;
    if (!rc) rc = ohreq_service_new(so, &svc);
    ohreq_service_options_free(so);
    if (rc) return throw_code(env, rc, NULL);

    uv_loop_t *loop = NULL;
    uv_poll_t *poll = malloc(sizeof *poll);
    int fd = ohreq_service_event_fd(svc);
    if (!poll || napi_get_uv_event_loop(env, &loop) != napi_ok || fd < 0 || uv_poll_init(loop, poll, fd) != 0) {
        free(poll);
        ohreq_service_free(svc);
        return throw_code(env, OHREQ_ERR_SERVICE, "cannot watch the event descriptor on the libuv loop");
    }
    poll->data = ad;
    if (uv_poll_start(poll, UV_READABLE, on_poll) != 0) {
        uv_close((uv_handle_t *)poll, on_poll_closed);
        ohreq_service_free(svc);
        return throw_code(env, OHREQ_ERR_SERVICE, "cannot watch the event descriptor on the libuv loop");
    }
    uv_unref((uv_handle_t *)poll); /* idle until a task runs */
    ad->poll_ref = 0;
    ad->poll = poll;
    ad->svc = svc;
    addon_update_ref(ad);
    return NULL;
}

/* Frees the service: running transfers are checkpointed (they resume when a service opens
 * the same data dir). Task and context handles stay valid to free; their calls then answer
 * 13400003. */
static void addon_shutdown(addon *ad) {
    if (ad->shut) return;
    ad->shut = 1;
    if (ad->poll) {
        uv_poll_stop(ad->poll);
        uv_close((uv_handle_t *)ad->poll, on_poll_closed);
        ad->poll = NULL;
    }
    ohreq_service_free(ad->svc);
    ad->svc = NULL;
}

static napi_value js_shutdown(napi_env env, napi_callback_info info) {
    (void)info;
    addon_shutdown(addon_get(env));
    return NULL;
}

/* ---------------------------------------------------------------- contexts (clients) */

static void client_finalize(napi_env env, void *data, void *hint) {
    (void)env;
    (void)hint;
    client_wrap *cw = data;
    cw->ad->n_clients--;
    ohreq_client_free(cw->cli);
    free(cw);
}

static ohreq_code add_string_list(napi_env env, napi_value arr, ohreq_client_options *co,
                                  ohreq_code (*add)(ohreq_client_options *, const char *)) {
    bool is_arr = false;
    uint32_t n = 0;
    if (napi_is_array(env, arr, &is_arr) != napi_ok || !is_arr) return OHREQ_ERR_PARAMETER;
    if (napi_get_array_length(env, arr, &n) != napi_ok) return OHREQ_ERR_PARAMETER;
    for (uint32_t i = 0; i < n; i++) {
        napi_value el;
        if (napi_get_element(env, arr, i, &el) != napi_ok) return OHREQ_ERR_PARAMETER;
        char *s = dup_string(env, el, NULL);
        ohreq_code rc = s ? add(co, s) : OHREQ_ERR_PARAMETER;
        free(s);
        if (rc) return rc;
    }
    return OHREQ_OK;
}

static ohreq_code set_str(napi_env env, napi_value obj, const char *name, ohreq_client_options *co,
                          ohreq_code (*set)(ohreq_client_options *, const char *)) {
    napi_value v;
    napi_valuetype t;
    if (!get_prop(env, obj, name, &v, &t)) return OHREQ_OK;
    char *s = t == napi_string ? dup_string(env, v, NULL) : NULL;
    ohreq_code rc = s ? set(co, s) : OHREQ_ERR_PARAMETER;
    free(s);
    return rc;
}

static ohreq_code set_bool(napi_env env, napi_value obj, const char *name, ohreq_client_options *co,
                           ohreq_code (*set)(ohreq_client_options *, bool)) {
    napi_value v;
    napi_valuetype t;
    bool b = false;
    if (!get_prop(env, obj, name, &v, &t)) return OHREQ_OK;
    if (t != napi_boolean || napi_get_value_bool(env, v, &b) != napi_ok) return OHREQ_ERR_PARAMETER;
    return set(co, b);
}

/* createClient(obj, {bundleName, uid, cacheDir, filesDir, baseDirs, permissions, systemApp,
 * cleartextPermitted, caFile}): wraps a new ohreq_client into `obj`. Throws on failure. */
static napi_value js_create_client(napi_env env, napi_callback_info info) {
    addon *ad = addon_get(env);
    size_t argc = 2;
    napi_value argv[2];
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 2) return throw_code(env, OHREQ_ERR_PARAMETER, "createClient(obj, options)");
    if (!ad->svc) return throw_code(env, OHREQ_ERR_SERVICE, "the service is not running");
    napi_value o = argv[1], v;
    napi_valuetype t;
    ohreq_client_options *co = ohreq_client_options_new();
    ohreq_code rc = OHREQ_OK;
    const char *why = NULL;
    if (get_prop(env, o, "uid", &v, &t)) {
        double d = -1;
        if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d > 9007199254740991.0)
            rc = OHREQ_ERR_PARAMETER, why = "uid is not a non-negative integer";
        else
            rc = ohreq_client_options_set_uid(co, (uint64_t)d);
    }
    if (!rc) rc = set_str(env, o, "bundleName", co, ohreq_client_options_set_bundle);
    if (!rc) rc = set_str(env, o, "cacheDir", co, ohreq_client_options_set_cache_dir);
    if (!rc) rc = set_str(env, o, "filesDir", co, ohreq_client_options_set_files_dir);
    if (!rc) rc = set_str(env, o, "caFile", co, ohreq_client_options_set_ca_file);
    if (!rc) rc = set_bool(env, o, "systemApp", co, ohreq_client_options_set_system_app);
    if (!rc) rc = set_bool(env, o, "cleartextPermitted", co, ohreq_client_options_set_cleartext_permitted);
    if (!rc && get_prop(env, o, "permissions", &v, &t))
        rc = add_string_list(env, v, co, ohreq_client_options_add_permission);
    if (!rc && get_prop(env, o, "baseDirs", &v, &t)) rc = add_string_list(env, v, co, ohreq_client_options_add_base_dir);
    ohreq_client *cli = NULL;
    if (!rc) rc = ohreq_client_new(ad->svc, co, &cli);
    ohreq_client_options_free(co);
    if (rc) return throw_code(env, rc, why);
    client_wrap *cw = malloc(sizeof *cw);
    if (!cw) {
        ohreq_client_free(cli);
        return throw_code(env, OHREQ_ERR_OTHERS, "out of memory");
    }
    cw->ad = ad;
    cw->cli = cli;
    if (napi_wrap(env, argv[0], cw, client_finalize, NULL, NULL) != napi_ok) {
        ohreq_client_free(cli);
        free(cw);
        return throw_code(env, OHREQ_ERR_PARAMETER, "the context object is already in use");
    }
    (void)napi_type_tag_object(env, argv[0], &CLIENT_TAG);
    ad->n_clients++;
    return NULL;
}

ohreq_client *client_of(napi_env env, napi_value obj) {
    bool ok = false;
    client_wrap *cw = NULL;
    if (napi_check_object_type_tag(env, obj, &CLIENT_TAG, &ok) != napi_ok || !ok) return NULL;
    if (napi_unwrap(env, obj, (void **)&cw) != napi_ok || !cw) return NULL;
    return cw->cli;
}

/* ---------------------------------------------------------------- misc exports */

/* message(code) -> "<static message>   <detail of the last failing call>" */
static napi_value js_message(napi_env env, napi_callback_info info) {
    size_t argc = 2;
    napi_value argv[2], out;
    int32_t code = 0;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1 || napi_get_value_int32(env, argv[0], &code) != napi_ok) code = OHREQ_ERR_OTHERS;
    char *detail = argc > 1 ? dup_string(env, argv[1], NULL) : NULL;
    char *msg = code_message(code, detail);
    free(detail);
    napi_status st = napi_create_string_utf8(env, msg ? msg : "", NAPI_AUTO_LENGTH, &out);
    free(msg);
    return st == napi_ok ? out : NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
    (void)info;
    addon *ad = addon_get(env);
    napi_value o, v;
    NAPI_OK(napi_create_object(env, &o));
    size_t rooted = 0;
    for (task_wrap *t = ad->tasks; t; t = t->next) rooted += t->rooted;
    struct {
        const char *k;
        double v;
    } f[] = {{"tasks", (double)ad->n_tasks},         {"listeners", (double)ad->n_listeners},
             {"contexts", (double)ad->n_clients},    {"active", (double)ad->active},
             {"rooted", (double)rooted},             {"loopRef", (double)ad->poll_ref},
             {"running", ad->svc != NULL ? 1.0 : 0.0}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        NAPI_OK(napi_create_double(env, f[i].v, &v));
        NAPI_OK(napi_set_named_property(env, o, f[i].k, v));
    }
    return o;
}

static napi_value js_version(napi_env env, napi_callback_info info) {
    (void)info;
    napi_value v;
    NAPI_OK(napi_create_string_utf8(env, ohreq_version(), NAPI_AUTO_LENGTH, &v));
    return v;
}

/* ---------------------------------------------------------------- lifetime of the addon */

/* Env teardown, step 1 (runs before Node finalizes the remaining wrapped objects): stop
 * the loop watcher and free the service. The task/context finalizers that follow only
 * free handles, which stays valid after the service is gone. */
static void env_cleanup(void *arg) {
    addon *ad = arg;
    ad->closing = 1;
    addon_shutdown(ad);
}

/* Env teardown, last step: the instance data. */
static void addon_finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    addon *ad = data;
    (void)napi_remove_env_cleanup_hook(env, env_cleanup, ad);
    ad->closing = 1;
    addon_shutdown(ad);
    /* Wraps that were never finalized (cannot happen after FinalizeAll) would point here;
     * detach them rather than leave a dangling pointer. */
    for (task_wrap *t = ad->tasks; t; t = t->next) t->ad = NULL;
    free(ad);
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
    addon *ad = calloc(1, sizeof *ad);
    if (!ad) return NULL;
    ad->env = env;
    napi_value resource, name;
    if (napi_create_object(env, &resource) != napi_ok ||
        napi_create_string_utf8(env, "ohreq.event", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_async_init(env, resource, name, &ad->actx) != napi_ok ||
        napi_create_reference(env, resource, 1, &ad->resource) != napi_ok ||
        napi_set_instance_data(env, ad, addon_finalize, NULL) != napi_ok) {
        free(ad);
        return NULL;
    }
    (void)napi_add_env_cleanup_hook(env, env_cleanup, ad);

    napi_property_descriptor props[] = {
        {"start", NULL, js_start, NULL, NULL, NULL, napi_enumerable, NULL},
        {"shutdown", NULL, js_shutdown, NULL, NULL, NULL, napi_enumerable, NULL},
        {"createClient", NULL, js_create_client, NULL, NULL, NULL, napi_enumerable, NULL},
        {"createTask", NULL, js_create_task, NULL, NULL, NULL, napi_enumerable, NULL},
        {"on", NULL, js_on, NULL, NULL, NULL, napi_enumerable, NULL},
        {"off", NULL, js_off, NULL, NULL, NULL, napi_enumerable, NULL},
        {"suspend", NULL, js_suspend, NULL, NULL, NULL, napi_enumerable, NULL},
        {"restore", NULL, js_restore, NULL, NULL, NULL, napi_enumerable, NULL},
        {"delete", NULL, js_delete, NULL, NULL, NULL, napi_enumerable, NULL},
        {"info", NULL, js_info, NULL, NULL, NULL, napi_enumerable, NULL},
        {"mimeType", NULL, js_mime, NULL, NULL, NULL, napi_enumerable, NULL},
        {"taskId", NULL, js_task_id, NULL, NULL, NULL, napi_enumerable, NULL},
        {"emitMissed", NULL, js_emit_missed, NULL, NULL, NULL, napi_enumerable, NULL},
        {"message", NULL, js_message, NULL, NULL, NULL, napi_enumerable, NULL},
        {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
        {"version", NULL, js_version, NULL, NULL, NULL, napi_enumerable, NULL},
    };
    if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
    return exports;
}
