# Sanitizer and fuzzing builds (docs/RELIABILITY.md). Included by the top-level CMakeLists.txt after
# infini_core is defined, in its directory scope, so the source-file properties set there (the
# SentencePiece library path, BLAS, OpenMP) apply to the fuzz library as well.

# --- SentencePiece without RTLD_DEEPBIND -------------------------------------------------------------
# src/data/sentencepiece_tokenizer.cpp opens libinfini_spm.so with RTLD_DEEPBIND so that
# SentencePiece's private protobuf-lite does not bind to LibTorch's libprotobuf (linked into one
# program, the two crash before main(); checked on Debian 12). AddressSanitizer refuses RTLD_DEEPBIND
# outright ("incompatible with sanitizer runtime", google/sanitizers#611). With INFINI_SPM_DLMOPEN,
# libinfini.so and the executables are linked with -Wl,--wrap=dlopen and cmake/spm_dlmopen.cpp turns a dlopen with
# RTLD_DEEPBIND into dlmopen(LM_ID_NEWLM): the library gets a link namespace of its own (its own
# libstdc++ and protobuf-lite), which isolates it at least as well, and which the sanitizers accept.
# libinfini_spm.so itself is never instrumented: the sanitizer runtime does not exist in that namespace.
if(INFINI_SPM_DLMOPEN)
  message(STATUS "infini: SentencePiece loaded with dlmopen (its own link namespace), not RTLD_DEEPBIND")
  target_sources(infini_core PRIVATE cmake/spm_dlmopen.cpp)
  target_link_options(infini_core PUBLIC "LINKER:--wrap=dlopen")
endif()

# --- INFINI_SANITIZE: the whole build, tests included ------------------------------------------------
# PUBLIC on infini_core: every executable that links it (infini, infini_tests, fuzz_replay, the
# micro-benchmarks) compiles and links with the same flags, and they share its precompiled header.
# Any UBSan report is fatal (-fno-sanitize-recover=all), so a test that triggers one fails.
if(INFINI_SANITIZE)
  message(STATUS "infini: sanitizers ${INFINI_SANITIZE}")
  set(INFINI_SANITIZE_FLAGS -fsanitize=${INFINI_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer -g1)
  target_compile_options(infini_core PUBLIC ${INFINI_SANITIZE_FLAGS})
  target_link_options(infini_core PUBLIC -fsanitize=${INFINI_SANITIZE})
endif()

# --- INFINI_FUZZ: libFuzzer targets over the loaders (tests/fuzz) -------------------------------------
# Only the sources the loaders and a session need, compiled with coverage and ASan + UBSan; LibTorch
# itself is not instrumented.
if(INFINI_FUZZ)
  set(INFINI_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
                        -fno-omit-frame-pointer -g1)
  add_library(infini_fuzz_core STATIC
    cmake/spm_dlmopen.cpp
    src/util/runtime.cpp
    src/util/thread_tuner.cpp
    src/util/json_text.cpp
    src/util/interrupt.cpp
    src/io/atomic_file.cpp
    src/io/safetensors.cpp
    src/io/model_dir.cpp
    src/model/config.cpp
    src/model/rope.cpp
    src/model/attention.cpp
    src/model/qk_conv.cpp
    src/model/block.cpp
    src/model/layers.cpp
    src/model/transformer.cpp
    src/routing/predictor.cpp
    src/routing/mixture_of_depths.cpp
    src/memory/state.cpp
    src/memory/compressive.cpp
    src/memory/knn.cpp
    src/data/documents.cpp
    src/data/passkey.cpp
    src/data/byte_tokenizer.cpp
    src/data/sentencepiece_tokenizer.cpp
    src/train/options.cpp
    src/train/adamw.cpp
    src/train/checkpoint.cpp
    src/infer/session.cpp
    src/infer/generate.cpp
    src/infer/decoder.cpp
    src/infer/prefill.cpp
    ${INFINI_KERNEL_SOURCES}
    src/server/requests.cpp
    src/server/session_store.cpp
  )
  target_include_directories(infini_fuzz_core PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(infini_fuzz_core PUBLIC ${TORCH_LIBRARIES} nlohmann_json::nlohmann_json fmt::fmt
                                                ${CMAKE_DL_LIBS} ${OpenMP_CXX_LIBRARIES})
  if(BLAS_FOUND)
    target_link_libraries(infini_fuzz_core PUBLIC BLAS::BLAS)
  endif()
  target_compile_options(infini_fuzz_core PUBLIC ${INFINI_FUZZ_FLAGS})
  target_link_options(infini_fuzz_core PUBLIC -fsanitize=address,undefined "LINKER:--wrap=dlopen")
  target_precompile_headers(infini_fuzz_core PUBLIC <torch/torch.h>)
  add_dependencies(infini_fuzz_core infini_spm)
  add_subdirectory(tests/fuzz)
endif()
