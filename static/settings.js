// Settings: the learner's study settings (desired retention, reverse cards for new words) and
// "Optimize my schedule", which fits the scheduler to their own reviews and shows how well the
// parameters in use and the fitted ones predict that history (log loss and RMSE, before and
// after), and whether the fitted ones are now used.
import * as api from "./api.js";
import { currentUser, updateCurrentUser } from "./router.js";
import { $, busy, clearFormError, failed, formError, h, say } from "./ui.js";

export const views = [{ name: "settings", title: "Settings", enter: load, reset }];

export function wire() {
  $("#settings-form").addEventListener("submit", onSave);
  $("#optimize").addEventListener("click", () => optimize().catch(failed));
}

function reset() {
  $("#settings-form").reset();
  $("#optimize-result").hidden = true;
  $("#fsrs-parameters-state").textContent = "";
}

async function load() {
  const user = await api.requestJson("/users/me");
  updateCurrentUser(user);
  show(user);
}

function show(user) {
  const form = $("#settings-form");
  form.elements.desired_retention.value = user.desired_retention.toFixed(2);
  form.elements.reverse_cards.checked = user.reverse_cards;
  $("#fsrs-parameters-state").textContent = user.fsrs_parameters
    ? "Your reviews are scheduled with parameters fitted to your own history."
    : "Your reviews are scheduled with the standard parameters.";
}

// --- Study settings ---------------------------------------------------------------------

async function onSave(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  const retention = Number(form.elements.desired_retention.value);
  if (!form.elements.desired_retention.value.trim() || !(retention >= 0.7 && retention <= 0.99)) {
    return formError(form, {
      message: "Desired retention: use a number from 0.70 to 0.99.",
      fields: { desired_retention: true },
    });
  }
  const body = { desired_retention: retention, reverse_cards: form.elements.reverse_cards.checked };
  await busy($("button[type=submit]", form), async () => {
    try {
      const user = await api.requestJson("/users/me", { method: "PATCH", json: body });
      updateCurrentUser(user);
      show(user);
      say("Settings saved.");
    } catch (error) {
      formError(form, error);
    }
  });
}

// --- Optimize ---------------------------------------------------------------------------

async function optimize() {
  await busy($("#optimize"), async () => {
    $("#optimize-result").hidden = true;
    say("Optimizing your schedule…");
    const result = await api.requestJson("/users/me/optimize", { method: "POST" });
    showResult(result);
    if (result.applied) updateCurrentUser({ ...currentUser(), fsrs_parameters: result.parameters });
    show(currentUser());
    say(result.applied ? "Your schedule now fits your reviews." : "Your schedule was kept.");
  });
}

function showResult(result) {
  $("#optimize-result-title").textContent = result.applied
    ? "New parameters applied"
    : "Parameters kept";
  $("#optimize-reason").textContent = result.reason;
  const figures = [pair("Reviews used", result.reviews_used.toLocaleString("en"))];
  if (result.log_loss_before !== null) {
    const change = (before, after) => `${fixed(before)} → ${fixed(after)}`;
    figures.push(
      pair("Log loss (lower is better)", change(result.log_loss_before, result.log_loss_after)),
      pair("RMSE (lower is better)", change(result.rmse_before, result.rmse_after)),
    );
  }
  $("#optimize-figures").replaceChildren(...figures);
  $("#optimize-result").hidden = false;
  $("#optimize-result-title").focus();
}

function fixed(value) {
  return value.toFixed(4);
}

function pair(term, value) {
  return h("div", { class: "stat" }, h("dt", {}, term), h("dd", {}, value));
}
