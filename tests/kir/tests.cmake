# Kernel IR: builder folding, interpreter semantics, printer.
add_executable(test_kir ${CMAKE_SOURCE_DIR}/tests/kir/test_kir.c)
target_link_libraries(test_kir PRIVATE dlcc_compiler m)
add_test(NAME kir COMMAND test_kir)

# Constant folding (lowering + interpreter) against the ONNX node cases.
add_executable(test_kir_fold ${CMAKE_SOURCE_DIR}/tests/kir/fold_check.c)
target_link_libraries(test_kir_fold PRIVATE dlcc_compiler m)
set(DLCC_KIR_PY ${CMAKE_SOURCE_DIR}/.venv/bin/python)
if(EXISTS ${DLCC_KIR_PY})
  add_test(NAME kir_fold
    COMMAND ${DLCC_KIR_PY} ${CMAKE_SOURCE_DIR}/tests/kir/run_fold_check.py
            $<TARGET_FILE:test_kir_fold>)
  set_tests_properties(kir_fold PROPERTIES LABELS slow TIMEOUT 1800)
endif()
