# mixl_add_test(NAME <hier.name> LABELS <l...> [TIMEOUT s] [NP n] [OMPI_DEFAULTS]
#               [PROCESSORS n] COMMAND <exe> [args...] [FIXTURES_REQUIRED f...] [FIXTURES_SETUP f...]
#               [FIXTURES_CLEANUP f...] [SKIP_RETURN_CODE c] [ENVIRONMENT e...] [DEPENDS t...])
#
# Registers one CTest test. With NP the command runs under mpirun and the test
# declares NP processors, so `ctest -j2` never runs two multi-rank jobs on a
# 2-core machine at once; PROCESSORS n declares the same for a script that
# starts its own n-rank job. The flags a root-owned, 2-core CI machine needs
# (--allow-run-as-root, --oversubscribe) live here and nowhere else.
# Debian's openmpi-mca-params.conf disables pml/osc ucx; MIXL's data plane is
# one-sided over UCX, so tests select it explicitly (and allow UCX's shared-memory
# and TCP transports on machines without a Mellanox device). OMPI_DEFAULTS drops
# that selection (flags and environment, including OMPI_MCA_* variables inherited
# from the caller), so the test sees what a user's plain `mpirun` gets: Open MPI's
# own choice, or mixl_mpi_init()'s defaults for programs that call it.
# An unknown keyword is a configure error, so a misspelt option never silently
# turns into an argument of the command.
set(MIXL_MPIRUN_BASE_FLAGS --allow-run-as-root --oversubscribe --bind-to none
    CACHE STRING "mpirun flags every test gets (root, 2 cores)")
set(MIXL_MPIRUN_MCA_FLAGS --mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any
    --mca opal_common_ucx_devices any
    CACHE STRING "mpirun flags selecting MIXL's MPI components in tests")
set(MIXL_MPIRUN_FLAGS ${MIXL_MPIRUN_BASE_FLAGS} ${MIXL_MPIRUN_MCA_FLAGS})
# The root permission, for every process a test starts (mpirun and singletons).
set(MIXL_ROOT_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
# The same component selection for singleton processes started without mpirun.
set(MIXL_MCA_ENV OMPI_MCA_pml=ucx OMPI_MCA_osc=ucx OMPI_MCA_opal_common_ucx_tls=any
    OMPI_MCA_opal_common_ucx_devices=any)
set(MIXL_TEST_ENV ${MIXL_MCA_ENV} ${MIXL_ROOT_ENV})
set(MIXL_SKIP_RETURN_CODE 77)
# Every TIMEOUT is multiplied by this: a sanitizer build runs several times slower
# (scripts/test.sh --asan sets 3). The timeouts themselves are sized for the normal build,
# a few times what a test takes on a loaded 2-core machine; unit.ctest.budget keeps the
# suite's worst case under 60 minutes (times the scale).
set(MIXL_TEST_TIMEOUT_SCALE 1 CACHE STRING "Multiplier applied to every test's TIMEOUT")

function(mixl_add_test)
  cmake_parse_arguments(T "OMPI_DEFAULTS" "NAME;TIMEOUT;NP;PROCESSORS;SKIP_RETURN_CODE"
                        "LABELS;COMMAND;FIXTURES_REQUIRED;FIXTURES_SETUP;FIXTURES_CLEANUP;ENVIRONMENT;DEPENDS" ${ARGN})
  if(T_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "mixl_add_test(${T_NAME}): unknown argument(s) '${T_UNPARSED_ARGUMENTS}'")
  endif()
  if(T_KEYWORDS_MISSING_VALUES)
    message(FATAL_ERROR "mixl_add_test(${T_NAME}): no value for ${T_KEYWORDS_MISSING_VALUES}")
  endif()
  if(NOT T_NAME OR NOT T_LABELS OR NOT T_COMMAND)
    message(FATAL_ERROR "mixl_add_test(${T_NAME}): NAME, LABELS and COMMAND are required")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  math(EXPR T_TIMEOUT "${T_TIMEOUT} * ${MIXL_TEST_TIMEOUT_SCALE}")
  if(T_OMPI_DEFAULTS)
    set(flags ${MIXL_MPIRUN_BASE_FLAGS})
    set(env ${MIXL_ROOT_ENV})
  else()
    set(flags ${MIXL_MPIRUN_FLAGS})
    set(env ${MIXL_TEST_ENV})
  endif()
  if(T_NP)
    set(cmd ${MPIEXEC_EXECUTABLE} ${flags} -np ${T_NP} ${T_COMMAND})
  else()
    set(cmd ${T_COMMAND})
  endif()
  add_test(NAME ${T_NAME} COMMAND ${cmd})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
                       SKIP_RETURN_CODE ${MIXL_SKIP_RETURN_CODE})
  if(T_NP AND NOT T_PROCESSORS)
    set(T_PROCESSORS ${T_NP})
  endif()
  if(T_PROCESSORS)
    set_tests_properties(${T_NAME} PROPERTIES PROCESSORS ${T_PROCESSORS})
  endif()
  if(T_SKIP_RETURN_CODE)
    set_tests_properties(${T_NAME} PROPERTIES SKIP_RETURN_CODE ${T_SKIP_RETURN_CODE})
  endif()
  if(T_FIXTURES_REQUIRED)
    set_tests_properties(${T_NAME} PROPERTIES FIXTURES_REQUIRED "${T_FIXTURES_REQUIRED}")
  endif()
  if(T_FIXTURES_SETUP)
    set_tests_properties(${T_NAME} PROPERTIES FIXTURES_SETUP "${T_FIXTURES_SETUP}")
  endif()
  if(T_FIXTURES_CLEANUP)
    set_tests_properties(${T_NAME} PROPERTIES FIXTURES_CLEANUP "${T_FIXTURES_CLEANUP}")
  endif()
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${env};${T_ENVIRONMENT}")
  if(T_OMPI_DEFAULTS)
    set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT_MODIFICATION
                         "OMPI_MCA_pml=unset:;OMPI_MCA_osc=unset:;OMPI_MCA_opal_common_ucx_tls=unset:;OMPI_MCA_opal_common_ucx_devices=unset:")
  endif()
  if(T_DEPENDS)
    set_tests_properties(${T_NAME} PROPERTIES DEPENDS "${T_DEPENDS}")
  endif()
endfunction()

# mixl_add_executable(<name> <sources...>): a program linked against libmixl
# and its internal headers (tests, apps).
function(mixl_add_executable name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE mixl_internal)
endfunction()
