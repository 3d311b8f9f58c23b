/* task.c: DownloadTask / UploadTask native side: creation, listeners, methods, lifetimes.
 *
 * Lifetimes
 * - The JS task object wraps a task_wrap (napi_wrap); its finalizer calls ohreq_task_free,
 *   which ends the handle's subscriptions and runs listener_free for each JS listener.
 * - Each JS listener is one ohreq_task_on subscription whose userdata holds a *weak* napi_ref
 *   to the function; index.js keeps the functions alive from the task object, so a task
 *   whose listeners close over it can still be collected.
 * - While a task may still emit (created, running, paused) the binding holds the task object
 *   with a strong reference ("rooted"), so listeners keep firing even when the program kept
 *   no reference to the task. After complete/fail/remove it is released.
 * - Tasks that are rooted and not paused by the user keep the libuv loop alive.
 *
 * Events can fire between ohreq_download/ohreq_upload (which start the task) and the first
 * ohreq_task_on. In poll mode the library queues them while the handle is open, and the
 * binding subscribes before it next calls ohreq_service_dispatch, so none is lost.
 * (emitMissed stays as a no-op guard for a task that ended before any subscription.) */
#include "ohreq_napi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAPI_OK(call)                                                                              \
    do {                                                                                           \
        if ((call) != napi_ok) return NULL;                                                        \
    } while (0)

static const napi_type_tag TASK_TAG = {0x6f68726571746173ULL, 0x6b5f777261700001ULL};

/* The synthesized terminal event of a task that ended before the binding subscribed. */
typedef struct {
    int kind; /* OHREQ_EVENT_COMPLETE / _FAIL, or -1 */
    int32_t code;
    uint32_t http_status;
    char *path;
    char *message;
} missed_event;

typedef struct {
    task_wrap base;
    missed_event missed;
} task_wrap_ext;

static task_wrap *task_of(napi_env env, napi_value obj) {
    bool ok = false;
    task_wrap *tw = NULL;
    if (napi_check_object_type_tag(env, obj, &TASK_TAG, &ok) != napi_ok || !ok) return NULL;
    if (napi_unwrap(env, obj, (void **)&tw) != napi_ok) return NULL;
    return tw;
}

/* Applies the rooted/paused flags: the strong reference and the loop's liveness. */
static void set_state(task_wrap *tw, int rooted, int paused) {
    addon *ad = tw->ad;
    if (!ad) return;
    int was = tw->rooted && !tw->paused;
    if (rooted != tw->rooted && !ad->closing) {
        uint32_t n = 0;
        if (rooted)
            (void)napi_reference_ref(ad->env, tw->self, &n);
        else
            (void)napi_reference_unref(ad->env, tw->self, &n);
    }
    tw->rooted = rooted;
    tw->paused = paused;
    int now = rooted && !paused;
    if (was != now) {
        if (now)
            ad->active++;
        else
            ad->active--;
        addon_update_ref(ad);
    }
}

void task_process_pending(addon *ad) {
    while (ad->pending) {
        task_wrap *tw = ad->pending;
        ad->pending = tw->pending_next;
        tw->pending_next = NULL;
        tw->pending_unroot = 0;
        set_state(tw, 0, tw->paused);
    }
}

static void schedule_unroot(task_wrap *tw) {
    if (tw->pending_unroot || !tw->rooted || !tw->ad) return;
    tw->pending_unroot = 1;
    tw->pending_next = tw->ad->pending;
    tw->ad->pending = tw;
}

/* ---------------------------------------------------------------- JS values of events */

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n) return 0; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

static napi_value str_value(napi_env env, ohreq_str s) {
    napi_value v = NULL;
    if (napi_create_string_utf8(env, s.data ? s.data : "", s.data ? s.len : 0, &v) != napi_ok) return NULL;
    return v;
}

static napi_value cstr_value(napi_env env, const char *s) {
    napi_value v = NULL;
    if (napi_create_string_utf8(env, s ? s : "", NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
    return v;
}

static napi_value num_value(napi_env env, double d) {
    napi_value v = NULL;
    if (napi_create_double(env, d, &v) != napi_ok) return NULL;
    return v;
}

static void set_field(napi_env env, napi_value obj, const char *k, napi_value v) {
    if (v) (void)napi_set_named_property(env, obj, k, v);
}

static napi_value task_state(napi_env env, napi_value path, int32_t code, napi_value message) {
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    set_field(env, o, "path", path);
    set_field(env, o, "responseCode", num_value(env, code));
    set_field(env, o, "message", message);
    return o;
}

static napi_value task_states(napi_env env, const ohreq_event *ev) {
    napi_value arr;
    size_t n = ohreq_event_task_state_count(ev);
    NAPI_OK(napi_create_array_with_length(env, n, &arr));
    for (size_t i = 0; i < n; i++) {
        napi_value st = task_state(env, str_value(env, ohreq_event_task_state_path(ev, i)),
                                   ohreq_event_task_state_code(ev, i),
                                   str_value(env, ohreq_event_task_state_message(ev, i)));
        if (st) (void)napi_set_element(env, arr, (uint32_t)i, st);
    }
    return arr;
}

/* headerReceive: {headers: {lower-cased name: value, repeated names joined by ", "}, body}
 * where body is a string when it is valid UTF-8, else an ArrayBuffer. */
static napi_value header_object(napi_env env, const ohreq_event *ev) {
    napi_value o, headers, body;
    NAPI_OK(napi_create_object(env, &o));
    NAPI_OK(napi_create_object(env, &headers));
    size_t n = ohreq_event_header_count(ev);
    for (size_t i = 0; i < n; i++) {
        ohreq_str name = ohreq_event_header_name(ev, i), value = ohreq_event_header_value(ev, i);
        char *lname = strndup(name.data ? name.data : "", name.len);
        if (!lname) continue;
        for (char *p = lname; *p; p++)
            if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
        napi_value old, v = NULL;
        napi_valuetype t = napi_undefined;
        bool has = false;
        if (napi_has_own_property(env, headers, cstr_value(env, lname), &has) == napi_ok && has &&
            napi_get_named_property(env, headers, lname, &old) == napi_ok && napi_typeof(env, old, &t) == napi_ok &&
            t == napi_string) {
            size_t ol = 0;
            (void)napi_get_value_string_utf8(env, old, NULL, 0, &ol);
            char *joined = malloc(ol + 2 + value.len + 1);
            if (joined) {
                (void)napi_get_value_string_utf8(env, old, joined, ol + 1, &ol);
                memcpy(joined + ol, ", ", 2);
                memcpy(joined + ol + 2, value.data ? value.data : "", value.len);
                (void)napi_create_string_utf8(env, joined, ol + 2 + value.len, &v);
                free(joined);
            }
        } else {
            v = str_value(env, value);
        }
        if (v) (void)napi_set_named_property(env, headers, lname, v);
        free(lname);
    }
    set_field(env, o, "headers", headers);
    ohreq_bytes b = ohreq_event_body(ev);
    if (b.len == 0 || utf8_valid(b.data, b.len)) {
        NAPI_OK(napi_create_string_utf8(env, b.len ? (const char *)b.data : "", b.len, &body));
    } else {
        void *data = NULL;
        NAPI_OK(napi_create_arraybuffer(env, b.len, &data, &body));
        memcpy(data, b.data, b.len);
    }
    set_field(env, o, "body", body);
    return o;
}

/* The listener arguments of an event, as the legacy API passes them. */
static size_t event_args(napi_env env, task_wrap *tw, const ohreq_event *ev, napi_value *argv) {
    switch (ohreq_event_kind(ev)) {
    case OHREQ_EVENT_PROGRESS:
        if (tw->upload) {
            argv[0] = num_value(env, (double)ohreq_event_total_processed(ev));
            argv[1] = num_value(env, (double)ohreq_event_total_size(ev));
        } else {
            argv[0] = num_value(env, (double)ohreq_event_processed(ev));
            argv[1] = num_value(env, (double)ohreq_event_total(ev));
        }
        return 2;
    case OHREQ_EVENT_COMPLETE:
        if (!tw->upload) return 0;
        argv[0] = task_states(env, ev);
        return 1;
    case OHREQ_EVENT_FAIL:
        argv[0] = tw->upload ? task_states(env, ev) : num_value(env, ohreq_event_code(ev));
        return 1;
    case OHREQ_EVENT_HEADER_RECEIVE:
        argv[0] = header_object(env, ev);
        return 1;
    default:
        return 0;
    }
}

/* Calls a JS listener; an exception becomes an 'uncaughtException' (as for any callback). */
static void call_listener(napi_env env, napi_value fn, size_t argc, napi_value *argv) {
    napi_value recv, result;
    if (napi_get_undefined(env, &recv) != napi_ok) return;
    for (size_t i = 0; i < argc; i++)
        if (!argv[i] && napi_get_undefined(env, &argv[i]) != napi_ok) return;
    napi_status st = napi_call_function(env, recv, fn, argc, argv, &result);
    if (st == napi_pending_exception) {
        napi_value exc;
        if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) (void)napi_fatal_exception(env, exc);
    }
}

/* ---------------------------------------------------------------- subscriptions */

/* The binding's own subscription (every kind): keeps events flowing and tracks the task's
 * lifecycle. Registered before any JS listener, so it runs first for each event. */
static void lifecycle_cb(void *ud, const ohreq_event *ev) {
    task_wrap *tw = ud;
    if (!tw->ad) return;
    switch (ohreq_event_kind(ev)) {
    case OHREQ_EVENT_PAUSE:
        if (!tw->ended) set_state(tw, tw->rooted, 1);
        break;
    case OHREQ_EVENT_COMPLETE:
    case OHREQ_EVENT_FAIL:
    case OHREQ_EVENT_REMOVE:
        tw->ended = 1;
        /* Released after the batch, so that every listener of this event still runs. */
        schedule_unroot(tw);
        break;
    default:
        break;
    }
}

static void listener_cb(void *ud, const ohreq_event *ev) {
    listener *l = ud;
    task_wrap *tw = l->tw;
    addon *ad = tw->ad;
    if (!ad || ad->closing) return;
    uint32_t kind = ohreq_event_kind(ev);
    /* A terminal event synthesized from a snapshot was already delivered. */
    if ((kind == OHREQ_EVENT_COMPLETE || kind == OHREQ_EVENT_FAIL) && tw->synth_kind >= 0) return;
    napi_env env = ad->env;
    napi_handle_scope hs;
    if (napi_open_handle_scope(env, &hs) != napi_ok) return;
    napi_value fn = NULL;
    if (napi_get_reference_value(env, l->fn, &fn) == napi_ok && fn) {
        napi_value argv[2] = {NULL, NULL};
        size_t argc = event_args(env, tw, ev, argv);
        /* `l` may be released once the call returns (off() from inside the listener). */
        call_listener(env, fn, argc, argv);
    }
    (void)napi_close_handle_scope(env, hs);
}

static void listener_free(void *ud) {
    listener *l = ud;
    task_wrap *tw = l->tw;
    if (l->prev)
        l->prev->next = l->next;
    else
        tw->listeners = l->next;
    if (l->next) l->next->prev = l->prev;
    if (tw->ad) {
        tw->ad->n_listeners--;
        (void)napi_delete_reference(tw->ad->env, l->fn);
    }
    free(l);
}

/* ---------------------------------------------------------------- creation and finalization */

static void task_finalize(napi_env env, void *data, void *hint) {
    (void)hint;
    task_wrap_ext *tx = data;
    task_wrap *tw = &tx->base;
    addon *ad = tw->ad;
    /* Ends the handle's subscriptions: listener_free runs for each JS listener. */
    ohreq_task_free(tw->task);
    tw->task = NULL;
    if (ad) {
        if (tw->pending_unroot) {
            task_wrap **pp = &ad->pending;
            while (*pp && *pp != tw) pp = &(*pp)->pending_next;
            if (*pp) *pp = tw->pending_next;
        }
        if (tw->rooted && !tw->paused) {
            ad->active--;
            addon_update_ref(ad);
        }
        if (tw->prev)
            tw->prev->next = tw->next;
        else
            ad->tasks = tw->next;
        if (tw->next) tw->next->prev = tw->prev;
        ad->n_tasks--;
        (void)napi_delete_reference(env, tw->self);
    }
    free(tx->missed.path);
    free(tx->missed.message);
    free(tx);
}

/* createTask(context, config, taskObject, isUpload) -> missed terminal kind or -1.
 * Throws {code, message} when the library refuses the task. */
napi_value js_create_task(napi_env env, napi_callback_info info) {
    addon *ad = addon_get(env);
    size_t argc = 4;
    napi_value argv[4], out;
    bool upload = false;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 4 || napi_get_value_bool(env, argv[3], &upload) != napi_ok)
        return throw_code(env, OHREQ_ERR_PARAMETER, "createTask(context, config, task, upload)");
    ohreq_client *cli = client_of(env, argv[0]);
    if (!cli) return throw_code(env, OHREQ_ERR_PARAMETER, "Incorrect parameter type, context is not a valid context");
    napi_valuetype t;
    if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_object)
        return throw_code(env, OHREQ_ERR_PARAMETER, "Incorrect parameter type, config is not of object type");
    bind_err e = {0, ""};
    ohreq_task *task = NULL;
    ohreq_code rc;
    if (upload) {
        ohreq_upload_config *c = parse_upload_config(env, argv[1], &e);
        if (!c) return throw_code(env, e.code, e.detail[0] ? e.detail : NULL);
        rc = ohreq_upload(cli, c, &task);
        ohreq_upload_config_free(c);
    } else {
        ohreq_download_config *c = parse_download_config(env, argv[1], &e);
        if (!c) return throw_code(env, e.code, e.detail[0] ? e.detail : NULL);
        rc = ohreq_download(cli, c, &task);
        ohreq_download_config_free(c);
    }
    if (rc) return throw_code(env, rc, NULL);

    task_wrap_ext *tx = calloc(1, sizeof *tx);
    if (!tx) {
        if (ohreq_task_delete(task) != OHREQ_OK) { /* best effort */
        }
        ohreq_task_free(task);
        return throw_code(env, OHREQ_ERR_OTHERS, "out of memory");
    }
    task_wrap *tw = &tx->base;
    tw->ad = ad;
    tw->task = task;
    tw->id = ohreq_task_id(task);
    tw->upload = upload;
    tw->synth_kind = -1;
    tx->missed.kind = -1;
    if (napi_wrap(env, argv[2], tx, task_finalize, NULL, &tw->self) != napi_ok) {
        if (ohreq_task_delete(task) != OHREQ_OK) { /* best effort */
        }
        ohreq_task_free(task);
        free(tx);
        return throw_code(env, OHREQ_ERR_OTHERS, "cannot wrap the task object");
    }
    (void)napi_type_tag_object(env, argv[2], &TASK_TAG);
    tw->next = ad->tasks;
    if (ad->tasks) ad->tasks->prev = tw;
    ad->tasks = tw;
    ad->n_tasks++;
    set_state(tw, 1, 0);

    /* Subscribe to every kind the task emits, at once: the library drops an event when
     * nobody listens at the moment it is produced, and delivers a queued event to the
     * listeners present at dispatch time. So JS listeners added before the loop turns (in
     * the promise continuation or the callback) miss nothing produced after this point. */
    static const uint32_t kinds[] = {OHREQ_EVENT_PAUSE,    OHREQ_EVENT_REMOVE, OHREQ_EVENT_COMPLETE,
                                     OHREQ_EVENT_FAIL,     OHREQ_EVENT_PROGRESS, OHREQ_EVENT_HEADER_RECEIVE};
    size_t nkinds = sizeof kinds / sizeof kinds[0] - (upload ? 0 : 1);
    for (size_t i = 0; i < nkinds; i++)
        if (ohreq_task_on(task, kinds[i], lifecycle_cb, tw, NULL) != OHREQ_OK) break;

    /* Nothing to catch up with: in poll mode the library keeps the events of a task whose
     * handle is open until the next ohreq_service_dispatch, so the subscriptions above get
     * every event, the very first included (missed.kind stays -1). */
    NAPI_OK(napi_create_int32(env, tx->missed.kind, &out));
    return out;
}

/* emitMissed(task): delivers the terminal event the task reached before the binding could
 * subscribe, unless the real one arrived meanwhile. Returns whether it emitted. */
napi_value js_emit_missed(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], out;
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    task_wrap *tw = argc ? task_of(env, argv[0]) : NULL;
    task_wrap_ext *tx = (task_wrap_ext *)tw;
    bool emitted = false;
    if (tw && tx->missed.kind >= 0 && !tw->ended && tw->ad) {
        int kind = tx->missed.kind;
        tw->synth_kind = kind;
        tw->ended = 1;
        /* Snapshot the listeners first: a listener may call off(). */
        size_t n = 0;
        for (listener *l = tw->listeners; l; l = l->next) n += l->kind == (uint32_t)kind;
        napi_value *fns = n ? calloc(n, sizeof *fns) : NULL;
        size_t k = 0;
        for (listener *l = tw->listeners; l && fns; l = l->next)
            if (l->kind == (uint32_t)kind && napi_get_reference_value(env, l->fn, &fns[k]) == napi_ok && fns[k]) k++;
        for (size_t i = 0; i < k; i++) {
            napi_value args[1] = {NULL};
            size_t nargs = 0;
            if (tw->upload) {
                int32_t code = kind == OHREQ_EVENT_COMPLETE ? 0 : tx->missed.http_status >= 400 ? 17 : 20;
                napi_value arr;
                if (napi_create_array_with_length(env, 1, &arr) == napi_ok) {
                    napi_value st = task_state(env, cstr_value(env, tx->missed.path), code,
                                               cstr_value(env, kind == OHREQ_EVENT_COMPLETE ? "" : tx->missed.message));
                    if (st) (void)napi_set_element(env, arr, 0, st);
                    args[0] = arr;
                    nargs = 1;
                }
            } else if (kind == OHREQ_EVENT_FAIL) {
                args[0] = num_value(env, tx->missed.code);
                nargs = 1;
            }
            call_listener(env, fns[i], nargs, args);
        }
        free(fns);
        set_state(tw, 0, tw->paused);
        emitted = true;
    }
    NAPI_OK(napi_get_boolean(env, emitted, &out));
    return out;
}

/* ---------------------------------------------------------------- on / off */

static int get_task_kind(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv, task_wrap **tw,
                         uint32_t *kind) {
    if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) return 0;
    if (*argc < 2) return 0;
    *tw = task_of(env, argv[0]);
    if (!*tw || napi_get_value_uint32(env, argv[1], kind) != napi_ok) return 0;
    return 1;
}

/* on(task, kind, fn) */
napi_value js_on(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    task_wrap *tw;
    uint32_t kind;
    if (!get_task_kind(env, info, &argc, argv, &tw, &kind) || argc < 3)
        return throw_code(env, OHREQ_ERR_PARAMETER, "Parameter verification failed, on(task, kind, fn)");
    if (!tw->task || !tw->ad) return throw_code(env, OHREQ_ERR_SERVICE, "the task handle is closed");
    listener *l = calloc(1, sizeof *l);
    if (!l) return throw_code(env, OHREQ_ERR_OTHERS, "out of memory");
    l->tw = tw;
    l->kind = kind;
    if (napi_create_reference(env, argv[2], 0, &l->fn) != napi_ok) {
        free(l);
        return throw_code(env, OHREQ_ERR_PARAMETER, "Incorrect parameter type, callback is not of function type");
    }
    ohreq_code rc = ohreq_task_on(tw->task, kind, listener_cb, l, listener_free);
    if (rc) {
        (void)napi_delete_reference(env, l->fn);
        free(l);
        return throw_code(env, rc, NULL);
    }
    l->next = tw->listeners;
    if (tw->listeners) tw->listeners->prev = l;
    tw->listeners = l;
    tw->ad->n_listeners++;
    return NULL;
}

/* off(task, kind[, fn]): one listener, or every listener of the kind. */
napi_value js_off(napi_env env, napi_callback_info info) {
    size_t argc = 3;
    napi_value argv[3];
    task_wrap *tw;
    uint32_t kind;
    if (!get_task_kind(env, info, &argc, argv, &tw, &kind))
        return throw_code(env, OHREQ_ERR_PARAMETER, "Parameter verification failed, off(task, kind[, fn])");
    if (!tw->task) return NULL;
    napi_valuetype t = napi_undefined;
    if (argc >= 3) (void)napi_typeof(env, argv[2], &t);
    /* Collect first: ohreq_task_off may free the listener at once (listener_free unlinks it)
     * or, from inside that listener's own callback, only when it returns. */
    size_t n = 0;
    for (listener *l = tw->listeners; l; l = l->next) n++;
    listener **victims = n ? calloc(n, sizeof *victims) : NULL;
    size_t k = 0;
    for (listener *l = tw->listeners; l && victims; l = l->next) {
        if (l->kind != kind) continue;
        if (t == napi_function) {
            napi_value fn = NULL;
            bool same = false;
            if (napi_get_reference_value(env, l->fn, &fn) != napi_ok || !fn) continue;
            if (napi_strict_equals(env, fn, argv[2], &same) != napi_ok || !same) continue;
        }
        victims[k++] = l;
    }
    for (size_t i = 0; i < k; i++) {
        ohreq_code rc = ohreq_task_off(tw->task, kind, listener_cb, victims[i]);
        (void)rc; /* only 401 for a NULL task or an unknown kind, excluded above */
    }
    free(victims);
    return NULL;
}

/* ---------------------------------------------------------------- methods */

static task_wrap *method_task(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1];
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return NULL;
    return task_of(env, argv[0]);
}

static napi_value code_value(napi_env env, ohreq_code rc) {
    napi_value v;
    NAPI_OK(napi_create_int32(env, rc, &v));
    return v;
}

napi_value js_suspend(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    if (!tw) return code_value(env, OHREQ_ERR_PARAMETER);
    return code_value(env, ohreq_task_suspend(tw->task));
}

napi_value js_restore(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    if (!tw) return code_value(env, OHREQ_ERR_PARAMETER);
    ohreq_code rc = ohreq_task_restore(tw->task);
    if (rc == OHREQ_OK && !tw->ended) set_state(tw, 1, 0);
    return code_value(env, rc);
}

napi_value js_delete(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    if (!tw) return code_value(env, OHREQ_ERR_PARAMETER);
    /* The task is released when its 'remove' event arrives. */
    return code_value(env, ohreq_task_delete(tw->task));
}

napi_value js_task_id(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    napi_value v;
    NAPI_OK(napi_create_uint32(env, tw ? tw->id : 0, &v));
    return v;
}

/* info(task) -> DownloadInfo object, or a result code (number) on failure. */
napi_value js_info(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    if (!tw) return code_value(env, OHREQ_ERR_PARAMETER);
    ohreq_download_info *di = NULL;
    ohreq_code rc = ohreq_task_get_download_info(tw->task, &di);
    if (rc) return code_value(env, rc);
    napi_value o;
    if (napi_create_object(env, &o) != napi_ok) {
        ohreq_download_info_free(di);
        return NULL;
    }
    set_field(env, o, "downloadId", num_value(env, ohreq_download_info_id(di)));
    set_field(env, o, "failedReason", num_value(env, ohreq_download_info_failed_reason(di)));
    set_field(env, o, "fileName", str_value(env, ohreq_download_info_file_name(di)));
    set_field(env, o, "filePath", str_value(env, ohreq_download_info_file_path(di)));
    set_field(env, o, "pausedReason", num_value(env, ohreq_download_info_paused_reason(di)));
    set_field(env, o, "status", num_value(env, ohreq_download_info_status(di)));
    set_field(env, o, "targetURI", str_value(env, ohreq_download_info_target_uri(di)));
    set_field(env, o, "downloadTitle", str_value(env, ohreq_download_info_title(di)));
    set_field(env, o, "downloadTotalBytes", num_value(env, (double)ohreq_download_info_total_bytes(di)));
    set_field(env, o, "description", str_value(env, ohreq_download_info_description(di)));
    set_field(env, o, "downloadedBytes", num_value(env, (double)ohreq_download_info_downloaded_bytes(di)));
    ohreq_download_info_free(di);
    return o;
}

/* mimeType(task) -> string, or a result code (number) on failure. */
napi_value js_mime(napi_env env, napi_callback_info info) {
    task_wrap *tw = method_task(env, info);
    if (!tw) return code_value(env, OHREQ_ERR_PARAMETER);
    char small[256];
    size_t n = 0;
    ohreq_code rc = ohreq_task_get_mime_type(tw->task, small, sizeof small, &n);
    napi_value v;
    if (rc == OHREQ_OK) {
        NAPI_OK(napi_create_string_utf8(env, small, n, &v));
        return v;
    }
    /* Maybe the buffer was too small: ask for the length. */
    if (rc == OHREQ_ERR_PARAMETER && ohreq_task_get_mime_type(tw->task, NULL, 0, &n) == OHREQ_OK) {
        char *big = malloc(n + 1);
        if (big && (rc = ohreq_task_get_mime_type(tw->task, big, n + 1, &n)) == OHREQ_OK) {
            napi_status st = napi_create_string_utf8(env, big, n, &v);
            free(big);
            return st == napi_ok ? v : NULL;
        }
        free(big);
    }
    return code_value(env, rc);
}
