// The work queue's cards, one per loan under review: who the applicant is, why the loan was
// referred, its figures, how long it has waited, escalation and claim, its history on demand,
// and (for those who may act) claim, approve / reject with a note, and a request for
// information. queue.js keeps the loans and sends the actions.
"use strict";

const ASK_UNITS = { hours: 3600, days: 86400 };

function renderReviewCards(loans) {
  const list = $("#review-queue");
  const cards = new Map([...list.children].map((card) => [card.dataset.id, card]));
  const wanted = loans.map((loan) => {
    const card = cards.get(loan.id) || newCard(loan);
    updateCard(card, loan);
    cards.delete(loan.id);
    return card;
  });
  cards.forEach((card) => card.remove());
  // Move only what is out of place (moving a node takes the focus from a note being typed).
  wanted.forEach((card, i) => {
    if (list.children[i] !== card) list.insertBefore(card, list.children[i] || null);
  });
  $("#review-empty").hidden = loans.length > 0;
}

function newCard(loan) {
  return el(
    "li",
    { class: "card", dataset: { id: loan.id } },
    el("div", { class: "info" }),
    historyOf(loan.id),
    el("p", { class: "outcome", role: "status" }),
  );
}

// The loan's history, read when opened (what was asked and answered, who claimed it), and read
// again on each change while open.
function historyOf(id) {
  const list = el("ol", { class: "history" });
  const details = el("details", { class: "history" }, el("summary", {}, "history"), list);
  details.addEventListener("toggle", () => {
    if (details.open) loadHistory(id, list);
  });
  return details;
}

async function loadHistory(id, list) {
  const { ok, body } = await getJson(`/api/v1/loans/${id}/events`);
  if (!ok) return;
  list.replaceChildren(
    ...body.map((event) =>
      el(
        "li",
        { dataset: { type: event.type } },
        el("time", { datetime: event.at, title: event.at }, `${fmtDate(event.at)} ${fmtTime(event.at)} `),
        el("b", {}, event.type),
        ` ${summarize(event)}`,
      ),
    ),
  );
}

function updateCard(card, loan) {
  const review = loan.review || {};
  Object.assign(card.dataset, {
    status: loan.status,
    version: String(loan.version),
    escalated: String(!!review.escalated),
    claimedBy: review.claimed_by || "",
  });
  card.querySelector(".info").replaceChildren(...cardInfo(loan));
  const history = card.querySelector("details.history");
  if (history.open) loadHistory(loan.id, history.querySelector("ol"));
  // The role is known once `/api/v1/me` answered, which may be after the card was made.
  if (!mayReview()) return;
  const work = card.querySelector(".work") || card.insertBefore(workArea(loan.id), card.querySelector(".outcome"));
  const free = mayActOn(loan);
  work.hidden = !free;
  work.querySelector(".claim").hidden = !free || review.claimed_by === document.body.dataset.name;
}

function cardInfo(loan) {
  const review = loan.review || {};
  const flags = el("span", { class: "flags" });
  if (review.escalated) flags.append(el("span", { class: "tag escalated", title: "under review longer than the escalation setting" }, "escalated"));
  flags.append(
    review.claimed_by
      ? el("span", { class: "claimed" }, `claimed by ${review.claimed_by}`)
      : el("span", { class: "muted" }, "unclaimed"),
  );
  const figure = (label, value, cls) => el("div", { class: `figure ${cls}` }, el("span", { class: "k" }, label), el("span", { class: "v" }, value));
  return [
    el(
      "div",
      { class: "title" },
      el("b", {}, loan.applicant.name),
      ` · ${fmtMoney(loan.amount)} over ${loan.term_months} months `,
      flags,
    ),
    el(
      "div",
      { class: "meta" },
      "waiting ",
      el("span", { class: "age", dataset: { since: loan.waiting_since || "" } }, "–"),
      " · ",
      referralReason(review),
      " · ",
      el("code", {}, loan.id),
    ),
    el(
      "div",
      { class: "figures" },
      figure("score", review.credit_score ?? loan.credit_score ?? "–", "score"),
      figure("loan-to-value", fmtPercent(review.loan_to_value), "ltv"),
      figure("debt-to-income", fmtPercent(review.debt_to_income), "dti"),
      figure("payment", `${fmtMoney(review.monthly_payment ?? loan.monthly_payment)} / month`, "payment"),
      figure("rate", fmtRate(review.rate_bps ?? loan.rate_bps), "rate"),
    ),
  ];
}

function referralReason(review) {
  if (review.reason === "score_below_review_band") {
    return `referred: score ${review.credit_score} below the review band (${review.review_below_score})`;
  }
  return review.reason ? `referred: ${review.reason}` : "referred";
}

// The controls of a card: claim, a note with approve / reject, and a request for information.
function workArea(id) {
  const note = el("textarea", { name: "note", rows: "2", maxlength: "2000", placeholder: "Note for the decision (kept with it)" });
  const button = (label, cls, onClick) => {
    const b = el("button", { type: "button", class: cls }, label);
    b.addEventListener("click", () => onClick(b));
    return b;
  };
  const ask = askForm(id);
  return el(
    "div",
    { class: "work" },
    el(
      "div",
      { class: "buttons" },
      button("Claim", "claim secondary", (b) => act(id, b, "claim", `/api/v1/loans/${id}/claim`)),
      button("Approve", "approve", (b) => decide(id, b, "approve", note)),
      button("Reject", "reject danger", (b) => decide(id, b, "reject", note)),
      button("Ask for information", "ask secondary", () => {
        ask.hidden = !ask.hidden;
      }),
    ),
    note,
    ask,
  );
}

function askForm(id) {
  const form = el(
    "form",
    { class: "ask-form", hidden: "" },
    el("label", {}, "Fields (comma-separated)", el("input", { name: "fields", placeholder: "payslip, employer", autocomplete: "off" })),
    el("label", {}, "Message to the applicant", el("textarea", { name: "message", rows: "2", maxlength: "2000" })),
    el(
      "div",
      { class: "row" },
      el("label", {}, "Deadline in", el("input", { name: "due", value: "7", inputmode: "numeric" })),
      el("label", {}, "unit", el("select", { name: "unit" }, el("option", { value: "days" }, "days"), el("option", { value: "hours" }, "hours"))),
      el("button", { type: "submit", class: "send-request" }, "Send request"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = {
      fields: f.fields.value.split(",").map((s) => s.trim()).filter(Boolean),
      message: f.message.value.trim(),
      due_in_seconds: Math.round(Number(f.due.value) * ASK_UNITS[f.unit.value]),
    };
    act(id, form.querySelector(".send-request"), "request", `/api/v1/loans/${id}/information-requests`, body);
  });
  return form;
}

function decide(id, button, decision, note) {
  act(id, button, decision, `/api/v1/loans/${id}/decision`, { decision, note: note.value.trim() });
}
