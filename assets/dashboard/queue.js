// The underwriter's work queue: loans under review (longest waiting first) with why each was
// referred and its figures, and loans awaiting their applicants with their deadlines.
//
// It is a view of the loans, not a copy kept by hand: each live event of a loan in review (or
// one just leaving it) has the loan read again, and a newer `version` replaces the older. A card
// is updated in place, so a note being typed survives the loan being claimed or escalated.
// Actions are offered only to roles that may take them (underwriter, operator); a viewer sees
// the queue read-only. The cards of the loans under review are drawn by review.js.
"use strict";

const QUEUE_LIMIT = 500;
const IN_REVIEW = new Set(["under_review", "awaiting_information"]);
const LEFT_REMEMBERED = 4096;

const queue = {
  loans: new Map(), // id -> loan view, for loans under review or awaiting their applicant
  reading: new Map(), // id -> a pending read of the loan (one at a time per loan)
  left: new Map(), // id -> the version at which a loan left review (older reads cannot bring it back)
};

const mayReview = () => ["underwriter", "operator"].includes(document.body.dataset.role);

// Whether this signed-in person may act on `loan`: a loan claimed by another underwriter is
// theirs (an operator may still act).
function mayActOn(loan) {
  if (!mayReview()) return false;
  const holder = loan.review && loan.review.claimed_by;
  return !holder || holder === document.body.dataset.name || document.body.dataset.role === "operator";
}

async function loadQueue() {
  const reads = ["under_review", "awaiting_information"].map((status) =>
    getJson(`/api/v1/loans?status=${status}&limit=${QUEUE_LIMIT}`),
  );
  const pages = await Promise.all(reads);
  if (!pages.every((page) => page.ok)) return;
  const fresh = new Map();
  pages.forEach((page) => page.body.items.filter((loan) => !(queue.left.get(loan.id) >= loan.version)).forEach((loan) => fresh.set(loan.id, loan)));
  // A loan read live meanwhile may be newer than the page.
  for (const [id, loan] of queue.loans) {
    const listed = fresh.get(id);
    if (listed && listed.version < loan.version) fresh.set(id, loan);
  }
  queue.loans = fresh;
  renderQueue();
}

// A live event: read again any loan that is (or was) in the queue, or that a human step's
// event names.
function queueOnEvent(event) {
  if (HUMAN_EVENTS.has(event.type) || IN_REVIEW.has(event.status) || queue.loans.has(event.loan_id)) readQueued(event.loan_id);
}

async function readQueued(id) {
  if (queue.reading.has(id)) {
    queue.reading.get(id).again = true;
    return;
  }
  const pending = { again: false };
  queue.reading.set(id, pending);
  try {
    do {
      pending.again = false;
      const { ok, status, body } = await getJson(`/api/v1/loans/${id}`);
      if (ok) takeLoan(body);
      else if (status === 404) queue.loans.delete(id);
    } while (pending.again);
  } finally {
    queue.reading.delete(id);
    renderQueue();
  }
}

// Keep the newer of two reads of a loan; a loan out of review leaves the queue.
function takeLoan(loan) {
  const known = queue.loans.get(loan.id);
  if ((known && known.version > loan.version) || queue.left.get(loan.id) >= loan.version) return;
  if (IN_REVIEW.has(loan.status)) {
    queue.loans.set(loan.id, loan);
  } else {
    queue.loans.delete(loan.id);
    queue.left.set(loan.id, loan.version);
    if (queue.left.size > LEFT_REMEMBERED) queue.left.delete(queue.left.keys().next().value);
  }
}

const since = (iso) => (iso ? Date.parse(iso) : Date.now());

function renderQueue() {
  const loans = [...queue.loans.values()];
  const inReview = loans.filter((l) => l.status === "under_review").sort((a, b) => since(a.waiting_since) - since(b.waiting_since));
  const awaiting = loans
    .filter((l) => l.status === "awaiting_information" && l.information_request)
    .sort((a, b) => Date.parse(a.information_request.due_at) - Date.parse(b.information_request.due_at));
  renderReviewCards(inReview);
  renderAwaiting(awaiting);
  $("#queue-count").textContent = String(inReview.length);
  tickQueue();
}

const ACTION_NAMES = { claim: "claim", approve: "approval", reject: "rejection", request: "request for information", extend: "deadline extension" };
const DONE = { claim: "claimed", approve: "approved", reject: "rejected", request: "information requested", extend: "deadline extended" };

// Send one action; show its outcome on the card, or as a notice when it was refused because the
// loan moved on (another underwriter was first): then the notice shows the loan as it is now.
async function act(id, button, what, path, body) {
  const card = button.closest("[data-id]");
  const outcome = card && card.querySelector(".outcome");
  button.disabled = true;
  try {
    const { ok, status, body: answer } = await postJson(path, body);
    if (ok) {
      if (outcome) outcome.textContent = DONE[what];
      if (answer && answer.version) takeLoan(answer);
    } else if (status === 409 || status === 412) {
      await showConflict(id, what, status, answer);
    } else if (outcome) {
      outcome.textContent = problemText(answer, status);
      outcome.classList.add("error");
    }
  } finally {
    button.disabled = false;
    readQueued(id);
  }
}

function problemText(problem, status) {
  const fields = ((problem && problem.errors) || []).map((e) => (e.field ? `${e.field}: ${e.message}` : e.message));
  return `refused (${status}): ${fields.length ? fields.join("; ") : (problem && (problem.detail || problem.title)) || ""}`;
}

// The loan as it is now, and who decided it if someone did.
async function showConflict(id, what, status, problem) {
  const [{ body: loan }, { body: events }] = await Promise.all([getJson(`/api/v1/loans/${id}`), getJson(`/api/v1/loans/${id}/events`)]);
  const current = (loan && loan.status) || (problem && problem.loan_status) || "unknown";
  const decision = (events || []).filter((e) => e.type === "LoanApproved" || e.type === "LoanRejected").pop();
  const by = decision && decision.data.review ? ` by ${decision.data.review.by}` : "";
  const holder = loan && loan.review && loan.review.claimed_by;
  const notice = el(
    "li",
    { class: "notice conflict", dataset: { loanId: id, status: current, httpStatus: String(status) } },
    el("b", {}, `Not applied (${status}): `),
    `your ${ACTION_NAMES[what]} of ${loan ? loan.applicant.name + "'s" : "the"} loan came too late: it is now `,
    el("span", { class: `badge ${current}` }, current),
    by,
    holder && IN_REVIEW.has(current) ? ` (claimed by ${holder})` : "",
    ". ",
    el("code", {}, id),
  );
  const dismiss = el("button", { type: "button", class: "link" }, "dismiss");
  dismiss.addEventListener("click", () => notice.remove());
  notice.append(" ", dismiss);
  $("#queue-notices").prepend(notice);
  if (loan) takeLoan(loan);
  renderQueue();
}

// ---------------------------------------------------------------------------------------------
// Loans awaiting their applicants

// A row is kept while its request and deadline stay (so a number being typed survives).
function renderAwaiting(loans) {
  const body = $("#awaiting tbody");
  const known = new Map([...body.children].map((row) => [row.dataset.id, row]));
  const rows = loans.map((loan) => {
    const request = loan.information_request;
    const kept = known.get(loan.id);
    const actable = String(mayActOn(loan));
    if (kept && kept.dataset.due === request.due_at && kept.dataset.requestId === request.request_id && kept.dataset.actable === actable) {
      return kept;
    }
    return el(
      "tr",
      { dataset: { id: loan.id, requestId: request.request_id, due: request.due_at, actable } },
      el("td", { class: "applicant" }, loan.applicant.name, el("small", {}, loan.id)),
      el("td", {}, request.fields.join(", ")),
      el("td", { class: "message" }, request.message),
      el("td", {}, el("time", { datetime: request.due_at, title: request.due_at }, `${fmtDate(request.due_at)} ${fmtTime(request.due_at)}`)),
      el("td", { class: "num countdown", dataset: { due: request.due_at } }, "–"),
      el("td", {}, mayActOn(loan) ? extendControl(loan) : ""),
    );
  });
  if (rows.some((row, i) => body.children[i] !== row) || body.children.length !== rows.length) body.replaceChildren(...rows);
  $("#awaiting-empty").hidden = rows.length > 0;
}

function extendControl(loan) {
  const days = el("input", { name: "extend-days", value: "7", inputmode: "numeric", size: "3", "aria-label": "days from now" });
  const button = el("button", { type: "button", class: "extend secondary" }, "Extend");
  const path = `/api/v1/loans/${loan.id}/information-requests/${loan.information_request.request_id}/deadline`;
  button.addEventListener("click", () => act(loan.id, button, "extend", path, { due_in_seconds: Math.round(Number(days.value) * 86400) }));
  return el("span", { class: "extend-control" }, days, " days ", button, el("span", { class: "outcome", role: "status" }));
}

// Ages and countdowns move every second, between reads.
function tickQueue() {
  const now = Date.now();
  for (const node of document.querySelectorAll("#review-queue .age[data-since]")) {
    node.textContent = node.dataset.since ? fmtDuration((now - Date.parse(node.dataset.since)) / 1000) : "–";
  }
  for (const node of document.querySelectorAll("#awaiting .countdown[data-due]")) {
    const left = (Date.parse(node.dataset.due) - now) / 1000;
    node.textContent = left > 0 ? fmtDuration(left) : "due";
    node.classList.toggle("soon", left < 3600);
  }
}

function startQueue() {
  setInterval(tickQueue, 1000);
}
