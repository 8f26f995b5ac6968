# cmake -DIN=file -DOUT=file.c -P embed.cmake: writes a C file defining
# jm_openapi_json (the bytes of IN, NUL-terminated) and its length.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR byte_len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}
     "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
     "const unsigned char jm_openapi_json[] = {${bytes} 0};\n"
     "const unsigned long jm_openapi_json_len = ${byte_len};\n")
