# The ONNX backend suite: every case compiled and run, compared with the
# suite's outputs; fails when a case of expected_pass.txt regresses.
add_test(NAME conformance
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python ${CMAKE_SOURCE_DIR}/tests/conformance/run_conformance.py
          --dlcc $<TARGET_FILE:dlcc> --dlcc-run $<TARGET_FILE:dlcc-run>
          --report ${CMAKE_BINARY_DIR}/conformance.md)
set_tests_properties(conformance PROPERTIES TIMEOUT 3000 LABELS "slow")
