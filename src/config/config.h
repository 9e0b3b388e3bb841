/*
 * Table-driven YAML configuration.
 *
 * One table of entries (dotted key, type, default, range, choices, offset,
 * doc) drives everything: loading a YAML file with the libyaml document API,
 * command-line overrides (`key=value`), validation messages, and printing
 * the resolved configuration. A key such as "data_plane.rma.enabled" is the
 * leaf `enabled` of the mapping `rma` inside the top-level mapping
 * `data_plane`; the sections are implied by the keys.
 *
 * Every error message reads `file:line:col: key.path: what was expected`
 * (lines and columns 1-based), so a user can jump straight to the fault.
 */
#ifndef MIXL_CONFIG_CONFIG_H
#define MIXL_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <mixl/status.h>

/* Capacity of a string value (bytes, including the NUL). */
#define MIXL_CFG_STR_MAX 256
/* Capacity of a string list. */
#define MIXL_CFG_LIST_MAX 8
/* Room for one configuration error message. */
#define MIXL_CFG_ERR_MAX 768

typedef enum {
    MIXL_CFG_BOOL = 0,    /* int: 0 or 1; true/false/yes/no/on/off */
    MIXL_CFG_INT = 1,     /* int64_t within [min, max] */
    MIXL_CFG_DOUBLE = 2,  /* double within [min, max], finite */
    MIXL_CFG_STRING = 3,  /* char[MIXL_CFG_STR_MAX] */
    MIXL_CFG_ENUM = 4,    /* int: index into choices "a|b|c" */
    MIXL_CFG_STRLIST = 5, /* mixl_cfg_strlist_t: a YAML sequence of strings or one string */
} mixl_cfg_type_t;

typedef struct {
    int count;
    char item[MIXL_CFG_LIST_MAX][MIXL_CFG_STR_MAX];
} mixl_cfg_strlist_t;

typedef struct {
    const char *key; /* dotted path, e.g. "workload.requests" */
    mixl_cfg_type_t type;
    const char *def;     /* default in YAML scalar syntax; lists are comma-separated */
    double min, max;     /* inclusive range for INT and DOUBLE */
    const char *choices; /* ENUM only: "push|pull" */
    size_t offset;       /* offsetof() the value in the target struct */
    const char *doc;     /* one line for --print-config and the docs */
    unsigned flags;      /* MIXL_CFG_SETUP, ... */
} mixl_cfg_entry_t;

/*
 * The key shapes what is set up before any request runs (agents, windows,
 * memory, data path, registry): a sweep point that changes it sets up afresh,
 * one that changes only other keys reuses the previous point's set-up.
 */
#define MIXL_CFG_SETUP 1u

typedef struct {
    const mixl_cfg_entry_t *entries;
    size_t count;
} mixl_cfg_schema_t;

/*
 * Set every entry of obj to its default. Fails only when the table itself is
 * wrong (a default that does not parse), which err then names.
 */
mixl_status_t mixl_cfg_defaults(const mixl_cfg_schema_t *schema, void *obj, char *err,
                                size_t err_len);

/*
 * Load a YAML file over obj (keys absent from the file keep their value).
 * On error returns MIXL_ERR_CONFIG (MIXL_ERR_IO when the file cannot be
 * read) with the `file:line:col: key: expected ...` message in err; obj may
 * then be partly updated and should be discarded.
 */
mixl_status_t mixl_cfg_load_file(const mixl_cfg_schema_t *schema, void *obj, const char *path,
                                 char *err, size_t err_len);

/* As mixl_cfg_load_file() for YAML text; name stands in for the file name in messages. */
mixl_status_t mixl_cfg_load_string(const mixl_cfg_schema_t *schema, void *obj, const char *name,
                                   const char *text, size_t len, char *err, size_t err_len);

/*
 * Apply one override "key=value" (value in YAML scalar syntax; a list as
 * comma-separated items). Errors read `--set:1:col: key: expected ...`.
 */
mixl_status_t mixl_cfg_set(const mixl_cfg_schema_t *schema, void *obj, const char *assignment,
                           char *err, size_t err_len);

/* Find an entry by its dotted key; NULL when there is none. */
const mixl_cfg_entry_t *mixl_cfg_find(const mixl_cfg_schema_t *schema, const char *key);

/*
 * Print obj as a YAML document, sections nested as the keys imply; with
 * docs, each key is preceded by its doc line and range. The output loads
 * back to the same values.
 */
void mixl_cfg_print(const mixl_cfg_schema_t *schema, const void *obj, FILE *out, int docs);

/* The printed YAML in a malloc'd string (for HDF5 attributes); NULL on allocation failure. */
char *mixl_cfg_to_string(const mixl_cfg_schema_t *schema, const void *obj);

/* Choice name of an ENUM value, or "?" when out of range. */
const char *mixl_cfg_enum_name(const mixl_cfg_entry_t *entry, int value);

/* One entry's "what is expected" phrase, e.g. "integer 1..4096" or "one of push, pull". */
void mixl_cfg_expected(const mixl_cfg_entry_t *entry, char *buf, size_t len);

#endif /* MIXL_CONFIG_CONFIG_H */
