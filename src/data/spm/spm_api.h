// The C interface of libinfini_spm.so, the only code that touches SentencePiece.
//
// Why a separate library behind dlopen: Debian's libsentencepiece carries its own copy of
// protobuf-lite and exports its symbols, while LibTorch loads the full libprotobuf. Linked into one
// program, the two copies bind to each other's functions and the program crashes before main().
// Loaded with RTLD_LOCAL | RTLD_DEEPBIND, SentencePiece keeps to its own copy and LibTorch to its.
#pragma once

#include <cstddef>

extern "C" {

// Every function returns 0 on success; on failure it returns non-zero and writes a message to `err`.
// Buffers the library returns are released with infini_spm_release.
struct infini_spm_buffer {
  void* data;
  size_t size;
};

// Called by training for each input line; returns 0 when there are no more lines.
typedef int (*infini_spm_next_line)(void* context, const char** line, size_t* size);

typedef int (*infini_spm_load_fn)(const char* model, size_t size, void** processor, char* err, size_t err_size);
typedef void (*infini_spm_free_fn)(void* processor);
typedef int (*infini_spm_vocab_size_fn)(void* processor);
typedef int (*infini_spm_encode_fn)(void* processor, const char* text, size_t size, infini_spm_buffer* ids,
                                    char* err, size_t err_size);  // ids: int32 values
typedef int (*infini_spm_decode_fn)(void* processor, const int* ids, size_t count, infini_spm_buffer* text,
                                    char* err, size_t err_size);
typedef int (*infini_spm_serialize_fn)(void* processor, infini_spm_buffer* model);
typedef int (*infini_spm_train_fn)(const char* args, infini_spm_next_line next, void* context,
                                   infini_spm_buffer* model, char* err, size_t err_size);
typedef void (*infini_spm_release_fn)(infini_spm_buffer* buffer);

}  // extern "C"
