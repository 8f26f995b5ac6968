/* Hexadecimal digits, read the one way every parser here needs them:
 * percent-escapes in URLs (broker/http_query.c) and sha256 digests in the
 * auth file (broker/auth.c). Upper and lower case alike; no allocation. */
#ifndef JM_COMMON_HEX_H
#define JM_COMMON_HEX_H

/* The value 0-15 of one hex digit (0-9, a-f, A-F), or -1 for any other
 * character. */
int jm_hex_digit(char c);

#endif
