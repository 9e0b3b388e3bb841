/* The .size rule of public params structs; see params.h. */
#include "util/params.h"

#include <string.h>

mixl_status_t mixl_params_load(const void *in, size_t first, size_t cur, void *out, size_t *size_p)
{
    size_t size;

    if (in == NULL) return MIXL_ERR_INVALID_PARAM;
    memcpy(&size, in, sizeof(size));
    if (size_p != NULL) *size_p = size;
    if (size < first || size > cur) return MIXL_ERR_VERSION;
    memset(out, 0, cur);
    memcpy(out, in, size);
    return MIXL_OK;
}
