/*
 * Metadata export and peer import: turning this agent's regions into a blob,
 * and a peer's blob into a peer the agent can address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/version.h>

#include "agent/agent_int.h"
#include "util/crc32c.h"

mixl_status_t mixl_metadata_export(mixl_agent_h agent, void **blob_p, size_t *len_p)
{
    mixl_tp_region_t **views;
    mixl_metadata_t md;
    mixl_status_t st = MIXL_OK;

    if (agent == NULL || blob_p == NULL || len_p == NULL) return MIXL_ERR_INVALID_PARAM;
    mixl_metadata_init(&md);
    snprintf(md.name, sizeof(md.name), "%s", agent->name);
    snprintf(md.engine_id, sizeof(md.engine_id), "%s", agent->engine_id);
    snprintf(md.hostname, sizeof(md.hostname), "%s", agent->hostname);
    snprintf(md.library_version, sizeof(md.library_version), "%s", MIXL_VERSION_STRING);
    md.region_count = (uint32_t)agent->nregions;
    md.regions = calloc(agent->nregions ? agent->nregions : 1, sizeof(*md.regions));
    views = calloc(agent->nregions ? agent->nregions : 1, sizeof(*views));
    if (md.regions == NULL || views == NULL) {
        st = mixl_errbuf_set(&agent->eb, MIXL_ERR_NO_MEMORY, "agent %s: cannot export metadata of "
                             "%zu regions", agent->name, agent->nregions);
        goto out;
    }
    /* The generic part; each backend adds its section (export_md). */
    for (size_t i = 0; i < agent->nregions; i++) {
        mixl_tp_region_t *r = &agent->regions[i]->tp;
        mixl_md_region_t *m = &md.regions[i];
        views[i] = r;
        m->id = r->id;
        m->addr = (uint64_t)(uintptr_t)r->addr;
        m->len = r->len;
        m->mem_type = r->mem_type;
        m->device = r->device;
        m->mpi.window = -2;
    }
    for (int i = 0; i < MIXL_TP_MAX && st == MIXL_OK; i++)
        if (agent->tp_active[i])
            st = agent->tps[i].ops->export_md(&agent->tps[i], views, agent->nregions, &md);
    if (st == MIXL_OK) {
        st = mixl_metadata_encode(&md, blob_p, len_p);
        if (st != MIXL_OK)
            mixl_errbuf_set(&agent->eb, st, "agent %s: cannot encode metadata of %zu regions",
                            agent->name, agent->nregions);
    }
out:
    free(views);
    free(md.regions);
    return st;
}

mixl_peer_t *mixl_agent_find_peer(mixl_agent_h agent, const char *name)
{
    for (size_t i = 0; i < agent->npeers; i++)
        if (strcmp(agent->peers[i]->tp.name, name) == 0) return agent->peers[i];
    return NULL;
}

const mixl_md_region_t *mixl_peer_find_region(const mixl_peer_t *peer, uint64_t addr, uint64_t len)
{
    size_t lo = 0, hi = peer->tp.md->region_count;
    const mixl_md_region_t *r;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (peer->by_addr[mid]->addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return NULL;
    r = peer->by_addr[lo - 1];
    if (addr + len < addr || addr + len > r->addr + r->len) return NULL;
    return r;
}

static int region_addr_cmp(const void *a, const void *b)
{
    const mixl_md_region_t *x = *(const mixl_md_region_t *const *)a;
    const mixl_md_region_t *y = *(const mixl_md_region_t *const *)b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void peer_free(mixl_agent_h agent, mixl_peer_t *peer)
{
    if (peer->backend >= 0) agent->tps[peer->backend].ops->peer_remove(&agent->tps[peer->backend], &peer->tp);
    mixl_metadata_free(peer->tp.md);
    free(peer->by_addr);
    free(peer);
}

/* peer_remove on every backend of mask (slot bits). */
static void peer_remove_from(mixl_agent_h agent, mixl_peer_t *peer, unsigned mask)
{
    for (int i = 0; i < MIXL_TP_MAX; i++)
        if (mask & MIXL_TP_BIT(i)) agent->tps[i].ops->peer_remove(&agent->tps[i], &peer->tp);
}

static int peer_index(mixl_agent_h agent, const mixl_peer_t *peer)
{
    for (size_t i = 0; i < agent->npeers; i++)
        if (agent->peers[i] == peer) return (int)i;
    return -1;
}

mixl_status_t mixl_metadata_import(mixl_agent_h agent, const void *blob, size_t len,
                                   char name_out[MIXL_NAME_MAX])
{
    mixl_metadata_t *md;
    mixl_peer_t *peer, *old;
    mixl_status_t st;
    uint32_t crc;

    if (agent == NULL || blob == NULL) return MIXL_ERR_INVALID_PARAM;
    st = mixl_metadata_decode(blob, len, &md);
    if (st != MIXL_OK)
        return mixl_errbuf_set(&agent->eb, st, "agent %s: metadata import refused: %s",
                               agent->name, mixl_last_error());

    crc = mixl_crc32c(0, blob, len);
    old = mixl_agent_find_peer(agent, md->name);
    if (old != NULL && old->blob_crc == crc && old->blob_len == len) {
        /* Same metadata again (a cache refresh): keep the peer and its requests. */
        if (name_out != NULL) snprintf(name_out, MIXL_NAME_MAX, "%s", md->name);
        mixl_metadata_free(md);
        return MIXL_OK;
    }
    if (old != NULL && old->refs > 0) {
        st = mixl_errbuf_set(&agent->eb, MIXL_ERR_BUSY,
                             "agent %s: peer %s re-registered its memory but %u prepared requests "
                             "still use the old metadata; release them first",
                             agent->name, md->name, old->refs);
        goto err_md;
    }

    peer = calloc(1, sizeof(*peer));
    if (peer == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto err_md;
    }
    snprintf(peer->tp.name, sizeof(peer->tp.name), "%s", md->name);
    peer->tp.md = md;
    peer->blob_crc = crc;
    peer->blob_len = len;
    peer->backend = -1;
    peer->tp.comm_rank = -1;
    peer->by_addr = calloc(md->region_count ? md->region_count : 1, sizeof(*peer->by_addr));
    if (peer->by_addr == NULL) {
        st = MIXL_ERR_NO_MEMORY;
        goto err_peer;
    }
    for (uint32_t i = 0; i < md->region_count; i++) peer->by_addr[i] = &md->regions[i];
    qsort(peer->by_addr, md->region_count, sizeof(*peer->by_addr), region_addr_cmp);
    for (uint32_t i = 1; i < md->region_count; i++)
        if (peer->by_addr[i - 1]->addr + peer->by_addr[i - 1]->len > peer->by_addr[i]->addr) {
            st = mixl_errbuf_set(&agent->eb, MIXL_ERR_BAD_METADATA,
                                 "agent %s: metadata of peer %s has overlapping regions %u and %u",
                                 agent->name, md->name, peer->by_addr[i - 1]->id,
                                 peer->by_addr[i]->id);
            goto err_peer;
        }

    /* Every active backend says whether it reaches the peer; the data-path
     * policy (node.c) keeps one and the others forget it. A backend that
     * does not reach the peer may leave a quiet message: it is not the
     * caller's error when another one does. */
    {
        mixl_errbuf_t before = agent->eb;
        unsigned reachable = 0;
        for (int i = 0; i < MIXL_TP_MAX; i++) {
            if (!agent->tp_active[i]) continue;
            st = agent->tps[i].ops->peer_add(&agent->tps[i], &peer->tp);
            if (st == MIXL_OK) {
                reachable |= MIXL_TP_BIT(i);
            } else if (st != MIXL_ERR_UNREACHABLE) {
                peer_remove_from(agent, peer, reachable);
                goto err_peer;
            }
        }
        peer->backend = mixl_agent_pick_backend(agent, peer, reachable);
        if (peer->backend >= 0) {
            peer_remove_from(agent, peer, reachable & ~MIXL_TP_BIT(peer->backend));
            agent->eb = before;
        }
        st = MIXL_OK;
    }

    if (old == NULL && agent->npeers == agent->cap_peers) {
        size_t cap = agent->cap_peers ? agent->cap_peers * 2 : 8;
        mixl_peer_t **n = realloc(agent->peers, cap * sizeof(*n));
        if (n == NULL) {
            st = MIXL_ERR_NO_MEMORY;
            goto err_backend;
        }
        agent->peers = n;
        agent->cap_peers = cap;
    }
    if (old != NULL) {
        peer->ctr = old->ctr; /* counters outlive a metadata refresh */
        agent->peers[peer_index(agent, old)] = peer;
        peer_free(agent, old);
    } else {
        agent->peers[agent->npeers++] = peer;
    }
    if (name_out != NULL) snprintf(name_out, MIXL_NAME_MAX, "%s", md->name);
    return MIXL_OK;

err_backend:
    agent->tps[peer->backend].ops->peer_remove(&agent->tps[peer->backend], &peer->tp);
err_peer:
    free(peer->by_addr);
    free(peer);
err_md:
    mixl_metadata_free(md);
    return st;
}

mixl_status_t mixl_peer_forget(mixl_agent_h agent, const char *name)
{
    mixl_peer_t *peer;
    int i;

    if (agent == NULL || name == NULL) return MIXL_ERR_INVALID_PARAM;
    peer = mixl_agent_find_peer(agent, name);
    if (peer == NULL)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_UNKNOWN_PEER, "agent %s: no peer named '%s'",
                               agent->name, name);
    if (peer->refs > 0)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_BUSY,
                               "agent %s: peer %s still has %u prepared requests", agent->name,
                               name, peer->refs);
    i = peer_index(agent, peer);
    agent->peers[i] = agent->peers[--agent->npeers];
    peer_free(agent, peer);
    return MIXL_OK;
}

mixl_status_t mixl_peer_check(mixl_agent_h agent, const char *name)
{
    if (agent == NULL || name == NULL) return MIXL_ERR_INVALID_PARAM;
    return mixl_agent_find_peer(agent, name) != NULL ? MIXL_OK : MIXL_ERR_UNKNOWN_PEER;
}

void mixl_peers_destroy(mixl_agent_h agent)
{
    for (size_t i = 0; i < agent->npeers; i++) peer_free(agent, agent->peers[i]);
    free(agent->peers);
    agent->peers = NULL;
    agent->npeers = agent->cap_peers = 0;
}
