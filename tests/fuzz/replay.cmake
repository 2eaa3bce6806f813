# infini_add_fuzz_replay(TARGET LIBRARY): an executable that runs every fuzz target without
# libFuzzer (replay_main.cpp). Each target's source is compiled once more through a generated
# one-line file that renames its entry point to infini_fuzz_<name>, so all of them link together.
set(INFINI_FUZZ_TARGETS safetensors config model_dir state checkpoint tokenizer serve_request)
set(INFINI_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
function(infini_add_fuzz_replay target library)
  set(sources ${INFINI_FUZZ_DIR}/replay_main.cpp ${INFINI_FUZZ_DIR}/seeds.cpp ${INFINI_FUZZ_DIR}/fuzz_common.cpp)
  foreach(name ${INFINI_FUZZ_TARGETS})
    set(wrapper ${CMAKE_CURRENT_BINARY_DIR}/${target}_entries/fuzz_${name}.cpp)
    file(CONFIGURE OUTPUT ${wrapper} CONTENT
         "#define INFINI_FUZZ_ENTRY infini_fuzz_${name}\n#include \"${INFINI_FUZZ_DIR}/fuzz_${name}.cpp\"\n")
    list(APPEND sources ${wrapper})
  endforeach()
  add_executable(${target} ${sources})
  target_include_directories(${target} PRIVATE ${INFINI_FUZZ_DIR})
  target_link_libraries(${target} PRIVATE ${library})
  target_compile_definitions(${target} PRIVATE INFINI_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_precompile_headers(${target} REUSE_FROM ${library})
  infini_prefer_blas(${target})
endfunction()
