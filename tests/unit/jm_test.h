/* Shared helpers for every cmocka test, unit and integration (the one home
 * of assert_jm_ok: no test defines its own) (nng's NUTS_PASS in spirit): an
 * assertion on a jobmesh return code prints the expression and what the code
 * means, so a failing run says why without a debugger.
 *
 * Include it before anything else: with UNIT_TESTING, cmocka.h turns malloc
 * and free into its leak-checking versions, which breaks a <stdlib.h> that
 * comes after it, so the standard headers are pulled in here first. */
#ifndef JM_TEST_H
#define JM_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jobmesh/error.h>

#include "err.h"

/* expr must return 0; otherwise fails with the code and jm_strerror(). */
#define assert_jm_ok(expr)                                                                         \
	do {                                                                                       \
		int jm_test_rc_ = (expr);                                                          \
		if (jm_test_rc_ != 0)                                                              \
			fail_msg("%s returned %d (%s)", #expr, jm_test_rc_,                        \
			         jm_strerror(jm_test_rc_));                                        \
	} while (0)

/* Like assert_jm_ok, but prints the message a struct jm_err collected; err
 * (which may be NULL) is cleared first so a stale message never shows. */
#define assert_jm_ok_err(expr, err)                                                                \
	do {                                                                                       \
		jm_err_clear(err);                                                                 \
		int jm_test_rc_ = (expr);                                                          \
		if (jm_test_rc_ != 0)                                                              \
			fail_msg("%s returned %d (%s): %s", #expr, jm_test_rc_,                    \
			         jm_strerror(jm_test_rc_), jm_err_text(err));                      \
	} while (0)

/* expr must return exactly code. */
#define assert_jm_code(expr, code)                                                                 \
	do {                                                                                       \
		int jm_test_rc_ = (expr);                                                          \
		int jm_test_want_ = (code);                                                        \
		if (jm_test_rc_ != jm_test_want_)                                                  \
			fail_msg("%s returned %d (%s), expected %d (%s)", #expr, jm_test_rc_,      \
			         jm_strerror(jm_test_rc_), jm_test_want_,                          \
			         jm_strerror(jm_test_want_));                                      \
	} while (0)

#endif
