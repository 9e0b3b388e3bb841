# mixl_add_test(NAME <hier.name> LABELS <l...> [TIMEOUT s] [NP n] COMMAND <exe> [args...]
#               [FIXTURES_REQUIRED f...] [SKIP_RETURN_CODE c] [ENVIRONMENT e...])
#
# Registers one CTest test. With NP the command runs under mpirun; the flags a
# root-owned, 2-core CI machine needs (--allow-run-as-root, --oversubscribe)
# live here and nowhere else.
# Debian's openmpi-mca-params.conf disables pml/osc ucx; MIXL's data plane is
# one-sided over UCX, so tests select it explicitly (and allow UCX's shared-memory
# and TCP transports on machines without a Mellanox device).
set(MIXL_MPIRUN_FLAGS --allow-run-as-root --oversubscribe --bind-to none
    --mca pml ucx --mca osc ucx --mca opal_common_ucx_tls any --mca opal_common_ucx_devices any
    CACHE STRING "Flags mpirun gets in tests")
# The same selection for singleton processes started without mpirun.
set(MIXL_TEST_ENV OMPI_MCA_pml=ucx OMPI_MCA_osc=ucx OMPI_MCA_opal_common_ucx_tls=any
    OMPI_MCA_opal_common_ucx_devices=any OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
set(MIXL_SKIP_RETURN_CODE 77)

function(mixl_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT;NP;SKIP_RETURN_CODE"
                        "LABELS;COMMAND;FIXTURES_REQUIRED;FIXTURES_SETUP;FIXTURES_CLEANUP;ENVIRONMENT;DEPENDS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  if(T_NP)
    set(cmd ${MPIEXEC_EXECUTABLE} ${MIXL_MPIRUN_FLAGS} -np ${T_NP} ${T_COMMAND})
  else()
    set(cmd ${T_COMMAND})
  endif()
  add_test(NAME ${T_NAME} COMMAND ${cmd})
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
                       SKIP_RETURN_CODE ${MIXL_SKIP_RETURN_CODE})
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
  set_tests_properties(${T_NAME} PROPERTIES ENVIRONMENT "${MIXL_TEST_ENV};${T_ENVIRONMENT}")
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
