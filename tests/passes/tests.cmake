# Golden tests of the graph passes: tests/passes/NAME.ir -> passes_NAME.
# Each file starts with "// RUN: passes=a,b" (irtest runs inference, then
# those passes with the verifier after each).  Regenerate an expected
# section with: irtest --update FILE (and review the diff).
file(GLOB DLCC_PASS_GOLDEN CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/passes/*.ir)
list(SORT DLCC_PASS_GOLDEN)
foreach(golden ${DLCC_PASS_GOLDEN})
  get_filename_component(golden_name ${golden} NAME_WE)
  add_test(NAME passes_${golden_name} COMMAND irtest ${golden})
endforeach()

# The rewrite helpers and the pass manager's option checks.
add_executable(test_rewrite ${CMAKE_SOURCE_DIR}/tests/passes/test_rewrite.c)
target_link_libraries(test_rewrite PRIVATE dlcc_compiler)
add_test(NAME passes_test_rewrite COMMAND test_rewrite)

# The compiler-driving tests verify the graph after every pass.
foreach(t cli conformance real_models)
  if(TEST ${t})
    set_property(TEST ${t} APPEND PROPERTY
                 ENVIRONMENT_MODIFICATION "DLCC_VERIFY_EACH_PASS=set:1")
  endif()
endforeach()
