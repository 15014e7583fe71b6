// Study: the due cards one at a time. Space (or the button) shows the answer, 1–4 (or the
// buttons) rate it Again / Hard / Good / Easy; the count of cards left is always shown.
import * as api from "./api.js";
import { currentUser, currentView } from "./router.js";
import { $, $$, STATE_LABELS, failed, fromNow, say } from "./ui.js";

const RATINGS = ["again", "hard", "good", "easy"]; // keys 1 to 4
const RATING_LABELS = { again: "Again", hard: "Hard", good: "Good", easy: "Easy" };

/** The card on screen, whether its answer shows, when it was shown, whether a rating is sent. */
let study = { card: null, revealed: false, shownAt: 0, busy: false };

export const views = [
  { name: "study", title: "Study", enter: () => load({ focusCard: false }), reset },
];

export function wire() {
  $("#reveal").addEventListener("click", reveal);
  for (const button of $$(".ratings button")) {
    button.addEventListener("click", () => rate(button.dataset.rating));
  }
  document.addEventListener("keydown", onKey);
}

function reset() {
  study = { card: null, revealed: false, shownAt: 0, busy: false };
  $("#study-card").hidden = true;
  $("#study-empty").hidden = true;
  $("#study-left").textContent = "";
}

// --- The card ---------------------------------------------------------------------------

/** Fetch the next due card and show it (or "All done"). */
async function load({ focusCard = true } = {}) {
  const queue = await api.requestJson("/study?limit=1");
  const card = queue.items[0] ?? null;
  study = { card, revealed: false, shownAt: performance.now(), busy: false };
  const left = queue.due_total;
  $("#study-left").textContent = `${left} card${left === 1 ? "" : "s"} left`;
  $("#study-empty").hidden = card !== null;
  $("#study-card").hidden = card === null;
  if (card) showCard(card, { focus: focusCard });
}

function showCard(card, { focus }) {
  $("#study-word").textContent = card.word;
  $("#study-meta").textContent = cardMeta(card);
  $("#study-definition").textContent = card.definition;
  $("#study-example").textContent = card.example ?? "";
  $("#study-example").hidden = !card.example;
  $("#study-answer").hidden = true;
  $("#reveal").hidden = false;
  if (focus) $("#study-word").focus();
}

/** "de · new word · #noun · #b2" */
function cardMeta(card) {
  const stage = card.schedule.state;
  return [
    card.language,
    stage === "new" ? "new word" : STATE_LABELS[stage]?.toLowerCase(),
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
  $("#study-answer").focus();
}

/** Send the rating (once), say when the card comes back, show the next one. */
async function rate(rating) {
  const shown = study;
  if (!shown.card || !shown.revealed || shown.busy) return;
  shown.busy = true;
  const buttons = $$(".ratings button");
  for (const button of buttons) button.disabled = true;
  try {
    const result = await api.requestJson(`/words/${shown.card.id}/reviews`, {
      method: "POST",
      json: { rating, duration_ms: Math.round(performance.now() - shown.shownAt) },
    });
    const next = fromNow(result.word.schedule.due_at);
    say(`“${shown.card.word}”: ${RATING_LABELS[rating]}. Next review ${next}.`);
    await load();
  } catch (error) {
    shown.busy = false;
    failed(error);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

// --- Keys -------------------------------------------------------------------------------

function onKey(event) {
  if (currentView() !== "study" || !currentUser()) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
  if (!study.card) return;
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
