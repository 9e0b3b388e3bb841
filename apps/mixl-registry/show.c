/*
 * mixl-registry list / show: what agents published, decoded to text. Reads
 * raw registry values (not through the store's validation) so a foreign or
 * corrupted value is shown with the decoder's reason instead of hidden.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>

#include "cli.h"

static void human_bytes(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;

    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) snprintf(buf, len, "%" PRIu64 " B", n);
    else snprintf(buf, len, "%.1f %s", v, unit[u]);
}

static const char *window_str(int32_t window, char *buf, size_t len)
{
    if (window >= 0) snprintf(buf, len, "static %d", window);
    else if (window == -1) snprintf(buf, len, "dynamic");
    else snprintf(buf, len, "none");
    return buf;
}

int cli_list(mixl_registry_h reg, mixl_md_store_h store, FILE *out)
{
    char **names = NULL;
    size_t n = 0;

    if (mixl_md_store_list(store, &names, &n) != MIXL_OK) {
        fprintf(stderr, "mixl-registry: list failed: %s\n", mixl_md_store_last_error(store));
        return 1;
    }
    fprintf(out, "namespace %s (%s registry): %zu agent%s\n", mixl_registry_namespace(reg),
            mixl_registry_backend(reg), n, n == 1 ? "" : "s");
    if (n > 0) {
        fprintf(out, "%-24s %-16s %7s %8s %8s %12s  %s\n", "AGENT", "ENGINE", "REGIONS", "BYTES",
                "REVISION", "EXPOSED", "HOST");
    }
    for (size_t i = 0; i < n; i++) {
        char key[512], exposed[32];
        mixl_registry_kv_t *kv = NULL;
        mixl_metadata_t *md = NULL;
        uint64_t total = 0;

        if (mixl_md_store_key(store, names[i], key, sizeof(key)) != MIXL_OK ||
            mixl_registry_get(reg, key, &kv) != MIXL_OK) {
            fprintf(out, "%-24s (gone while listing)\n", names[i]);
            mixl_registry_clear_error(reg);
            continue;
        }
        if (mixl_metadata_decode(kv->value, kv->len, &md) != MIXL_OK) {
            fprintf(out, "%-24s %-16s %7s %8zu %8" PRId64 " %12s  not MIXL metadata: %s\n", names[i],
                    "-", "-", kv->len, kv->mod_revision, "-", mixl_last_error());
        } else {
            for (uint32_t r = 0; r < md->region_count; r++) total += md->regions[r].len;
            human_bytes(total, exposed, sizeof(exposed));
            fprintf(out, "%-24s %-16s %7u %8zu %8" PRId64 " %12s  %s\n", names[i], md->engine_id,
                    md->region_count, kv->len, kv->mod_revision, exposed,
                    md->hostname[0] ? md->hostname : "-");
        }
        mixl_metadata_free(md);
        mixl_registry_kv_free(kv);
    }
    mixl_md_store_names_free(names, n);
    return 0;
}

int cli_show(mixl_registry_h reg, mixl_md_store_h store, const char *agent, FILE *out)
{
    char key[512], size[32], win[32];
    mixl_registry_kv_t *kv = NULL;
    mixl_metadata_t *md = NULL;
    uint64_t total = 0;
    mixl_status_t st;

    if (mixl_md_store_key(store, agent, key, sizeof(key)) != MIXL_OK) {
        fprintf(stderr, "mixl-registry: %s\n", mixl_md_store_last_error(store));
        return 2;
    }
    st = mixl_registry_get(reg, key, &kv);
    if (st == MIXL_ERR_NOT_FOUND) {
        fprintf(stderr, "mixl-registry: metadata not found for agent %s in namespace %s (key %s)\n",
                agent, mixl_registry_namespace(reg), key);
        return 1;
    }
    if (st != MIXL_OK) {
        fprintf(stderr, "mixl-registry: %s\n", mixl_registry_last_error(reg));
        return 1;
    }
    st = mixl_metadata_decode(kv->value, kv->len, &md);
    if (st != MIXL_OK) {
        fprintf(stderr, "mixl-registry: value under key %s (%zu bytes) is not MIXL metadata: %s (%s)\n",
                key, kv->len, mixl_last_error(), mixl_status_name(st));
        mixl_registry_kv_free(kv);
        return 1;
    }
    fprintf(out, "agent       %s\n", md->name);
    fprintf(out, "key         %s\n", key);
    fprintf(out, "value       %zu bytes, revision %" PRId64 " (created %" PRId64 ", version %" PRId64
            "), lease %" PRIx64 "\n", kv->len, kv->mod_revision, kv->create_revision, kv->version,
            (uint64_t)kv->lease);
    fprintf(out, "format      %u (library %s)\n", md->format, md->library_version);
    fprintf(out, "engine      %s\n", md->engine_id);
    fprintf(out, "host        %s\n", md->hostname[0] ? md->hostname : "-");
    if (md->mpi.rank >= 0) {
        fprintf(out, "mpi         rank %d in world %016" PRIx64 "\n", md->mpi.rank, md->mpi.world);
    } else {
        fprintf(out, "mpi         -\n");
    }
    if (md->tcp.host[0]) fprintf(out, "tcp         %s:%d\n", md->tcp.host, md->tcp.port);
    else fprintf(out, "tcp         -\n");
    for (uint32_t r = 0; r < md->region_count; r++) total += md->regions[r].len;
    human_bytes(total, size, sizeof(size));
    fprintf(out, "regions     %u, %s in all\n", md->region_count, size);
    if (md->region_count > 0) {
        fprintf(out, "  %4s  %-6s %4s  %-18s  %14s  %-10s %-18s %s\n", "ID", "MEMORY", "DEV",
                "ADDRESS", "LENGTH", "WINDOW", "WINDOW BASE", "FLAGS");
    }
    for (uint32_t r = 0; r < md->region_count; r++) {
        const mixl_md_region_t *g = &md->regions[r];
        human_bytes(g->len, size, sizeof(size));
        fprintf(out, "  %4u  %-6s %4d  0x%016" PRIx64 "  %14s  %-10s 0x%016" PRIx64 " %s%s%s\n", g->id,
                mixl_mem_type_str(g->mem_type), g->device, g->addr, size,
                window_str(g->mpi.window, win, sizeof(win)), g->mpi.window_base,
                (g->mpi.flags & MIXL_MD_REGION_IPC) ? "ipc " : "",
                (g->mpi.flags & MIXL_MD_REGION_STAGED) ? "staged" : "",
                (g->mpi.flags & (MIXL_MD_REGION_IPC | MIXL_MD_REGION_STAGED)) ? "" : "-");
    }
    mixl_metadata_free(md);
    mixl_registry_kv_free(kv);
    return 0;
}
