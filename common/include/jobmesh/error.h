/* jobmesh error codes, shared by the broker, the SDKs and the wire.
 *
 * Every action returns 0 or one of these negative codes; jm_strerror()
 * gives its text. The numbers travel in ERROR replies, so they never change
 * meaning: new codes are only ever appended. */
#ifndef JOBMESH_ERROR_H
#define JOBMESH_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum jm_error {
	JM_OK = 0,
	JM_EINVAL = -1,        /* an argument or field is out of its allowed range */
	JM_ENOMEM = -2,        /* out of memory */
	JM_EPROTO = -3,        /* malformed message */
	JM_EVERSION = -4,      /* unsupported protocol or journal version */
	JM_ETOOBIG = -5,       /* payload or message over its size limit */
	JM_ENOTFOUND = -6,     /* no such job, batch or queue */
	JM_ESTALE = -7,        /* the lease was superseded: the job was requeued */
	JM_ETIMEDOUT = -8,     /* a wait ran out */
	JM_EIO = -9,           /* a read or write failed */
	JM_ECORRUPT = -10,     /* stored data failed its checksum or format check */
	JM_ECLOSED = -11,      /* the object was closed or is shutting down */
	JM_ETRANSPORT = -12,   /* the broker could not be reached */
	JM_ENOSPC = -13,       /* the journal cannot be written: disk full */
	JM_EBADNAME = -14,     /* a queue or type name breaks the naming rule */
	JM_ESTATE = -15,       /* the job is not in a state that allows this */
	JM_EUNSUPPORTED = -16, /* request type the broker does not know */
	JM_ELIMIT = -17,       /* a configured limit was reached */
	JM_EAUTH = -18,        /* no token presented, or one not recognised */
	JM_EFORBIDDEN = -19,   /* the token's role or queues do not allow this */
	JM_ENOTLEADER = -20,   /* this broker is a standby: the text ends with the leader's URL */
	JM_ENOSTANDBY = -21,   /* --ha-sync strict: no standby in sync, writes are refused */
};

/* Static text for a code; never NULL, also for unknown codes. */
const char *jm_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
