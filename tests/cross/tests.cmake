# The LLVM backend and cross compilation (tests/cross/): targets and linking,
# Apple Mach-O output, the C and LLVM backends against each other, and the
# conformance cases and real models cross-compiled for aarch64 and armv7 and
# run under qemu-user.  Registered only when dlcc is built with LLVM.
if(DLCC_LLVM_CONFIG)
  set(DLCC_CROSS_DIR ${CMAKE_SOURCE_DIR}/tests/cross)
  set(DLCC_PY ${CMAKE_SOURCE_DIR}/.venv/bin/python)
  set(DLCC_CROSS_MODEL ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/test_conv_with_strides_padding.onnx)

  add_test(NAME cross_targets
    COMMAND ${DLCC_PY} ${DLCC_CROSS_DIR}/test_targets.py $<TARGET_FILE:dlcc>
            ${DLCC_CROSS_MODEL} ${CMAKE_BINARY_DIR}/cross-work/targets)
  set_tests_properties(cross_targets PROPERTIES TIMEOUT 300 LABELS "cross")

  add_test(NAME cross_apple_macho
    COMMAND ${DLCC_CROSS_DIR}/check_macho.sh $<TARGET_FILE:dlcc>
            ${DLCC_CROSS_MODEL} ${CMAKE_BINARY_DIR}/cross-work/macho)
  set_tests_properties(cross_apple_macho PROPERTIES TIMEOUT 120 LABELS "cross"
    SKIP_RETURN_CODE 77)

  # The C and LLVM backends on every conformance case at the host.
  add_test(NAME llvm_vs_c_conformance
    COMMAND ${DLCC_CROSS_DIR}/compare_backends.sh $<TARGET_FILE:dlcc>
            $<TARGET_FILE:dlcc-run> ${CMAKE_BINARY_DIR}/cross-work/backends)
  set_tests_properties(llvm_vs_c_conformance PROPERTIES TIMEOUT 5400
    LABELS "slow;cross")

  foreach(arch aarch64 armv7)
    if(arch STREQUAL "aarch64")
      set(tgt rpi4)
      set(prefix "qemu-aarch64 -L /usr/aarch64-linux-gnu")
    else()
      set(tgt armv7)
      set(prefix "qemu-arm -L /usr/arm-linux-gnueabihf")
    endif()
    set(bdir ${CMAKE_BINARY_DIR}/cross-${arch})
    # dlcc-run for the target (runtime-only cross build).
    add_test(NAME cross_build_${arch}
      COMMAND ${CMAKE_SOURCE_DIR}/tools/cross-build ${arch} ${bdir})
    set_tests_properties(cross_build_${arch} PROPERTIES TIMEOUT 600
      LABELS "cross" FIXTURES_SETUP cross_${arch})
    add_test(NAME cross_conformance_${arch}
      COMMAND ${DLCC_CROSS_DIR}/run_cross.sh $<TARGET_FILE:dlcc> ${arch} ${tgt} ${bdir})
    set_tests_properties(cross_conformance_${arch} PROPERTIES TIMEOUT 1200
      LABELS "cross" SKIP_RETURN_CODE 77 FIXTURES_REQUIRED cross_${arch})
    add_test(NAME cross_models_${arch}
      COMMAND ${DLCC_PY} ${DLCC_CROSS_DIR}/test_models_qemu.py
              --dlcc $<TARGET_FILE:dlcc> --dlcc-run ${bdir}/bin/dlcc-run
              --target ${tgt} --run-prefix ${prefix}
              --cache ${CMAKE_BINARY_DIR}/test-models
              resnet18 mobilenet_v2 squeezenet1_1 bert gpt2)
    set_tests_properties(cross_models_${arch} PROPERTIES TIMEOUT 1800
      LABELS "slow;cross" FIXTURES_REQUIRED cross_${arch})
  endforeach()
endif()
