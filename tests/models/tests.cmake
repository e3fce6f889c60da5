# Real models exported from PyTorch, compared with ONNX Runtime.
add_test(NAME real_models
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python ${CMAKE_SOURCE_DIR}/tests/models/test_real_models.py
          --dlcc $<TARGET_FILE:dlcc> --cache ${CMAKE_BINARY_DIR}/test-models)
set_tests_properties(real_models PROPERTIES TIMEOUT 1800 LABELS "slow")
