// loanflow dashboard: vanilla JavaScript, no framework, no external assets.
//
// Live data comes from the WebSocket `/ws` (every loan's events). It is opened first and the
// initial snapshots (loans, stats) are loaded only once it is open, so no event falls between
// the snapshot and the stream. On a reconnect it resumes with `?after=<last event id>`.
//
// The application form (apply.js), the work queue (queue.js) and the process view (process.js)
// are their own files; this one calls
// their `queueOnEvent` / `processOnEvent` for each live event and loads them with the snapshots.
//
// Reads need a staff token: from the sign-in link (`/#token=...`, taken out of the address
// bar at once) or the sign-in box, kept in sessionStorage (this tab only) until sign-out.
"use strict";

const MAX_ROWS = 50;
const ACTORS_POLL_MS = 2000;
const STATS_DEBOUNCE_MS = 250;
const RECONNECT_MAX_MS = 10000;
const SEEN_IDS = 4096;
// How far along a status is: a snapshot never moves a loan back (a loan under review and one
// awaiting its applicant go back and forth, so they share a rank).
const STATUS_RANK = {
  submitted: 0, evaluating: 1, under_review: 2, awaiting_information: 2, approved: 3, rejected: 3, cancelled: 3,
};
const COMPENSATIONS = new Set(["CreditCheckReleased", "AppraisalVoided"]);
const FAILURES = new Set(["CreditCheckFailed", "AppraisalFailed"]);
const TERMINAL_EVENTS = new Set(["LoanApproved", "LoanRejected", "LoanCancelled", "ApplicantNotified"]);
// The human steps' events. The loan is read again after each: its card shows what the event
// does not carry (the claim, the open request, the figures), and for a claim the stream's
// `status` is the one a claim nearly always comes with, not read from the loan.
const HUMAN_EVENTS = new Set([
  "LoanReferred", "ReviewClaimed", "ReviewEscalated", "InformationRequested", "InformationDeadlineExtended",
  "InformationProvided", "InformationRequestExpired", "CancellationRequested",
]);

const state = {
  loans: new Map(), // id -> loan (as GET /api/v1/loans/{id} returns it)
  lastEventId: null, // highest event id seen on the stream
  seen: new Set(), // ids of recent events (several nodes' events may arrive interleaved)
  selected: null, // loan id whose timeline is shown
  timeline: new Map(), // event id -> event, for the selected loan
  snapshotLoaded: false,
  early: [], // events that arrived before the snapshot
};

const $ = (selector) => document.querySelector(selector);

// ---------------------------------------------------------------------------------------------
// Signing in

const TOKEN_KEY = "loanflow.token";

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// A token in the address (`#token=...`) signs in, and leaves the address at once.
function takeTokenFromLink() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

function authHeaders() {
  const t = token();
  return t ? { Authorization: `Bearer ${t}` } : {};
}

function showSignIn(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  document.body.dataset.signedIn = "no";
  $("#sign-in").hidden = false;
  $("#sign-out").hidden = true;
  $("main").hidden = true;
  if (message) setLive("closed", message);
}

function signIn(event) {
  event.preventDefault();
  const value = event.target.elements.token.value.trim();
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  location.reload();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

// ---------------------------------------------------------------------------------------------
// Formatting

const money = new Intl.NumberFormat("en-IE", { style: "currency", currency: "EUR", maximumFractionDigits: 2 });
const fmtMoney = (n) => (n === null || n === undefined ? "–" : money.format(n));
const fmtRate = (bps) => (bps === null || bps === undefined ? "–" : (bps / 100).toFixed(2) + " %");
const pad = (n, w = 2) => String(n).padStart(w, "0");

function fmtTime(iso, withMillis) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || "";
  const hms = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMillis ? `${hms}.${pad(d.getMilliseconds(), 3)}` : hms;
}

function fmtDate(iso) {
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json", ...authHeaders() } });
  if (response.status === 401) showSignIn("signed out: the token was refused");
  const body = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, body };
}

// A staff action: POST a JSON body; the answer's status and body (a problem document on failure).
async function postJson(path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method: "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) showSignIn("signed out: the token was refused");
  const answer = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, body: answer };
}

// "3m 05s", "2h 10m", "4d 3h": how long something has waited or has left.
function fmtDuration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

const fmtPercent = (ratio) => (ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)} %`);

// ---------------------------------------------------------------------------------------------
// Loans table

function renderRow(loan) {
  const status = el("span", { class: `badge ${loan.status}` }, loan.status);
  const row = el(
    "tr",
    { dataset: { id: loan.id, status: loan.status } },
    el("td", {}, el("time", { datetime: loan.submitted_at, title: loan.submitted_at }, fmtTime(loan.submitted_at))),
    el("td", { class: "applicant" }, loan.applicant.name, el("small", {}, loan.id)),
    el("td", { class: "num" }, fmtMoney(loan.amount)),
    el("td", { class: "num" }, `${loan.term_months} mo`),
    el("td", { class: "status" }, status),
    el("td", { class: "num" }, loan.credit_score ?? "–"),
    el("td", { class: "num" }, fmtRate(loan.rate_bps)),
    el("td", { class: "num" }, fmtMoney(loan.monthly_payment)),
  );
  if (loan.id === state.selected) row.classList.add("selected");
  return row;
}

function renderLoans() {
  const body = $("#loans tbody");
  const rows = [...state.loans.values()].sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, MAX_ROWS);
  body.replaceChildren(...rows.map(renderRow));
  $("#loans-empty").hidden = rows.length > 0;
}

function flashRow(id) {
  const row = document.querySelector(`#loans tr[data-id="${id}"]`);
  if (!row) return;
  row.classList.add("flash");
  requestAnimationFrame(() => requestAnimationFrame(() => row.classList.remove("flash")));
}

function upsertLoan(loan) {
  const known = state.loans.get(loan.id);
  // A snapshot older than what the stream already told us must not move the status back.
  if (known && STATUS_RANK[known.status] > STATUS_RANK[loan.status]) loan.status = known.status;
  state.loans.set(loan.id, loan);
  if (state.loans.size > MAX_ROWS * 2) {
    const oldest = [...state.loans.keys()].sort().slice(0, state.loans.size - MAX_ROWS);
    oldest.forEach((id) => state.loans.delete(id));
  }
  renderLoans();
  flashRow(loan.id);
  if (loan.id === state.selected) renderTimelineHead();
}

async function refreshLoan(id) {
  const { ok, body } = await getJson(`/api/v1/loans/${id}`);
  if (ok) upsertLoan(body);
}

async function loadLoans() {
  const { ok, body } = await getJson("/api/v1/loans?limit=" + MAX_ROWS);
  if (!ok) return;
  body.items.forEach((loan) => {
    const known = state.loans.get(loan.id);
    if (known && STATUS_RANK[known.status] > STATUS_RANK[loan.status]) loan.status = known.status;
    state.loans.set(loan.id, loan);
  });
  renderLoans();
}

// ---------------------------------------------------------------------------------------------
// Stats and actors

let statsTimer = null;
function refreshStatsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(async () => {
    statsTimer = null;
    await loadStats();
  }, STATS_DEBOUNCE_MS);
}

async function loadStats() {
  const { ok, body } = await getJson("/api/v1/loans/stats");
  if (!ok) return;
  $("#stat-total").textContent = body.total;
  for (const [status, n] of Object.entries(body.by_status)) {
    const cell = document.getElementById(`stat-${status}`);
    if (cell) cell.textContent = n;
  }
}

async function pollActors() {
  try {
    // 503 (not ready) still carries the body.
    const { body } = await getJson("/health/ready");
    const live = body && body.checks && body.checks.actors && body.checks.actors.live;
    if (live) {
      const items = Object.keys(live)
        .sort()
        .map((kind) => el("li", { dataset: { kind } }, `${kind} `, el("b", {}, String(live[kind]))));
      $("#actors").replaceChildren(...items);
    }
  } catch (_) {
    $("#actors").replaceChildren(el("li", { class: "muted" }, "unavailable"));
  } finally {
    setTimeout(pollActors, ACTORS_POLL_MS);
  }
}

// ---------------------------------------------------------------------------------------------
// Timeline

function summarize(event) {
  const d = event.data || {};
  switch (event.type) {
    case "LoanSubmitted": return `${fmtMoney(d.amount)} over ${d.term_months} months, property declared at ${fmtMoney(d.declared_value)}`;
    case "CreditChecked": return `credit score ${d.credit_score}`;
    case "PropertyAppraised": return `appraised at ${fmtMoney(d.appraised_value)}`;
    case "CreditCheckFailed":
    case "AppraisalFailed": return `${d.reason} (${d.attempts} attempt${d.attempts === 1 ? "" : "s"})`;
    case "CreditCheckReleased": return "compensation: the credit check was released";
    case "AppraisalVoided": return "compensation: the appraisal was voided";
    case "LoanApproved": return `rate ${fmtRate(d.rate_bps)}, ${fmtMoney(d.monthly_payment)} a month`;
    case "LoanRejected": return `${(d.reasons || []).join(", ")}; rate ${fmtRate(d.rate_bps)}, ${fmtMoney(d.monthly_payment)} a month`;
    case "LoanCancelled": return d.reason || "";
    case "ScheduleGenerated": return `${d.lines} monthly lines`;
    case "ApplicantNotified": return `by ${d.channel}: ${d.status}`;
    case "LoanReferred": return `score ${d.credit_score} below the review band (${d.review_below_score})`;
    case "ReviewClaimed": return `claimed by ${d.by}`;
    case "ReviewEscalated": return "under review too long: escalated";
    case "InformationRequested": return `${d.by} asks for ${(d.fields || []).join(", ")}: ${d.message}`;
    case "InformationRequestSent":
    case "InformationReminderSent": return `by ${d.channel}`;
    case "InformationDeadlineExtended": return `${d.by} moved the deadline to ${fmtDate(d.due_at)} ${fmtTime(d.due_at)}`;
    case "InformationProvided": return Object.entries(d.answers || {}).map(([k, v]) => `${k}: ${v}`).join("; ");
    case "InformationRequestExpired": return "the applicant did not answer in time";
    default: return "";
  }
}

function eventClass(event) {
  if (COMPENSATIONS.has(event.type)) return "compensation";
  if (FAILURES.has(event.type)) return "failure";
  if (event.type === "LoanApproved") return "decision-approved";
  if (event.type === "LoanRejected") return "decision-rejected";
  if (event.type === "LoanCancelled") return "decision-cancelled";
  if (event.type === "ReviewEscalated" || event.type === "InformationRequestExpired") return "failure";
  return "";
}

function renderTimelineHead() {
  const loan = state.loans.get(state.selected);
  const head = $("#timeline-head");
  if (!loan) {
    head.replaceChildren(el("span", { class: "meta" }, state.selected || ""));
    return;
  }
  head.className = "";
  head.replaceChildren(
    el("div", { class: "title" }, `${loan.applicant.name} · ${fmtMoney(loan.amount)} `, el("span", { class: `badge ${loan.status}` }, loan.status)),
    el("div", { class: "meta" }, loan.id),
    ...actionsFor(loan),
  );
}

// Only what the signed-in role may do: the operator revokes an applicant's token.
function actionsFor(loan) {
  if (document.body.dataset.role !== "operator") return [];
  const button = el("button", { type: "button", class: "action", id: "revoke-token" }, "Revoke the applicant's token");
  button.addEventListener("click", async () => {
    const response = await fetch(`/admin/loans/${loan.id}/access-token/revoke`, { method: "POST", headers: authHeaders() });
    const body = await response.json().catch(() => null);
    button.replaceWith(
      el("div", { class: "meta", id: "revoked" }, response.ok ? `new applicant token: ${body.access_token}` : `refused (${response.status})`),
    );
  });
  return [button];
}

// Who is signed in: the page offers only what that role may do.
async function loadMe() {
  const { ok, body } = await getJson("/api/v1/me");
  if (!ok || !body) return;
  document.body.dataset.role = body.role;
  document.body.dataset.name = body.name || "";
  $("#signed-in-as").textContent = `${body.name || body.role} · ${body.role}`;
  // An underwriter's page opens on the work queue.
  if (body.role === "underwriter" && document.body.dataset.view === "loans") showView("queue");
  renderQueue();
}

// ---------------------------------------------------------------------------------------------
// Views: the loans, the work queue, the process

function showView(name) {
  document.body.dataset.view = name;
  for (const button of document.querySelectorAll("nav.views button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === name));
  }
  for (const view of document.querySelectorAll("main > .view")) view.hidden = view.id !== `view-${name}`;
  if (name === "process") loadSteps();
}

function renderTimeline() {
  const events = [...state.timeline.values()].sort((a, b) => a.id - b.id);
  const items = events.map((event) => {
    const compensation = COMPENSATIONS.has(event.type);
    return el(
      "li",
      { class: eventClass(event), dataset: { id: String(event.id), type: event.type } },
      el("span", { class: "type" }, event.type),
      compensation ? el("span", { class: "tag", title: "undoes a completed step" }, "compensation") : null,
      el("time", { datetime: event.at, title: event.at }, `${fmtDate(event.at)} ${fmtTime(event.at, true)}`),
      el("div", { class: "details" }, summarize(event)),
    );
  });
  $("#timeline").replaceChildren(...items);
}

async function selectLoan(id) {
  state.selected = id;
  state.timeline = new Map();
  document.querySelectorAll("#loans tr.selected").forEach((row) => row.classList.remove("selected"));
  const row = document.querySelector(`#loans tr[data-id="${id}"]`);
  if (row) row.classList.add("selected");
  renderTimelineHead();
  renderTimeline();
  const { ok, body } = await getJson(`/api/v1/loans/${id}/events`);
  if (!ok || state.selected !== id) return;
  // Merge: live events may have arrived while the history was loading.
  body.forEach((event) => state.timeline.set(event.id, event));
  renderTimeline();
}

// ---------------------------------------------------------------------------------------------
// The live stream

function applyEvent(event) {
  if (state.seen.has(event.id)) return;
  state.seen.add(event.id);
  if (state.seen.size > SEEN_IDS) state.seen.delete(state.seen.values().next().value);
  state.lastEventId = Math.max(state.lastEventId ?? 0, event.id);
  const loan = state.loans.get(event.loan_id);
  if (!loan) {
    if (event.type === "LoanSubmitted") refreshLoan(event.loan_id);
  } else {
    if (STATUS_RANK[event.status] >= STATUS_RANK[loan.status]) loan.status = event.status;
    const rereads = TERMINAL_EVENTS.has(event.type) || HUMAN_EVENTS.has(event.type);
    if (rereads || event.type === "CreditChecked" || event.type === "PropertyAppraised") {
      refreshLoan(event.loan_id);
    } else {
      upsertLoan(loan);
    }
  }
  if (event.loan_id === state.selected) {
    state.timeline.set(event.id, event);
    renderTimeline();
  }
  refreshStatsSoon();
  queueOnEvent(event);
  processOnEvent(event);
}

function setLive(mode, text) {
  document.body.dataset.live = mode;
  $("#connection").textContent = text;
}

let reconnectDelay = 500;
function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams({ access_token: token() || "" });
  if (state.lastEventId !== null) query.set("after", state.lastEventId);
  const socket = new WebSocket(`${scheme}//${location.host}/ws?${query}`);
  socket.addEventListener("open", async () => {
    reconnectDelay = 500;
    setLive("open", "live · WebSocket");
    await Promise.all([loadLoans(), loadStats(), loadQueue(), loadSteps()]);
    state.snapshotLoaded = true;
    state.early.splice(0).forEach(applyEvent);
    if (state.selected) selectLoan(state.selected);
  });
  socket.addEventListener("message", (message) => {
    const event = JSON.parse(message.data);
    if (state.snapshotLoaded) applyEvent(event);
    else state.early.push(event);
  });
  socket.addEventListener("close", (close) => {
    state.snapshotLoaded = false;
    setLive("closed", `reconnecting…${close.reason ? " (" + close.reason + ")" : ""}`);
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
  });
}

// ---------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromLink();
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", signOut);
  if (!token()) {
    showSignIn("signed out");
    return;
  }
  document.body.dataset.signedIn = "yes";
  $("#sign-out").hidden = false;
  document.body.dataset.view = "loans";
  for (const button of document.querySelectorAll("nav.views button")) {
    button.addEventListener("click", () => showView(button.dataset.view));
  }
  loadMe();
  startQueue();
  startProcess();
  $("#apply").addEventListener("submit", submitApplication);
  $("#example").addEventListener("click", fillExample);
  $("#loans tbody").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (row) selectLoan(row.dataset.id);
  });
  connect();
  pollActors();
});
