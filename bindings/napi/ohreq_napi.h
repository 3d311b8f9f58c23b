/* ohreq_napi.h: internals shared by the files of the Node-API addon (ohreq.node).
 *
 * Threading: everything here runs on the JS thread. The service is created in poll mode
 * (OHREQ_DISPATCH_POLL); a libuv uv_poll_t watches ohreq_service_event_fd() and calls
 * ohreq_service_dispatch() when it is readable, so every ohreq callback (and therefore
 * every JS listener) runs on the JS thread, inside a Node callback scope. */
#ifndef OHREQ_NAPI_H
#define OHREQ_NAPI_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h needs POSIX types under -std=c11 */
#endif

#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <stddef.h>
#include <stdint.h>

#include "ohreq.h"

typedef struct addon addon;
typedef struct task_wrap task_wrap;
typedef struct listener listener;

/* One JS listener subscribed with ohreq_task_on. Owned by the library from the successful
 * ohreq_task_on on; freed by listener_free (the userdata_free), which also releases `fn`. */
struct listener {
    task_wrap *tw;
    uint32_t kind;
    napi_ref fn; /* weak (count 0): the JS side keeps the function alive via the task object */
    listener *prev, *next;
};

/* The native side of a DownloadTask / UploadTask JS object (napi_wrap). */
struct task_wrap {
    addon *ad;
    ohreq_task *task;
    napi_ref self;      /* the wrapped object: strong while the task may still emit, else weak */
    uint32_t id;
    int upload;
    int rooted;         /* self ref is strong */
    int paused;         /* paused by the user: does not keep the loop alive */
    int ended;          /* a terminal event (complete, fail, remove) was seen */
    int synth_kind;     /* terminal event synthesized from a snapshot (-1 none) */
    int pending_unroot; /* unroot after the current dispatch batch */
    task_wrap *pending_next;
    listener *listeners;
    task_wrap *prev, *next;
};

/* Per-environment state (napi_set_instance_data). */
struct addon {
    napi_env env;
    ohreq_service *svc;
    uv_poll_t *poll;
    int poll_ref;       /* uv_ref'd */
    size_t active;      /* tasks that keep the loop alive */
    napi_async_context actx;
    napi_ref resource;
    task_wrap *tasks;
    size_t n_tasks, n_listeners, n_clients;
    task_wrap *pending;
    int closing;        /* env teardown: do not touch napi refs any more */
    int shut;           /* service freed */
};

/* ---- ohreq_napi.c ---- */
addon *addon_get(napi_env env);
/* Throws a JS Error {code, message: "<static message>   <detail>"}; `detail` NULL means
 * "the detail of this thread's last failing ohreq call". Always returns NULL. */
napi_value throw_code(napi_env env, ohreq_code code, const char *detail);
/* The message "<static message>   <detail>" for `code` (malloc'd). */
char *code_message(ohreq_code code, const char *detail);
/* Recounts whether the uv handle must keep the loop alive. */
void addon_update_ref(addon *ad);
/* The client of a context object made by createClient, or NULL. */
ohreq_client *client_of(napi_env env, napi_value obj);
/* Reads a property; returns 1 when present and not undefined/null. */
int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out, napi_valuetype *type);
/* A malloc'd UTF-8 copy of a JS string (NULL if not a string or it contains a NUL). */
char *dup_string(napi_env env, napi_value v, int *has_nul);

/* ---- config.c ---- */
typedef struct {
    ohreq_code code;
    char detail[256]; /* empty: take ohreq_last_error_message */
} bind_err;

ohreq_download_config *parse_download_config(napi_env env, napi_value cfg, bind_err *err);
ohreq_upload_config *parse_upload_config(napi_env env, napi_value cfg, bind_err *err);

/* ---- task.c ---- */
napi_value js_create_task(napi_env env, napi_callback_info info); /* (ctx, config, obj, upload) */
napi_value js_on(napi_env env, napi_callback_info info);
napi_value js_off(napi_env env, napi_callback_info info);
napi_value js_suspend(napi_env env, napi_callback_info info);
napi_value js_restore(napi_env env, napi_callback_info info);
napi_value js_delete(napi_env env, napi_callback_info info);
napi_value js_info(napi_env env, napi_callback_info info);
napi_value js_mime(napi_env env, napi_callback_info info);
napi_value js_task_id(napi_env env, napi_callback_info info);
napi_value js_emit_missed(napi_env env, napi_callback_info info);
/* Runs the deferred unroots collected during a dispatch batch. */
void task_process_pending(addon *ad);

#endif
