/* GPU section through the CUDA runtime: model, memory and driver per device. */
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "diag.h"

void mixl_diag_probe_gpu(mixl_diag_t *d)
{
    json_t *gpu = json_object();
    json_t *devices = json_array();
    int count = 0, driver = 0, runtime = 0;
    cudaError_t err = cudaGetDeviceCount(&count);

    json_object_set_new(gpu, "cuda_compiled", json_true());
    if (cudaDriverGetVersion(&driver) == cudaSuccess && driver > 0) {
        char v[32];
        snprintf(v, sizeof(v), "%d.%d", driver / 1000, (driver % 1000) / 10);
        json_object_set_new(gpu, "driver", json_string(v));
    } else {
        json_object_set_new(gpu, "driver", json_null());
    }
    if (cudaRuntimeGetVersion(&runtime) == cudaSuccess) {
        char v[32];
        snprintf(v, sizeof(v), "%d.%d", runtime / 1000, (runtime % 1000) / 10);
        json_object_set_new(gpu, "runtime", json_string(v));
    }
    if (err != cudaSuccess) {
        count = 0;
        json_object_set_new(gpu, "note", json_string(cudaGetErrorString(err)));
    }
    for (int i = 0; i < count; i++) {
        struct cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) != cudaSuccess)
            continue;
        char bus[32];
        snprintf(bus, sizeof(bus), "%04x:%02x:%02x", p.pciDomainID, p.pciBusID, p.pciDeviceID);
        json_t *g = json_object();
        json_object_set_new(g, "index", json_integer(i));
        json_object_set_new(g, "model", json_string(p.name));
        json_object_set_new(g, "memory_mib", json_integer((json_int_t)(p.totalGlobalMem >> 20)));
        json_object_set_new(g, "pci_bus", json_string(bus));
        char cc[16];
        snprintf(cc, sizeof(cc), "%d.%d", p.major, p.minor);
        json_object_set_new(g, "compute_capability", json_string(cc));
        json_array_append_new(devices, g);
    }
    json_object_set_new(gpu, "devices", devices);
    json_object_set_new(d->report, "gpu", gpu);
}
