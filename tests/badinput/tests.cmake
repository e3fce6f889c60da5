# Broken models must be refused cleanly by the dlcc command line
# (tests/badinput/test_badinput.py).
add_test(NAME badinput
  COMMAND ${CMAKE_SOURCE_DIR}/.venv/bin/python test_badinput.py
  WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/badinput)
set_tests_properties(badinput PROPERTIES
  ENVIRONMENT "DLCC=$<TARGET_FILE:dlcc>"
  TIMEOUT 300)
