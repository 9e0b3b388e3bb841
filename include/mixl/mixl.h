/* MIXL -- MPI Inference Xfer Library: the one header to include. */
#ifndef MIXL_MIXL_H
#define MIXL_MIXL_H

#include <mixl/export.h>
#include <mixl/version.h>
#include <mixl/status.h>
#include <mixl/log.h>
#include <mixl/types.h>
#include <mixl/mem.h>
#include <mixl/agent.h>
#include <mixl/registry.h>
#include <mixl/metadata.h>
#include <mixl/launch.h>
#include <mixl/stats.h>

#endif /* MIXL_MIXL_H */
