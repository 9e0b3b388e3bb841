/*
 * The one .size rule of MIXL's public params structs (mixl_agent_params_t,
 * mixl_xfer_params_t, mixl_registry_params_t, mixl_md_store_params_t), each
 * starting with `size_t size`:
 *   - a caller sets .size = sizeof(the struct in the headers it compiled with);
 *   - the library accepts any size from the struct's first released size up
 *     to its own sizeof, so a program built against an older MIXL keeps
 *     working; a larger size (a newer header than the library) is refused;
 *   - fields past the caller's size read as zero, which every create takes
 *     as "default";
 *   - fields are only ever appended, never reordered or resized.
 */
#ifndef MIXL_UTIL_PARAMS_H
#define MIXL_UTIL_PARAMS_H

#include <stddef.h>

#include <mixl/status.h>

/*
 * Copy the caller's struct at in into out (cur bytes, zero past the caller's
 * .size). MIXL_ERR_INVALID_PARAM when in is NULL, MIXL_ERR_VERSION when its
 * .size is outside [first, cur]; *size_p (may be NULL) gets the caller's size.
 * Logs nothing: the caller names the struct in its message.
 */
mixl_status_t mixl_params_load(const void *in, size_t first, size_t cur, void *out, size_t *size_p);

#endif /* MIXL_UTIL_PARAMS_H */
