# Included right after llama.cpp's own project() call, through
# CMAKE_PROJECT_llama.cpp_INCLUDE (the Makefile's LLAMA_CMAKE), when
# llama-cpp-python is compiled for the embedded model.
#
# llama-cpp-python forces llama.cpp's common library on, but its Python
# package loads only libllama and ggml (the common library is installed
# beside it, unused), and it was half of the compile: off, as a cache value
# the option() then keeps.
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
# libllama's own code (loading, the graph, sampling, the vocabulary) is not
# where the time of a token goes: ggml's kernels are, and they keep -O3.
# At -O1 it compiles in two thirds of the time, and gives the same answers
# and speed (docs/providers.md: the embedded model's build).
cmake_language(DEFER CALL target_compile_options llama PRIVATE -O1)
