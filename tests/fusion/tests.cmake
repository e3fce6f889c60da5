# Fusion passes (fold_bn, horizontal, fuse_epilogue, fuse_elementwise).
# Golden IR tests: tests/fusion/NAME.ir -> fusion_NAME; each file starts with
# "// RUN: passes=a,b" (or infer for the fused forms read back from text).
# Regenerate an expected section with: irtest --update FILE (and review it).
file(GLOB DLCC_FUSION_GOLDEN CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/fusion/*.ir)
list(SORT DLCC_FUSION_GOLDEN)
foreach(golden ${DLCC_FUSION_GOLDEN})
  get_filename_component(golden_name ${golden} NAME_WE)
  add_test(NAME fusion_${golden_name} COMMAND irtest ${golden})
endforeach()

# One small ONNX model per fusion pattern against ONNX Runtime, with and
# without the passes, plus kernel counts.
add_test(NAME fusion_patterns
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/fusion/test_fusion.py
          --dlcc $<TARGET_FILE:dlcc> --no-models)
set_tests_properties(fusion_patterns PROPERTIES TIMEOUT 600)

# ResNet-18 and BERT: numbers against ONNX Runtime and the structure after
# fusion (one kernel per convolution; Q/K/V as one MatMul).
add_test(NAME fusion_models
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/fusion/test_fusion.py
          --dlcc $<TARGET_FILE:dlcc> --cache ${CMAKE_BINARY_DIR}/test-models)
set_tests_properties(fusion_models PROPERTIES TIMEOUT 1800 LABELS "slow")

# Horizontal fusion: 1x1 Convs, MatMuls and Gemms sharing an input against
# ONNX Runtime, with the merged counts from --stats.
add_test(NAME fusion_horizontal_ort
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/fusion/test_horizontal.py
          --dlcc $<TARGET_FILE:dlcc>)
set_tests_properties(fusion_horizontal_ort PROPERTIES TIMEOUT 600)

# The layout pass: small Conv models at -O3 against ONNX Runtime with both
# backends and the pass disabled, and whether the pass fired.
add_test(NAME fusion_layout_models
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/fusion/test_layout.py
          --dlcc $<TARGET_FILE:dlcc>)
set_tests_properties(fusion_layout_models PROPERTIES TIMEOUT 600)

# Scaled-dot-product attention recognized as one Attention kernel: small
# models against ONNX Runtime at -O3 and -O0, both backends, Attention count.
add_test(NAME fusion_attention
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python
          ${CMAKE_SOURCE_DIR}/tests/fusion/test_attention.py
          --dlcc $<TARGET_FILE:dlcc>)
set_tests_properties(fusion_attention PROPERTIES TIMEOUT 600)
