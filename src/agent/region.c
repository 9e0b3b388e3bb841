/*
 * Memory registration: the agent's table of regions, kept sorted by address
 * so a descriptor is matched to its region by binary search.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"

/* Index of the first region whose base is > addr. */
static size_t region_upper_bound(mixl_agent_h agent, uint64_t addr)
{
    size_t lo = 0, hi = agent->nregions;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uint64_t)(uintptr_t)agent->regions[mid]->tp.addr <= addr) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

struct mixl_region *mixl_agent_find_region(mixl_agent_h agent, uint64_t addr, uint64_t len)
{
    size_t i = region_upper_bound(agent, addr);
    struct mixl_region *r;
    uint64_t base;

    if (i == 0) return NULL;
    r = agent->regions[i - 1];
    base = (uint64_t)(uintptr_t)r->tp.addr;
    if (addr + len < addr || addr + len > base + r->tp.len) return NULL;
    return r;
}

mixl_status_t mixl_mem_register(mixl_agent_h agent, void *addr, size_t len, mixl_mem_type_t type,
                                int device, mixl_region_h *region_p)
{
    uint64_t a = (uint64_t)(uintptr_t)addr;
    struct mixl_region *r;
    mixl_status_t st;
    size_t at;

    if (agent == NULL || region_p == NULL) return MIXL_ERR_INVALID_PARAM;
    if (addr == NULL || len == 0 || a + len < a)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: cannot register %zu bytes at %p", agent->name, len, addr);
    if (type != MIXL_MEM_HOST && type != MIXL_MEM_PINNED && type != MIXL_MEM_CUDA)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_INVALID_PARAM,
                               "agent %s: unknown memory type %d", agent->name, (int)type);
#ifndef MIXL_HAVE_CUDA
    if (type == MIXL_MEM_CUDA)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_NOT_SUPPORTED,
                               "agent %s: CUDA memory at %p: this library was built without CUDA",
                               agent->name, addr);
#endif
    at = region_upper_bound(agent, a);
    if ((at > 0 && (uint64_t)(uintptr_t)agent->regions[at - 1]->tp.addr +
                           agent->regions[at - 1]->tp.len > a) ||
        (at < agent->nregions && (uint64_t)(uintptr_t)agent->regions[at]->tp.addr < a + len))
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_EXISTS,
                               "agent %s: [%p, +%zu) overlaps a registered region", agent->name,
                               addr, len);
    if (agent->nregions == agent->cap_regions) {
        size_t cap = agent->cap_regions ? agent->cap_regions * 2 : 16;
        struct mixl_region **n = realloc(agent->regions, cap * sizeof(*n));
        if (n == NULL) return MIXL_ERR_NO_MEMORY;
        agent->regions = n;
        agent->cap_regions = cap;
    }
    r = calloc(1, sizeof(*r));
    if (r == NULL) return MIXL_ERR_NO_MEMORY;
    r->agent = agent;
    r->late = agent->started;
    r->tp.id = agent->next_region_id;
    r->tp.addr = addr;
    r->tp.len = len;
    r->tp.mem_type = type;
    r->tp.device = type == MIXL_MEM_CUDA ? device : 0;

    for (int i = 0; i < MIXL_TP_MAX; i++) {
        if (!agent->tp_active[i]) continue;
        st = agent->tps[i].ops->mem_register(&agent->tps[i], &r->tp);
        if (st != MIXL_OK) {
            for (int j = i - 1; j >= 0; j--)
                if (agent->tp_active[j]) agent->tps[j].ops->mem_deregister(&agent->tps[j], &r->tp);
            free(r);
            return st;
        }
    }
    memmove(&agent->regions[at + 1], &agent->regions[at],
            (agent->nregions - at) * sizeof(*agent->regions));
    agent->regions[at] = r;
    agent->nregions++;
    agent->next_region_id++;
    *region_p = r;
    return MIXL_OK;
}

mixl_status_t mixl_mem_deregister(mixl_agent_h agent, mixl_region_h region)
{
    size_t i;

    if (agent == NULL || region == NULL) return MIXL_ERR_INVALID_PARAM;
    for (i = 0; i < agent->nregions && agent->regions[i] != region; i++)
        ;
    if (i == agent->nregions)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_NOT_REGISTERED,
                               "agent %s: region %p is not registered", agent->name, (void *)region);
    if (region->refs > 0)
        return mixl_errbuf_set(&agent->eb, MIXL_ERR_BUSY,
                               "agent %s: region %u is used by %u prepared requests", agent->name,
                               region->tp.id, region->refs);
    for (int t = MIXL_TP_MAX - 1; t >= 0; t--)
        if (agent->tp_active[t]) agent->tps[t].ops->mem_deregister(&agent->tps[t], &region->tp);
    memmove(&agent->regions[i], &agent->regions[i + 1],
            (agent->nregions - i - 1) * sizeof(*agent->regions));
    agent->nregions--;
    free(region);
    return MIXL_OK;
}

void mixl_regions_destroy(mixl_agent_h agent)
{
    for (size_t i = 0; i < agent->nregions; i++) free(agent->regions[i]);
    free(agent->regions);
    agent->regions = NULL;
    agent->nregions = agent->cap_regions = 0;
}
