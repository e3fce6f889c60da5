# End-to-end tests of the dlcc command line (tests/cli/test_cli.py).
add_test(NAME cli
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/cli/test_cli.py $<TARGET_FILE:dlcc>)
set_tests_properties(cli PROPERTIES TIMEOUT 300)

# The C backend against the kernel interpreter, op by op, bit for bit.
add_executable(test_emit_c ${CMAKE_SOURCE_DIR}/tests/cli/test_emit_c.c)
target_link_libraries(test_emit_c PRIVATE dlcc_compiler ${CMAKE_DL_LIBS} m)
add_test(NAME emit_c COMMAND test_emit_c ${CMAKE_CURRENT_BINARY_DIR})
