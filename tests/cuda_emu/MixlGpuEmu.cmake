# mixl_add_gpu_emu_test(NAME <hier.name> [DEVICES 1|2] [CUDA_AWARE] <mixl_add_test args...>
#                       COMMAND <exe> [args...])   (COMMAND last)
#
# Registers a test that runs on the emulated CUDA device (tests/cuda_emu):
# label gpu-emu added, LD_LIBRARY_PATH puts the emulated libcudart.so first,
# CUDA_EMU_DEVICES set (default 1). CUDA_AWARE declares the MPI CUDA-aware
# (MIXL_MPI_CUDA_AWARE=1): emulated device memory is host memory, so any MPI
# can address it and the device-window path runs. Without the CUDA toolkit
# nothing is registered (the emulation replaces a real libcudart.so).
set(MIXL_GPU_EMU_DIR ${PROJECT_BINARY_DIR}/tests/cuda_emu/lib CACHE INTERNAL
    "Folder of the emulated libcudart.so")

function(mixl_add_gpu_emu_test)
  cmake_parse_arguments(E "CUDA_AWARE" "NAME;DEVICES" "LABELS;ENVIRONMENT;COMMAND" ${ARGN})
  if(NOT MIXL_HAVE_CUDA)
    return()
  endif()
  if(NOT E_DEVICES)
    set(E_DEVICES 1)
  endif()
  set(env LD_LIBRARY_PATH=${MIXL_GPU_EMU_DIR} CUDA_EMU_DEVICES=${E_DEVICES} ${E_ENVIRONMENT})
  if(E_CUDA_AWARE)
    list(APPEND env MIXL_MPI_CUDA_AWARE=1)
  endif()
  mixl_add_test(NAME ${E_NAME} LABELS gpu-emu ${E_LABELS} ENVIRONMENT ${env}
                ${E_UNPARSED_ARGUMENTS} COMMAND ${E_COMMAND})
endfunction()
