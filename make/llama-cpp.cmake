# Included right after llama.cpp's own project() call, through
# CMAKE_PROJECT_llama.cpp_INCLUDE (the Makefile's LLAMA_CMAKE), when
# llama-cpp-python is compiled for the embedded model.  llama-cpp-python
# forces llama.cpp's common library on, but its Python package loads only
# libllama and ggml (the common library is installed beside it, unused): it
# is half of the compile.  Off, as a cache value the option() then keeps.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
