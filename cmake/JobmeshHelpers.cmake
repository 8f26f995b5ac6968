# jobmesh_add_test(NAME SOURCES... [LIBS libs...] [TIMEOUT seconds] [LABELS l...])
# Adds an executable and a ctest entry that must finish within TIMEOUT
# (default 60 s): every test is bounded in time, even one that hangs in nng.
function(jobmesh_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS})
  target_compile_definitions(${name} PRIVATE
    JOBMESH_BIN_DIR="${CMAKE_BINARY_DIR}/bin"
    JOBMESH_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.27)
    # A timed-out test gets SIGTERM first, so the harness's guard kills what
    # it started (tests/integration/harness_guard.h); older ctest SIGKILLs
    # the whole process tree at once.
    set_tests_properties(${name} PROPERTIES TIMEOUT_SIGNAL_NAME SIGTERM
                                            TIMEOUT_SIGNAL_GRACE_PERIOD 5)
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()
