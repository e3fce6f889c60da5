# Static memory planning: slot reuse, in-place ops and aliased copies,
# checked against ONNX Runtime with a NaN-poisoned workspace (both
# backends, -O0 and -O3) and through --stats.
add_test(NAME plan_memory
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/plan/test_plan.py
          --dlcc $<TARGET_FILE:dlcc>)
set_tests_properties(plan_memory PROPERTIES TIMEOUT 600)
