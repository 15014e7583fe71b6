// The router: which view is on screen, and for whom.
//
// Signed out, one of the public views shows (sign-in or registration). Signed in, the URL's hash
// names the view (#words, #study, ...), and the header shows the navigation and the account.
// A view module registers each of its views with addView():
//   { name, title, public?, enter?(), reset?() }
// `name` matches its <section id="view-NAME">; `enter` loads what it shows, each time it is
// shown; `reset` forgets what it showed, when the learner's session ends.
import { $, $$, clearFormError, clearMessages, failed } from "./ui.js";

const views = new Map();
let home = null; // the signed-in view when the hash names none
let user = null; // the signed-in learner (GET /users/me), or null
let publicView = "signin";
let current = null;

export function addView(view) {
  views.set(view.name, view);
}

export function currentUser() {
  return user;
}

/** The signed-in learner's account changed (their settings were saved). */
export function updateCurrentUser(changed) {
  user = changed;
}

export function currentView() {
  return current;
}

/** Follow the hash from now on; `home` is the view shown when it names none. */
export function startRouter({ home: name }) {
  home = name;
  window.addEventListener("hashchange", () => {
    clearMessages();
    route();
  });
}

/** Show the view that fits the session and the hash, and load it. */
export async function route({ focus = true } = {}) {
  showHeader();
  if (!user) {
    show(publicView, { focus });
    return;
  }
  const view = hashView();
  show(view.name, { focus });
  try {
    await view.enter?.();
  } catch (error) {
    failed(error);
  }
}

/** Switch between the public views (sign-in and registration). */
export function showPublicView(name) {
  publicView = name;
  show(name);
}

/** A learner has signed in: show their view. */
export function enterSession(signedIn) {
  user = signedIn;
  if (!location.hash) history.replaceState(null, "", `#${home}`);
  return route();
}

/** The session is over: forget everything shown for the learner and show sign-in. */
export function leaveSession() {
  user = null;
  for (const view of views.values()) view.reset?.();
  $("#account-email").textContent = "";
  for (const dialog of $$("dialog[open]")) dialog.close();
  publicView = "signin";
  return route();
}

function hashView() {
  const view = views.get(location.hash.replace(/^#/, ""));
  return view && !view.public ? view : views.get(home);
}

function showHeader() {
  $("#nav").hidden = !user;
  $("#account").hidden = !user;
  if (user) $("#account-email").textContent = user.email;
}

function show(name, { focus = true } = {}) {
  // An error belongs to the screen it was made on: leaving the screen clears it.
  if (name !== current) {
    for (const box of $$("main > .view .form-error")) clearFormError(box.closest("form"));
  }
  current = name;
  $("#loading").hidden = true;
  for (const section of $$("main > .view")) section.hidden = section.id !== `view-${name}`;
  for (const link of $$("#nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${views.get(name).title} · vocab`;
  if (focus) $(`#view-${name} h1`).focus();
}
