# cmake -P script: mixl_add_test() must refuse an unknown keyword (a misspelt
# OMPI_DEFAULTS would otherwise become an argument of the command and the test
# would run with the very MCA selection it is meant to leave out), and must
# accept the keywords it documents. Run by the test unit.cmake.add_test_keywords.
#   cmake -DHELPERS=<MixlHelpers.cmake> -DCASE=bad|good -P add_test_keyword.cmake
set(MPIEXEC_EXECUTABLE mpirun)
include(${HELPERS})
# Stand-ins: in script mode there is no test to register.
function(add_test)
  message(STATUS "add_test(${ARGN})")
endfunction()
function(set_tests_properties)
endfunction()
if(CASE STREQUAL "bad")
  mixl_add_test(NAME probe.bad LABELS unit NP 2 OMPI_DEFAULT COMMAND true)
else()
  mixl_add_test(NAME probe.good LABELS unit TIMEOUT 10 NP 2 OMPI_DEFAULTS COMMAND true)
endif()
