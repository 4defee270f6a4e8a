/*
 * pcscf_turn.h: the stable C ABI of libpcscf_turn, for SIP servers written in
 * C (e.g. a Kamailio or OpenSIPS module). It issues TURN credentials for
 * registrations, publishes them to turn-broker and revokes them.
 *
 * Rules of this ABI:
 *   - Every function returns a pcscf_turn_status; 0 is success. The codes
 *     are the gRPC / absl status codes, so they never change.
 *   - Errors come with a message in a caller-owned buffer (`err`, `err_len`;
 *     both may be 0/NULL). The message names the field at fault.
 *   - Every struct crossing the ABI starts with `struct_size`, which the
 *     caller sets to sizeof(the struct) as its header declares it: fields
 *     are only ever appended, and the library reads (options) or writes
 *     (pcscf_turn_credential) only the fields both versions know. A
 *     struct_size too small for the first version is INVALID_ARGUMENT.
 *   - A handle is thread-safe: any number of SIP worker threads may call it
 *     at once; concurrent publishes share broker calls (batching).
 *   - Calls that talk to the broker block the calling thread until the
 *     broker acknowledged or the configured timeout passed.
 *   - Passwords are only ever in a pcscf_turn_credential the caller owns;
 *     clear it with pcscf_turn_credential_clear().
 */
#ifndef PCSCF_TURN_H_
#define PCSCF_TURN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PCSCF_TURN_ABI_VERSION 1

typedef enum pcscf_turn_status {
  PCSCF_TURN_OK = 0,
  PCSCF_TURN_INVALID_ARGUMENT = 3, /* a field is wrong; the message names it */
  PCSCF_TURN_DEADLINE_EXCEEDED = 4,
  PCSCF_TURN_NOT_FOUND = 5, /* refresh of a username not held */
  PCSCF_TURN_ALREADY_EXISTS = 6,
  PCSCF_TURN_PERMISSION_DENIED = 7, /* the broker refused this client */
  PCSCF_TURN_RESOURCE_EXHAUSTED = 8,
  PCSCF_TURN_FAILED_PRECONDITION = 9,
  PCSCF_TURN_INTERNAL = 13,
  PCSCF_TURN_UNAVAILABLE = 14, /* broker unreachable: nothing was handed out */
  PCSCF_TURN_UNAUTHENTICATED = 16
  /* Any other gRPC status code may appear as itself; treat it as a failure. */
} pcscf_turn_status;

typedef struct pcscf_turn pcscf_turn; /* opaque handle */

typedef struct pcscf_turn_options {
  size_t struct_size;           /* sizeof(pcscf_turn_options) */
  const char* broker;           /* "HOST:PORT" of turn-broker; required */
  const char* realm;            /* TURN realm; required */
  const char* const* turn_uris; /* NULL-terminated, at least one
                                   ("turn:host:3478?transport=udp") */
  const char* issuer;           /* this eP-CSCF instance; NULL: none */
  const char* tls_cert;         /* PEM files for mTLS; all NULL: plaintext */
  const char* tls_key;
  const char* tls_ca;
  int64_t default_ttl_s;         /* 0: 3600 */
  int64_t min_ttl_s;             /* 0: 60 */
  int64_t max_ttl_s;             /* 0: 86400 */
  int32_t reuse;                 /* re-REGISTER reuses a credential: 1 yes, 0 no
                                    (rotate every time), -1 default (yes) */
  int64_t reuse_min_remaining_s; /* reuse only with this much left; 0: 600 */
  int64_t overlap_ms;            /* old credential revoked this long after a
                                    refresh/rotation; 0: 30000; <0: never */
  int64_t publish_timeout_ms;    /* 0: 800 */
  int64_t revoke_timeout_ms;     /* 0: 800 */
  /* Added in 1.1.0 (read only when struct_size covers it): */
  const char* mode; /* "per-credential" (NULL: the default): each credential's
                       key is published to the broker before it is handed out;
                       "shared-secret": minted locally with the realm's active
                       shared secret, which the handle watches from the broker
                       (its certificate needs the minter role); no broker call
                       per issue, UNAVAILABLE until a secret is active
                       (docs/approach1.md) */
} pcscf_turn_options;

/* One issued credential, filled by pcscf_turn_issue/refresh; release its
 * memory with pcscf_turn_credential_clear() (which also wipes the password).
 * Before the first call, zero it and set struct_size (or initialize it with
 * PCSCF_TURN_CREDENTIAL_INIT); the library writes only the fields within
 * struct_size that it knows, and never changes struct_size, so the struct
 * can be cleared and filled again. */
typedef struct pcscf_turn_credential {
  size_t struct_size; /* sizeof(pcscf_turn_credential); set by the caller */
  char* username;
  char* password;
  char* realm;
  char* header;          /* TURN-Credential header value
                            (docs/sip-header.md), without the name */
  int64_t expires_at_ms; /* absolute, Unix ms */
  int64_t ttl_s;         /* seconds left */
  int32_t reused;        /* 1: handed out again at re-REGISTER */
} pcscf_turn_credential;

/* pcscf_turn_credential c = PCSCF_TURN_CREDENTIAL_INIT; (every field, so
 * -Wmissing-field-initializers stays quiet; grows with the struct) */
#define PCSCF_TURN_CREDENTIAL_INIT \
  { sizeof(pcscf_turn_credential), NULL, NULL, NULL, NULL, 0, 0, 0 }

/* "1.1.0": the library version. */
const char* pcscf_turn_version(void);
/* The header name, "TURN-Credential". */
const char* pcscf_turn_header_name(void);

/* Creates a handle (does not wait for the broker). On error *out is NULL. */
pcscf_turn_status pcscf_turn_open(const pcscf_turn_options* options, pcscf_turn** out, char* err,
                                  size_t err_len);
/* Waits for calls in flight, then frees. NULL is a no-op. */
void pcscf_turn_close(pcscf_turn* handle);

/* A credential for a registration of `impu` (IMPU; required). `impi`, the
 * identity the SIP server authenticated, may be NULL. ttl_s 0: the default.
 * Reuses the current one at re-REGISTER when the policy allows and `impi` is
 * the one it was issued to (NULL matches only NULL): call this only after the
 * REGISTER was authenticated. On success fills *out (clear it later); out->struct_size
 * must be set (INVALID_ARGUMENT naming out.struct_size otherwise). */
pcscf_turn_status pcscf_turn_issue(pcscf_turn* handle, const char* impu, const char* impi,
                                   int64_t ttl_s, pcscf_turn_credential* out, char* err,
                                   size_t err_len);
/* A new credential replacing `username`; the old one is revoked after the
 * overlap. ttl_s 0: the old one's lifetime. */
pcscf_turn_status pcscf_turn_refresh(pcscf_turn* handle, const char* username, int64_t ttl_s,
                                     pcscf_turn_credential* out, char* err, size_t err_len);
/* Revokes one username, or every credential of one IMPU (de-REGISTER,
 * registration expiry). `reason` may be NULL. On UNAVAILABLE the revocation
 * is retried in the background. */
pcscf_turn_status pcscf_turn_revoke_username(pcscf_turn* handle, const char* username,
                                             const char* reason, char* err, size_t err_len);
pcscf_turn_status pcscf_turn_revoke_subscriber(pcscf_turn* handle, const char* impu,
                                               const char* reason, char* err, size_t err_len);

/* 1 if the broker answered a status request within timeout_ms, else 0. */
int pcscf_turn_broker_reachable(pcscf_turn* handle, int64_t timeout_ms);

/* Frees and wipes what a successful issue/refresh put in *credential and
 * zeroes its fields (struct_size is kept); safe on a zeroed struct, on one
 * a call failed to fill, and twice. */
void pcscf_turn_credential_clear(pcscf_turn_credential* credential);

#ifdef __cplusplus
}
#endif

#endif /* PCSCF_TURN_H_ */
