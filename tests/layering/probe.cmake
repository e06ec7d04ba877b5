# Builds one layering probe; passes when an allowed include compiles, or when a forbidden one
# fails because the header is not found (not for any other reason).
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(APPEND out "${err}")
if(ALLOWED)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "an allowed include of ${HEADER} failed to build:\n${out}")
  endif()
  message("ok: ${HEADER} is visible, as it should be")
elseif(rc EQUAL 0)
  message(FATAL_ERROR "${TARGET}: the include of ${HEADER} compiled, but the layering forbids it")
elseif(NOT out MATCHES "${HEADER}: No such file or directory")
  message(FATAL_ERROR "${TARGET} failed for another reason than the forbidden include:\n${out}")
else()
  message("ok: ${HEADER} is refused: ${TARGET} does not build")
endif()
