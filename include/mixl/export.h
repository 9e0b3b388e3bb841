/* Symbol visibility for the MIXL shared library: only MIXL_EXPORT symbols are public. */
#ifndef MIXL_EXPORT_H
#define MIXL_EXPORT_H

#if defined(MIXL_BUILDING_LIBRARY) && defined(__GNUC__)
#define MIXL_EXPORT __attribute__((visibility("default")))
#else
#define MIXL_EXPORT
#endif

#endif /* MIXL_EXPORT_H */
