// Study: the due cards one at a time, of both directions. A forward card shows the word and
// asks for the definition; a reverse card shows the definition and asks for the word. Space
// (or the button) shows the answer, 1–4 (or the buttons) rate it Again / Hard / Good / Easy,
// U (or the button) undoes the last rating, and "Suspend this word" sets the word aside. Each
// rating button shows when the card would come back (the API's previews), and the counts of
// cards due and of new cards and reviews left today (the daily limits) are always shown. P
// (or the speaker button) says the word with the browser's speech synthesis, in the word's
// language; the button is hidden where the browser has no voice for it, and on a reverse
// card until its answer shows (the word is the answer there).
import * as api from "./api.js";
import { currentUser, currentView } from "./router.js";
import { $, $$, STATE_LABELS, failed, formatInterval, fromNow, say } from "./ui.js";

const RATINGS = ["again", "hard", "good", "easy"]; // keys 1 to 4
const RATING_LABELS = { again: "Again", hard: "Hard", good: "Good", easy: "Easy" };
const PROMPTS = {
  forward: "Recall the meaning",
  reverse: "Recall the word",
};

/** The card on screen, whether its answer shows, when it was shown, whether a request runs. */
let study = { card: null, revealed: false, shownAt: 0, busy: false, pending: null };
/** The last rating given here, which U undoes: { wordId, reviewId, word, rating }. */
let lastRating = null;

export const views = [
  { name: "study", title: "Study", enter: () => load({ focusCard: false }), reset },
];

export function wire() {
  $("#reveal").addEventListener("click", reveal);
  for (const button of $$(".ratings button")) {
    button.addEventListener("click", () => rate(button.dataset.rating));
  }
  $("#undo").addEventListener("click", undo);
  $("#suspend").addEventListener("click", suspend);
  $("#speak").addEventListener("click", speak);
  document.addEventListener("keydown", onKey);
  // Voices load after the page does (Chromium fills the list a moment later).
  globalThis.speechSynthesis?.addEventListener?.("voiceschanged", showSpeaker);
}

function reset() {
  study = { card: null, revealed: false, shownAt: 0, busy: false, pending: null };
  forgetLastRating();
  $("#study-card").hidden = true;
  $("#study-empty").hidden = true;
  $("#study-left").textContent = "";
  $("#study-today").textContent = "";
}

// --- The card ---------------------------------------------------------------------------

/** Fetch the next due card and show it (or "All done"). */
async function load({ focusCard = true } = {}) {
  const queue = await api.requestJson("/study?limit=1");
  const card = queue.items[0] ?? null;
  study = { card, revealed: false, shownAt: performance.now(), busy: false, pending: null };
  const left = queue.due_total;
  $("#study-left").textContent = `${left} card${left === 1 ? "" : "s"} left`;
  $("#study-today").textContent =
    `${queue.new_left_today} new · ${queue.reviews_left_today} reviews left today`;
  $("#study-empty-text").textContent =
    left > 0
      ? "That is all for today: your daily limits are reached. More tomorrow, or raise them in Settings."
      : "No cards are due. Add words, or come back later.";
  $("#study-empty").hidden = card !== null;
  $("#study-card").hidden = card === null;
  if (card) showCard(card, { focus: focusCard });
}

function isReverse(card) {
  return card.direction === "reverse";
}

function scheduleOf(card) {
  return isReverse(card) ? card.reverse_schedule : card.schedule;
}

function showCard(card, { focus }) {
  const reverse = isReverse(card);
  $("#study-card").dataset.direction = card.direction;
  $("#study-prompt-label").textContent = PROMPTS[card.direction];
  $("#study-meta").textContent = cardMeta(card);
  // Forward: the word is the question. Reverse: the definition is, and the word the answer.
  $("#study-word").textContent = reverse ? "" : card.word;
  $("#study-word").hidden = reverse;
  $("#study-prompt-definition").textContent = reverse ? card.definition : "";
  $("#study-prompt-definition").hidden = !reverse;
  $("#study-answer-word").textContent = reverse ? card.word : "";
  $("#study-answer-word").hidden = !reverse;
  $("#study-definition").textContent = reverse ? "" : card.definition;
  $("#study-definition").hidden = reverse;
  $("#study-example").textContent = card.example ?? "";
  $("#study-example").hidden = !card.example;
  $("#study-answer").hidden = true;
  $("#reveal").hidden = false;
  for (const button of $$(".ratings button")) {
    const seconds = card.previews[button.dataset.rating].interval_seconds;
    $(".interval", button).textContent = formatInterval(seconds);
    button.title = `Next review ${fromNow(card.previews[button.dataset.rating].due_at)}`;
  }
  showSpeaker();
  if (focus) $(reverse ? "#study-prompt-definition" : "#study-word").focus();
}

/** "de · new word · reverse · #noun · #b2" */
function cardMeta(card) {
  const stage = scheduleOf(card).state;
  return [
    card.language,
    stage === "new" ? "new word" : STATE_LABELS[stage]?.toLowerCase(),
    isReverse(card) ? "reverse" : null,
    ...card.tags.map((tag) => `#${tag}`),
  ]
    .filter(Boolean)
    .join(" · ");
}

function reveal() {
  if (!study.card || study.revealed) return;
  study.revealed = true;
  $("#reveal").hidden = true;
  $("#study-answer").hidden = false;
  showSpeaker();
  $("#study-answer").focus();
}

// --- Pronunciation ----------------------------------------------------------------------

/** The browser's voice for a language code ("de" takes "de-DE"; "pt-BR" wants pt-BR). */
function voiceFor(language) {
  const voices = globalThis.speechSynthesis?.getVoices?.() ?? [];
  if (!language) return null;
  const wanted = language.toLowerCase();
  const base = wanted.split("-")[0];
  const lang = (voice) => voice.lang.toLowerCase().replace("_", "-");
  return (
    voices.find((voice) => lang(voice) === wanted) ??
    (wanted === base ? voices.find((voice) => lang(voice).split("-")[0] === base) : null) ??
    null
  );
}

/** Whether the word on screen may be said now, and by which voice. */
function speakable() {
  const card = study.card;
  if (!card || (isReverse(card) && !study.revealed)) return null;
  return voiceFor(card.language);
}

function showSpeaker() {
  const voice = speakable();
  $("#speak").hidden = voice === null;
  $("#speak").setAttribute("aria-label", voice ? `Say “${study.card.word}” (P)` : "Say it (P)");
}

function speak() {
  const voice = speakable();
  if (!voice) return;
  const utterance = new SpeechSynthesisUtterance(study.card.word);
  utterance.voice = voice;
  utterance.lang = study.card.language;
  speechSynthesis.cancel(); // a second press starts again rather than queueing
  speechSynthesis.speak(utterance);
}

/** Run one request about the card on screen at a time, with the card's buttons disabled. */
async function withCardBusy(action) {
  const shown = study;
  if (shown.busy) return;
  shown.busy = true;
  const buttons = $$(".ratings button, #suspend, #undo");
  for (const button of buttons) button.disabled = true;
  try {
    await action(shown);
  } catch (error) {
    shown.busy = false;
    failed(error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

/** Send the rating (once), say when the card comes back, show the next one. */
async function rate(rating) {
  if (!study.card || !study.revealed) return;
  await withCardBusy(async (shown) => {
    const { card } = shown;
    // The same rating given again after a failure is the same review, sent again as it was
    // (key and body): recorded once, whether or not the first one reached the server.
    if (shown.pending?.json.rating !== rating) {
      const json = {
        rating,
        direction: card.direction,
        duration_ms: Math.round(performance.now() - shown.shownAt),
      };
      shown.pending = { json, key: api.newIdempotencyKey() };
    }
    const result = await api.requestJson(`/words/${card.id}/reviews`, {
      method: "POST",
      json: shown.pending.json,
      idempotencyKey: shown.pending.key,
    });
    shown.pending = null;
    rememberLastRating({ wordId: card.id, reviewId: result.review.id, word: card.word, rating });
    const next = fromNow(scheduleOf({ ...result.word, direction: card.direction }).due_at);
    say(`“${card.word}”: ${RATING_LABELS[rating]}. Next review ${next}.`);
    await load();
  });
}

/** Take back the last rating given here: the card's schedule is as it was, and it shows. */
async function undo() {
  const last = lastRating;
  if (!last) return;
  await withCardBusy(async () => {
    await api.request(`/words/${last.wordId}/reviews/${last.reviewId}`, { method: "DELETE" });
    forgetLastRating();
    say(`Undid “${last.word}”: ${RATING_LABELS[last.rating]}.`);
    await load();
  });
}

/** Set the word on screen aside: none of its cards comes back until it is unsuspended. */
async function suspend() {
  if (!study.card) return;
  await withCardBusy(async ({ card }) => {
    await api.requestJson(`/words/${card.id}`, { method: "PATCH", json: { suspended: true } });
    if (lastRating?.wordId === card.id) forgetLastRating();
    say(`Suspended “${card.word}”. Unsuspend it from its Edit dialog under Words.`);
    await load();
  });
}

function rememberLastRating(rating) {
  lastRating = rating;
  $("#undo").hidden = false;
}

function forgetLastRating() {
  lastRating = null;
  $("#undo").hidden = true;
}

// --- Keys -------------------------------------------------------------------------------

function onKey(event) {
  if (currentView() !== "study" || !currentUser()) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
  if (event.key === "u" || event.key === "U") {
    if (!lastRating) return;
    event.preventDefault();
    undo();
    return;
  }
  if (!study.card) return;
  if (event.key === "p" || event.key === "P") {
    if (!speakable()) return;
    event.preventDefault();
    speak();
    return;
  }
  if (event.key === " " && event.target instanceof HTMLButtonElement) return; // press it
  if (event.key === " " && !study.revealed) {
    event.preventDefault();
    reveal();
  } else if (study.revealed && ["1", "2", "3", "4"].includes(event.key)) {
    event.preventDefault();
    rate(RATINGS[Number(event.key) - 1]);
  }
}

function isTyping(target) {
  return (
    target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))
  );
}
