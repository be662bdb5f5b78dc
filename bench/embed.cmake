# Writes the Python baseline script into a C++ source file, so that the engine
# carries its own copy (cmake -DIN=<script> -DOUT=<file.cpp> -P embed.cmake).
file(READ "${IN}" text)
string(FIND "${text}" ")TFPY\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${IN} contains the raw-string delimiter )TFPY\"")
endif()
file(WRITE "${OUT}.tmp"
  "// Generated from bench/python/pool_baseline.py by bench/embed.cmake. Do not edit.\n"
  "#include \"engine.hpp\"\n"
  "namespace taskfarm::bench::detail {\n"
  "const char* const kPoolBaselinePy = R\"TFPY(${text})TFPY\";\n"
  "}\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
