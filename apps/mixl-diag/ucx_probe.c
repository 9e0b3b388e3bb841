/*
 * UCX section: the library version linked in (ucp_get_version_string) and
 * the transport/device pairs UCX can use on this node, parsed from
 * `ucx_info -d` ("#      Transport: rc_mlx5" / "#         Device: mlx5_0:1").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MIXL_DIAG_HAVE_UCP
#include <ucp/api/ucp.h>
#endif

#include "diag.h"

static const char *skip_label(const char *line, const char *label)
{
    const char *p = line;
    while (*p == '#' || *p == ' ' || *p == '\t')
        p++;
    size_t n = strlen(label);
    if (strncmp(p, label, n))
        return NULL;
    p += n;
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static void parse_ucx_info(const char *text, json_t *transports)
{
    char tl[64] = "";
    const char *line = text;
    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[256];
        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        const char *v;
        if ((v = skip_label(buf, "Transport:"))) {
            snprintf(tl, sizeof(tl), "%s", v);
        } else if ((v = skip_label(buf, "Device:")) && *tl) {
            json_t *t = json_object();
            json_object_set_new(t, "transport", json_string(tl));
            json_object_set_new(t, "device", json_string(v));
            json_array_append_new(transports, t);
        }
        line = eol ? eol + 1 : NULL;
    }
}

void mixl_diag_probe_ucx(mixl_diag_t *d)
{
    json_t *ucx = json_object();
#ifdef MIXL_DIAG_HAVE_UCP
    json_object_set_new(ucx, "version", json_string(ucp_get_version_string()));
#else
    json_object_set_new(ucx, "version", json_null());
#endif
    char *out = mixl_diag_capture("ucx_info -d", 1 << 20);
    if (out) {
        json_t *t = json_array();
        parse_ucx_info(out, t);
        json_object_set_new(ucx, "transports", t);
        json_object_set_new(ucx, "transports_from", json_string("ucx_info -d"));
        free(out);
    } else {
        json_object_set_new(ucx, "transports", json_null());
        json_object_set_new(ucx, "transports_from", json_string("ucx_info not found (ucx-utils)"));
    }
    const char *tls = getenv("UCX_TLS");
    json_object_set_new(ucx, "UCX_TLS", tls ? json_string(tls) : json_string("(unset: all)"));
    json_object_set_new(d->report, "ucx", ucx);
}
