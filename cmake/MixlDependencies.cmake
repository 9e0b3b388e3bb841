# Third-party libraries MIXL builds on. Every one is a Debian 12 package
# (scripts/deps.sh installs them); CUDA is optional.
find_package(PkgConfig REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)

pkg_check_modules(YAML REQUIRED IMPORTED_TARGET yaml-0.1)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
# libcrypto: HMAC-SHA256 of the TCP handshake (Debian libssl-dev).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
# msgpack-c 6 renamed the package to msgpack-c; accept both.
pkg_check_modules(MSGPACK IMPORTED_TARGET msgpack-c)
if(NOT MSGPACK_FOUND)
  pkg_check_modules(MSGPACK REQUIRED IMPORTED_TARGET msgpack)
endif()
# Name the serial HDF5 explicitly: libhdf5-openmpi-dev re-points hdf5.pc.
pkg_check_modules(HDF5 REQUIRED IMPORTED_TARGET hdf5-serial)
# mixl-run's Prometheus endpoint.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)

set(MIXL_HAVE_CUDA OFF)
if(NOT MIXL_WITH_CUDA STREQUAL "OFF")
  if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  # 12.5: cudaGetDriverEntryPointByVersion, through which MIXL reaches
  # cuMemGetAddressRange, cuCtxGetCurrent and cuFlushGPUDirectRDMAWrites
  # without linking libcuda (docs/gpu.md).
  set(MIXL_CUDA_MIN_VERSION 12.5)
  if(CUDAToolkit_FOUND AND CUDAToolkit_VERSION VERSION_LESS MIXL_CUDA_MIN_VERSION)
    if(MIXL_WITH_CUDA STREQUAL "ON")
      message(FATAL_ERROR "MIXL_WITH_CUDA=ON but CUDA ${CUDAToolkit_VERSION} is older than "
              "${MIXL_CUDA_MIN_VERSION}, the oldest MIXL supports")
    endif()
    message(STATUS "MIXL: CUDA ${CUDAToolkit_VERSION} is older than ${MIXL_CUDA_MIN_VERSION}, "
            "building host-memory support only")
    set(CUDAToolkit_FOUND OFF)
    set(MIXL_CUDA_TOO_OLD ON)
  endif()
  # The KV kernels (src/kv/kernels_cuda.cu) need nvcc as well: CUDA is a
  # language of the project only when the toolkit is found and usable.
  if(CUDAToolkit_FOUND)
    include(CheckLanguage)
    if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND CUDAToolkit_NVCC_EXECUTABLE)
      set(CMAKE_CUDA_COMPILER ${CUDAToolkit_NVCC_EXECUTABLE})
    endif()
    check_language(CUDA)
    if(NOT CMAKE_CUDA_COMPILER)
      if(MIXL_WITH_CUDA STREQUAL "ON")
        message(FATAL_ERROR "MIXL_WITH_CUDA=ON but nvcc cannot compile for this toolkit")
      endif()
      message(STATUS "MIXL: CUDA ${CUDAToolkit_VERSION} found but nvcc does not work, "
              "building host-memory support only")
      set(CUDAToolkit_FOUND OFF)
      set(MIXL_CUDA_TOO_OLD ON)
    endif()
  endif()
  if(CUDAToolkit_FOUND)
    set(MIXL_HAVE_CUDA ON)
    # The runtime as a shared library (libcudart.so.N), like the rest of
    # MIXL's CUDA code, so the tests' emulated runtime replaces it through
    # LD_LIBRARY_PATH. One architecture with its PTX keeps the build short
    # and runs on newer GPUs through the driver's JIT; gpu-check.sh builds
    # for the GPU it runs on (-DCMAKE_CUDA_ARCHITECTURES=native).
    set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 75)
    endif()
    enable_language(CUDA)
    message(STATUS "MIXL: CUDA ${CUDAToolkit_VERSION} found, device memory support compiled in")
  elseif(MIXL_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "MIXL_WITH_CUDA=ON but no CUDA toolkit was found")
  elseif(NOT MIXL_CUDA_TOO_OLD)
    message(STATUS "MIXL: no CUDA toolkit, building host-memory support only")
  endif()
endif()

pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)
