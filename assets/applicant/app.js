// loanflow applicant page: vanilla JavaScript, no framework, no external assets.
//
// The link is `/applications/{id}#token=...`: the token is the applicant's credential for this
// loan only. It is taken out of the address bar at once and kept in sessionStorage (this tab
// only); it travels as `Authorization: Bearer`, and in a URL only on the loan's event stream,
// since `EventSource` cannot set headers. Every event on the stream reloads the loan, so the
// page always shows what `GET /api/v1/loans/{id}` says.
"use strict";

const RECONNECT_MAX_MS = 10000;
const MAX_ANSWER = 2000;
const STATUS_TEXT = {
  submitted: "We have your application and are starting to check it.",
  evaluating: "We are checking your credit and the property's value.",
  under_review: "An underwriter is reviewing your application.",
  awaiting_information: "We need more information from you before we can decide: see below.",
  approved: "Your loan is approved.",
  rejected: "We are sorry: your application was not approved.",
  cancelled: "Your application was cancelled.",
};
const TERMINAL = new Set(["approved", "rejected", "cancelled"]);

const $ = (selector) => document.querySelector(selector);
const loanId = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || "");
const TOKEN_KEY = `loanflow.applicant.${loanId}`;

const state = { loan: null, requestId: null, lastEventId: null, dueAt: null, loading: null, reload: false };

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// A token in the address (`#token=...`) is kept for this tab, and leaves the address at once.
function takeTokenFromLink() {
  const match = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!match) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  children.filter((c) => c !== null && c !== undefined).forEach((c) => node.append(c));
  return node;
}

function setLive(live, text) {
  document.body.dataset.live = live;
  $("#connection").textContent = text;
}

function refuse(reason) {
  document.body.dataset.state = "refused";
  $("#refused-reason").textContent = reason;
  $("#refused").hidden = false;
  for (const id of ["#summary", "#request", "#withdraw-panel", "#notice"]) $(id).hidden = true;
  setLive("closed", "not connected");
}

function notice(text, kind) {
  const box = $("#notice");
  box.textContent = text;
  box.className = `notice ${kind || ""}`;
  box.dataset.kind = kind || "info";
  box.hidden = !text;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await response.json().catch(() => null);
  return { status: response.status, ok: response.ok, body: json };
}

// The answer of a refused credential or a loan it may not see, in words.
function refusal(status) {
  if (status === 401) return "The access token in this link is not valid (it may have been mistyped or revoked).";
  if (status === 404) return "There is no application with this number for this access token.";
  return null;
}

// ---------------------------------------------------------------------------------------------
// Showing the loan

const money = new Intl.NumberFormat("en-IE", { style: "currency", currency: "EUR", maximumFractionDigits: 2 });

function renderSummary(loan) {
  $("#summary").hidden = false;
  $("#loan-id").textContent = loan.id;
  const badge = $("#status");
  badge.textContent = loan.status.replace("_", " ");
  badge.className = `badge ${loan.status}`;
  document.body.dataset.status = loan.status;
  $("#status-text").textContent = STATUS_TEXT[loan.status] || "";
  const figures = [
    ["Amount", money.format(loan.amount)],
    ["Term", `${loan.term_months} months`],
    ["Rate", loan.rate_bps == null ? null : `${(loan.rate_bps / 100).toFixed(2)} %`],
    ["Monthly payment", loan.monthly_payment == null ? null : money.format(loan.monthly_payment)],
  ].filter(([, value]) => value !== null);
  $("#figures").replaceChildren(...figures.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("#withdraw-panel").hidden = TERMINAL.has(loan.status);
}

function renderRequest(request) {
  const section = $("#request");
  if (!request) {
    section.hidden = true;
    state.requestId = null;
    state.dueAt = null;
    return;
  }
  section.hidden = false;
  state.dueAt = new Date(request.due_at);
  $("#due-at").textContent = state.dueAt.toLocaleString();
  $("#due-at").setAttribute("datetime", request.due_at);
  tick();
  // The same request keeps what the applicant has typed so far.
  if (state.requestId === request.request_id) return;
  state.requestId = request.request_id;
  section.dataset.requestId = request.request_id;
  $("#request-message").textContent = request.message;
  const fields = request.fields.map((field, i) =>
    el(
      "div",
      { class: "field", "data-field": field },
      el("label", { for: `answer-${i}` }, field),
      el("textarea", { id: `answer-${i}`, name: field, maxlength: String(MAX_ANSWER), required: "" }),
      el("p", { class: "field-error", "data-field": field, hidden: "" }),
    ),
  );
  $("#answer-fields").replaceChildren(...fields);
  $("#send-answers").disabled = false;
}

function render(loan) {
  state.loan = loan;
  document.body.dataset.state = "shown";
  renderSummary(loan);
  renderRequest(loan.status === "awaiting_information" ? loan.information_request : null);
}

// Loads the loan; a load asked for while one runs runs once more after it.
async function load() {
  if (state.loading) {
    state.reload = true;
    return state.loading;
  }
  state.loading = (async () => {
    do {
      state.reload = false;
      const { status, ok, body } = await api("GET", `/api/v1/loans/${encodeURIComponent(loanId)}`);
      if (ok) render(body);
      else if (refusal(status)) return refuse(refusal(status));
      else notice(problemText(body, "Could not load your application; retrying when something changes."), "error");
    } while (state.reload);
  })();
  try {
    await state.loading;
  } finally {
    state.loading = null;
  }
}

// ---------------------------------------------------------------------------------------------
// The deadline

function countdownText(ms) {
  const s = Math.floor(ms / 1000);
  const days = Math.floor(s / 86400);
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  return days > 0 ? `${days} d ${hms}` : hms;
}

function tick() {
  if (!state.dueAt) return;
  const left = state.dueAt.getTime() - Date.now();
  const line = $(".deadline");
  line.classList.toggle("passed", left <= 0);
  $("#countdown").textContent = left > 0 ? countdownText(left) : "the deadline has passed";
}

// ---------------------------------------------------------------------------------------------
// Answering and withdrawing

function problemText(body, fallback) {
  if (!body) return fallback;
  return body.detail || body.title || fallback;
}

function showFieldErrors(errors) {
  document.querySelectorAll("#answer-fields .field-error").forEach((p) => {
    p.hidden = true;
    p.textContent = "";
  });
  document.querySelectorAll("#answer-fields textarea").forEach((t) => t.classList.remove("invalid"));
  for (const error of errors) {
    const name = String(error.field || "").replace(/^answers\./, "");
    const p = document.querySelector(`#answer-fields .field-error[data-field="${CSS.escape(name)}"]`);
    if (!p) continue;
    p.textContent = error.message;
    p.hidden = false;
    document.querySelector(`#answer-fields textarea[name="${CSS.escape(name)}"]`)?.classList.add("invalid");
  }
}

// A 409: the loan moved on; say to what, and show it.
function conflict(body, what) {
  const now = body && body.loan_status ? ` Your application is now ${body.loan_status.replace("_", " ")}.` : "";
  notice(`${what} is no longer possible.${now}`, "error");
  load();
}

async function sendAnswers(event) {
  event.preventDefault();
  const answers = {};
  const missing = [];
  document.querySelectorAll("#answer-fields textarea").forEach((t) => {
    answers[t.name] = t.value;
    if (!t.value.trim()) missing.push({ field: t.name, message: "please answer this" });
  });
  showFieldErrors(missing);
  if (missing.length) return;
  const button = $("#send-answers");
  button.disabled = true;
  const path = `/api/v1/loans/${encodeURIComponent(loanId)}/information`;
  const { status, ok, body } = await api("POST", path, { request_id: state.requestId, answers });
  button.disabled = false;
  if (ok) {
    notice("Thank you: your answers were sent to the underwriter.", "info");
    render(body);
  } else if (status === 409) {
    conflict(body, "Answering this request");
  } else if (status === 422) {
    showFieldErrors((body && body.errors) || []);
    notice(problemText(body, "Some answers are not acceptable."), "error");
  } else if (refusal(status)) {
    refuse(refusal(status));
  } else {
    notice(problemText(body, `Your answers could not be sent (${status}); please try again.`), "error");
  }
}

async function withdraw() {
  if (!confirm("Withdraw your application? This cannot be undone.")) return;
  const button = $("#withdraw");
  button.disabled = true;
  const { status, body } = await api("POST", `/api/v1/loans/${encodeURIComponent(loanId)}/withdraw`);
  button.disabled = false;
  if (status === 202) {
    notice("Your withdrawal is accepted; the application is being closed.", "info");
    load();
  } else if (status === 409) {
    conflict(body, "Withdrawing");
  } else if (refusal(status)) {
    refuse(refusal(status));
  } else {
    notice(problemText(body, `The withdrawal failed (${status}); please try again.`), "error");
  }
}

// ---------------------------------------------------------------------------------------------
// The loan's live stream (SSE): `EventSource` resumes by itself with `Last-Event-ID`; when it
// gives up (the server refused it), a new one resumes after the last event id seen.

let reconnectDelay = 500;

function connect() {
  const query = new URLSearchParams({ access_token: token() });
  if (state.lastEventId !== null) query.set("after", String(state.lastEventId));
  const source = new EventSource(`/api/v1/loans/${encodeURIComponent(loanId)}/events/stream?${query}`);
  source.onopen = () => {
    reconnectDelay = 500;
    setLive("open", "live");
    load();
  };
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (state.lastEventId !== null && event.id <= state.lastEventId) return;
    state.lastEventId = event.id;
    load();
  };
  source.onerror = () => {
    if (source.readyState !== EventSource.CLOSED) {
      setLive("closed", "reconnecting…");
      return;
    }
    setLive("closed", "reconnecting…");
    setTimeout(async () => {
      // A refused credential is said once, not retried forever.
      const { status } = await api("GET", `/api/v1/loans/${encodeURIComponent(loanId)}`);
      if (refusal(status)) return refuse(refusal(status));
      connect();
    }, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
  };
}

async function start() {
  takeTokenFromLink();
  $("#answer-form").addEventListener("submit", sendAnswers);
  $("#withdraw").addEventListener("click", withdraw);
  setInterval(tick, 1000);
  if (!token()) return refuse("This link has no access token: open the full link from your confirmation.");
  await load();
  if (document.body.dataset.state !== "refused") connect();
}

start();
