# Writes OUTPUT, a C++ source whose function NAME() returns the bytes of INPUT: a page the server
# ships inside its binary. Run as `cmake -DINPUT=... -DOUTPUT=... -DNAME=... -P EmbedText.cmake`.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${hex}")
string(LENGTH "${hex}" hex_length)
math(EXPR length "${hex_length} / 2")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by cmake/EmbedText.cmake; edit that file instead.\n"
  "#include <string_view>\n"
  "namespace infini::server {\n"
  "namespace { const char kBytes[] = {${bytes} 0}; }\n"
  "std::string_view ${NAME}() { return {kBytes, ${length}}; }\n"
  "}  // namespace infini::server\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
