# IR core tests: dim algebra unit test and the textual-IR golden files.
add_executable(test_dim ${CMAKE_SOURCE_DIR}/tests/unit/test_dim.c)
target_link_libraries(test_dim PRIVATE dlcc_compiler)
add_test(NAME test_dim COMMAND test_dim)

add_executable(irtest ${CMAKE_SOURCE_DIR}/tests/ir/irtest.c)
target_link_libraries(irtest PRIVATE dlcc_compiler)

# One test per golden file: tests/ir/golden/NAME.ir -> ir_NAME.
# Regenerate an expected section with: irtest --update FILE
file(GLOB DLCC_IR_GOLDEN CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/tests/ir/golden/*.ir)
list(SORT DLCC_IR_GOLDEN)
foreach(golden ${DLCC_IR_GOLDEN})
  get_filename_component(golden_name ${golden} NAME_WE)
  add_test(NAME ir_${golden_name} COMMAND irtest ${golden})
endforeach()
