// Anneal web UI: fleet, queue and supply refreshed live; a tenant's jobs streamed over WebSocket.
'use strict';
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined) ? '–' : Number(n).toLocaleString('en-US');
const units = (n) => (n === null || n === undefined) ? '–' : (Number(n) / 1e6).toLocaleString('en-US', { maximumFractionDigits: 6 });
let apiKey = sessionStorage.getItem('anneal.apiKey') || '';
let ws = null;
/** The connected key is a read-only one (the WebSocket's authenticated message says so). */
let readOnlySession = false;
const jobs = new Map();
// states only move forward in the table: a late REST answer must not undo a newer event
const RANK = { QUEUED: 0, PREEMPTED: 0, PLACED: 1, RUNNING: 2, SUCCEEDED: 3, FAILED: 3, CANCELLED: 3, SETTLED: 4 };
function merge(id, update) {
  const cur = jobs.get(id) || { id };
  const next = Object.assign({}, cur, update);
  if (cur.state && update.state && RANK[update.state] < RANK[cur.state]) next.state = cur.state;
  jobs.set(id, next);
}

async function getJson(path, auth, method = 'GET') {
  const headers = auth && apiKey ? { Authorization: 'Bearer ' + apiKey } : {};
  const r = await fetch(path, { method, headers });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(body.detail || body.title || r.statusText), { problem: body, status: r.status });
  return body;
}

async function refreshFleet() {
  try {
    const f = await getJson('/api/v1/gpus');
    $('gpus-free').textContent = fmt(f.free);
    $('gpus-total').textContent = fmt(f.total);
    $('queued').textContent = fmt(f.queued);
    $('running').textContent = fmt(f.running);
    $('classes').textContent = Object.entries(f.byClass).map(([c, v]) => `${c}: ${v.free}/${v.total} free`).join(' · ');
    $('sim-badge').hidden = !f.gpus.some((g) => g.simulated);
    const grid = $('gpu-grid');
    grid.replaceChildren(...f.gpus.slice(0, 2048).map((g) => {
      const d = document.createElement('div');
      d.className = 'gpu' + (g.quarantined ? ' out' : g.free ? '' : ' used') + (g.simulated ? ' sim' : '');
      d.title = `${g.nodeId}/${g.index} ${g.gpuClass}${g.simulated ? ' (simulated)' : ''}${labelText(g.labels) ? ' [' + labelText(g.labels) + ']' : ''} — `
        + (g.quarantined ? 'quarantined: ' + (g.quarantineReason || 'repeated failures')
          : g.free ? 'free' : 'running ' + g.jobId);
      return d;
    }));
    const labelled = new Map();
    f.gpus.forEach((g) => { if (labelText(g.labels)) labelled.set(g.nodeId, labelText(g.labels)); });
    $('node-labels').textContent = labelled.size === 0 ? ''
      : 'Node labels (jobs asking for them run only there): ' + [...labelled].slice(0, 32).map(([n, l]) => `${n}: ${l}`).join(' · ');
    await showNodeKeys([...new Set(f.gpus.map((g) => g.nodeId))].slice(0, 16));
    $('health').textContent = 'live';
    $('health').className = 'pill ok';
  } catch (e) {
    $('health').textContent = 'unreachable';
    $('health').className = 'pill bad';
  }
}

/** Labels as one writes them: "tier=certified, region=eu" ('' for none). */
function labelText(labels) {
  return Object.entries(labels || {}).map(([k, v]) => `${k}=${v}`).join(', ');
}

/** "tier=certified, region=eu" → {tier: 'certified', region: 'eu'}; the server checks names and values. */
function parseLabels(text) {
  const out = {};
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p)) {
    const eq = part.indexOf('=');
    out[eq < 0 ? part : part.slice(0, eq).trim()] = eq < 0 ? '' : part.slice(eq + 1).trim();
  }
  return out;
}

/** node → {at, text}: each node's signing keys, read again after 30 s (a rotation shows then). */
const nodeKeys = new Map();

async function showNodeKeys(nodes) {
  const lines = [];
  for (const node of nodes) {
    let known = nodeKeys.get(node);
    if (!known || Date.now() - known.at > 30_000) {
      try {
        const k = (await getJson(`/api/v1/nodes/${encodeURIComponent(node)}/keys`)).keys;
        const earlier = k.filter((x) => x.state !== 'current');
        const retired = earlier.filter((x) => x.state === 'retired').length;
        const text = `${node} signs receipts with ${k[0].fingerprint}` + (earlier.length === 0 ? ''
          : ` (${earlier.length} earlier key${earlier.length > 1 ? 's' : ''}: ${retired} retired, ${earlier.length - retired} revoked)`);
        known = { at: Date.now(), text };
      } catch (e) {
        known = { at: Date.now(), text: `${node}: signing key not registered yet` };
      }
      nodeKeys.set(node, known);
    }
    lines.push(known.text);
  }
  $('node-keys').textContent = lines.join(' · ');
}

async function refreshSupply() {
  try {
    const s = await getJson('/api/v1/supply');
    $('status').textContent = s.status;
    $('status').className = s.status;
    $('cr').textContent = s.crBps === null ? 'n/a (oracle)' : (s.crBps >= 4294967295 ? '≥ 429,496%' : (s.crBps / 100).toLocaleString('en-US') + ' %');
    $('act-supply').textContent = units(s.actSupply);
    $('vault').textContent = units(s.vaultAkt);
    $('remint').textContent = units(s.remintCredits) + ' AKT';
    $('act-minted').textContent = units(s.totalMinted.uact) + ' / ' + units(s.totalBurned.uact) + ' ACT';
    $('akt-minted').textContent = units(s.totalMinted.uakt) + ' AKT';
    $('escrowed').textContent = units(s.escrowedUact) + ' ACT';
    $('pending-payouts').textContent = String(s.pendingPayouts ?? 0);
    $('pending-mints').textContent = units(s.pendingMintUakt ?? 0) + ' AKT';
    $('oracle').textContent = (s.oracle.healthy ? '' : 'UNHEALTHY ') + s.oracle.priceAkt.replace(/0+$/, '') + ' (' + s.oracle.source + ')';
    // bme-spec 16.3: what the fund holds and what its last window paid (GET /api/v1/bootstrap-fund/windows)
    const b = await getJson('/api/v1/bootstrap-fund/windows?limit=1');
    const last = b.windows.length ? b.windows[0] : null;
    $('bootstrap').textContent = !b.enabled ? 'off' : `${units(b.fundUact)} ACT held; ` + (last
      ? `last window paid ${units(last.paidUact)} ACT to ${last.providers} provider(s) at utilization ${Number(last.utilization).toLocaleString('en-US', { maximumFractionDigits: 3 })}`
      : `no window closed yet (every ${b.windowSeconds} s)`);
    // bme-spec 16.1: the week's burned-vs-minted ratio from closed epochs (null until AKT is paid out)
    const weeks = (await getJson('/api/v1/epochs?view=week&weeks=1')).weeks;
    const w = weeks.length ? weeks[0] : null;
    $('week-flows').textContent = w ? `${units(w.aktInUakt)} / ${units(w.aktOutUakt)} AKT (${w.week}, ${w.epochs} epochs)` : 'no closed epoch yet';
    $('week-ratio').textContent = !w ? '–' : (w.burnMintRatio === null ? 'n/a (nothing paid out yet)'
      : Number(w.burnMintRatio).toLocaleString('en-US', { maximumFractionDigits: 3 })) + ` (${units(w.netBurnUakt)} AKT)`;
    // bme-spec 14 / 16.5: while halted, top-ups into ACT are refused; say so and what still works
    const note = $('halt-note');
    if (s.status === 'HALT_CR' || s.status === 'HALT_ORACLE') {
      note.hidden = false;
      note.textContent = s.status === 'HALT_CR' && s.oracle.healthy
        ? 'Halted: AKT deposits are not converted into ACT until the collateral ratio recovers. Jobs can still be paid'
          + ' from an AKT-direct deposit (POST /api/v1/tenants/{id}/deposits with "direct": true); providers are paid in AKT.'
        : 'Halted: the oracle has no fresh price, so no deposit or conversion is possible until it recovers.';
    } else {
      note.hidden = true;
    }
  } catch (e) { /* shown by the health pill */ }
}

async function refreshMe() {
  if (!apiKey) return;
  if (providerSession) { refreshProvider(); return; }
  try {
    const me = await getJson('/api/v1/me', true);
    // a tenant whose policy keeps its jobs to labelled nodes (ADR 29) sees which
    $('who').textContent = 'tenant ' + me.name + (labelText(me.nodeLabels) ? ` (jobs run only on nodes labelled ${labelText(me.nodeLabels)})` : '');
    refreshStatement(me.id);
    if (!readOnlySession) refreshReadKeys(me.id);
    $('balance').textContent = `— ${units(me.balance.uact)} ACT available, ${units(me.balance.escrowUact)} ACT in escrow`
      + (me.balance.uakt || me.balance.escrowUakt
        ? `, ${units(me.balance.uakt)} AKT-direct deposit (${units(me.balance.escrowUakt)} AKT in escrow)` : '');
  } catch (e) {
    $('statement-card').hidden = true;
    // not a tenant's key: a provider account's (ADR 32)?
    if (e.status === 401 && await refreshProvider()) return;
    $('who').textContent = e.status === 401 ? 'unknown API key' : e.message;
  }
}

// ------------------------------------------------------------------ a provider account (ADR 32)
let providerSession = false;

/** Shows the provider account of the key, its nodes' balances and this month's income; false when the key is not one. */
async function refreshProvider() {
  let acct;
  try {
    acct = await getJson('/api/v1/provider-accounts/me', true);
  } catch (e) {
    if (providerSession && (e.status === 401 || e.status === 403)) keyRefused('the provider account key was refused');
    return false;
  }
  providerSession = true;
  $('who').textContent = 'provider account ' + acct.name;
  $('provider-who').textContent = `— ${acct.nodes.length} node(s); each is paid out in AKT at a redemption epoch`;
  $('provider-card').hidden = false;
  $('jobs-card').hidden = true;
  const now = new Date();
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().slice(0, 10);
  const rows = await Promise.all(acct.nodes.map(async (n) => {
    let income = '–';
    if (n.known) {
      try {
        const p = (await getJson(`${n.statement}?limit=1&from=${month}`, true)).period;
        const earned = p.totals.filter((t) => t.kind === 'settle' || t.kind === 'bootstrap.payout')
          .reduce((sum, t) => sum + t.change.uact, 0);
        const paid = p.totals.filter((t) => t.kind === 'bme.redeem').reduce((sum, t) => sum + t.change.uakt, 0);
        income = `earned ${units(earned)} ACT, paid ${units(paid)} AKT`;
      } catch (e) { income = e.message; }
    }
    const pay = el('button', { type: 'button', textContent: 'Request payout', disabled: !(n.uact > 0),
      title: 'all of this node\'s ACT, paid in AKT at the next redemption epoch' });
    pay.onclick = async () => {
      try {
        const r = await sendJson(n.payouts, 'POST', {});
        $('provider-msg').textContent = `payout #${r.id} of ${units(r.uact)} ACT from ${n.nodeId} queued for the next redemption epoch`;
      } catch (e) { $('provider-msg').textContent = e.message; }
      refreshProvider();
    };
    const lines = el('button', { type: 'button', textContent: 'Statement', disabled: !n.known,
      title: "the node's newest journal entries: what it earned and was paid" });
    lines.onclick = () => { providerStatementOf = n.statement; refreshProviderStatement(); };
    return el('tr', { className: 'provider-node' },
      el('td', { textContent: n.nodeId + (n.known ? '' : ' (not registered yet)') }),
      el('td', { textContent: units(n.uact) }), el('td', { textContent: units(n.uakt) }),
      el('td', { textContent: income }), el('td', {}, lines, ' ', pay));
  }));
  $('provider-nodes').querySelector('tbody').replaceChildren(...rows);
  refreshProviderStatement();
  return true;
}

let providerStatementOf = null; // the statement path of the node whose lines are shown

const PROVIDER_KINDS = {
  settle: 'runs settled (earned)', 'bootstrap.payout': 'bootstrap fund top-up', 'bme.redeem-request': 'payout requested (ACT burned)',
  'bme.redeem': 'payout executed (AKT paid)', 'bme.redeem-cancel': 'payout cancelled (ACT returned)',
};

/** The newest 20 entries of the chosen node's statement (ADR 26, a provider's): when, what, ACT and AKT moved. */
async function refreshProviderStatement() {
  if (!providerStatementOf) return;
  let page;
  try {
    page = await getJson(providerStatementOf + '?limit=20', true);
  } catch (e) { $('provider-msg').textContent = e.message; return; }
  $('provider-statement').hidden = false;
  $('provider-statement').querySelector('tbody').replaceChildren(...page.entries.map((e) => el('tr', { className: 'provider-entry',
    title: 'journal entry ' + e.txId },
  el('td', { textContent: e.at.slice(0, 19).replace('T', ' ') }),
  el('td', { textContent: (PROVIDER_KINDS[e.kind] || e.kind) + ' — ' + page.nodeId }),
  el('td', { textContent: signed(e.change.uact) }), el('td', { textContent: signed(e.change.uakt) }),
  el('td', { textContent: units(e.balanceAfter.uact) }), el('td', { textContent: units(e.balanceAfter.uakt) }))));
}

// ------------------------------------------------------------------ the tenant's statement of account
const ENTRY_KINDS = {
  deposit: 'AKT deposit', 'deposit.direct': 'AKT-direct deposit', 'bme.mint-request': 'AKT burned, ACT mint queued',
  'bme.mint': 'ACT minted', 'bme.mint-cancel': 'mint cancelled, AKT returned', 'escrow.hold': 'held for admitted jobs',
  'escrow.release': 'escrow released', settle: 'runs settled',
};
const signed = (n) => (n > 0 ? '+' : '') + (n ? units(n) : '');
const openEntries = new Map(); // txId -> its runs, once loaded: kept open across refreshes

// the period chooser: all entries, or one of the last twelve months (UTC), this one first
(function fillPeriods() {
  const now = new Date();
  for (let i = 0; i < 12; i++) {
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1));
    const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
    const day = (d) => d.toISOString().slice(0, 10);
    const name = from.toLocaleString('en', { month: 'long', year: 'numeric', timeZone: 'UTC' });
    $('statement-period').append(el('option', { value: `from=${day(from)}&to=${day(to)}`, textContent: name }));
  }
})();
let statementTenant = null;
$('statement-period').onchange = () => { if (statementTenant) refreshStatement(statementTenant); };

/** A period's summary in a line: opening, what each kind of entry changed, closing (ACT available and in escrow). */
function periodText(p) {
  const bal = (b) => `${units(b.uact)} ACT available, ${units(b.escrowUact)} in escrow`
    + (b.uakt || b.escrowUakt ? `, ${units(b.uakt + b.escrowUakt)} AKT-direct` : '');
  const kinds = p.totals.map((t) => `${ENTRY_KINDS[t.kind] || t.kind} ×${t.entries} `
    + `(${signed(t.change.uact) || '0'} available, ${signed(t.change.escrowUact) || '0'} escrow)`);
  return `opened at ${bal(p.opening)}; ${p.entries} entries${kinds.length ? ': ' + kinds.join('; ') : ''}; closed at ${bal(p.closing)}`;
}

async function refreshStatement(tenantId) {
  statementTenant = tenantId;
  const period = $('statement-period').value;
  let page;
  try {
    page = await getJson(`/api/v1/tenants/${encodeURIComponent(tenantId)}/statement?limit=20${period ? '&' + period : ''}`, true);
  } catch (e) { return; }
  if (period !== $('statement-period').value) return; // another period was chosen meanwhile
  $('statement-card').hidden = false;
  $('statement-summary').textContent = page.period ? periodText(page.period) : '';
  $('statement-more').hidden = !page.next;
  $('statement-next').textContent = page.next ? 'GET ' + page.next : '';
  const rows = [];
  for (const e of page.entries) {
    const label = (ENTRY_KINDS[e.kind] || e.kind) + (e.ref ? ` (${e.ref})` : '');
    const more = el('td');
    const detail = e.settlements || e.holds; // a settlement's runs, a hold's jobs
    if (detail) {
      const what = e.settlements ? 'runs' : 'jobs';
      const a = el('a', { href: '#', textContent: openEntries.has(e.txId) ? 'hide ' + what : what });
      a.onclick = async (ev) => {
        ev.preventDefault();
        if (openEntries.has(e.txId)) openEntries.delete(e.txId);
        else openEntries.set(e.txId, await getJson(detail, true));
        refreshStatement(tenantId);
      };
      more.append(a);
    }
    rows.push(el('tr', { className: 'entry', title: 'journal entry ' + e.txId },
      el('td', { textContent: e.at.slice(0, 19).replace('T', ' ') }),
      el('td', { textContent: label }),
      el('td', { textContent: signed(e.change.uact) }),
      el('td', { textContent: signed(e.change.escrowUact) }),
      el('td', { textContent: signed(e.change.uakt + e.change.escrowUakt) }),
      el('td', { textContent: units(e.balanceAfter.uact) }),
      el('td', { textContent: units(e.balanceAfter.escrowUact) }),
      more));
    const opened = openEntries.get(e.txId) || {};
    for (const h of opened.holds || []) {
      rows.push(el('tr', { className: 'held' }, el('td'),
        el('td', { textContent: `job ${h.jobId}` }),
        el('td', { colSpan: 6, textContent: h.uakt ? `held ${units(h.uakt)} AKT of the AKT-direct deposit at admission`
          : `held ${units(h.uact)} ACT at admission` })));
    }
    for (const r of opened.settlements || []) {
      const receipt = el('a', { href: '#', textContent: 'receipt' });
      receipt.onclick = (ev) => { ev.preventDefault(); showReceipt(r.jobId); };
      rows.push(el('tr', { className: 'run' }, el('td'),
        el('td', { textContent: `job ${r.jobId} on ${r.nodeId}` }),
        el('td', { colSpan: 5, textContent: `charged ${units(r.chargeUact)} ACT, returned ${units(r.refundUact)} ACT`
          + (r.paidUakt ? `, paid ${units(r.paidUakt)} AKT` : '') }),
        el('td', {}, receipt)));
    }
  }
  $('statement').querySelector('tbody').replaceChildren(...rows);
}

function renderJobs() {
  const rows = [...jobs.values()].sort((a, b) => (b.submittedAt || 0) - (a.submittedAt || 0)).slice(0, 200);
  $('jobs').querySelector('tbody').replaceChildren(...rows.map((j) => {
    const tr = document.createElement('tr');
    const state = j.state + (j.progress && j.state === 'RUNNING' ? ` (loss ${j.progress.loss})` : '')
      + (j.preemptions ? ` · preempted ${j.preemptions}×` : '');
    const cells = [j.id, j.kind || '', state, j.gpus || '', fmt(j.escrowUact), fmt(j.chargeUact), j.receiptId ? 'signed' : ''];
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i === 2) td.className = 'state ' + j.state;
      if (i === 6 && j.receiptId) {
        const a = document.createElement('a');
        a.href = '#'; a.textContent = 'receipt';
        a.onclick = (ev) => { ev.preventDefault(); showReceipt(j.id); };
        td.replaceChildren(a);
      }
      tr.appendChild(td);
    });
    return tr;
  }));
}

async function loadJobs() {
  const list = await getJson('/api/v1/jobs', true);
  list.jobs.forEach((j) => merge(j.id, j));
  renderJobs();
}

// ------------------------------------------------------------------ receipts, checked in the browser
// The same checks as `anneal receipt verify` (ReceiptCheck): ADR 3's RFC 6962-style Merkle tree
// (leaf H(0x00 || body), node H(0x01 || left || right)), Ed25519 over the batch root, ADR 13's epoch proof.
const enc = new TextEncoder();
const toHex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
function fromHex(h) {
  if (typeof h !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(h)) throw new Error('not hexadecimal: ' + h);
  return Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
}
const fromB64 = (t) => Uint8Array.from(atob(t), (c) => c.charCodeAt(0));
async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}
const leafHash = (bytes) => sha256(Uint8Array.of(0), bytes);
function parseProof(text) {
  if (!text) return [];
  return text.split(',').map((p) => {
    if (!/^[LR]:/.test(p)) throw new Error(`bad proof step '${p}' (expected L:<hex> or R:<hex>)`);
    return { left: p[0] === 'L', sibling: fromHex(p.slice(2)) };
  });
}
async function fold(leaf, steps) {
  let h = leaf;
  for (const s of steps) h = s.left ? await sha256(Uint8Array.of(1), s.sibling, h) : await sha256(Uint8Array.of(1), h, s.sibling);
  return toHex(h);
}
async function fingerprint(keyB64) {
  if (!(window.crypto && crypto.subtle)) return '(shown over HTTPS or on localhost only)';
  try { return 'sha256:' + toHex((await sha256(fromB64(keyB64))).slice(0, 8)); } catch (e) { return '(unreadable key)'; }
}

/** The checks of one billed run of job `jobId` as the receipts API lists it: [{name, outcome, detail}]. */
async function checkRun(jobId, run) {
  const r = run.receipt || {};
  const epoch = run.epoch || {};
  const checks = [];
  if (!(window.crypto && crypto.subtle)) {
    const why = 'this browser offers cryptography only to pages served over HTTPS or from localhost; '
      + 'save the answer below and run anneal receipt verify';
    return ['receipt body', "in its node's signed batch", 'signed by node ' + r.nodeId, 'in its accounting epoch']
      .map((name) => ({ name, outcome: 'UNAVAILABLE', detail: why }));
  }
  const lines = String(r.body || '').split('\n');
  let body;
  if (lines.length !== 15 || lines[0] !== 'anneal-receipt/1') body = ['FAIL', 'not an anneal-receipt/1 body of 15 lines'];
  else if (lines[1] !== r.receiptId) body = ['FAIL', `it names receipt ${lines[1]}, not ${r.receiptId}`];
  else if (lines[2] !== jobId) body = ['FAIL', `it names job ${lines[2]}, not ${jobId}`];
  else if (lines[4] !== r.nodeId) body = ['FAIL', `it names node ${lines[4]}, not ${r.nodeId}`];
  else if (!String(r.receiptId).startsWith(jobId + '/') || !/^[0-9]+$/.test(String(r.receiptId).slice(jobId.length + 1))) {
    body = ['FAIL', `receipt id ${r.receiptId} is not a run of job ${jobId}`];
  } else {
    body = ['PASS', `run ${r.receiptId} on node ${r.nodeId}: ${Number(lines[8]).toLocaleString('en-US')} ns of device time`
      + ` on ${lines[6]} GPU(s) of class ${lines[5]}${lines[7] === 'true' ? ' (simulated)' : ''}, ${lines[13]}`];
  }
  checks.push({ name: 'receipt body', outcome: body[0], detail: body[1] });
  const leaf = await leafHash(enc.encode(String(r.body || '')));
  const leafHex = toHex(leaf);
  try {
    const root = await fold(leaf, parseProof(r.proof));
    const ok = root === String(r.batchRoot).toLowerCase();
    checks.push({ name: "in its node's signed batch", outcome: ok ? 'PASS' : 'FAIL', detail: ok
      ? `leaf ${leafHex} → batch root ${r.batchRoot}` : `the body's leaf ${leafHex} does not fold to the batch root ${r.batchRoot}` });
  } catch (e) {
    checks.push({ name: "in its node's signed batch", outcome: 'FAIL', detail: 'unreadable batch root or proof: ' + e.message });
  }
  const fp = await fingerprint(r.nodePublicKey || '');
  try {
    if (!r.nodePublicKey) throw new Error('the answer carries no key for this node');
    const key = await crypto.subtle.importKey('spki', fromB64(r.nodePublicKey), { name: 'Ed25519' }, false, ['verify']);
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, fromB64(r.signature), fromHex(r.batchRoot));
    checks.push({ name: 'signed by node ' + r.nodeId, outcome: ok ? 'PASS' : 'FAIL', detail: (ok
      ? 'Ed25519 signature over the batch root checks out' : 'the signature does not check out against the batch root') + ' with key ' + fp });
  } catch (e) {
    const unsupported = e && e.name === 'NotSupportedError';
    checks.push({ name: 'signed by node ' + r.nodeId, outcome: unsupported ? 'UNAVAILABLE' : 'FAIL',
      detail: unsupported ? 'this browser has no Ed25519; run anneal receipt verify' : 'the signature does not check out: ' + e.message });
  }
  if (epoch.leafHash && String(epoch.leafHash).toLowerCase() !== leafHex) {
    checks.push({ name: 'in its accounting epoch', outcome: 'FAIL', detail: `the epoch files leaf ${epoch.leafHash}, not the body's ${leafHex}` });
  } else if (!epoch.closed || !epoch.merkleRoot) {
    checks.push({ name: 'in its accounting epoch', outcome: 'PENDING', detail: 'the epoch has not closed yet: its Merkle root does not exist until it does' });
  } else {
    try {
      const ok = (await fold(leaf, parseProof(epoch.proof))) === String(epoch.merkleRoot).toLowerCase();
      checks.push({ name: 'in its accounting epoch', outcome: ok ? 'PASS' : 'FAIL',
        detail: ok ? `leaf → epoch root ${epoch.merkleRoot}` : `the leaf does not fold to the epoch root ${epoch.merkleRoot}` });
    } catch (e) {
      checks.push({ name: 'in its accounting epoch', outcome: 'FAIL', detail: 'unreadable epoch root or proof: ' + e.message });
    }
  }
  return checks;
}
window.anneal = { checkRun };

function el(tag, props, ...children) {
  const e = Object.assign(document.createElement(tag), props || {});
  e.append(...children);
  return e;
}

async function showReceipt(jobId) {
  const dialog = $('receipt-dialog');
  $('receipt-title').textContent = 'Receipts of job ' + jobId;
  $('receipt-runs').replaceChildren(el('p', { className: 'muted', textContent: 'loading…' }));
  $('receipt-raw').textContent = '';
  if (!dialog.open) dialog.showModal();
  let answer;
  try {
    answer = await getJson('/api/v1/receipts/' + jobId, true);
  } catch (e) {
    $('receipt-runs').replaceChildren(el('p', { className: 'checks', textContent: 'could not load: ' + e.message }));
    return;
  }
  $('receipt-raw').textContent = JSON.stringify(answer, null, 2);
  const runs = answer.runs || (answer.settled ? [{ receipt: answer.receipt, settlement: answer.settlement, epoch: answer.epoch }] : []);
  if (!runs.length) {
    $('receipt-runs').replaceChildren(el('p', { className: 'muted', textContent: `Not settled yet (${answer.state}).` }));
    return;
  }
  const sections = [];
  for (const run of runs) {
    const checks = await checkRun(jobId, run);
    const st = run.settlement || {};
    const ep = run.epoch || {};
    const facts = el('table', { className: 'kv' },
      ...[['charged', `${units(st.chargeUact)} ACT` + (st.paidUakt ? ` (provider paid ${units(st.paidUakt)} AKT)` : '')
          + (st.billedDeviceNanos !== undefined ? ` — billed ${Number(st.billedDeviceNanos).toLocaleString('en-US')} ns, less than claimed` : '')],
        ['returned to you', `${units(st.refundUact)} ACT`],
        ['settled', `${st.settledAt || '–'} in journal entry ${st.txId ?? '–'}`],
        ['epoch', ep.epoch === undefined ? '–' : `${ep.epoch}` + (ep.closed && ep.startsAtMs !== undefined
          ? `, closed (from ${new Date(ep.startsAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC, ${fmt(ep.receipts)} receipts)`
          : ', open: its root exists once it closes')],
        ['ACT burned for the provider', !run.payout ? 'not yet: the provider is paid out at a coming redemption epoch'
          : (run.payouts || [run.payout]).map((p) => p.state === 'EXECUTED'
            ? (p.burnedUact !== undefined && p.burnedUact !== null ? `${units(p.burnedUact)} ACT of it ` : '')
              + `by payout #${p.id} (${units(p.uact)} ACT burned in all for ${units(p.paidUakt)} AKT paid to the provider)`
            : `payout #${p.id} of ${units(p.uact)} ACT, waiting for its redemption epoch`).join('; ')],
        ['node key', `${run.receipt.nodeId}: ${await fingerprint(run.receipt.nodePublicKey || '')}`
          + (run.receipt.nodeKeyState === 'retired' ? ' (retired since: the node signs with a newer key; this signature stays valid)'
            : run.receipt.nodeKeyState === 'revoked' ? ' (revoked since: receipts signed with it are no longer accepted; this one was settled before)'
              : '')]]
        .map(([k, v]) => el('tr', {}, el('th', { textContent: k }), el('td', { textContent: v }))));
    sections.push(el('div', { className: 'run' },
      el('h3', { textContent: 'run ' + run.receipt.receiptId }),
      el('ul', { className: 'checks' }, ...checks.map((c) => el('li', { className: c.outcome, textContent: `${c.name}: ${c.detail}` }))),
      facts));
  }
  $('receipt-runs').replaceChildren(...sections);
}

// ------------------------------------------------------------------ epochs
async function refreshEpochs() {
  try {
    const list = (await getJson('/api/v1/epochs?limit=12')).epochs;
    $('epochs-empty').hidden = list.length > 0;
    $('epochs').querySelector('tbody').replaceChildren(...list.map((e) => el('tr', {},
      el('td', { textContent: new Date(e.startsAtMs).toISOString().slice(0, 16).replace('T', ' ') + ` (+${e.epochSeconds} s)` }),
      el('td', { textContent: fmt(e.receipts) }),
      el('td', { textContent: units(e.chargedUact) }),
      el('td', { textContent: units(e.actMintedUact) }),
      el('td', { textContent: units(e.aktInUakt) }),
      el('td', { textContent: units(e.aktOutUakt) }),
      el('td', { textContent: e.burnMintRatio === null ? 'n/a' : Number(e.burnMintRatio).toLocaleString('en-US', { maximumFractionDigits: 3 }) }),
      el('td', { className: 'hash', title: e.merkleRoot, textContent: String(e.merkleRoot).slice(0, 16) + '…' }))));
  } catch (e) { /* shown by the health pill */ }
}

// ------------------------------------------------------------------ scenarios (bme simulate)
const SVG = 'http://www.w3.org/2000/svg';
function svgEl(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  Object.entries(attrs).forEach(([k, v]) => e.setAttribute(k, v));
  return e;
}

/** Lines over hours 1..n; `bands` shades hours where it returns true; the event hour is marked. */
function lineChart(svg, hours, series, { bands, eventHour } = {}) {
  const W = 600, H = 200, L = 48, R = 8, T = 8, B = 22;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && Number.isFinite(v));
  const max = Math.max(...all, 0) || 1, min = Math.min(...all, 0);
  const x = (h) => L + (W - L - R) * (h - hours[0]) / Math.max(1, hours[hours.length - 1] - hours[0]);
  const y = (v) => T + (H - T - B) * (1 - (v - min) / (max - min || 1));
  const parts = [];
  if (bands) {
    hours.forEach((h, i) => {
      if (bands(i)) parts.push(svgEl('rect', { x: x(h) - 1, y: T, width: Math.max(1.5, (W - L - R) / hours.length), height: H - T - B, fill: '#d29922', opacity: 0.25 }));
    });
  }
  if (eventHour && eventHour <= hours[hours.length - 1]) {
    parts.push(svgEl('line', { x1: x(eventHour), x2: x(eventHour), y1: T, y2: H - B, stroke: '#8b98a5', 'stroke-dasharray': '3 3' }));
  }
  [min, (min + max) / 2, max].forEach((v) => {
    const t = svgEl('text', { x: 2, y: y(v) + 3 });
    t.textContent = Math.abs(v) >= 1000 ? (v / 1000).toLocaleString('en-US', { maximumFractionDigits: 0 }) + 'k'
      : v.toLocaleString('en-US', { maximumFractionDigits: 2 });
    parts.push(t);
  });
  [hours[0], hours[hours.length - 1]].forEach((h) => {
    const t = svgEl('text', { x: x(h) - (h === hours[0] ? 0 : 30), y: H - 6 });
    t.textContent = 'hour ' + h;
    parts.push(t);
  });
  series.forEach((s, k) => {
    const pts = hours.map((h, i) => s.values[i] === null ? null : `${x(h).toFixed(1)},${y(s.values[i]).toFixed(1)}`).filter(Boolean);
    parts.push(svgEl('polyline', { points: pts.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.5, 'data-series': s.name }));
    const label = svgEl('text', { x: L + 8 + k * 150, y: T + 10, fill: s.color });
    label.style.fill = s.color;
    label.textContent = s.name;
    parts.push(label);
  });
  svg.replaceChildren(...parts);
}

let scenarioList = null;
async function loadScenarios() {
  if (scenarioList) return;
  const list = await getJson('/api/v1/scenarios');
  scenarioList = list;
  $('scenario').replaceChildren(...list.scenarios.map((s) => el('option', { value: s.id, textContent: `${s.id} — ${s.description}` })));
  $('scenario').value = 'spike10x';
  $('scenario-hours').max = list.maxHours;
}

async function simulate(id, hours) {
  $('scenario-msg').textContent = 'simulating…';
  let run;
  try {
    run = await getJson(`/api/v1/scenarios/${encodeURIComponent(id)}?hours=${hours}`, true);
  } catch (e) {
    $('scenario-msg').textContent = e.message;
    return;
  }
  const col = (name) => { const i = run.columns.indexOf(name); return run.rows.map((r) => r[i]); };
  const s = run.summary;
  const b = s.breaker;
  $('scenario-msg').textContent = `${s.scenario}: ${s.hours} h, seed ${s.seed}`;
  $('scenario-breaker').textContent = `Breaker: ${fmt(b.ticksHealthy)} ticks healthy, ${fmt(b.ticksWarning)} in warning, `
    + `${fmt(b.ticksHalted)} halted; ends ${b.endStatus}. Collateral ratio: lowest ${s.minCollateralRatio ?? 'n/a'}, `
    + `at the end ${s.endCollateralRatio ?? 'n/a'}. ACT conserved every hour: ${s.actConservedEveryHour ? 'yes' : 'NO'}.`;
  const num = (v, d) => (v === null || v === undefined) ? 'n/a' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d });
  $('scenario-phases').querySelector('tbody').replaceChildren(...Object.entries(s.phases).filter(([, p]) => p).map(([name, p]) => el('tr', {},
    ...[name, p.hours, num(p.aktBurned, 0), num(p.aktPaidOut, 0), num(p.burnMintRatio, 3), num(p.utilization * 100, 1) + ' %',
      num(p.servedShareOfDemand * 100, 1) + ' %', `${num(p.smallProviderActPerGpuHour, 3)} / ${num(p.largeProviderActPerGpuHour, 3)}`,
      num(p.bootstrapPaidAct, 2)].map((v) => el('td', { textContent: String(v) })))));
  const hrs = col('hour');
  const event = scenarioList ? scenarioList.eventHour + 1 : undefined;
  lineChart($('chart-flows'), hrs, [{ name: 'AKT burned', values: col('akt_burned'), color: '#f85149' },
    { name: 'AKT paid out', values: col('akt_paid_out'), color: '#58a6ff' }], { eventHour: event });
  const breaker = col('breaker');
  lineChart($('chart-cr'), hrs, [{ name: 'collateral ratio', values: col('collateral_ratio'), color: '#3fb950' }],
    { eventHour: event, bands: (i) => breaker[i] !== 'HEALTHY' });
  lineChart($('chart-income'), hrs, [{ name: 'small providers', values: col('small_provider_act_per_gpu_hour'), color: '#d29922' },
    { name: 'large providers', values: col('large_provider_act_per_gpu_hour'), color: '#58a6ff' }], { eventHour: event });
  $('scenario-out').hidden = false;
}

$('scenario-form').onsubmit = (ev) => {
  ev.preventDefault();
  simulate($('scenario').value, Number($('scenario-hours').value));
};

function connectWs() {
  if (ws) {
    ws.onclose = null; // replaced on purpose: not a connection to restore
    ws.close();
  }
  const me = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
  ws = me;
  me.onopen = () => me.send(JSON.stringify({ type: 'auth', apiKey }));
  me.onmessage = (m) => {
    if (ws !== me) return; // a socket replaced meanwhile (a new key): what it still says is about the old one
    const msg = JSON.parse(m.data);
    if (msg.type === 'authenticated') {
      me.send(JSON.stringify({ type: 'subscribe' }));
      // a read-only key (ADR 30) watches: no submit form, no key buttons
      readOnlySession = !!msg.readOnly;
      if (readOnlySession) $('read-keys').hidden = true;
      $('submit').hidden = !!msg.readOnly;
      $('key-row').hidden = !!msg.readOnly;
      $('read-only').hidden = !msg.readOnly;
      $('read-only').textContent = msg.readOnly ? 'Read-only key: jobs, receipts and the statement are shown; submitting'
        + ' and cancelling need the tenant\'s API key' + (msg.keyValidUntil ? ` (it expires ${new Date(msg.keyValidUntil).toLocaleString()})` : '') + '.' : '';
      if (msg.keyValidUntil && !msg.readOnly) {
        $('key-msg').textContent = `this key was replaced and stops working at ${new Date(msg.keyValidUntil).toLocaleString()}: use the new one`;
      }
      $('jobs-hint').hidden = true;
      loadScenarios().then(() => { $('scenario-form').hidden = false; $('scenario-hint').hidden = true; })
        .catch((e) => { $('scenario-hint').textContent = 'scenarios unavailable: ' + e.message; });
    } else if (msg.type === 'job') {
      const update = { state: msg.state };
      if (!jobs.has(msg.jobId)) update.submittedAt = msg.at;
      if (msg.chargeUact !== undefined) update.chargeUact = msg.chargeUact;
      if (msg.receiptId) update.receiptId = msg.receiptId;
      if (msg.progress) update.progress = msg.progress;
      if (msg.state === 'PREEMPTED') update.preemptions = ((jobs.get(msg.jobId) || {}).preemptions || 0) + 1;
      merge(msg.jobId, update);
      renderJobs();
      if (msg.state === 'SETTLED') refreshMe();
    } else if (msg.type === 'accepted') {
      $('submit-msg').textContent = 'accepted ' + msg.jobId + (msg.waiting ? ' — it waits: ' + msg.waiting : '');
      getJson('/api/v1/jobs/' + msg.jobId, true).then((j) => { merge(j.id, j); renderJobs(); });
    } else if (msg.type === 'error') {
      if (!msg.requestId && msg.error.type.endsWith('/unauthorized')) keyRefused(msg.error.title);
      else $('submit-msg').textContent = msg.error.title + (msg.error.detail ? ': ' + msg.error.detail : '');
    }
  };
  // 1008: the server refused the key (rotated meanwhile, say): connecting again with it would not help
  me.onclose = (ev) => {
    if (ws !== me) return;
    if (ev.code === 1008) keyRefused(ev.reason || 'the API key was refused');
    else setTimeout(() => apiKey && ws === me && connectWs(), 2000);
  };
}

/** The key no longer authenticates: forget it and ask for the tenant's current one. */
function keyRefused(why) {
  if (!apiKey) return;
  apiKey = '';
  sessionStorage.removeItem('anneal.apiKey');
  $('submit').hidden = true;
  $('key-row').hidden = true;
  $('read-only').hidden = true;
  $('read-keys').hidden = true;
  const whose = providerSession ? "provider account's" : "tenant's";
  providerSession = false;
  $('provider-card').hidden = true;
  $('jobs-card').hidden = false;
  $('jobs-hint').hidden = false;
  $('jobs-hint').textContent = `${why}: enter the ${whose} current API key.`;
}

/** Replaces the tenant's key with a generated one, shown once, and goes on with it. */
$('rotate-key').onclick = async () => {
  if (!confirm("Replace this tenant's API key? The current key stops working at once, here and in every other client.")) return;
  try {
    const me = await getJson('/api/v1/me', true);
    const r = await getJson(`/api/v1/tenants/${encodeURIComponent(me.id)}/keys`, true, 'POST');
    apiKey = r.apiKey;
    sessionStorage.setItem('anneal.apiKey', apiKey);
    $('key-msg').replaceChildren('new key, shown only now: ', el('code', { id: 'new-key', textContent: r.apiKey }));
    connectWs();
  } catch (e) {
    $('key-msg').textContent = e.message;
  }
};

/** A request with a JSON body (or none) under the connected key; the answer's JSON, {} for 204. */
async function sendJson(path, method, body) {
  const r = await fetch(path, { method, headers: { Authorization: 'Bearer ' + apiKey, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const out = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (!r.ok) throw Object.assign(new Error(out.detail || out.title || r.statusText), { problem: out, status: r.status });
  return out;
}

/** The tenant's read-only keys (ADR 30), each with a button that revokes it while it is active. */
async function refreshReadKeys(tenantId) {
  try {
    const keys = (await getJson(`/api/v1/tenants/${encodeURIComponent(tenantId)}/read-keys`, true)).readKeys;
    $('read-keys').hidden = keys.length === 0;
    $('read-keys').replaceChildren(...keys.map((k) => {
      const li = el('li', { className: 'read-key ' + k.state },
        `read-only key "${k.name}" ${k.fingerprint} — ${k.state}`
        + (k.expiresAtMs && k.state === 'active' ? `, expires ${new Date(k.expiresAtMs).toLocaleDateString()}` : '')
        + (k.lastUsedAtMs ? `, last used ${new Date(k.lastUsedAtMs).toISOString().slice(0, 16).replace('T', ' ')} UTC` : ', never used') + ' ');
      if (k.state === 'active') {
        li.append(el('button', { type: 'button', textContent: 'revoke', onclick: async () => {
          try {
            await sendJson(`/api/v1/tenants/${encodeURIComponent(tenantId)}/read-keys/${encodeURIComponent(k.fingerprint)}`, 'DELETE');
          } catch (e) { $('key-msg').textContent = e.message; }
          refreshReadKeys(tenantId);
        } }));
      }
      return li;
    }));
  } catch (e) {
    $('read-keys').hidden = true;
  }
}

$('read-key').onclick = async () => {
  const name = prompt('A name for the read-only key (e.g. grafana):');
  if (!name) return;
  try {
    const me = await getJson('/api/v1/me', true);
    const r = await sendJson(`/api/v1/tenants/${encodeURIComponent(me.id)}/read-keys`, 'POST', { name });
    $('key-msg').replaceChildren('read-only key, shown only now: ', el('code', { id: 'new-read-key', textContent: r.apiKey }));
    refreshReadKeys(me.id);
  } catch (e) {
    $('key-msg').textContent = e.message;
  }
};

$('auth').onsubmit = async (ev) => {
  ev.preventDefault();
  apiKey = $('apiKey').value.trim();
  sessionStorage.setItem('anneal.apiKey', apiKey);
  readOnlySession = true; // until the WebSocket says what this key is
  providerSession = false;
  providerStatementOf = null;
  $('provider-statement').hidden = true;
  $('read-keys').hidden = true;
  $('provider-card').hidden = true;
  $('jobs-card').hidden = false;
  jobs.clear();
  openEntries.clear();
  await refreshMe();
  if (providerSession) return; // a provider account's key: its nodes, no jobs
  try { await loadJobs(); connectWs(); } catch (e) { $('jobs-hint').textContent = e.message; }
};

$('submit').onsubmit = (ev) => {
  ev.preventDefault();
  const kind = $('kind').value;
  const p = Number($('param').value);
  const job = { kind, gpus: Number($('gpus').value), maxSeconds: Number($('maxSeconds').value),
    params: kind === 'sleep' ? { ms: p } : kind === 'matmul' ? { n: p, seed: 1 }
      : { dataset: 'spirals', layers: [2, 64, 64, 3], epochs: p, seed: 1 } };
  const labels = parseLabels($('nodeLabels').value);
  if (Object.keys(labels).length > 0) job.nodeLabels = labels;
  ws.send(JSON.stringify({ type: 'submit', requestId: 'ui-' + Date.now(), job }));
};

refreshFleet(); refreshSupply(); refreshEpochs();
setInterval(refreshFleet, 2000);
setInterval(refreshSupply, 3000);
setInterval(refreshMe, 5000); // deposits minted at an epoch, a policy changed by an admin
setInterval(refreshEpochs, 5000);
if (apiKey) { $('apiKey').value = apiKey; $('auth').requestSubmit(); }
