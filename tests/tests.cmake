# Each area keeps its tests in tests/<area>/tests.cmake; this file gathers them.
file(GLOB DLCC_TEST_PARTS ${CMAKE_SOURCE_DIR}/tests/*/tests.cmake)
list(SORT DLCC_TEST_PARTS)
foreach(part ${DLCC_TEST_PARTS})
  include(${part})
endforeach()
