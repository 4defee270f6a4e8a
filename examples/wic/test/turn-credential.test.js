// The WIC's TURN-Credential parser: node --test (no packages needed).
// The same header syntax as pcscf-plugin's ParseTurnCredentialHeader
// (tests/pcscf/sip_header_test.cc).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  TurnCredentialError, describeCredential, parseTurnCredential, toIceServer,
} from '../turn-credential.js';

const HEADER = 'username="Yc3kV0aQxJ2m8PLq";password="pA55-w_rd";ttl=3600;'
  + 'expires_at=1764302400;urls="turn:turn.example.org:3478?transport=udp turns:turn.example.org:5349?transport=tcp"';

function fieldOf(fn) {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TurnCredentialError, `not a TurnCredentialError: ${err}`);
    return err.field;
  }
  return assert.fail('no error');
}

test('parses every parameter of the header', () => {
  assert.deepEqual(parseTurnCredential(HEADER), {
    username: 'Yc3kV0aQxJ2m8PLq',
    password: 'pA55-w_rd',
    ttl: 3600,
    expiresAt: 1764302400,
    urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349?transport=tcp'],
  });
});

test('maps the credential to one RTCIceServer', () => {
  assert.deepEqual(toIceServer(parseTurnCredential(HEADER)), {
    urls: ['turn:turn.example.org:3478?transport=udp', 'turns:turn.example.org:5349?transport=tcp'],
    username: 'Yc3kV0aQxJ2m8PLq',
    credential: 'pA55-w_rd',
  });
});

test('what the page shows has no password', () => {
  const shown = describeCredential(parseTurnCredential(HEADER));
  assert.equal(shown.username, 'Yc3kV0aQxJ2m8PLq');
  assert.equal(shown.expires, '2025-11-28T04:00:00.000Z');
  assert.ok(!JSON.stringify(shown).includes('pA55-w_rd'));
});

test('accepts any order, spaces around parameters, unquoted values, unknown parameters', () => {
  const c = parseTurnCredential(' urls = turn:127.0.0.1:3478 ; ttl=5;x-future="1";'
    + 'expires_at=10 ;PASSWORD=p;username=u;');
  assert.deepEqual(c, { username: 'u', password: 'p', ttl: 5, expiresAt: 10, urls: ['turn:127.0.0.1:3478'] });
});

test('names the parameter that is missing', () => {
  for (const name of ['username', 'password', 'ttl', 'expires_at', 'urls']) {
    const without = HEADER.split(';').filter((p) => !p.startsWith(`${name}=`)).join(';');
    assert.equal(fieldOf(() => parseTurnCredential(without)), name);
  }
  assert.equal(fieldOf(() => parseTurnCredential('')), 'username');
  assert.equal(fieldOf(() => parseTurnCredential(undefined)), 'header');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('username="Yc3kV0aQxJ2m8PLq"', 'username=""'))), 'username');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace(/urls="[^"]*"/, 'urls="  "'))), 'urls');
});

test('names a number that is not one', () => {
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('ttl=3600', 'ttl=-1'))), 'ttl');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('ttl=3600', 'ttl=1h'))), 'ttl');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('expires_at=1764302400', 'expires_at='))), 'expires_at');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('expires_at=1764302400', 'expires_at=99999999999999999999'))), 'expires_at');
});

test('refuses a URL that is not TURN or STUN', () => {
  const bad = HEADER.replace('turns:turn.example.org', 'https://turn.example.org');
  assert.equal(fieldOf(() => parseTurnCredential(bad)), 'urls[1]');
  assert.equal(fieldOf(() => parseTurnCredential(HEADER.replace('turn:turn.example.org', 'turn:?x'))), 'urls[0]');
});

test('parses an approach-1 credential: a colon in the username, base64 padding in the password', () => {
  // pcscf-turn-agent --mode=shared-secret (docs/approach1.md): the same header.
  const header = 'username="1796560354:c3Jgcp-qH5HNd6_mOhRuxQ";password="jfbuYIRExN5mLhjz+GTw/kJGP4Y=";'
    + 'ttl=600;expires_at=1796560354;urls="turn:127.0.0.1:3478?transport=udp"';
  const c = parseTurnCredential(header);
  assert.equal(c.username, '1796560354:c3Jgcp-qH5HNd6_mOhRuxQ');
  assert.equal(c.password, 'jfbuYIRExN5mLhjz+GTw/kJGP4Y=');
  assert.equal(c.expiresAt, 1796560354);
  assert.equal(toIceServer(c).credential, 'jfbuYIRExN5mLhjz+GTw/kJGP4Y=');
});
