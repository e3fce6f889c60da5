# Tests of the runtime library, dlcc-run and the examples (tests/runtime/).
find_package(Threads REQUIRED)
set(DLCC_RT_TEST_DIR ${CMAKE_BINARY_DIR}/tests/runtime)
file(MAKE_DIRECTORY ${DLCC_RT_TEST_DIR})

# A hand-written module (y = x + 1 with a symbolic batch) in three variants:
# plain, weights in a sidecar, and a wrong ABI version.
foreach(variant plain sidecar badabi)
  add_library(rt_addone_${variant} MODULE
    ${CMAKE_SOURCE_DIR}/tests/runtime/addone_module.c)
  target_include_directories(rt_addone_${variant} PRIVATE
    ${CMAKE_SOURCE_DIR}/include)
  set_target_properties(rt_addone_${variant} PROPERTIES PREFIX ""
    LIBRARY_OUTPUT_DIRECTORY ${DLCC_RT_TEST_DIR})
endforeach()
target_compile_definitions(rt_addone_sidecar PRIVATE ADDONE_SIDECAR)
target_compile_definitions(rt_addone_badabi PRIVATE ADDONE_BAD_ABI)

add_executable(rt_tensor_tool ${CMAKE_SOURCE_DIR}/tests/runtime/rt_tensor_tool.c)
target_link_libraries(rt_tensor_tool PRIVATE dlcc_runtime_static)
add_executable(rt_api_test ${CMAKE_SOURCE_DIR}/tests/runtime/rt_api_test.c)
target_link_libraries(rt_api_test PRIVATE dlcc_runtime_static Threads::Threads)

add_test(NAME runtime_api
  COMMAND rt_api_test $<TARGET_FILE:rt_addone_plain>
          $<TARGET_FILE:rt_addone_sidecar> $<TARGET_FILE:rt_addone_badabi>
          ${DLCC_RT_TEST_DIR})
add_test(NAME runtime_tensor_io
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/runtime/test_tensor_io.py
          $<TARGET_FILE:rt_tensor_tool> ${DLCC_RT_TEST_DIR}/tensor_io)
add_test(NAME runtime_dlcc_run
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/runtime/test_dlcc_run.py
          $<TARGET_FILE:dlcc-run> $<TARGET_FILE:rt_addone_plain>
          $<TARGET_FILE:rt_addone_sidecar> ${DLCC_RT_TEST_DIR}/dlcc_run)
add_test(NAME runtime_examples
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/runtime/test_examples.py
          --dlcc $<TARGET_FILE:dlcc> --dlcc-run $<TARGET_FILE:dlcc-run>
          --runtime-lib $<TARGET_FILE:dlcc_runtime>
          --build-dir ${CMAKE_BINARY_DIR} --work ${DLCC_RT_TEST_DIR}/examples)
set_tests_properties(runtime_api runtime_tensor_io runtime_dlcc_run
  runtime_examples PROPERTIES TIMEOUT 300)
if(DLCC_SANITIZE)
  set_tests_properties(runtime_examples PROPERTIES ENVIRONMENT
    "DLCC_EXAMPLE_CFLAGS=-fsanitize=address,undefined")
endif()
