/* config.c: JS DownloadConfig / UploadConfig objects -> ohreq config builders.
 *
 * Parsing is as lenient as the legacy service's: optional fields of the wrong type keep
 * their defaults, header values that are not strings become "", File entries lacking one
 * of filename/name/uri/type are dropped. Required fields (url; files and data for uploads)
 * missing or of the wrong type are 401. Every other check is the library's. */
#include "ohreq_napi.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void set_err(bind_err *e, ohreq_code code, const char *detail) {
    e->code = code;
    snprintf(e->detail, sizeof e->detail, "%s", detail ? detail : "");
}

/* A string property: 1 found (in *out, malloc'd), 0 absent or not a string, -1 error. */
static int str_prop(napi_env env, napi_value obj, const char *name, char **out, bind_err *e) {
    napi_value v;
    napi_valuetype t;
    *out = NULL;
    if (!get_prop(env, obj, name, &v, &t) || t != napi_string) return 0;
    int nul = 0;
    *out = dup_string(env, v, &nul);
    if (!*out) {
        char d[128];
        snprintf(d, sizeof d, "Parameter verification failed, %s contains a NUL character", name);
        set_err(e, OHREQ_ERR_PARAMETER, nul ? d : "Parameter verification failed, cannot read a string");
        return -1;
    }
    return 1;
}

static int bool_prop(napi_env env, napi_value obj, const char *name, bool *out) {
    napi_value v;
    napi_valuetype t;
    if (!get_prop(env, obj, name, &v, &t) || t != napi_boolean) return 0;
    return napi_get_value_bool(env, v, out) == napi_ok;
}

static int num_prop(napi_env env, napi_value obj, const char *name, double *out) {
    napi_value v;
    napi_valuetype t;
    if (!get_prop(env, obj, name, &v, &t) || t != napi_number) return 0;
    return napi_get_value_double(env, v, out) == napi_ok;
}

static int64_t to_i64(double d) {
    if (isnan(d)) return 0;
    if (d >= 9.2e18) return INT64_MAX;
    if (d <= -9.2e18) return INT64_MIN;
    return (int64_t)d;
}

/* Required url: 401 when missing or not a string. */
static char *url_prop(napi_env env, napi_value cfg, bind_err *e) {
    napi_value v;
    napi_valuetype t;
    if (!get_prop(env, cfg, "url", &v, &t)) {
        set_err(e, OHREQ_ERR_PARAMETER, "Missing mandatory parameters, url is required");
        return NULL;
    }
    if (t != napi_string) {
        set_err(e, OHREQ_ERR_PARAMETER, "Incorrect parameter type, url is not of string type");
        return NULL;
    }
    char *url = NULL;
    if (str_prop(env, cfg, "url", &url, e) < 0) return NULL;
    return url;
}

/* Calls add(name, value) for each own enumerable string key of `header` (if an object);
 * values that are not strings are sent as "". */
static ohreq_code add_headers(napi_env env, napi_value cfg, bind_err *e, void *config,
                              ohreq_code (*add)(void *, const char *, const char *)) {
    napi_value h, keys;
    napi_valuetype t;
    uint32_t n = 0;
    if (!get_prop(env, cfg, "header", &h, &t) || t != napi_object) return OHREQ_OK;
    if (napi_get_all_property_names(env, h, napi_key_own_only, napi_key_enumerable | napi_key_skip_symbols,
                                    napi_key_numbers_to_strings, &keys) != napi_ok ||
        napi_get_array_length(env, keys, &n) != napi_ok) {
        set_err(e, OHREQ_ERR_PARAMETER, "Parameter verification failed, cannot read header");
        return e->code;
    }
    for (uint32_t i = 0; i < n; i++) {
        napi_value k, v;
        napi_valuetype vt;
        if (napi_get_element(env, keys, i, &k) != napi_ok || napi_get_property(env, h, k, &v) != napi_ok ||
            napi_typeof(env, v, &vt) != napi_ok) {
            set_err(e, OHREQ_ERR_PARAMETER, "Parameter verification failed, cannot read header");
            return e->code;
        }
        int nul = 0;
        char *name = dup_string(env, k, &nul);
        char *value = vt == napi_string ? dup_string(env, v, &nul) : strdup("");
        ohreq_code rc = OHREQ_ERR_PARAMETER;
        if (name && value) rc = add(config, name, value);
        else set_err(e, OHREQ_ERR_PARAMETER, "Parameter verification failed, header contains a NUL character");
        free(name);
        free(value);
        if (rc) {
            if (!e->code) e->code = rc;
            return rc;
        }
    }
    return OHREQ_OK;
}

static ohreq_code add_dl_header(void *c, const char *n, const char *v) {
    return ohreq_download_config_add_header(c, n, v);
}
static ohreq_code add_ul_header(void *c, const char *n, const char *v) {
    return ohreq_upload_config_add_header(c, n, v);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ohreq_code rc_ = (expr);                                                                   \
        if (rc_) {                                                                                 \
            if (!e->code) e->code = rc_;                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

#define TRY_STR(name, setter)                                                                      \
    do {                                                                                           \
        char *s_ = NULL;                                                                           \
        int r_ = str_prop(env, cfg, name, &s_, e);                                                 \
        if (r_ < 0) goto fail;                                                                     \
        if (r_ > 0) {                                                                              \
            ohreq_code r2_ = setter(c, s_);                                                        \
            free(s_);                                                                              \
            TRY(r2_);                                                                              \
        }                                                                                          \
    } while (0)

ohreq_download_config *parse_download_config(napi_env env, napi_value cfg, bind_err *e) {
    ohreq_download_config *c = ohreq_download_config_new();
    bool b;
    double d;
    char *url = url_prop(env, cfg, e);
    if (!url) goto fail;
    {
        ohreq_code rc = ohreq_download_config_set_url(c, url);
        free(url);
        TRY(rc);
    }
    TRY(add_headers(env, cfg, e, c, add_dl_header));
    if (bool_prop(env, cfg, "enableMetered", &b)) TRY(ohreq_download_config_set_enable_metered(c, b));
    if (bool_prop(env, cfg, "enableRoaming", &b)) TRY(ohreq_download_config_set_enable_roaming(c, b));
    if (bool_prop(env, cfg, "background", &b)) TRY(ohreq_download_config_set_background(c, b));
    TRY_STR("description", ohreq_download_config_set_description);
    TRY_STR("title", ohreq_download_config_set_title);
    TRY_STR("filePath", ohreq_download_config_set_file_path);
    if (num_prop(env, cfg, "networkType", &d)) {
        /* Exactly NETWORK_MOBILE or NETWORK_WIFI select a network; anything else is "any". */
        uint32_t nt = (d >= 0 && d <= 4294967295.0 && d == floor(d)) ? (uint32_t)d : 0;
        TRY(ohreq_download_config_set_network_type(c, nt));
    }
    /* ohreq extension: the expected SHA-256 of the file (64 hex digits). */
    TRY_STR("sha256", ohreq_download_config_set_sha256);
    return c;
fail:
    ohreq_download_config_free(c);
    if (!e->code) e->code = OHREQ_ERR_PARAMETER;
    return NULL;
}

/* A File entry: all four properties must exist (else the entry is dropped); values that
 * are not strings count as "". Returns 1 added, 0 dropped, -1 error. */
static int add_file(napi_env env, napi_value f, ohreq_upload_config *c, bind_err *e) {
    static const char *keys[4] = {"filename", "name", "uri", "type"};
    char *vals[4] = {NULL, NULL, NULL, NULL};
    napi_valuetype t;
    int ret = 0;
    if (napi_typeof(env, f, &t) != napi_ok || t != napi_object) return 0;
    for (int i = 0; i < 4; i++) {
        bool has = false;
        if (napi_has_named_property(env, f, keys[i], &has) != napi_ok || !has) goto out;
        int r = str_prop(env, f, keys[i], &vals[i], e);
        if (r < 0) {
            ret = -1;
            goto out;
        }
        if (r == 0) vals[i] = strdup("");
    }
    {
        ohreq_code rc = ohreq_upload_config_add_file(c, vals[0], vals[1], vals[2], vals[3]);
        if (rc) {
            e->code = rc;
            ret = -1;
        } else {
            ret = 1;
        }
    }
out:
    for (int i = 0; i < 4; i++) free(vals[i]);
    return ret;
}

static int add_data(napi_env env, napi_value d, ohreq_upload_config *c, bind_err *e) {
    napi_valuetype t;
    char *name = NULL, *value = NULL;
    int ret = 0;
    if (napi_typeof(env, d, &t) != napi_ok || t != napi_object) return 0;
    int rn = str_prop(env, d, "name", &name, e);
    int rv = rn < 0 ? -1 : str_prop(env, d, "value", &value, e);
    if (rn < 0 || rv < 0) {
        ret = -1;
    } else if (rn > 0) {
        ohreq_code rc = ohreq_upload_config_add_data(c, name, value ? value : "");
        if (rc) e->code = rc, ret = -1;
        else ret = 1;
    }
    free(name);
    free(value);
    return ret;
}

static int array_prop(napi_env env, napi_value cfg, const char *name, napi_value *arr, uint32_t *n) {
    napi_valuetype t;
    bool is_arr = false;
    if (!get_prop(env, cfg, name, arr, &t)) return 0;
    if (napi_is_array(env, *arr, &is_arr) != napi_ok || !is_arr) return -1;
    return napi_get_array_length(env, *arr, n) == napi_ok ? 1 : -1;
}

ohreq_upload_config *parse_upload_config(napi_env env, napi_value cfg, bind_err *e) {
    ohreq_upload_config *c = ohreq_upload_config_new();
    double d;
    napi_value arr;
    uint32_t n = 0, kept = 0;
    char *url = url_prop(env, cfg, e);
    if (!url) goto fail;
    {
        ohreq_code rc = ohreq_upload_config_set_url(c, url);
        free(url);
        TRY(rc);
    }
    TRY(add_headers(env, cfg, e, c, add_ul_header));
    TRY_STR("method", ohreq_upload_config_set_method);

    int r = array_prop(env, cfg, "files", &arr, &n);
    if (r <= 0) {
        set_err(e, OHREQ_ERR_PARAMETER,
                r == 0 ? "Missing mandatory parameters, files is required"
                       : "Incorrect parameter type, files is not of array type");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        napi_value f;
        if (napi_get_element(env, arr, i, &f) != napi_ok) goto fail;
        int a = add_file(env, f, c, e);
        if (a < 0) goto fail;
        kept += (uint32_t)a;
    }
    if (kept == 0) {
        set_err(e, OHREQ_ERR_PARAMETER, "Parameter verification failed, no valid file in files");
        goto fail;
    }
    r = array_prop(env, cfg, "data", &arr, &n);
    if (r <= 0) {
        set_err(e, OHREQ_ERR_PARAMETER,
                r == 0 ? "Missing mandatory parameters, data is required"
                       : "Incorrect parameter type, data is not of array type");
        goto fail;
    }
    for (uint32_t i = 0; i < n; i++) {
        napi_value v;
        if (napi_get_element(env, arr, i, &v) != napi_ok) goto fail;
        if (add_data(env, v, c, e) < 0) goto fail;
    }
    if (num_prop(env, cfg, "index", &d)) {
        if (d < 0 || d != floor(d)) {
            set_err(e, OHREQ_ERR_PARAMETER, "Parameter verification failed, index is not a valid file index");
            goto fail;
        }
        TRY(ohreq_upload_config_set_index(c, to_i64(d)));
    }
    if (num_prop(env, cfg, "begins", &d)) TRY(ohreq_upload_config_set_begins(c, to_i64(d) < 0 ? 0 : to_i64(d)));
    if (num_prop(env, cfg, "ends", &d)) TRY(ohreq_upload_config_set_ends(c, to_i64(d)));
    return c;
fail:
    ohreq_upload_config_free(c);
    if (!e->code) e->code = OHREQ_ERR_PARAMETER;
    return NULL;
}
