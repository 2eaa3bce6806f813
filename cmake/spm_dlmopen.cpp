// Sanitizer and fuzz builds only (cmake/Reliability.cmake says why): linked with -Wl,--wrap=dlopen,
// so every dlopen call in infini's own code lands here. A request for RTLD_DEEPBIND, which only the
// SentencePiece loader makes, is served by dlmopen into a new link namespace instead; everything
// else goes to the real dlopen (the sanitizer runtime's interceptor, where there is one).
#include <dlfcn.h>

extern "C" void* __real_dlopen(const char* file, int flags);

extern "C" void* __wrap_dlopen(const char* file, int flags) {
  if (file != nullptr && (flags & RTLD_DEEPBIND) != 0) return ::dlmopen(LM_ID_NEWLM, file, flags & ~RTLD_DEEPBIND);
  return __real_dlopen(file, flags);
}
