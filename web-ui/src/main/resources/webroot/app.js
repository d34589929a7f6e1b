// Anneal web UI: fleet, queue and supply refreshed live; a tenant's jobs streamed over WebSocket.
'use strict';
const $ = (id) => document.getElementById(id);
const fmt = (n) => (n === null || n === undefined) ? '–' : Number(n).toLocaleString('en-US');
const units = (n) => (n === null || n === undefined) ? '–' : (Number(n) / 1e6).toLocaleString('en-US', { maximumFractionDigits: 6 });
let apiKey = sessionStorage.getItem('anneal.apiKey') || '';
let ws = null;
const jobs = new Map();
// states only move forward in the table: a late REST answer must not undo a newer event
const RANK = { QUEUED: 0, PREEMPTED: 0, PLACED: 1, RUNNING: 2, SUCCEEDED: 3, FAILED: 3, CANCELLED: 3, SETTLED: 4 };
function merge(id, update) {
  const cur = jobs.get(id) || { id };
  const next = Object.assign({}, cur, update);
  if (cur.state && update.state && RANK[update.state] < RANK[cur.state]) next.state = cur.state;
  jobs.set(id, next);
}

async function getJson(path, auth) {
  const headers = auth && apiKey ? { Authorization: 'Bearer ' + apiKey } : {};
  const r = await fetch(path, { headers });
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
      d.title = `${g.nodeId}/${g.index} ${g.gpuClass}${g.simulated ? ' (simulated)' : ''} — `
        + (g.quarantined ? 'quarantined: ' + (g.quarantineReason || 'repeated failures')
          : g.free ? 'free' : 'running ' + g.jobId);
      return d;
    }));
    $('health').textContent = 'live';
    $('health').className = 'pill ok';
  } catch (e) {
    $('health').textContent = 'unreachable';
    $('health').className = 'pill bad';
  }
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
  try {
    const me = await getJson('/api/v1/me', true);
    $('who').textContent = 'tenant ' + me.name;
    $('balance').textContent = `— ${units(me.balance.uact)} ACT available, ${units(me.balance.escrowUact)} ACT in escrow`
      + (me.balance.uakt || me.balance.escrowUakt
        ? `, ${units(me.balance.uakt)} AKT-direct deposit (${units(me.balance.escrowUakt)} AKT in escrow)` : '');
  } catch (e) {
    $('who').textContent = e.status === 401 ? 'unknown API key' : e.message;
  }
}

function renderJobs() {
  const rows = [...jobs.values()].sort((a, b) => (b.submittedAt || 0) - (a.submittedAt || 0)).slice(0, 200);
  $('jobs').querySelector('tbody').replaceChildren(...rows.map((j) => {
    const tr = document.createElement('tr');
    const state = j.state + (j.progress && j.state === 'RUNNING' ? ` (loss ${j.progress.loss})` : '');
    const cells = [j.id, j.kind || '', state, j.gpus || '', fmt(j.escrowUact), fmt(j.chargeUact), j.receiptId ? 'signed' : ''];
    cells.forEach((c, i) => {
      const td = document.createElement('td');
      td.textContent = c;
      if (i === 2) td.className = 'state ' + j.state;
      if (i === 6 && j.receiptId) {
        const a = document.createElement('a');
        a.href = '#'; a.textContent = 'receipt';
        a.onclick = async (ev) => { ev.preventDefault(); alert(JSON.stringify(await getJson('/api/v1/receipts/' + j.id, true), null, 2)); };
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

function connectWs() {
  if (ws) ws.close();
  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/ws');
  ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', apiKey }));
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === 'authenticated') {
      ws.send(JSON.stringify({ type: 'subscribe' }));
      $('submit').hidden = false;
      $('jobs-hint').hidden = true;
    } else if (msg.type === 'job') {
      const update = { state: msg.state };
      if (!jobs.has(msg.jobId)) update.submittedAt = msg.at;
      if (msg.chargeUact !== undefined) update.chargeUact = msg.chargeUact;
      if (msg.receiptId) update.receiptId = msg.receiptId;
      if (msg.progress) update.progress = msg.progress;
      merge(msg.jobId, update);
      renderJobs();
      if (msg.state === 'SETTLED') refreshMe();
    } else if (msg.type === 'accepted') {
      $('submit-msg').textContent = 'accepted ' + msg.jobId;
      getJson('/api/v1/jobs/' + msg.jobId, true).then((j) => { merge(j.id, j); renderJobs(); });
    } else if (msg.type === 'error') {
      $('submit-msg').textContent = msg.error.title + (msg.error.detail ? ': ' + msg.error.detail : '');
    }
  };
  ws.onclose = () => setTimeout(() => apiKey && connectWs(), 2000);
}

$('auth').onsubmit = async (ev) => {
  ev.preventDefault();
  apiKey = $('apiKey').value.trim();
  sessionStorage.setItem('anneal.apiKey', apiKey);
  jobs.clear();
  await refreshMe();
  try { await loadJobs(); connectWs(); } catch (e) { $('jobs-hint').textContent = e.message; }
};

$('submit').onsubmit = (ev) => {
  ev.preventDefault();
  const kind = $('kind').value;
  const p = Number($('param').value);
  const job = { kind, gpus: Number($('gpus').value), maxSeconds: Number($('maxSeconds').value),
    params: kind === 'sleep' ? { ms: p } : kind === 'matmul' ? { n: p, seed: 1 }
      : { dataset: 'spirals', layers: [2, 64, 64, 3], epochs: p, seed: 1 } };
  ws.send(JSON.stringify({ type: 'submit', requestId: 'ui-' + Date.now(), job }));
};

refreshFleet(); refreshSupply();
setInterval(refreshFleet, 2000);
setInterval(refreshSupply, 3000);
setInterval(refreshMe, 5000);
if (apiKey) { $('apiKey').value = apiKey; $('auth').requestSubmit(); }
