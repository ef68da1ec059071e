# doppel_apply_warnings(target): the project's warning set, errors in CI.
function(doppel_apply_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  if(DOPPEL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(DOPPEL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# doppel_module(NAME SOURCES... DEPENDS ...): one layer of the architecture.
function(doppel_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(doppel_${name} STATIC ${ARG_SOURCES})
  add_library(doppel::${name} ALIAS doppel_${name})
  target_include_directories(doppel_${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(doppel_${name} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS})
  set_target_properties(doppel_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  doppel_apply_warnings(doppel_${name})
  set_property(GLOBAL APPEND PROPERTY DOPPEL_MODULES doppel_${name})
endfunction()

# doppel_test(NAME SOURCES... DEPENDS ...): a googletest executable, tests discovered.
function(doppel_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPENDS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests)
  target_compile_definitions(${name} PRIVATE
    DOPPEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    DOPPEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  doppel_apply_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)
endfunction()
