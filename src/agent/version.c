/* The loaded library's version (the headers' MIXL_VERSION is the compiled-against one). */
#include <mixl/version.h>

unsigned mixl_version(void)
{
    return MIXL_VERSION;
}

const char *mixl_version_string(void)
{
    return MIXL_VERSION_STRING;
}
