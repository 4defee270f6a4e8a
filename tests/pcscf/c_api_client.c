/* A C caller of include/pcscf_turn.h, compiled as C11: proves the header is
 * C, and drives the whole lifecycle. c_api_test.cc runs it against a real
 * broker. Returns 0, or the number of the step that failed (the message in
 * err). */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pcscf_turn.h"

int pcscf_c_client_lifecycle(const char* broker, char* err, size_t err_len) {
  const char* uris[] = {"turn:127.0.0.1:3478?transport=udp", NULL};
  pcscf_turn_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.broker = broker;
  o.realm = "example.org";
  o.turn_uris = uris;
  o.issuer = "c-client";
  o.overlap_ms = 1;             /* revoke the old credential right after a refresh */
  o.reuse = -1;                 /* the default: reuse at re-REGISTER... */
  o.reuse_min_remaining_s = 60; /* ...while a minute is left */

  pcscf_turn* h = NULL;
  if (pcscf_turn_open(&o, &h, err, err_len) != PCSCF_TURN_OK || !h) return 1;
  if (!pcscf_turn_broker_reachable(h, 2000)) {
    snprintf(err, err_len, "broker not reachable");
    pcscf_turn_close(h);
    return 2;
  }

  /* Both ways of preparing the output struct: the initializer macro, or
   * zeroing it and setting struct_size. */
  pcscf_turn_credential first = PCSCF_TURN_CREDENTIAL_INIT;
  pcscf_turn_credential again = PCSCF_TURN_CREDENTIAL_INIT;
  pcscf_turn_credential fresh;
  memset(&fresh, 0, sizeof fresh);
  fresh.struct_size = sizeof fresh;
  int step = 0;
  if (pcscf_turn_issue(h, "sip:carol@example.org", "carol@example.org", 600, &first, err,
                       err_len) != PCSCF_TURN_OK) {
    step = 3;
  } else if (strlen(first.username) != 16 || strlen(first.password) != 24 ||
             strcmp(first.realm, "example.org") != 0 || first.reused != 0 ||
             strstr(first.header, first.password) == NULL || first.ttl_s < 599) {
    snprintf(err, err_len, "unexpected credential: %s", first.header);
    step = 4;
  } else if (pcscf_turn_issue(h, "sip:carol@example.org", "carol@example.org", 600, &again, err,
                              err_len) != PCSCF_TURN_OK) {
    step = 5;
  } else if (strcmp(again.username, first.username) != 0 || again.reused != 1) {
    snprintf(err, err_len, "re-REGISTER did not reuse");
    step = 6;
  } else if (pcscf_turn_refresh(h, first.username, 0, &fresh, err, err_len) != PCSCF_TURN_OK) {
    step = 7;
  } else if (strcmp(fresh.username, first.username) == 0) {
    snprintf(err, err_len, "refresh returned the same username");
    step = 8;
  } else if (pcscf_turn_revoke_username(h, fresh.username, "c test", err, err_len) !=
             PCSCF_TURN_OK) {
    step = 9;
  } else if (pcscf_turn_revoke_subscriber(h, "sip:carol@example.org", NULL, err, err_len) !=
             PCSCF_TURN_OK) {
    step = 10;
  }
  pcscf_turn_credential_clear(&first);
  pcscf_turn_credential_clear(&again);
  pcscf_turn_credential_clear(&fresh);
  pcscf_turn_credential_clear(&fresh); /* twice is safe */
  if (first.username != NULL || first.password != NULL) step = step ? step : 11;
  if (first.struct_size != sizeof first) step = step ? step : 12; /* kept */
  pcscf_turn_close(h);
  return step;
}

/* Shared-secret mode from C: `broker` has an active secret for example.org
 * (added by the caller); the handle receives it over Watch, then issues
 * without a broker call. Returns 0, or the step that failed. */
int pcscf_c_client_shared_secret(const char* broker, char* err, size_t err_len) {
  const char* uris[] = {"turn:127.0.0.1:3478?transport=udp", NULL};
  pcscf_turn_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  o.broker = broker;
  o.realm = "example.org";
  o.turn_uris = uris;
  o.issuer = "c-client";
  o.mode = "shared-secret";

  pcscf_turn* h = NULL;
  if (pcscf_turn_open(&o, &h, err, err_len) != PCSCF_TURN_OK || !h) return 1;
  pcscf_turn_credential c = PCSCF_TURN_CREDENTIAL_INIT;
  pcscf_turn_status s = PCSCF_TURN_UNAVAILABLE;
  /* UNAVAILABLE until the secret has arrived: up to 10 s. */
  for (int i = 0; i < 200 && s == PCSCF_TURN_UNAVAILABLE; ++i) {
    s = pcscf_turn_issue(h, "sip:carol@example.org", NULL, 600, &c, err, err_len);
    if (s == PCSCF_TURN_UNAVAILABLE) {
      struct timespec t = {0, 50 * 1000 * 1000};
      nanosleep(&t, NULL);
    }
  }
  int step = 0;
  if (s != PCSCF_TURN_OK) {
    step = 2;
  } else if (strchr(c.username, ':') == NULL || strlen(strchr(c.username, ':') + 1) != 22 ||
             strlen(c.password) != 28 || strstr(c.username, "carol") != NULL ||
             strstr(c.header, c.username) == NULL || c.ttl_s < 599) {
    snprintf(err, err_len, "unexpected credential: %s", c.header);
    step = 3;
  } else if (pcscf_turn_revoke_subscriber(h, "sip:carol@example.org", "de-REGISTER", err,
                                          err_len) != PCSCF_TURN_OK) {
    step = 4;
  }
  pcscf_turn_credential_clear(&c);
  pcscf_turn_close(h);
  return step;
}
