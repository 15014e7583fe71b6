// The study page: sign in, keep a word list, study due cards, see stats, import and export.
// Plain DOM, no framework. Everything from the API is shown with textContent (never innerHTML).
import * as api from "./api.js";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Build an element: h("p", { class: "x" }, "text", child). */
function h(tag, attrs = {}, ...children) {
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

const PRIVATE_VIEWS = ["words", "study", "stats", "transfer"];
const TITLES = {
  signin: "Sign in",
  register: "Create an account",
  words: "Words",
  study: "Study",
  stats: "Stats",
  transfer: "Import & export",
};
const RATING_LABELS = { again: "Again", hard: "Hard", good: "Good", easy: "Easy" };
const STATE_LABELS = { new: "New", learning: "Learning", review: "Review", relearning: "Relearning" };
const PAGE_SIZE = 50;

const state = {
  user: null,
  authView: "signin",
  view: null,
  words: { q: "", sort: "-created_at", offset: 0, total: 0 },
  study: { card: null, revealed: false, shownAt: 0, busy: false },
  editing: null, // the word being edited, or null when adding
  deleting: null,
};

// --- Messages ---------------------------------------------------------------------------

let sayTimer = 0;
function say(text) {
  const status = $("#status");
  status.textContent = "";
  clearTimeout(sayTimer);
  // Emptied first and filled a moment later, so screen readers announce a repeated message.
  sayTimer = setTimeout(() => {
    status.textContent = text;
  }, 50);
}

function warn(text) {
  const alert = $("#alert");
  alert.textContent = text;
  alert.hidden = !text;
}

function clearMessages() {
  clearTimeout(sayTimer);
  $("#status").textContent = "";
  warn("");
}

/** Show an error inside a form, marking the fields the API named; returns nothing. */
function formError(form, error) {
  const box = $(".form-error", form);
  if (error?.sessionEnded) return; // the sign-in screen already says so
  box.textContent = error?.message ?? String(error);
  box.hidden = false;
  const fields = error?.fields ?? {};
  let first = null;
  for (const name of Object.keys(fields)) {
    const input = form.elements.namedItem(name);
    if (input instanceof Element) {
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
  }
  if (error?.status === 409 && form.elements.namedItem("word")) {
    form.elements.namedItem("word").setAttribute("aria-invalid", "true");
    first ??= form.elements.namedItem("word");
  }
  (first ?? box).focus?.();
}

function clearFormError(form) {
  const box = $(".form-error", form);
  box.textContent = "";
  box.hidden = true;
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

/** Client-side check of required fields, with the same wording style as the API's. */
function missingRequired(form) {
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
async function busy(button, action) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** Report a failure of a non-form action. */
function failed(error) {
  if (error?.sessionEnded) return;
  warn(error?.message ?? String(error));
}

// --- Dates ------------------------------------------------------------------------------

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

function fromNow(iso) {
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

// --- Views ------------------------------------------------------------------------------

function currentHashView() {
  const name = location.hash.replace(/^#/, "");
  return PRIVATE_VIEWS.includes(name) ? name : "words";
}

function show(view, { focus = true } = {}) {
  state.view = view;
  $("#loading").hidden = true;
  for (const section of $$("main > .view")) section.hidden = section.id !== `view-${view}`;
  for (const link of $$("#nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[view]} · vocab`;
  if (focus) $(`#view-${view} h1`).focus();
}

async function route({ focus = true } = {}) {
  if (!state.user) {
    $("#nav").hidden = true;
    $("#account").hidden = true;
    show(state.authView, { focus });
    return;
  }
  $("#nav").hidden = false;
  $("#account").hidden = false;
  $("#account-email").textContent = state.user.email;
  const view = currentHashView();
  show(view, { focus });
  try {
    if (view === "words") await loadWords();
    else if (view === "study") await loadStudy({ focusCard: false });
    else if (view === "stats") await loadStats();
    else if (view === "transfer") $("#import-result").hidden = true;
  } catch (error) {
    failed(error);
  }
}

/** Forget everything shown for the signed-in user. */
function clearUserData() {
  state.user = null;
  state.words = { q: "", sort: "-created_at", offset: 0, total: 0 };
  state.study = { card: null, revealed: false, shownAt: 0, busy: false };
  $("#word-list").replaceChildren();
  $("#words-summary").textContent = "";
  $("#search-q").value = "";
  $("#study-card").hidden = true;
  $("#study-empty").hidden = true;
  $("#study-left").textContent = "";
  $("#stats-list").replaceChildren();
  $("#stats-state").replaceChildren();
  $("#stats-difficulty").replaceChildren();
  $("#import-result").hidden = true;
  $("#account-email").textContent = "";
  for (const dialog of $$("dialog[open]")) dialog.close();
}

function sessionEnded(message) {
  if (!state.user) return; // already showing sign-in
  clearUserData();
  state.authView = "signin";
  route();
  warn(message);
}

async function startSession() {
  state.user = await api.requestJson("/users/me");
  if (!location.hash) history.replaceState(null, "", "#words");
  await route();
}

// --- Sign in and registration -----------------------------------------------------------

async function onSignIn(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  warn("");
  const missing = missingRequired(form);
  if (missing) return formError(form, missing);
  const email = form.elements.username.value.trim();
  const password = form.elements.password.value;
  await busy($("button[type=submit]", form), async () => {
    try {
      await api.signIn(email, password);
      form.reset(); // the password is not kept anywhere
      await startSession();
      say(`Signed in as ${state.user.email}.`);
    } catch (error) {
      formError(form, error);
    }
  });
}

async function onRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  warn("");
  const missing = missingRequired(form);
  if (missing) return formError(form, missing);
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  await busy($("button[type=submit]", form), async () => {
    try {
      await api.register(email, password);
      await api.signIn(email, password);
      form.reset();
      await startSession();
      say(`Welcome! Your account ${state.user.email} is ready. Add your first word.`);
    } catch (error) {
      formError(form, error);
    }
  });
}

function switchAuth(view) {
  state.authView = view;
  clearMessages();
  show(view);
}

async function onSignOut() {
  await api.signOut();
  clearUserData();
  state.authView = "signin";
  await route();
  say("You are signed out.");
}

// --- Words ------------------------------------------------------------------------------

async function loadWords() {
  const { q, sort, offset } = state.words;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset), sort });
  if (q) params.set("q", q);
  const page = await api.requestJson(`/words?${params}`);
  state.words.total = page.total;
  if (page.items.length === 0 && offset > 0) {
    state.words.offset = Math.max(0, offset - PAGE_SIZE); // the last page emptied
    return loadWords();
  }
  renderWords(page);
}

function renderWords(page) {
  const list = $("#word-list");
  list.replaceChildren(...page.items.map(wordItem));
  const { q, offset } = state.words;
  const summary = $("#words-summary");
  if (page.total === 0) {
    summary.textContent = q
      ? `No words match “${q}”.`
      : "No words yet. Add your first word to start studying.";
  } else {
    const last = offset + page.items.length;
    const range = page.total > page.items.length ? `${offset + 1}–${last} of ` : "";
    const noun = page.total === 1 ? "word" : "words";
    summary.textContent = `${range}${page.total} ${noun}${q ? ` matching “${q}”` : ""}.`;
  }
  $("#pager").hidden = page.total <= PAGE_SIZE;
  $("#prev-page").disabled = offset === 0;
  $("#next-page").disabled = offset + PAGE_SIZE >= page.total;
}

function dueText(word) {
  if (word.schedule.state === "new") return "New, not studied yet";
  const when = fromNow(word.schedule.due_at);
  return when === "now" ? "Due now" : `Next review ${when}`;
}

function wordItem(word) {
  const title = `word-${word.id}-title`;
  return h(
    "li",
    { class: "word-item" },
    h(
      "article",
      { "aria-labelledby": title },
      h(
        "div",
        { class: "word-head" },
        h("h2", { id: title, class: "word-title" }, word.word),
        word.language ? h("span", { class: "badge", title: "Language" }, word.language) : null,
      ),
      h("p", { class: "definition" }, word.definition),
      word.example ? h("p", { class: "example" }, word.example) : null,
      h(
        "p",
        { class: "meta muted small" },
        `Difficulty ${word.difficulty} of 5 · ${dueText(word)}`,
      ),
      word.tags.length
        ? h(
            "ul",
            { class: "tags", "aria-label": "Tags" },
            word.tags.map((tag) => h("li", { class: "tag" }, tag)),
          )
        : null,
      h(
        "div",
        { class: "item-actions" },
        h(
          "button",
          { type: "button", class: "secondary small", onclick: () => openWordDialog(word) },
          "Edit",
          h("span", { class: "visually-hidden" }, ` ${word.word}`),
        ),
        h(
          "button",
          { type: "button", class: "danger-outline small", onclick: () => openDeleteDialog(word) },
          "Delete",
          h("span", { class: "visually-hidden" }, ` ${word.word}`),
        ),
      ),
    ),
  );
}

function onSearch(event) {
  event.preventDefault();
  state.words.q = $("#search-q").value.trim();
  state.words.sort = $("#search-sort").value;
  state.words.offset = 0;
  loadWords().catch(failed);
}

let searchTimer = 0;
function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => $("#search-form").requestSubmit(), 300);
}

function turnPage(step) {
  state.words.offset = Math.max(0, state.words.offset + step * PAGE_SIZE);
  loadWords()
    .then(() => $("#words-title").focus())
    .catch(failed);
}

/** "noun, b2  travel" -> ["noun", "b2", "travel"] (duplicates dropped, order kept). */
function parseTags(text) {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

function openWordDialog(word = null) {
  state.editing = word;
  const form = $("#word-form");
  form.reset();
  clearFormError(form);
  $("#word-dialog-title").textContent = word ? `Edit “${word.word}”` : "Add a word";
  $("#word-submit").textContent = word ? "Save changes" : "Add word";
  if (word) {
    form.elements.word.value = word.word;
    form.elements.definition.value = word.definition;
    form.elements.example.value = word.example ?? "";
    form.elements.language.value = word.language ?? "";
    form.elements.difficulty.value = String(word.difficulty);
    form.elements.tags.value = word.tags.join(" ");
  }
  $("#word-dialog").showModal();
  form.elements.word.focus();
}

async function onSaveWord(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  const missing = missingRequired(form);
  if (missing) return formError(form, missing);
  const body = {
    word: form.elements.word.value.trim(),
    definition: form.elements.definition.value.trim(),
    example: form.elements.example.value.trim() || null,
    language: form.elements.language.value.trim() || null,
    difficulty: Number(form.elements.difficulty.value),
    tags: parseTags(form.elements.tags.value),
  };
  const editing = state.editing;
  await busy($("#word-submit"), async () => {
    try {
      const saved = editing
        ? await api.requestJson(`/words/${editing.id}`, { method: "PATCH", json: body })
        : await api.requestJson("/words", { method: "POST", json: body });
      $("#word-dialog").close();
      if (!editing) state.words.offset = 0;
      await loadWords();
      say(editing ? `Saved “${saved.word}”.` : `Added “${saved.word}”.`);
      $(editing ? "#words-title" : "#add-word").focus();
    } catch (error) {
      formError(form, error);
    }
  });
}

function openDeleteDialog(word) {
  state.deleting = word;
  const form = $("#delete-form");
  clearFormError(form);
  $("#delete-dialog-text").textContent =
    `“${word.word}” and its review history will be deleted. This cannot be undone.`;
  $("#delete-dialog").showModal();
}

async function onDeleteWord(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const word = state.deleting;
  await busy($("button[type=submit]", form), async () => {
    try {
      await api.request(`/words/${word.id}`, { method: "DELETE" });
      $("#delete-dialog").close();
      await loadWords();
      say(`Deleted “${word.word}”.`);
      $("#words-title").focus();
    } catch (error) {
      formError(form, error);
    }
  });
}

// --- Study ------------------------------------------------------------------------------

async function loadStudy({ focusCard = true } = {}) {
  const queue = await api.requestJson("/study?limit=1");
  const card = queue.items[0] ?? null;
  state.study = { card, revealed: false, shownAt: performance.now(), busy: false };
  const left = queue.due_total;
  $("#study-left").textContent = `${left} card${left === 1 ? "" : "s"} left`;
  $("#study-empty").hidden = card !== null;
  $("#study-card").hidden = card === null;
  if (!card) return;
  $("#study-word").textContent = card.word;
  const meta = [
    card.language,
    card.schedule.state === "new" ? "new word" : STATE_LABELS[card.schedule.state]?.toLowerCase(),
    ...card.tags.map((tag) => `#${tag}`),
  ].filter(Boolean);
  $("#study-meta").textContent = meta.join(" · ");
  $("#study-definition").textContent = card.definition;
  $("#study-example").textContent = card.example ?? "";
  $("#study-example").hidden = !card.example;
  $("#study-answer").hidden = true;
  $("#reveal").hidden = false;
  if (focusCard) $("#study-word").focus();
}

function reveal() {
  const study = state.study;
  if (!study.card || study.revealed) return;
  study.revealed = true;
  $("#reveal").hidden = true;
  $("#study-answer").hidden = false;
  $("#study-answer").focus();
}

async function rate(rating) {
  const study = state.study;
  if (!study.card || !study.revealed || study.busy) return;
  study.busy = true;
  const card = study.card;
  const buttons = $$(".ratings button");
  for (const button of buttons) button.disabled = true;
  try {
    const result = await api.requestJson(`/words/${card.id}/reviews`, {
      method: "POST",
      json: { rating, duration_ms: Math.round(performance.now() - study.shownAt) },
    });
    const next = fromNow(result.word.schedule.due_at);
    say(`“${card.word}”: ${RATING_LABELS[rating]}. Next review ${next}.`);
    await loadStudy();
  } catch (error) {
    study.busy = false;
    failed(error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

function isTyping(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}

function onKey(event) {
  if (state.view !== "study" || !state.user) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
  const study = state.study;
  if (!study.card) return;
  if (event.key === " " && event.target instanceof HTMLButtonElement) return; // press it
  if (event.key === " " && !study.revealed) {
    event.preventDefault();
    reveal();
  } else if (study.revealed && ["1", "2", "3", "4"].includes(event.key)) {
    event.preventDefault();
    rate(["again", "hard", "good", "easy"][Number(event.key) - 1]);
  }
}

// --- Stats ------------------------------------------------------------------------------

function pair(term, value, note = null) {
  return h(
    "div",
    { class: "stat" },
    h("dt", {}, term),
    h("dd", {}, h("span", { class: "value" }, value), note ? h("span", { class: "note" }, note) : null),
  );
}

async function loadStats() {
  const stats = await api.requestJson("/stats");
  const retention =
    stats.retention_30d === null ? "–" : `${Math.round(stats.retention_30d * 100)}%`;
  const retentionNote = stats.retention_30d === null ? "no reviews of learnt words yet" : null;
  const days = stats.streak_days === 1 ? "day" : "days";
  $("#stats-list").replaceChildren(
    pair("Due now", String(stats.due)),
    pair("Reviewed today", String(stats.reviews_today)),
    pair("Streak", `${stats.streak_days} ${days}`),
    pair("Retention, 30 days", retention, retentionNote),
    pair("Words", String(stats.words)),
    pair("New words", String(stats.new)),
    pair("Reviews in total", String(stats.reviews_total)),
  );
  $("#stats-state").replaceChildren(
    ...Object.entries(STATE_LABELS).map(([key, label]) =>
      pair(label, String(stats.by_state[key] ?? 0)),
    ),
  );
  $("#stats-difficulty").replaceChildren(
    ...["1", "2", "3", "4", "5"].map((d) =>
      pair(`Difficulty ${d}`, String(stats.by_difficulty[d] ?? 0)),
    ),
  );
}

// --- Import and export ------------------------------------------------------------------

async function onImport(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  $("#import-result").hidden = true;
  const missing = missingRequired(form);
  if (missing) return formError(form, { message: "Choose a file to import.", fields: { file: 1 } });
  const data = new FormData();
  data.append("file", form.elements.file.files[0]);
  await busy($("button[type=submit]", form), async () => {
    try {
      const result = await api.requestJson("/words/import", { method: "POST", body: data });
      showImportResult(result);
      form.reset();
    } catch (error) {
      formError(form, error);
    }
  });
}

function showImportResult(result) {
  const words = (n) => `${n} word${n === 1 ? "" : "s"}`;
  $("#import-counts").textContent =
    `Created ${words(result.created)}. Skipped ${result.skipped} you already have.` +
    (result.errors.length ? ` ${result.errors.length} line(s) could not be imported:` : "");
  $("#import-errors").replaceChildren(
    ...result.errors.map((problem) =>
      h("li", {}, h("strong", {}, `Line ${problem.line}: `), problem.detail),
    ),
  );
  $("#import-result").hidden = false;
  $("#import-result-title").focus();
  say(`Import finished: created ${result.created}, skipped ${result.skipped}.`);
}

function downloadName(response) {
  const header = response.headers.get("Content-Disposition") ?? "";
  const match = /filename="?([^";]+)"?/i.exec(header);
  return match ? match[1] : "vocab-words.csv";
}

async function onExport(event) {
  warn("");
  await busy(event.currentTarget, async () => {
    try {
      // fetch, not a plain link: the download needs the Authorization header.
      const response = await api.request("/words/export", { headers: { Accept: "text/csv" } });
      const blob = await response.blob();
      const url = URL.createObjectURL(blob);
      const name = downloadName(response);
      const link = h("a", { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      say(`Your words are downloading as ${name}.`);
    } catch (error) {
      failed(error);
    }
  });
}

// --- Start ------------------------------------------------------------------------------

function wire() {
  $("#signin-form").addEventListener("submit", onSignIn);
  $("#register-form").addEventListener("submit", onRegister);
  $("#show-register").addEventListener("click", () => switchAuth("register"));
  $("#show-signin").addEventListener("click", () => switchAuth("signin"));
  $("#sign-out").addEventListener("click", () => onSignOut().catch(failed));
  $("#add-word").addEventListener("click", () => openWordDialog());
  $("#search-form").addEventListener("submit", onSearch);
  $("#search-q").addEventListener("input", onSearchInput);
  $("#search-sort").addEventListener("change", () => $("#search-form").requestSubmit());
  $("#prev-page").addEventListener("click", () => turnPage(-1));
  $("#next-page").addEventListener("click", () => turnPage(1));
  $("#word-form").addEventListener("submit", onSaveWord);
  $("#delete-form").addEventListener("submit", onDeleteWord);
  for (const button of $$("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  $("#reveal").addEventListener("click", reveal);
  for (const button of $$(".ratings button")) {
    button.addEventListener("click", () => rate(button.dataset.rating));
  }
  $("#import-form").addEventListener("submit", onImport);
  $("#export").addEventListener("click", onExport);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => {
    clearMessages();
    route();
  });
  api.setSessionEndHandler(sessionEnded);
}

async function boot() {
  wire();
  if (api.hasStoredSession()) {
    try {
      if (await api.renew()) {
        await startSession();
        return;
      }
      warn("Your session has expired. Please sign in again.");
    } catch (error) {
      warn(error.message);
    }
  }
  await route({ focus: false });
}

boot();
