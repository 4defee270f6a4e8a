// The TURN-Credential SIP header (docs/sip-header.md): what the eP-CSCF puts
// into the 200 OK of a REGISTER, and how the WIC turns it into an
// RTCIceServer. Runs unchanged in the browser and in Node (node --test).
//
//   TURN-Credential: username="Yc3kV0aQxJ2m8PLq";password="...";ttl=3600;
//     expires_at=1764302400;urls="turn:turn.example.org:3478?transport=udp"
//
// Parameters are separated by ';', quoted values carry no quote, backslash,
// ';', ',' or space, `urls` is a space-separated list, unknown parameters are
// ignored (the same rules as ParseTurnCredentialHeader in
// pcscf-plugin/turnbroker/pcscf/sip_header.h).

export const TURN_CREDENTIAL_HEADER = 'TURN-Credential';

// Thrown for a header the WIC cannot use; `field` names the parameter.
export class TurnCredentialError extends Error {
  constructor(field, problem) {
    super(`TURN-Credential ${field}: ${problem}`);
    this.name = 'TurnCredentialError';
    this.field = field;
  }
}

function unquote(v) {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function nonNegativeInteger(v, field) {
  if (!/^[0-9]+$/.test(v)) throw new TurnCredentialError(field, 'is not a number');
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new TurnCredentialError(field, 'is too large');
  return n;
}

const URL_SCHEME = /^(turns?|stuns?):[^?/]/i;

// Parses a header value (without "TURN-Credential: ").
// Returns {username, password, ttl, expiresAt (Unix seconds), urls: [...]};
// throws TurnCredentialError naming the parameter that is missing or bad.
export function parseTurnCredential(value) {
  if (typeof value !== 'string') throw new TurnCredentialError('header', 'is missing');
  const found = {};
  for (const part of value.split(';')) {
    const param = part.trim();
    if (!param) continue;
    const eq = param.indexOf('=');
    const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
    found[name] = eq < 0 ? '' : unquote(param.slice(eq + 1).trim());
  }
  const credential = {};
  for (const field of ['username', 'password']) {
    if (!found[field]) throw new TurnCredentialError(field, 'is missing');
    credential[field] = found[field];
  }
  if (!('ttl' in found)) throw new TurnCredentialError('ttl', 'is missing');
  credential.ttl = nonNegativeInteger(found.ttl, 'ttl');
  if (!('expires_at' in found)) throw new TurnCredentialError('expires_at', 'is missing');
  credential.expiresAt = nonNegativeInteger(found.expires_at, 'expires_at');
  credential.urls = (found.urls || '').split(' ').filter((u) => u);
  if (!credential.urls.length) throw new TurnCredentialError('urls', 'is missing');
  credential.urls.forEach((u, i) => {
    if (!URL_SCHEME.test(u)) {
      throw new TurnCredentialError(`urls[${i}]`, 'must be turn:, turns:, stun: or stuns: and a host');
    }
  });
  return credential;
}

// The RTCIceServer for RTCPeerConnection's iceServers.
export function toIceServer(credential) {
  return { urls: credential.urls, username: credential.username, credential: credential.password };
}

// What a page may show of a credential: everything but the password.
export function describeCredential(credential) {
  return {
    username: credential.username,
    ttl: credential.ttl,
    expiresAt: credential.expiresAt,
    expires: new Date(credential.expiresAt * 1000).toISOString(),
    urls: credential.urls,
  };
}
