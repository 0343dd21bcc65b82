// The application form: anyone may submit (the API needs no credential for it); a 422
// problem's errors are shown next to their fields. The new loan is selected for its timeline.
"use strict";

const EXAMPLE = {
  "applicant.name": "Grace Hopper",
  "applicant.email": "grace@example.com",
  "applicant.annual_income": "150000",
  "applicant.monthly_debts": "300",
  "property.address": "12 Harbour Road, Lisbon",
  "property.declared_value": "400000",
  "amount": "200000",
  "term_months": "300",
};

function readForm(form) {
  const value = (name) => form.elements[name].value.trim();
  const number = (name) => {
    const raw = value(name);
    if (raw === "") return null;
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw; // the server names the error
  };
  return {
    applicant: {
      name: value("applicant.name"),
      email: value("applicant.email"),
      annual_income: number("applicant.annual_income"),
      monthly_debts: number("applicant.monthly_debts"),
    },
    property: { address: value("property.address"), declared_value: number("property.declared_value") },
    amount: number("amount"),
    term_months: number("term_months"),
  };
}

function clearErrors(form) {
  form.querySelectorAll(".field-error").forEach((node) => node.remove());
  form.querySelectorAll("input.invalid").forEach((input) => input.classList.remove("invalid"));
  const general = $("#form-errors");
  general.hidden = true;
  general.textContent = "";
}

function showProblem(form, problem) {
  const unmatched = [];
  for (const error of (problem && problem.errors) || []) {
    const input = form.elements[error.field];
    if (input instanceof HTMLInputElement) {
      input.classList.add("invalid");
      input.after(el("span", { class: "field-error", dataset: { field: error.field } }, error.message));
    } else {
      unmatched.push(error.field ? `${error.field}: ${error.message}` : error.message);
    }
  }
  if (unmatched.length || !(problem && problem.errors && problem.errors.length)) {
    const general = $("#form-errors");
    general.textContent = unmatched.length ? unmatched.join("; ") : (problem && (problem.detail || problem.title)) || "The request failed.";
    general.hidden = false;
  }
}

async function submitApplication(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("#submit");
  const result = $("#form-result");
  clearErrors(form);
  result.textContent = "";
  delete result.dataset.loanId;
  button.disabled = true;
  try {
    const response = await fetch("/api/v1/loans", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(readForm(form)),
    });
    const body = await response.json().catch(() => null);
    if (response.ok && body && body.id) {
      result.dataset.loanId = body.id;
      result.replaceChildren("Submitted: ", el("code", {}, body.id));
      upsertLoan(body);
      selectLoan(body.id);
    } else {
      showProblem(form, body);
    }
  } catch (error) {
    showProblem(form, { detail: `The service did not answer (${error.message}).` });
  } finally {
    button.disabled = false;
  }
}

function fillExample() {
  const form = $("#apply");
  for (const [name, value] of Object.entries(EXAMPLE)) form.elements[name].value = value;
  clearErrors(form);
}
