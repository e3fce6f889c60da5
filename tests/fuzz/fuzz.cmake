# libFuzzer target for the ONNX importer (configure with -DDLCC_FUZZ=ON and
# CC=clang).  The compiler library sources are compiled again with the
# fuzzer and sanitizer flags so coverage reaches into them; the LLVM backend
# is left out (targets.c then says "built without LLVM"), and the runtime's
# tensor reader comes along for --freeze-input.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "DLCC_FUZZ needs clang (configure with CC=clang)")
endif()
set(DLCC_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g)
add_executable(fuzz_import
  ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_import.c
  ${DLCC_COMPILER_SRC}
  ${CMAKE_SOURCE_DIR}/codegen/llvm/targets.c
  ${DLCC_RUNTIME_SRC}
  ${GEN_DIR}/frontend/onnx.pb-c.c)
target_include_directories(fuzz_import PRIVATE
  ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/include ${GEN_DIR} ${PROTOBUF_C_INCLUDE})
target_compile_options(fuzz_import PRIVATE ${DLCC_FUZZ_FLAGS})
target_link_options(fuzz_import PRIVATE ${DLCC_FUZZ_FLAGS})
target_link_libraries(fuzz_import PRIVATE ${PROTOBUF_C_LIB} m)
