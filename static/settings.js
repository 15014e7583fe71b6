// Settings: the learner's study settings (desired retention, reverse cards for new words), their
// study day (time zone, the hour a day starts, new cards and reviews a day) and
// "Optimize my schedule", which fits the scheduler to their own reviews and shows how well the
// parameters in use and the fitted ones predict that history (log loss and RMSE, before and
// after), and whether the fitted ones are now used.
import * as api from "./api.js";
import { currentUser, updateCurrentUser } from "./router.js";
import { $, busy, clearFormError, failed, formError, h, say } from "./ui.js";

export const views = [{ name: "settings", title: "Settings", enter: load, reset }];

/** The browser's own time zone (what the form offers while the account still has the default). */
export function browserTimeZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

function fillChoices() {
  const zones = new Set(["UTC", ...(Intl.supportedValuesOf?.("timeZone") ?? []), browserTimeZone()]);
  $("#settings-timezone").replaceChildren(
    ...[...zones].sort().map((zone) => h("option", { value: zone }, zone.replaceAll("_", " "))),
  );
  $("#settings-day-start").replaceChildren(
    ...Array.from({ length: 24 }, (_, hour) =>
      h("option", { value: String(hour) }, `${String(hour).padStart(2, "0")}:00`),
    ),
  );
}

export function wire() {
  fillChoices();
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
  // An account still on the server's default (UTC) is offered the browser's zone instead.
  const zone = user.timezone === "UTC" ? browserTimeZone() : user.timezone;
  const zones = form.elements.timezone;
  if (![...zones.options].some((option) => option.value === zone)) {
    zones.append(h("option", { value: zone }, zone.replaceAll("_", " ")));
  }
  zones.value = zone;
  form.elements.day_starts_at.value = String(user.day_starts_at);
  form.elements.new_per_day.value = String(user.new_per_day);
  form.elements.reviews_per_day.value = String(user.reviews_per_day);
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
  const limits = {};
  for (const [name, label] of [
    ["new_per_day", "New cards a day"],
    ["reviews_per_day", "Reviews a day"],
  ]) {
    const text = form.elements[name].value.trim();
    const value = Number(text);
    if (!/^\d+$/.test(text) || value > 9999) {
      return formError(form, {
        message: `${label}: use a whole number from 0 to 9999.`,
        fields: { [name]: true },
      });
    }
    limits[name] = value;
  }
  const body = {
    desired_retention: retention,
    reverse_cards: form.elements.reverse_cards.checked,
    timezone: form.elements.timezone.value,
    day_starts_at: Number(form.elements.day_starts_at.value),
    ...limits,
  };
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
