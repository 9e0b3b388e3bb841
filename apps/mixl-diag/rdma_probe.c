/*
 * RDMA section, like `ibstat`: every device under /sys/class/infiniband
 * with firmware and, per port, state, physical state, rate and link layer
 * (InfiniBand or Ethernet for RoCE). An empty list means no RDMA device.
 * MIXL_DIAG_SYSFS_IB overrides the directory (tests and chroots).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static json_t *read_attr(const char *dir, const char *name)
{
    char path[1024], buf[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return json_null();
    char *ok = fgets(buf, sizeof(buf), f);
    fclose(f);
    if (!ok)
        return json_null();
    buf[strcspn(buf, "\n")] = '\0';
    /* state files read "4: ACTIVE"; keep the words. */
    const char *v = buf;
    const char *colon = strstr(buf, ": ");
    if (colon && colon - buf <= 2)
        v = colon + 2;
    return json_string(v);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static json_t *probe_ports(const char *devdir)
{
    json_t *ports = json_array();
    char dir[1040];
    snprintf(dir, sizeof(dir), "%s/ports", devdir);
    struct dirent **ents = NULL;
    int n = scandir(dir, &ents, NULL, by_name);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            char pdir[1300];
            snprintf(pdir, sizeof(pdir), "%s/%s", dir, ents[i]->d_name);
            json_t *p = json_object();
            json_object_set_new(p, "port", json_integer(atoi(ents[i]->d_name)));
            json_object_set_new(p, "state", read_attr(pdir, "state"));
            json_object_set_new(p, "phys_state", read_attr(pdir, "phys_state"));
            json_object_set_new(p, "rate", read_attr(pdir, "rate"));
            json_object_set_new(p, "link_layer", read_attr(pdir, "link_layer"));
            json_array_append_new(ports, p);
        }
        free(ents[i]);
    }
    free(ents);
    return ports;
}

void mixl_diag_probe_rdma(mixl_diag_t *d)
{
    const char *root = getenv("MIXL_DIAG_SYSFS_IB");
    if (!root)
        root = "/sys/class/infiniband";
    json_t *rdma = json_object();
    json_t *devices = json_array();
    struct dirent **ents = NULL;
    int n = scandir(root, &ents, NULL, by_name);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            char devdir[1024];
            snprintf(devdir, sizeof(devdir), "%s/%s", root, ents[i]->d_name);
            json_t *dev = json_object();
            json_object_set_new(dev, "name", json_string(ents[i]->d_name));
            json_object_set_new(dev, "hca_type", read_attr(devdir, "hca_type"));
            json_object_set_new(dev, "fw_ver", read_attr(devdir, "fw_ver"));
            json_object_set_new(dev, "ports", probe_ports(devdir));
            json_array_append_new(devices, dev);
        }
        free(ents[i]);
    }
    free(ents);
    json_object_set_new(rdma, "source", json_string(root));
    json_object_set_new(rdma, "devices", devices);
    json_object_set_new(d->report, "rdma", rdma);
}
