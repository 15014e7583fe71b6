// Words: the learner's word list (search, order, pages) and the dialogs that add, edit and
// delete a word (the editor also turns a word's reverse card on or off, and suspends it).
import * as api from "./api.js";
import { currentUser } from "./router.js";
import {
  $,
  busy,
  clearFormError,
  failed,
  formError,
  fromNow,
  h,
  missingRequired,
  say,
} from "./ui.js";

const PAGE_SIZE = 50;
const FIRST_PAGE = { q: "", sort: "-created_at", offset: 0 };

let query = { ...FIRST_PAGE }; // what the list shows
let editing = null; // the word being edited, or null when adding
let deleting = null; // the word the delete dialog asks about
let searchTimer = 0;

export const views = [{ name: "words", title: "Words", enter: load, reset }];

export function wire() {
  $("#add-word").addEventListener("click", () => openWordDialog());
  $("#search-form").addEventListener("submit", onSearch);
  $("#search-q").addEventListener("input", onSearchInput);
  $("#search-sort").addEventListener("change", () => $("#search-form").requestSubmit());
  $("#prev-page").addEventListener("click", () => turnPage(-1));
  $("#next-page").addEventListener("click", () => turnPage(1));
  $("#word-form").addEventListener("submit", onSaveWord);
  $("#delete-form").addEventListener("submit", onDeleteWord);
}

function reset() {
  query = { ...FIRST_PAGE };
  $("#word-list").replaceChildren();
  $("#words-summary").textContent = "";
  $("#search-q").value = "";
  $("#search-sort").value = FIRST_PAGE.sort;
}

// --- The list ---------------------------------------------------------------------------

async function load() {
  const { q, sort, offset } = query;
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(offset), sort });
  if (q) params.set("q", q);
  const page = await api.requestJson(`/words?${params}`);
  if (page.items.length === 0 && offset > 0) {
    query.offset = Math.max(0, offset - PAGE_SIZE); // the last page emptied
    return load();
  }
  render(page);
}

function render(page) {
  $("#word-list").replaceChildren(...page.items.map(wordItem));
  $("#words-summary").textContent = summary(page);
  $("#pager").hidden = page.total <= PAGE_SIZE;
  $("#prev-page").disabled = query.offset === 0;
  $("#next-page").disabled = query.offset + PAGE_SIZE >= page.total;
}

/** "1–50 of 120 words matching “x”.", or what to do when there are none. */
function summary(page) {
  const { q, offset } = query;
  if (page.total === 0) {
    return q ? `No words match “${q}”.` : "No words yet. Add your first word to start studying.";
  }
  const last = offset + page.items.length;
  const range = page.total > page.items.length ? `${offset + 1}–${last} of ` : "";
  const noun = page.total === 1 ? "word" : "words";
  return `${range}${page.total} ${noun}${q ? ` matching “${q}”` : ""}.`;
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
        [`Difficulty ${word.difficulty} of 5`, dueText(word), word.reverse ? "Both ways" : null]
          .filter(Boolean)
          .join(" · "),
      ),
      tagList(word),
      itemActions(word),
    ),
  );
}

function dueText(word) {
  if (word.suspended) return "Suspended";
  if (word.schedule.state === "new") return "New, not studied yet";
  const when = fromNow(word.schedule.due_at);
  return when === "now" ? "Due now" : `Next review ${when}`;
}

function tagList(word) {
  if (!word.tags.length) return null;
  return h(
    "ul",
    { class: "tags", "aria-label": "Tags" },
    word.tags.map((tag) => h("li", { class: "tag" }, tag)),
  );
}

/** Edit and Delete, each named with the word for screen readers ("Edit Fernweh"). */
function itemActions(word) {
  return h(
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
  );
}

// --- Search and pages -------------------------------------------------------------------

function onSearch(event) {
  event.preventDefault();
  query.q = $("#search-q").value.trim();
  query.sort = $("#search-sort").value;
  query.offset = 0;
  load().catch(failed);
}

function onSearchInput() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => $("#search-form").requestSubmit(), 300);
}

function turnPage(step) {
  query.offset = Math.max(0, query.offset + step * PAGE_SIZE);
  load()
    .then(() => $("#words-title").focus())
    .catch(failed);
}

// --- Add or edit a word -----------------------------------------------------------------

function openWordDialog(word = null) {
  editing = word;
  const form = $("#word-form");
  form.reset();
  clearFormError(form);
  $("#word-dialog-title").textContent = word ? `Edit “${word.word}”` : "Add a word";
  $("#word-submit").textContent = word ? "Save changes" : "Add word";
  if (word) fillWordForm(form, word);
  else form.elements.reverse.checked = Boolean(currentUser()?.reverse_cards);
  $("#word-dialog").showModal();
  form.elements.word.focus();
}

function fillWordForm(form, word) {
  form.elements.word.value = word.word;
  form.elements.definition.value = word.definition;
  form.elements.example.value = word.example ?? "";
  form.elements.language.value = word.language ?? "";
  form.elements.difficulty.value = String(word.difficulty);
  form.elements.tags.value = word.tags.join(" ");
  form.elements.reverse.checked = word.reverse;
  form.elements.suspended.checked = word.suspended;
}

/** The form as the API's word body. */
function readWordForm(form) {
  return {
    word: form.elements.word.value.trim(),
    definition: form.elements.definition.value.trim(),
    example: form.elements.example.value.trim() || null,
    language: form.elements.language.value.trim() || null,
    difficulty: Number(form.elements.difficulty.value),
    tags: parseTags(form.elements.tags.value),
    reverse: form.elements.reverse.checked,
    suspended: form.elements.suspended.checked,
  };
}

/** "noun, b2  travel" -> ["noun", "b2", "travel"] (duplicates dropped, order kept). */
function parseTags(text) {
  return [...new Set(text.split(/[\s,]+/).filter(Boolean))];
}

async function onSaveWord(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  const missing = missingRequired(form);
  if (missing) return formError(form, missing);
  const body = readWordForm(form);
  const word = editing;
  await busy($("#word-submit"), async () => {
    try {
      const saved = await saveWord(word, body);
      $("#word-dialog").close();
      if (!word) query.offset = 0; // a new word is on the first page
      await load();
      say(word ? `Saved “${saved.word}”.` : `Added “${saved.word}”.`);
      $(word ? "#words-title" : "#add-word").focus();
    } catch (error) {
      formError(form, error);
    }
  });
}

/** A new word whose answer did not come: `{text, key}`, sent again with its key if the same
 * word (the same body) is added again, so that it is never added twice. */
let pendingAdd = null;

/** Update the word being edited, or create one. */
async function saveWord(word, body) {
  if (word) return api.requestJson(`/words/${word.id}`, { method: "PATCH", json: body });
  const text = JSON.stringify(body);
  if (pendingAdd?.text !== text) pendingAdd = { text, key: api.newIdempotencyKey() };
  const saved = await api.requestJson("/words", {
    method: "POST",
    json: body,
    idempotencyKey: pendingAdd.key,
  });
  pendingAdd = null;
  return saved;
}

// --- Delete a word ----------------------------------------------------------------------

function openDeleteDialog(word) {
  deleting = word;
  clearFormError($("#delete-form"));
  $("#delete-dialog-text").textContent =
    `“${word.word}” and its review history will be deleted. This cannot be undone.`;
  $("#delete-dialog").showModal();
}

async function onDeleteWord(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const word = deleting;
  await busy($("button[type=submit]", form), async () => {
    try {
      await api.request(`/words/${word.id}`, { method: "DELETE" });
      $("#delete-dialog").close();
      await load();
      say(`Deleted “${word.word}”.`);
      $("#words-title").focus();
    } catch (error) {
      formError(form, error);
    }
  });
}
