// Stats: due now, reviewed today, streak, 30-day retention and totals, then the words by
// schedule stage and by the learner's own difficulty rating (GET /stats).
import * as api from "./api.js";
import { $, STATE_LABELS, h } from "./ui.js";

export const views = [{ name: "stats", title: "Stats", enter: load, reset }];

export function wire() {
  // Nothing to wire: the figures are read-only.
}

function reset() {
  $("#stats-list").replaceChildren();
  $("#stats-state").replaceChildren();
  $("#stats-difficulty").replaceChildren();
}

async function load() {
  const stats = await api.requestJson("/stats");
  showTotals(stats);
  showByState(stats.by_state);
  showByDifficulty(stats.by_difficulty);
}

function showTotals(stats) {
  const learnt = stats.retention_30d !== null;
  const retention = learnt ? `${Math.round(stats.retention_30d * 100)}%` : "–";
  const retentionNote = learnt ? null : "no reviews of learnt words yet";
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
}

function showByState(byState) {
  $("#stats-state").replaceChildren(
    ...Object.entries(STATE_LABELS).map(([key, label]) => pair(label, String(byState[key] ?? 0))),
  );
}

function showByDifficulty(byDifficulty) {
  $("#stats-difficulty").replaceChildren(
    ...["1", "2", "3", "4", "5"].map((d) => pair(`Difficulty ${d}`, String(byDifficulty[d] ?? 0))),
  );
}

/** One figure: <div class="stat"><dt>term</dt><dd>value, note</dd></div>. */
function pair(term, value, note = null) {
  return h(
    "div",
    { class: "stat" },
    h("dt", {}, term),
    h(
      "dd",
      {},
      h("span", { class: "value" }, value),
      note ? h("span", { class: "note" }, note) : null,
    ),
  );
}
