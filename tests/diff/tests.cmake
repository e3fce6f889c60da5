# Differential test of the graph passes: every conformance case and real
# model that compiles at -O0 must give the same outputs at -O3.
add_test(NAME diff_opt_levels
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python ${CMAKE_SOURCE_DIR}/tests/diff/diff_opt_levels.py
          --dlcc $<TARGET_FILE:dlcc> --dlcc-run $<TARGET_FILE:dlcc-run>
          --cache ${CMAKE_BINARY_DIR}/test-models -j 2)
set_tests_properties(diff_opt_levels PROPERTIES TIMEOUT 900 LABELS "slow")
