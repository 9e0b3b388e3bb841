/*
 * The metadata blob: an agent's name, engine id, endpoints and every
 * registered region's remote-access information, as a msgpack map.
 *
 *   {"crc": uint32, "magic": "MIXL-MD", "format": 2, "lib": "0.1.0", "name": str,
 *    "engine": str, "host": str,
 *    "regions": [{"id", "addr", "len", "mem", "dev"}],
 *    "tp": {"mpi": {"world": uint, "rank": int,
 *                   "regions": [{"id", "win", "wbase", "flags", "ipc": bin, "isize"}]},
 *           "tcp": {"host": str, "port": int}}}
 *
 * The generic part says who the agent is and where its regions lie; each
 * transport backend's section under "tp" says how that backend reaches them
 * (md_sections[] below: one entry per backend). A section is written only
 * when it holds something, and a reader skips a section it has no entry for.
 *
 * "crc" is always the first key, written as a fixed 5-byte uint32 (0xce + 4
 * bytes big-endian), holding the CRC32C of the whole blob with those 4 bytes
 * zeroed: msgpack alone cannot tell a flipped bit in an address from a value.
 * The magic tells a MIXL blob from anything else stored under the same key;
 * the format number is checked before any other field. Unknown keys are
 * ignored so a later minor revision can add fields. Decoding copies every
 * string out of the input (msgpack objects point into it).
 */
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mixl/metadata.h>
#include <mixl/version.h>

#include "util/crc32c.h"
#include "util/errbuf.h"

#define MD_MAGIC "MIXL-MD"
/* Upper bound on regions in one blob: far above any real pool count, low
 * enough that a corrupted count cannot make us allocate gigabytes. */
#define MD_MAX_REGIONS 65536

const char *mixl_mem_type_str(mixl_mem_type_t type)
{
    switch (type) {
    case MIXL_MEM_HOST: return "host";
    case MIXL_MEM_PINNED: return "pinned";
    case MIXL_MEM_CUDA: return "cuda";
    }
    return "unknown";
}

void mixl_free(void *ptr)
{
    free(ptr);
}

/* --- shared by both directions --------------------------------------- */

/* Offset of the 4 CRC bytes: after the map header, the key "crc" and 0xce;
 * 0 when the blob does not start that way. */
static size_t md_crc_offset(const void *blob, size_t len)
{
    static const uint8_t crc_key[] = {0xa3, 'c', 'r', 'c', 0xce};
    const uint8_t *b = blob;
    size_t h;

    if (len < 1) return 0;
    if ((b[0] & 0xf0) == 0x80) h = 1;  /* fixmap */
    else if (b[0] == 0xde) h = 3;      /* map 16 */
    else if (b[0] == 0xdf) h = 5;      /* map 32 */
    else return 0;
    if (len < h + sizeof(crc_key) + 4 || memcmp(b + h, crc_key, sizeof(crc_key)) != 0) return 0;
    return h + sizeof(crc_key);
}

static uint32_t md_crc_compute(const void *blob, size_t len, size_t at)
{
    static const uint8_t zero[4];
    uint32_t crc = mixl_crc32c(0, blob, at);
    crc = mixl_crc32c(crc, zero, 4);
    return mixl_crc32c(crc, (const uint8_t *)blob + at + 4, len - at - 4);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack_key(msgpack_packer *pk, const char *key)
{
    pack_str(pk, key);
}

/* --- decoding --------------------------------------------------------- */

/* Decoding failures go to the calling thread's error (mixl_last_error), unlogged:
 * a peer's bad blob is the caller's to report. */
typedef struct {
    int unused;
} md_err_t;

static mixl_status_t md_fail(md_err_t *e, mixl_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static mixl_status_t md_fail(md_err_t *e, mixl_status_t status, const char *fmt, ...)
{
    va_list ap;
    (void)e;
    va_start(ap, fmt);
    status = mixl_thread_error_vset(1, status, fmt, ap);
    va_end(ap);
    return status;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static mixl_status_t get_str(md_err_t *e, const char *field, const msgpack_object *o, char *dst,
                             size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "field '%s' is not a string", field);
    if (o->via.str.size >= cap)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "field '%s' is %u bytes, limit %zu", field,
                       o->via.str.size, cap - 1);
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return MIXL_OK;
}

/* Integers: msgpack picks the kind from the value, so accept both and range-check. */
static mixl_status_t get_int(md_err_t *e, const char *field, const msgpack_object *o,
                             int64_t lo, int64_t hi, int64_t *v_p)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) goto err_range;
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return md_fail(e, MIXL_ERR_BAD_METADATA, "field '%s' is not an integer", field);
    }
    if (v < lo || v > hi) goto err_range;
    *v_p = v;
    return MIXL_OK;
err_range:
    return md_fail(e, MIXL_ERR_BAD_METADATA, "field '%s' is out of range", field);
}

static mixl_status_t get_u64(md_err_t *e, const char *field, const msgpack_object *o,
                             uint64_t *v_p)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "field '%s' is not an unsigned integer", field);
    *v_p = o->via.u64;
    return MIXL_OK;
}

/* --- backend sections ------------------------------------------------ */

/*
 * One transport backend's section of the blob: its key under "tp", whether
 * md holds anything for it (an empty section is not written), and its codec.
 * encode packs one msgpack value; decode reads it into md after the generic
 * part (regions included) was decoded, and names what is wrong.
 */
typedef struct {
    const char *name;
    int (*present)(const mixl_metadata_t *md);
    void (*encode)(msgpack_packer *pk, const mixl_metadata_t *md);
    mixl_status_t (*decode)(md_err_t *e, const msgpack_object *o, mixl_metadata_t *md);
} md_section_t;

/* MPI: the world fingerprint and rank, and per region its window (and,
 * while CUDA IPC lives in the MPI backend, the IPC handle). */
static int mpi_region_present(const mixl_md_region_t *r)
{
    return r->mpi.window != -2 || r->mpi.window_base != 0 || r->mpi.flags != 0;
}

static int mpi_present(const mixl_metadata_t *md)
{
    if (md->mpi.rank != -1 || md->mpi.world != 0) return 1;
    for (uint32_t i = 0; i < md->region_count; i++)
        if (mpi_region_present(&md->regions[i])) return 1;
    return 0;
}

static void mpi_encode(msgpack_packer *pk, const mixl_metadata_t *md)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < md->region_count; i++) n += mpi_region_present(&md->regions[i]);
    msgpack_pack_map(pk, 3);
    pack_key(pk, "world");
    msgpack_pack_uint64(pk, md->mpi.world);
    pack_key(pk, "rank");
    msgpack_pack_int32(pk, md->mpi.rank);
    pack_key(pk, "regions");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < md->region_count; i++) {
        const mixl_md_region_t *r = &md->regions[i];
        int ipc = (r->mpi.flags & MIXL_MD_REGION_IPC) != 0;
        if (!mpi_region_present(r)) continue;
        msgpack_pack_map(pk, 4 + 2 * ipc);
        pack_key(pk, "id");
        msgpack_pack_uint32(pk, r->id);
        pack_key(pk, "win");
        msgpack_pack_int32(pk, r->mpi.window);
        pack_key(pk, "wbase");
        msgpack_pack_uint64(pk, r->mpi.window_base);
        pack_key(pk, "flags");
        msgpack_pack_uint32(pk, r->mpi.flags);
        if (ipc) {
            pack_key(pk, "ipc");
            msgpack_pack_bin(pk, sizeof(r->mpi.ipc_handle));
            msgpack_pack_bin_body(pk, r->mpi.ipc_handle, sizeof(r->mpi.ipc_handle));
            pack_key(pk, "isize");
            msgpack_pack_uint64(pk, r->mpi.ipc_size);
        }
    }
}

static mixl_status_t mpi_decode_region(md_err_t *e, uint32_t index, const msgpack_object *o,
                                       mixl_metadata_t *md, uint8_t *seen)
{
    mixl_md_region_t tmp, *r = NULL;
    mixl_status_t st = MIXL_OK;
    int have_id = 0;
    int64_t v;

    if (o->type != MSGPACK_OBJECT_MAP)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "tp.mpi.regions[%u] is not a map", index);
    memset(&tmp, 0, sizeof(tmp));
    tmp.mpi.window = -2;
    for (uint32_t i = 0; i < o->via.map.size && st == MIXL_OK; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (key_is(k, "id")) {
            st = get_int(e, "tp.mpi.regions[].id", val, 0, UINT32_MAX, &v);
            tmp.id = (uint32_t)v;
            have_id = 1;
        } else if (key_is(k, "win")) {
            st = get_int(e, "tp.mpi.regions[].win", val, -2, INT32_MAX, &v);
            tmp.mpi.window = (int32_t)v;
        } else if (key_is(k, "wbase")) {
            st = get_u64(e, "tp.mpi.regions[].wbase", val, &tmp.mpi.window_base);
        } else if (key_is(k, "flags")) {
            st = get_int(e, "tp.mpi.regions[].mpi.flags", val, 0, UINT32_MAX, &v);
            tmp.mpi.flags = (uint32_t)v;
        } else if (key_is(k, "isize")) {
            st = get_u64(e, "tp.mpi.regions[].isize", val, &tmp.mpi.ipc_size);
        } else if (key_is(k, "ipc")) {
            if (val->type != MSGPACK_OBJECT_BIN || val->via.bin.size != sizeof(tmp.mpi.ipc_handle))
                st = md_fail(e, MIXL_ERR_BAD_METADATA,
                             "tp.mpi.regions[%u]: 'ipc' is not a %zu-byte binary", index,
                             sizeof(tmp.mpi.ipc_handle));
            else
                memcpy(tmp.mpi.ipc_handle, val->via.bin.ptr, sizeof(tmp.mpi.ipc_handle));
        }
    }
    if (st != MIXL_OK) return st;
    if (!have_id) return md_fail(e, MIXL_ERR_BAD_METADATA, "tp.mpi.regions[%u] has no id", index);
    for (uint32_t i = 0; i < md->region_count && r == NULL; i++)
        if (md->regions[i].id == tmp.id) {
            r = &md->regions[i];
            if (seen[i])
                return md_fail(e, MIXL_ERR_BAD_METADATA, "tp.mpi names region %u twice", tmp.id);
            seen[i] = 1;
        }
    if (r == NULL)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "tp.mpi names region %u, which the blob lacks",
                       tmp.id);
    r->mpi.window = tmp.mpi.window;
    r->mpi.window_base = tmp.mpi.window_base;
    r->mpi.flags = tmp.mpi.flags;
    memcpy(r->mpi.ipc_handle, tmp.mpi.ipc_handle, sizeof(r->mpi.ipc_handle));
    r->mpi.ipc_size = tmp.mpi.ipc_size;
    return MIXL_OK;
}

static mixl_status_t mpi_decode(md_err_t *e, const msgpack_object *o, mixl_metadata_t *md)
{
    const msgpack_object *regions = NULL;
    mixl_status_t st = MIXL_OK;
    uint8_t *seen;
    int64_t v;

    for (uint32_t i = 0; i < o->via.map.size && st == MIXL_OK; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (key_is(k, "world")) {
            st = get_u64(e, "tp.mpi.world", val, &md->mpi.world);
        } else if (key_is(k, "rank")) {
            st = get_int(e, "tp.mpi.rank", val, -1, INT32_MAX, &v);
            md->mpi.rank = (int32_t)v;
        } else if (key_is(k, "regions")) {
            if (val->type != MSGPACK_OBJECT_ARRAY)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'tp.mpi.regions' is not an array");
            if (regions != NULL)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'tp.mpi.regions' appears twice");
            regions = val;
        }
    }
    if (st != MIXL_OK || regions == NULL) return st;
    if (regions->via.array.size > md->region_count)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "tp.mpi describes %u regions, the blob has %u",
                       regions->via.array.size, md->region_count);
    seen = calloc(md->region_count ? md->region_count : 1, 1);
    if (seen == NULL) return md_fail(e, MIXL_ERR_NO_MEMORY, "decoding tp.mpi");
    for (uint32_t j = 0; j < regions->via.array.size && st == MIXL_OK; j++)
        st = mpi_decode_region(e, j, &regions->via.array.ptr[j], md, seen);
    free(seen);
    return st;
}

/* TCP: the endpoint peers connect to. */
static int tcp_present(const mixl_metadata_t *md)
{
    return md->tcp.host[0] != '\0' || md->tcp.port != -1;
}

static void tcp_encode(msgpack_packer *pk, const mixl_metadata_t *md)
{
    msgpack_pack_map(pk, 2);
    pack_key(pk, "host");
    pack_str(pk, md->tcp.host);
    pack_key(pk, "port");
    msgpack_pack_int32(pk, md->tcp.port);
}

static mixl_status_t tcp_decode(md_err_t *e, const msgpack_object *o, mixl_metadata_t *md)
{
    mixl_status_t st = MIXL_OK;
    int64_t v;

    for (uint32_t i = 0; i < o->via.map.size && st == MIXL_OK; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (key_is(k, "host")) {
            st = get_str(e, "tp.tcp.host", val, md->tcp.host, sizeof(md->tcp.host));
        } else if (key_is(k, "port")) {
            st = get_int(e, "tp.tcp.port", val, -1, 65535, &v);
            md->tcp.port = (int32_t)v;
        }
    }
    return st;
}

/* One line per backend section. A new backend adds its line here. */
static const md_section_t md_sections[] = {
    {.name = "mpi", .present = mpi_present, .encode = mpi_encode, .decode = mpi_decode},
    {.name = "tcp", .present = tcp_present, .encode = tcp_encode, .decode = tcp_decode},
};
#define MD_NSECTIONS (sizeof(md_sections) / sizeof(md_sections[0]))

void mixl_metadata_init(mixl_metadata_t *md)
{
    memset(md, 0, sizeof(*md));
    md->format = MIXL_METADATA_FORMAT;
    md->mpi.rank = -1;
    md->tcp.port = -1;
}

/* --- encoding --------------------------------------------------------- */

mixl_status_t mixl_metadata_encode(const mixl_metadata_t *md, void **blob_p, size_t *len_p)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    void *blob;

    if (md == NULL || blob_p == NULL || len_p == NULL) return MIXL_ERR_INVALID_PARAM;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

    msgpack_pack_map(&pk, 9);
    pack_key(&pk, "crc");
    msgpack_sbuffer_write(&sb, "\xce\0\0\0\0", 5);
    pack_key(&pk, "magic");
    pack_str(&pk, MD_MAGIC);
    pack_key(&pk, "format");
    msgpack_pack_uint32(&pk, md->format);
    pack_key(&pk, "lib");
    pack_str(&pk, md->library_version[0] ? md->library_version : MIXL_VERSION_STRING);
    pack_key(&pk, "name");
    pack_str(&pk, md->name);
    pack_key(&pk, "engine");
    pack_str(&pk, md->engine_id);
    pack_key(&pk, "host");
    pack_str(&pk, md->hostname);
    pack_key(&pk, "regions");
    msgpack_pack_array(&pk, md->region_count);
    for (uint32_t i = 0; i < md->region_count; i++) {
        const mixl_md_region_t *r = &md->regions[i];
        msgpack_pack_map(&pk, 5);
        pack_key(&pk, "id");
        msgpack_pack_uint32(&pk, r->id);
        pack_key(&pk, "addr");
        msgpack_pack_uint64(&pk, r->addr);
        pack_key(&pk, "len");
        msgpack_pack_uint64(&pk, r->len);
        pack_key(&pk, "mem");
        msgpack_pack_uint32(&pk, (uint32_t)r->mem_type);
        pack_key(&pk, "dev");
        msgpack_pack_int32(&pk, r->device);
    }
    {
        uint32_t n = 0;
        for (size_t i = 0; i < MD_NSECTIONS; i++) n += md_sections[i].present(md);
        pack_key(&pk, "tp");
        msgpack_pack_map(&pk, n);
        for (size_t i = 0; i < MD_NSECTIONS; i++) {
            if (!md_sections[i].present(md)) continue;
            pack_key(&pk, md_sections[i].name);
            md_sections[i].encode(&pk, md);
        }
    }

    blob = malloc(sb.size);
    if (blob == NULL) {
        msgpack_sbuffer_destroy(&sb);
        return MIXL_ERR_NO_MEMORY;
    }
    memcpy(blob, sb.data, sb.size);
    {
        size_t at = md_crc_offset(blob, sb.size);
        uint32_t crc = mixl_crc32c(0, blob, sb.size);
        uint8_t *b = (uint8_t *)blob + at;
        b[0] = (uint8_t)(crc >> 24);
        b[1] = (uint8_t)(crc >> 16);
        b[2] = (uint8_t)(crc >> 8);
        b[3] = (uint8_t)crc;
    }
    *len_p = sb.size;
    *blob_p = blob;
    msgpack_sbuffer_destroy(&sb);
    return MIXL_OK;
}

static mixl_status_t decode_region(md_err_t *e, uint32_t index, const msgpack_object *o,
                                   mixl_md_region_t *r)
{
    enum { HAVE_ID = 1, HAVE_ADDR = 2, HAVE_LEN = 4, HAVE_MEM = 8 };
    unsigned have = 0;
    mixl_status_t st = MIXL_OK;
    int64_t v;

    if (o->type != MSGPACK_OBJECT_MAP)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "region %u is not a map", index);
    memset(r, 0, sizeof(*r));
    r->mpi.window = -2;
    for (uint32_t i = 0; i < o->via.map.size && st == MIXL_OK; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (key_is(k, "id")) {
            st = get_int(e, "regions[].id", val, 0, UINT32_MAX, &v);
            r->id = (uint32_t)v;
            have |= HAVE_ID;
        } else if (key_is(k, "addr")) {
            st = get_u64(e, "regions[].addr", val, &r->addr);
            have |= HAVE_ADDR;
        } else if (key_is(k, "len")) {
            st = get_u64(e, "regions[].len", val, &r->len);
            have |= HAVE_LEN;
        } else if (key_is(k, "mem")) {
            st = get_int(e, "regions[].mem", val, MIXL_MEM_HOST, MIXL_MEM_CUDA, &v);
            r->mem_type = (mixl_mem_type_t)v;
            have |= HAVE_MEM;
        } else if (key_is(k, "dev")) {
            st = get_int(e, "regions[].dev", val, -1, 1024, &v);
            r->device = (int)v;
        }
    }
    if (st != MIXL_OK) return st;
    if (have != (HAVE_ID | HAVE_ADDR | HAVE_LEN | HAVE_MEM))
        return md_fail(e, MIXL_ERR_BAD_METADATA, "region %u lacks one of id, addr, len, mem", index);
    if (r->len == 0 || r->addr + r->len < r->addr)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "region %u has an invalid span", index);
    return MIXL_OK;
}

/* Checks across the generic part and the sections, once both are read. */
static mixl_status_t check_region(md_err_t *e, uint32_t index, const mixl_md_region_t *r)
{
    if ((r->mpi.flags & MIXL_MD_REGION_IPC) && r->mem_type != MIXL_MEM_CUDA)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "region %u: IPC handle on non-device memory", index);
    /* An importer copies inside [window_base, window_base + ipc_size) only. */
    if ((r->mpi.flags & MIXL_MD_REGION_IPC) && r->mpi.ipc_size != 0 &&
        (r->addr < r->mpi.window_base || r->addr - r->mpi.window_base > r->mpi.ipc_size ||
         r->len > r->mpi.ipc_size - (r->addr - r->mpi.window_base)))
        return md_fail(e, MIXL_ERR_BAD_METADATA, "region %u runs past the CUDA allocation its IPC "
                       "handle maps", index);
    return MIXL_OK;
}

/* The "tp" map: each backend section this library has a codec for; others are skipped. */
static mixl_status_t decode_sections(md_err_t *e, const msgpack_object *tp, mixl_metadata_t *md)
{
    unsigned done = 0;

    if (tp->type != MSGPACK_OBJECT_MAP)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'tp' is not a map");
    for (uint32_t i = 0; i < tp->via.map.size; i++) {
        const msgpack_object *k = &tp->via.map.ptr[i].key, *val = &tp->via.map.ptr[i].val;
        for (size_t s = 0; s < MD_NSECTIONS; s++) {
            mixl_status_t st;
            if (!key_is(k, md_sections[s].name)) continue;
            if (done & (1u << s))
                return md_fail(e, MIXL_ERR_BAD_METADATA, "section 'tp.%s' appears twice",
                               md_sections[s].name);
            if (val->type != MSGPACK_OBJECT_MAP)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "section 'tp.%s' is not a map",
                               md_sections[s].name);
            st = md_sections[s].decode(e, val, md);
            if (st != MIXL_OK) return st;
            done |= 1u << s;
        }
    }
    return MIXL_OK;
}

/*
 * Walk the msgpack encoding without building anything and check that every
 * array and map could hold as many elements as its header claims (each
 * takes at least one byte). msgpack-c allocates a container's element array
 * from the header's count before reading the elements, so without this a
 * blob with a valid checksum and an array header of 2^32-1 makes it ask for
 * 100+ GiB. Returns 0 and names the fault in e when the shape is impossible.
 */
static int md_shape_ok(md_err_t *e, const uint8_t *b, size_t len)
{
    size_t pos = 0;
    uint64_t pending = 1; /* elements still to read */

    while (pending > 0) {
        uint64_t children = 0, skip = 0;
        size_t head = 1, nlen = 0;
        uint8_t t;

        if (pos >= len) goto err_short;
        t = b[pos];
        pending--;
        if (t <= 0x7f || t >= 0xe0 || (t >= 0xc0 && t <= 0xc3)) {
            /* fixint, negative fixint, nil, (unused), false, true */
        } else if (t <= 0x8f) {
            children = 2u * (t & 0x0fu);
        } else if (t <= 0x9f) {
            children = t & 0x0fu;
        } else if (t <= 0xbf) {
            skip = t & 0x1fu;
        } else {
            switch (t) {
            case 0xc4: case 0xd9: nlen = 1; break;             /* bin8, str8 */
            case 0xc5: case 0xda: nlen = 2; break;             /* bin16, str16 */
            case 0xc6: case 0xdb: nlen = 4; break;             /* bin32, str32 */
            case 0xc7: nlen = 1, skip = 1; break;              /* ext8: length, type */
            case 0xc8: nlen = 2, skip = 1; break;
            case 0xc9: nlen = 4, skip = 1; break;
            case 0xca: skip = 4; break;                        /* float32 */
            case 0xcb: skip = 8; break;                        /* float64 */
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                        /* fixext 1..16: type + data */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: nlen = 2; break;             /* array16, map16 */
            case 0xdd: case 0xdf: nlen = 4; break;             /* array32, map32 */
            default: goto err_short;
            }
        }
        if (nlen > 0) {
            uint64_t n = 0;
            if (len - pos - 1 < nlen) goto err_short;
            for (size_t i = 0; i < nlen; i++) n = n << 8 | b[pos + 1 + i];
            head += nlen;
            if (t == 0xdc || t == 0xdd) children = n;
            else if (t == 0xde || t == 0xdf) children = 2 * n;
            else skip += n;
        }
        if (len - pos < head || len - pos - head < skip) goto err_short;
        pos += head + skip;
        /* Every element still to come takes at least one of the bytes left. */
        if (pending + children > len - pos) {
            md_fail(e, MIXL_ERR_BAD_METADATA, "metadata blob of %zu bytes has a container of %llu "
                    "elements at byte %zu, more than the bytes left", len,
                    (unsigned long long)(t <= 0x8f || t == 0xde || t == 0xdf ? children / 2
                                                                             : children),
                    pos - head);
            return 0;
        }
        pending += children;
    }
    return 1;

err_short:
    md_fail(e, MIXL_ERR_BAD_METADATA, "metadata blob is truncated or not valid msgpack (%zu bytes)",
            len);
    return 0;
}

static mixl_status_t decode_root(md_err_t *e, const msgpack_object *root, mixl_metadata_t *md)
{
    enum { HAVE_NAME = 1, HAVE_REGIONS = 2 };
    const msgpack_object *magic = NULL, *format = NULL, *sections = NULL;
    unsigned have = 0;
    mixl_status_t st = MIXL_OK;
    int64_t v;

    if (root->type != MSGPACK_OBJECT_MAP)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "not a MIXL metadata blob (top level is not a map)");
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        if (key_is(k, "magic")) magic = &root->via.map.ptr[i].val;
        if (key_is(k, "format")) format = &root->via.map.ptr[i].val;
    }
    if (magic == NULL || magic->type != MSGPACK_OBJECT_STR ||
        magic->via.str.size != strlen(MD_MAGIC) ||
        memcmp(magic->via.str.ptr, MD_MAGIC, strlen(MD_MAGIC)) != 0)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "not a MIXL metadata blob (magic missing or wrong)");
    if (format == NULL || get_int(e, "format", format, 0, UINT32_MAX, &v) != MIXL_OK)
        return md_fail(e, MIXL_ERR_BAD_METADATA, "metadata has no valid format number");
    md->format = (uint32_t)v;
    if (md->format != MIXL_METADATA_FORMAT)
        return md_fail(e, MIXL_ERR_VERSION, "metadata format %u, this library reads format %u",
                       md->format, MIXL_METADATA_FORMAT);

    md->mpi.rank = -1;
    md->tcp.port = -1;
    for (uint32_t i = 0; i < root->via.map.size && st == MIXL_OK; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key, *val = &root->via.map.ptr[i].val;
        if (key_is(k, "name")) {
            st = get_str(e, "name", val, md->name, sizeof(md->name));
            if (st == MIXL_OK && md->name[0] == '\0')
                st = md_fail(e, MIXL_ERR_BAD_METADATA, "field 'name' is empty");
            have |= HAVE_NAME;
        } else if (key_is(k, "engine")) {
            st = get_str(e, "engine", val, md->engine_id, sizeof(md->engine_id));
        } else if (key_is(k, "lib")) {
            st = get_str(e, "lib", val, md->library_version, sizeof(md->library_version));
        } else if (key_is(k, "host")) {
            st = get_str(e, "host", val, md->hostname, sizeof(md->hostname));
        } else if (key_is(k, "tp")) {
            if (sections != NULL) return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'tp' appears twice");
            sections = val;
        } else if (key_is(k, "regions")) {
            if (val->type != MSGPACK_OBJECT_ARRAY)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'regions' is not an array");
            if (val->via.array.size > MD_MAX_REGIONS)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "%u regions, limit %d",
                               val->via.array.size, MD_MAX_REGIONS);
            if (md->regions != NULL)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "field 'regions' appears twice");
            md->regions = calloc(val->via.array.size ? val->via.array.size : 1, sizeof(*md->regions));
            if (md->regions == NULL) return MIXL_ERR_NO_MEMORY;
            md->region_count = val->via.array.size;
            for (uint32_t j = 0; j < md->region_count && st == MIXL_OK; j++)
                st = decode_region(e, j, &val->via.array.ptr[j], &md->regions[j]);
            have |= HAVE_REGIONS;
        }
    }
    if (st != MIXL_OK) return st;
    if (!(have & HAVE_NAME)) return md_fail(e, MIXL_ERR_BAD_METADATA, "metadata has no agent name");
    if (!(have & HAVE_REGIONS)) return md_fail(e, MIXL_ERR_BAD_METADATA, "metadata has no region list");
    /* Sections refer to regions by id: read them once every region is known. */
    if (sections != NULL && (st = decode_sections(e, sections, md)) != MIXL_OK) return st;
    for (uint32_t i = 0; i < md->region_count; i++)
        if ((st = check_region(e, i, &md->regions[i])) != MIXL_OK) return st;
    for (uint32_t i = 0; i < md->region_count; i++)
        for (uint32_t j = i + 1; j < md->region_count; j++)
            if (md->regions[i].id == md->regions[j].id)
                return md_fail(e, MIXL_ERR_BAD_METADATA, "region id %u appears twice",
                               md->regions[i].id);
    return MIXL_OK;
}

mixl_status_t mixl_metadata_decode(const void *blob, size_t len, mixl_metadata_t **md_p)
{
    md_err_t e = {0};
    msgpack_unpacked up;
    msgpack_unpack_return ret;
    mixl_metadata_t *md;
    mixl_status_t st;
    size_t off = 0;

    mixl_thread_error_clear();
    if (blob == NULL || md_p == NULL)
        return md_fail(&e, MIXL_ERR_INVALID_PARAM, "no blob or no output pointer");
    if (len == 0) return md_fail(&e, MIXL_ERR_BAD_METADATA, "empty metadata blob");

    /*
     * Checksum before parsing: a flipped bit in an array length would make
     * msgpack allocate gigabytes before noticing the input is short.
     */
    {
        size_t at = md_crc_offset(blob, len);
        const uint8_t *b = (const uint8_t *)blob + at;
        uint32_t stored;
        if (at == 0)
            return md_fail(&e, MIXL_ERR_BAD_METADATA,
                           "not a MIXL metadata blob (it does not start with the checksum field)");
        stored = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
        if (stored != md_crc_compute(blob, len, at))
            return md_fail(&e, MIXL_ERR_BAD_METADATA,
                           "metadata blob of %zu bytes is truncated or corrupted (checksum mismatch)",
                           len);
    }
    if (!md_shape_ok(&e, blob, len)) return MIXL_ERR_BAD_METADATA;
    msgpack_unpacked_init(&up);
    ret = msgpack_unpack_next(&up, blob, len, &off);
    /* A truncated blob gives CONTINUE (and still moves off), not an error. */
    if (ret == MSGPACK_UNPACK_CONTINUE) {
        st = md_fail(&e, MIXL_ERR_BAD_METADATA, "metadata blob is truncated (%zu bytes)", len);
        goto err_unpacked;
    }
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        st = md_fail(&e, MIXL_ERR_BAD_METADATA, "metadata blob is not valid msgpack");
        goto err_unpacked;
    }
    if (off != len) {
        st = md_fail(&e, MIXL_ERR_BAD_METADATA, "metadata blob has %zu trailing bytes", len - off);
        goto err_unpacked;
    }
    md = calloc(1, sizeof(*md));
    if (md == NULL) {
        st = md_fail(&e, MIXL_ERR_NO_MEMORY, "decoding metadata of %zu bytes", len);
        goto err_unpacked;
    }
    st = decode_root(&e, &up.data, md);
    if (st != MIXL_OK) goto err_md;
    msgpack_unpacked_destroy(&up);
    *md_p = md;
    return MIXL_OK;

err_md:
    mixl_metadata_free(md);
err_unpacked:
    msgpack_unpacked_destroy(&up);
    return st;
}

void mixl_metadata_free(mixl_metadata_t *md)
{
    if (md == NULL) return;
    free(md->regions);
    free(md);
}
