/*
 * Fuzz target: the YAML configuration loader with mixl-run's key table
 * (mixl_cfg_load_string, which shares its parser and key walk with
 * mixl_cfg_load_file). A refusal must carry a `name:line:col:` message; an
 * accepted file must print (--print-config, the copy stored in the results
 * file) as YAML that loads back to the same values.
 */
#include <stdlib.h>
#include <string.h>

#include "config/run_config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mixl_cfg_schema_t *schema = mixl_run_config_schema();
    mixl_run_config_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    char err[MIXL_CFG_ERR_MAX];
    char *printed = NULL, *reprinted = NULL;
    mixl_status_t st;

    if (a == NULL || b == NULL) abort();
    FUZZ_CHECK(mixl_cfg_defaults(schema, a, err, sizeof(err)) == MIXL_OK);
    FUZZ_CHECK(mixl_cfg_defaults(schema, b, err, sizeof(err)) == MIXL_OK);
    err[0] = '\0';
    st = mixl_cfg_load_string(schema, a, "fuzz.yaml", (const char *)data, size, err, sizeof(err));
    if (st != MIXL_OK) {
        FUZZ_CHECK(st == MIXL_ERR_CONFIG);
        FUZZ_CHECK(strncmp(err, "fuzz.yaml:", 10) == 0);
        goto out;
    }
    mixl_fuzz_accepted++;
    printed = mixl_cfg_to_string(schema, a);
    FUZZ_CHECK(printed != NULL);
    st = mixl_cfg_load_string(schema, b, "printed", printed, strlen(printed), err, sizeof(err));
    if (st != MIXL_OK) mixl_fuzz_fail(err);
    reprinted = mixl_cfg_to_string(schema, b);
    FUZZ_CHECK(reprinted != NULL && strcmp(printed, reprinted) == 0);
out:
    free(printed);
    free(reprinted);
    free(a);
    free(b);
    return 0;
}
