// The process view: the loan process drawn as an SVG diagram, built here (no image file), each
// step with the number of loans waiting on it and how long the oldest has waited, from
// `GET /api/v1/loans/steps`. The counts are read again shortly after each live event and every
// few seconds besides; the ages move every second in between. Clicking a step lists its loans
// (`GET /api/v1/loans?waiting_on=<step>`).
"use strict";

const STEPS_POLL_MS = 5000;
const STEPS_DEBOUNCE_MS = 300;
const STEP_LOANS_LIMIT = 100;
const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 150;
const NODE_H = 74;

// Where each step sits: x, y of its top-left corner; its label; what kind of step it is.
const LAYOUT = {
  start: { x: 10, y: 168, label: "start", kind: "system" },
  credit_check: { x: 200, y: 90, label: "credit check", kind: "system" },
  appraisal: { x: 200, y: 246, label: "appraisal", kind: "system" },
  underwriter: { x: 420, y: 90, label: "underwriter review", kind: "person" },
  applicant: { x: 420, y: 246, label: "awaiting applicant", kind: "person" },
  schedule: { x: 640, y: 90, label: "schedule", kind: "system" },
  credit_release: { x: 420, y: 402, label: "release credit check", kind: "compensation" },
  appraisal_void: { x: 640, y: 402, label: "void appraisal", kind: "compensation" },
  notification: { x: 850, y: 246, label: "notification", kind: "system" },
};

// The ways a loan moves between steps: from, to, a label, and whether it compensates.
const EDGES = [
  ["start", "credit_check"],
  ["start", "appraisal"],
  ["credit_check", "underwriter", "referred"],
  ["appraisal", "underwriter"],
  ["credit_check", "schedule", "approved by the rules", "arc"],
  ["underwriter", "applicant", "asks"],
  ["applicant", "underwriter", "answers"],
  ["underwriter", "schedule", "approves"],
  ["schedule", "notification"],
  ["underwriter", "notification", "rejects"],
  ["applicant", "credit_release", "expires, withdrawn", "compensate"],
  ["appraisal", "credit_release", "fails", "compensate"],
  ["credit_release", "appraisal_void", "", "compensate"],
  ["appraisal_void", "notification", "", "compensate"],
];

const stepsView = {
  built: false,
  steps: new Map(), // step -> its latest StepView
  readAt: 0, // Date.now() when the steps were read (ages count on from there)
  selected: null, // the step whose loans are listed
  timer: null,
};

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  children.forEach((child) => node.append(child));
  return node;
}

function buildDiagram() {
  const width = LAYOUT.notification.x + NODE_W + 10;
  const height = LAYOUT.credit_release.y + NODE_H + 10;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "The loan process, with the loans at each step" });
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  root.append(svg("defs", {}, marker));
  EDGES.forEach((edge) => root.append(drawEdge(...edge)));
  for (const [step, place] of Object.entries(LAYOUT)) root.append(drawNode(step, place));
  $("#process-diagram").replaceChildren(root);
  stepsView.built = true;
}

function drawNode(step, { x, y, label, kind }) {
  const group = svg("g", { class: `step ${kind}`, "data-step": step, "data-count": "0", tabindex: "0", role: "button", "aria-label": label });
  group.append(
    svg("rect", { x, y, width: NODE_W, height: NODE_H, rx: 10 }),
    svg("text", { x: x + NODE_W / 2, y: y + 19, class: "label" }, label),
    svg("text", { x: x + NODE_W / 2, y: y + 46, class: "count" }, "–"),
    svg("text", { x: x + NODE_W / 2, y: y + 65, class: "age" }, ""),
  );
  group.addEventListener("click", () => selectStep(step));
  group.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") selectStep(step);
  });
  return group;
}

// A line between two boxes' nearest sides; an arc goes over the top of the boxes between.
function drawEdge(from, to, label = "", style = "") {
  const a = LAYOUT[from];
  const b = LAYOUT[to];
  const [x1, y1, x2, y2] = ends(a, b);
  const group = svg("g", { class: `edge ${style === "compensate" ? "compensate" : ""}` });
  let path;
  let labelAt;
  if (style === "arc") {
    const lift = Math.min(a.y, b.y) - 45;
    path = `M ${x1} ${y1} C ${x1} ${lift}, ${x2} ${lift}, ${x2} ${y2}`;
    labelAt = [(x1 + x2) / 2, lift + 30];
  } else {
    path = `M ${x1} ${y1} L ${x2} ${y2}`;
    labelAt = [(x1 + x2) / 2, (y1 + y2) / 2 - 5];
  }
  group.append(svg("path", { d: path, "marker-end": "url(#arrow)" }));
  if (label) group.append(svg("text", { x: labelAt[0], y: labelAt[1], class: "edge-label" }, label));
  return group;
}

function ends(a, b) {
  const centre = (p) => [p.x + NODE_W / 2, p.y + NODE_H / 2];
  const [ax, ay] = centre(a);
  const [bx, by] = centre(b);
  if (Math.abs(ax - bx) < 1) {
    // One above the other: bottom to top, offset so that two opposite edges do not overlap.
    const shift = ay < by ? -18 : 18;
    return ay < by ? [ax + shift, a.y + NODE_H, bx + shift, b.y] : [ax + shift, a.y, bx + shift, b.y + NODE_H];
  }
  const [x1, x2] = ax < bx ? [a.x + NODE_W, b.x] : [a.x, b.x + NODE_W];
  return [x1, ay, x2, by];
}

async function loadSteps() {
  const { ok, body } = await getJson("/api/v1/loans/steps");
  if (!ok || !body) return;
  if (!stepsView.built) buildDiagram();
  const changed = [];
  for (const step of body.steps) {
    const before = stepsView.steps.get(step.step);
    if (!before || before.loans !== step.loans) changed.push(step.step);
    stepsView.steps.set(step.step, step);
    const node = document.querySelector(`#process-diagram g.step[data-step="${step.step}"]`);
    if (!node) continue;
    node.dataset.count = String(step.loans);
    node.classList.toggle("busy", step.loans > 0);
    node.querySelector(".count").textContent = String(step.loans);
  }
  stepsView.readAt = Date.now();
  $("#steps-at").textContent = `read ${fmtTime(body.at)}`;
  tickSteps();
  if (stepsView.selected && changed.includes(stepsView.selected)) listStepLoans(stepsView.selected);
}

function tickSteps() {
  const now = Date.now();
  for (const cell of document.querySelectorAll("#step-loans .age[data-since]")) {
    if (cell.dataset.since) cell.textContent = fmtDuration((now - Date.parse(cell.dataset.since)) / 1000);
  }
  const elapsed = (now - stepsView.readAt) / 1000;
  for (const [name, step] of stepsView.steps) {
    const node = document.querySelector(`#process-diagram g.step[data-step="${name}"] .age`);
    if (!node) continue;
    node.textContent = step.oldest_age_seconds === null ? "" : `oldest ${fmtDuration(step.oldest_age_seconds + elapsed)}`;
  }
}

// A live event moves some loan from one step to another: read the counts again, shortly after.
function processOnEvent() {
  if (stepsView.timer) return;
  stepsView.timer = setTimeout(() => {
    stepsView.timer = null;
    loadSteps();
  }, STEPS_DEBOUNCE_MS);
}

function selectStep(step) {
  stepsView.selected = step;
  for (const node of document.querySelectorAll("#process-diagram g.step")) {
    node.classList.toggle("selected", node.dataset.step === step);
  }
  listStepLoans(step);
}

async function listStepLoans(step) {
  const { ok, body } = await getJson(`/api/v1/loans?waiting_on=${encodeURIComponent(step)}&limit=${STEP_LOANS_LIMIT}`);
  if (!ok || stepsView.selected !== step) return;
  const loans = body.items.sort((a, b) => since(a.waiting_since) - since(b.waiting_since));
  const rows = loans.map((loan) =>
    el(
      "tr",
      { dataset: { id: loan.id, status: loan.status } },
      el("td", { class: "age", dataset: { since: loan.waiting_since || "" } }, loan.waiting_since ? fmtDuration((Date.now() - Date.parse(loan.waiting_since)) / 1000) : "–"),
      el("td", { class: "applicant" }, loan.applicant.name),
      el("td", { class: "num" }, fmtMoney(loan.amount)),
      el("td", {}, el("span", { class: `badge ${loan.status}` }, loan.status)),
      el("td", {}, el("code", {}, loan.id)),
    ),
  );
  $("#step-panel").hidden = false;
  $("#step-panel").dataset.step = step;
  const more = body.next_cursor ? ` (the ${STEP_LOANS_LIMIT} most recent)` : "";
  $("#step-title").textContent = `${LAYOUT[step] ? LAYOUT[step].label : step}: ${loans.length} loan${loans.length === 1 ? "" : "s"}${more}`;
  $("#step-loans tbody").replaceChildren(...rows);
  $("#step-empty").hidden = rows.length > 0;
}

function startProcess() {
  setInterval(() => {
    if (document.body.dataset.view === "process") loadSteps();
  }, STEPS_POLL_MS);
  setInterval(tickSteps, 1000);
}
