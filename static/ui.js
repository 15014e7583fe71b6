// What every view shares: DOM helpers, the page's messages, form errors and busy buttons, the
// dialogs' Cancel buttons, and wording used on more than one screen.
// Everything from the API is shown with textContent (never innerHTML).

// --- DOM --------------------------------------------------------------------------------

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Build an element: h("p", { class: "x" }, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

// --- Messages ---------------------------------------------------------------------------

let sayTimer = 0;

/** Announce a success in the polite status line. */
export function say(text) {
  const status = $("#status");
  status.textContent = "";
  clearTimeout(sayTimer);
  // Emptied first and filled a moment later, so screen readers announce a repeated message.
  sayTimer = setTimeout(() => {
    status.textContent = text;
  }, 50);
}

/** Show a failure in the alert line ("" hides it). */
export function warn(text) {
  const alert = $("#alert");
  alert.textContent = text;
  alert.hidden = !text;
}

export function clearMessages() {
  clearTimeout(sayTimer);
  $("#status").textContent = "";
  warn("");
}

/** Report a failure of a non-form action. */
export function failed(error) {
  if (error?.sessionEnded) return; // the sign-in screen already says so
  warn(error?.message ?? String(error));
}

// --- Forms ------------------------------------------------------------------------------

/** Show an error inside a form, marking the fields the API named; returns nothing. */
export function formError(form, error) {
  if (error?.sessionEnded) return; // the sign-in screen already says so
  const box = $(".form-error", form);
  box.textContent = error?.message ?? String(error);
  box.hidden = false;
  (markInvalid(form, error) ?? box).focus?.();
}

/** Mark the fields an error names (a 409 is about the word); returns the first one. */
function markInvalid(form, error) {
  const names = Object.keys(error?.fields ?? {});
  if (error?.status === 409) names.push("word");
  let first = null;
  for (const name of names) {
    const input = form.elements.namedItem(name);
    if (input instanceof Element) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  return first;
}

export function clearFormError(form) {
  const box = $(".form-error", form);
  box.textContent = "";
  box.hidden = true;
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

/** Client-side check of required fields, with the same wording style as the API's. */
export function missingRequired(form) {
  for (const el of $$("[required]", form)) {
    const empty = el.type === "file" ? el.files.length === 0 : !el.value.trim();
    if (empty) {
      const label = $(`label[for="${el.id}"]`, form)?.firstChild?.textContent.trim() ?? el.name;
      return { message: `${label}: please fill this in.`, fields: { [el.name]: true } };
    }
  }
  return null;
}

/** Run an action with the button disabled and marked busy. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

// --- Dialogs ----------------------------------------------------------------------------

/** Every dialog's Cancel button (marked data-close) closes its dialog. */
export function wireDialogs() {
  for (const button of $$("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
}

// --- Wording shared by views ------------------------------------------------------------

/** The schedule's stages, as the page names them. */
export const STATE_LABELS = {
  new: "New",
  learning: "Learning",
  review: "Review",
  relearning: "Relearning",
};

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "now", "in 10 minutes", "tomorrow"... for a time in the future. */
export function fromNow(iso) {
  const seconds = (Date.parse(iso) - Date.now()) / 1000;
  if (seconds <= 30) return "now";
  const units = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    if (seconds >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return relative.format(Math.round(seconds), "second");
}

/** A rating's interval as its button shows it, as Anki does: "1m", "10m", "1.5h", "4d",
 * "3.5mo", "1.2y" (minutes and days whole, hours, months and years to one decimal). */
export function formatInterval(seconds) {
  const one = (n) => String(Math.round(n * 10) / 10);
  const days = seconds / 86400;
  if (seconds < 60) return "<1m";
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86400) return `${one(seconds / 3600)}h`;
  if (days < 30) return `${Math.round(days)}d`;
  if (days < 365) return `${one(days / 30)}mo`;
  return `${one(days / 365)}y`;
}
