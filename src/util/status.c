/* Status code messages, generated from the one list in include/mixl/status.h. */
#include <mixl/status.h>

const char *mixl_status_str(mixl_status_t status)
{
    switch (status) {
#define MIXL_STATUS_MSG_(name, value, msg) case name: return msg;
    MIXL_STATUS_MAP(MIXL_STATUS_MSG_)
#undef MIXL_STATUS_MSG_
    }
    return "unknown status";
}

const char *mixl_status_name(mixl_status_t status)
{
    switch (status) {
#define MIXL_STATUS_NAME_(name, value, msg) case name: return #name;
    MIXL_STATUS_MAP(MIXL_STATUS_NAME_)
#undef MIXL_STATUS_NAME_
    }
    return "MIXL_STATUS_UNKNOWN";
}
