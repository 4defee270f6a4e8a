// The WIC flow, step by step, written on the page for a person and kept in
// window.wic for tools (examples/wic/drive.js):
//
//   1. connect to the eP-CSCF over SIP/WebSocket and REGISTER (JsSIP);
//   2. read the TURN-Credential header of the 200 OK (username and expiry
//      are shown, the password never);
//   3. RTCPeerConnection with that credential, relay only: a relay candidate
//      from the TURN server, or the icecandidateerror it reported;
//   4. check=expired: wait until the credential expired, and show that the
//      TURN server now refuses it (401);
//   5. de-REGISTER;
//   6. check=revoked (default): show that the TURN server now refuses the
//      credential (401): de-REGISTER revoked it.
import {
  TURN_CREDENTIAL_HEADER, describeCredential, parseTurnCredential, toIceServer,
} from './turn-credential.js';

const params = new URLSearchParams(window.location.search);
const config = {
  ws: params.get('ws') || `ws://${window.location.hostname || '127.0.0.1'}:8088`,
  impu: params.get('impu') || 'sip:alice@example.org',
  impi: params.get('impi') || '',
  password: params.get('password') || '',
  expires: Number(params.get('expires') || 600),
  check: params.get('check') || 'revoked',
  gatherTimeoutMs: Number(params.get('gather_timeout_ms') || 10000),
  revokeGraceMs: Number(params.get('revoke_grace_ms') || 500),
};

// What tools read: every step, then done with the outcome.
const wic = { config: { ...config, password: config.password ? '(set)' : '' }, steps: [], done: false, ok: false };
window.wic = wic;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// status: ok, fail or info. detail: extra lines for the page.
function step(name, status, text, detail = '', data = {}) {
  wic.steps.push({ name, status, text, detail, ...data, at: Date.now() });
  const li = el('li', status);
  li.dataset.step = name;
  li.append(el('span', 'mark', { ok: '✓', fail: '✗', info: '•' }[status] || '•'), el('span', 'text', text));
  if (detail) li.append(el('span', 'detail', detail));
  document.getElementById('steps').append(li);
}

function finish(ok, text) {
  wic.ok = ok;
  wic.done = true;
  const s = document.getElementById('summary');
  s.className = ok ? 'ok' : 'fail';
  s.textContent = text;
  document.getElementById('again').hidden = false;
}

// Waits for the first of `events` on a JsSIP object; resolves [name, event].
function once(target, events, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${what} within ${timeoutMs} ms`)), timeoutMs);
    for (const name of events) {
      target.once(name, (e) => { clearTimeout(timer); resolve([name, e]); });
    }
  });
}

// One relay-only RTCPeerConnection with `iceServer`: gathers until
// complete (or the timeout) and closes. Returns the relay candidates and
// the icecandidateerror events.
async function gatherRelay(iceServer, timeoutMs) {
  const pc = new RTCPeerConnection({ iceServers: [iceServer], iceTransportPolicy: 'relay' });
  const result = { relay: [], errors: [], finished: 'timeout' };
  const finished = new Promise((resolve) => {
    const timer = setTimeout(() => resolve('timeout'), timeoutMs);
    const complete = () => { clearTimeout(timer); resolve('complete'); };
    pc.addEventListener('icecandidate', (e) => {
      if (!e.candidate) { complete(); return; }
      if (e.candidate.type === 'relay' || / typ relay /.test(e.candidate.candidate)) {
        result.relay.push({
          candidate: e.candidate.candidate,
          address: e.candidate.address,
          port: e.candidate.port,
          protocol: e.candidate.protocol,
        });
      }
    });
    pc.addEventListener('icecandidateerror', (e) => {
      result.errors.push({ code: e.errorCode, text: e.errorText, url: e.url });
    });
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') complete();
    });
  });
  try {
    pc.createDataChannel('wic');  // something to negotiate, so ICE gathers
    await pc.setLocalDescription(await pc.createOffer());
    result.finished = await finished;
  } finally {
    pc.close();
  }
  return result;
}

function describeErrors(errors) {
  return errors.map((e) => `icecandidateerror ${e.code} ${e.text || ''} (${e.url})`).join('\n');
}

// A step for a gather whose credential the TURN server should accept.
async function expectRelay(iceServer) {
  const r = await gatherRelay(iceServer, config.gatherTimeoutMs);
  if (r.relay.length) {
    const c = r.relay[0];
    step('relay', 'ok', `relay candidate gathered: ${c.address}:${c.port} (${c.protocol})`,
      r.relay.map((x) => x.candidate).join('\n'), { relay: r.relay, errors: r.errors });
    return true;
  }
  step('relay', 'fail', `no relay candidate (${r.finished})`,
    describeErrors(r.errors) || 'the TURN server did not answer', { relay: [], errors: r.errors });
  return false;
}

// A step for a gather whose credential the TURN server should refuse: no
// relay candidate and an icecandidateerror 401.
async function expectRefused(name, why, iceServer) {
  const r = await gatherRelay(iceServer, config.gatherTimeoutMs);
  const refused = r.errors.some((e) => e.code === 401);
  const data = { relay: r.relay, errors: r.errors };
  if (!r.relay.length && refused) {
    step(name, 'ok', `a new RTCPeerConnection with the ${why} credential: refused by the TURN server (401), no relay candidate`,
      describeErrors(r.errors), data);
    return true;
  }
  step(name, 'fail', r.relay.length
    ? `a new RTCPeerConnection with the ${why} credential: the TURN server still accepts it (relay ${r.relay[0].address}:${r.relay[0].port})`
    : `no relay candidate, but no 401 either (${r.finished})`, describeErrors(r.errors), data);
  return false;
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function makeUA(JsSIP) {
  return new JsSIP.UA({
    sockets: [new JsSIP.WebSocketInterface(config.ws)],
    uri: config.impu,
    authorization_user: config.impi || undefined,
    password: config.password || undefined,
    register: false,
    register_expires: config.expires,
    session_timers: false,
    user_agent: `turnbroker-wic JsSIP/${JsSIP.version}`,
    connection_recovery_min_interval: 2,
    connection_recovery_max_interval: 4,
  });
}

// 1. WebSocket and REGISTER: the 200 OK, or null after a failed step.
async function register(ua) {
  const connected = once(ua, ['connected', 'disconnected'], 5000, `the WebSocket ${config.ws}`);
  ua.start();
  const [how, ce] = await connected;
  if (how !== 'connected') {
    step('connected', 'fail', `cannot connect to ${config.ws}`, ce && ce.error ? String(ce.error) : '');
    return null;
  }
  step('connected', 'ok', `WebSocket open: ${config.ws}`);
  const registered = once(ua, ['registered', 'registrationFailed'], 10000, 'REGISTER');
  ua.register();
  const [res, re] = await registered;
  const r = re.response;
  if (res !== 'registered') {
    step('registered', 'fail', `REGISTER failed: ${r ? `${r.status_code} ${r.reason_phrase}` : re.cause}`);
    return null;
  }
  step('registered', 'ok', `registered as ${config.impu} (${r.status_code} ${r.reason_phrase})`);
  return r;
}

// 2. The credential of the 200 OK, or null after a failed step.
function readCredential(response) {
  const header = response.getHeader(TURN_CREDENTIAL_HEADER);
  if (!header) {
    step('credential', 'fail', `the 200 OK carries no ${TURN_CREDENTIAL_HEADER} header`,
      'the eP-CSCF could not get one (agent or broker down, and its policy registers without)');
    return null;
  }
  try {
    const credential = parseTurnCredential(header);
    const shown = describeCredential(credential);
    step('credential', 'ok', `TURN credential received: username ${shown.username}, expires ${shown.expires} (ttl ${shown.ttl} s)`,
      `urls ${shown.urls.join(' ')}\npassword (not shown)`, { credential: shown });
    return credential;
  } catch (err) {
    step('credential', 'fail', `unusable ${TURN_CREDENTIAL_HEADER} header`, err.message);
    return null;
  }
}

// 5. de-REGISTER; true when the registrar confirmed it.
async function unregister(ua) {
  const unregistered = once(ua, ['unregistered'], 10000, 'de-REGISTER');
  ua.unregister();
  const [, ue] = await unregistered;
  if (ue.cause) {
    const r = ue.response;
    step('unregistered', 'fail', `de-REGISTER failed: ${r ? `${r.status_code} ${r.reason_phrase}` : ue.cause}`);
    return false;
  }
  step('unregistered', 'ok', 'unregistered (de-REGISTER answered 200)');
  return true;
}

async function run() {
  const JsSIP = window.JsSIP;
  document.getElementById('config').textContent =
    `ws ${config.ws}  ·  IMPU ${config.impu}${config.impi ? `  ·  IMPI ${config.impi}` : ''}  ·  check ${config.check}`;
  if (!JsSIP) throw new Error('JsSIP did not load (vendor/jssip.min.js)');
  if (!['revoked', 'expired', 'none'].includes(config.check)) {
    throw new Error(`check=${config.check}: expected revoked, expired or none`);
  }
  const ua = makeUA(JsSIP);
  try {
    const response = await register(ua);
    if (!response) return false;
    let ok = false;
    let credential = null;
    const receivedAt = Date.now();
    try {
      credential = readCredential(response);
      if (credential) {
        // 3. a relay candidate.
        ok = await expectRelay(toIceServer(credential));
        // 4. after its expiry (the TURN side's Redis drops the key then).
        // From `ttl`, relative to the 200 OK, not from `expires_at`: a
        // browser's clock may be off. ttl and expires_at are rounded down
        // to whole seconds, hence the extra second.
        if (config.check === 'expired') {
          const waitMs = Math.max(0, receivedAt + (credential.ttl + 1) * 1000 + 1000 - Date.now());
          step('waiting', 'info', `waiting ${(waitMs / 1000).toFixed(1)} s for the credential to expire`);
          await sleep(waitMs);
          ok = (await expectRefused('expired', 'expired', toIceServer(credential))) && ok;
        }
      }
    } finally {
      // 5. de-REGISTER, whatever happened since REGISTER.
      ok = (await unregister(ua)) && ok;
    }
    // 6. de-REGISTER revoked the credential.
    if (credential && config.check === 'revoked') {
      await sleep(config.revokeGraceMs);
      ok = (await expectRefused('revoked', 'revoked', toIceServer(credential))) && ok;
    }
    return ok;
  } finally {
    ua.stop();
  }
}

async function start() {
  document.getElementById('steps').replaceChildren();
  Object.assign(wic, { steps: [], done: false, ok: false });
  document.getElementById('again').hidden = true;
  const s = document.getElementById('summary');
  s.className = 'pending';
  s.textContent = 'running…';
  try {
    const ok = await run();
    finish(ok, ok ? 'the whole flow worked' : 'the flow stopped: see the step marked ✗');
  } catch (err) {
    step('error', 'fail', err.message);
    finish(false, 'the flow stopped: see the step marked ✗');
  }
}

document.getElementById('again').addEventListener('click', start);
start();
