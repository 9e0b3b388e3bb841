/*
 * The metadata store's conveniences for agents: publish an agent's own
 * metadata, fetch and import a peer's. They live on the agent side so that
 * the registry layer never depends on the agent.
 */
#include <stdlib.h>

#include <mixl/agent.h>
#include <mixl/registry.h>

mixl_status_t mixl_md_store_publish_agent(mixl_md_store_h s, mixl_agent_h agent)
{
    void *blob = NULL;
    size_t len = 0;
    mixl_status_t status;

    /* An export failure is already recorded on the agent. */
    status = mixl_metadata_export(agent, &blob, &len);
    if (status != MIXL_OK) return status;
    status = mixl_md_store_publish(s, mixl_agent_name(agent), blob, len);
    mixl_free(blob);
    return status;
}

mixl_status_t mixl_md_store_fetch_import(mixl_md_store_h s, mixl_agent_h agent, const char *peer,
                                         int timeout_ms)
{
    void *blob = NULL;
    size_t len = 0;
    mixl_status_t status;

    status = mixl_md_store_get(s, peer, timeout_ms, &blob, &len);
    if (status != MIXL_OK) return status;
    /* An import failure is recorded on the agent; a blob it refuses is not kept cached. */
    status = mixl_metadata_import(agent, blob, len, NULL);
    free(blob);
    if (status != MIXL_OK) mixl_md_store_invalidate(s, peer);
    return status;
}
