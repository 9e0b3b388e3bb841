/* GPU section for builds without the CUDA toolkit: no GPU can be used. */
#include "diag.h"

void mixl_diag_probe_gpu(mixl_diag_t *d)
{
    json_t *gpu = json_object();
    json_object_set_new(gpu, "cuda_compiled", json_false());
    json_object_set_new(gpu, "driver", json_null());
    json_object_set_new(gpu, "devices", json_array());
    json_object_set_new(gpu, "note", json_string("none: MIXL was built without the CUDA toolkit"));
    json_object_set_new(d->report, "gpu", gpu);
}
