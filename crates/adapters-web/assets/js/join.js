// The join page (/join#<invite token>): shows the session's title and the role
// the invite gives, asks for a display name, joins, and opens the session. The
// token leaves the address bar at once and is kept only for this tab.

import { ApiError, explain, get, post, sessionCredential, takeFragmentToken } from "./api.js";
import { byId, h, replace, words } from "./dom.js";

const KEPT = "tandem.invite";

function fail(title, detail) {
  replace(byId("join"), h("h1", { text: title }), h("p", { text: detail }),
    h("p", {}, h("a", { href: "/", text: "Go to the start page" })));
}

async function main() {
  const fromFragment = takeFragmentToken("tdm_inv_");
  if (fromFragment) sessionStorage.setItem(KEPT, fromFragment);
  const token = fromFragment ?? sessionStorage.getItem(KEPT);
  if (!token) {
    fail("This invite link is incomplete",
      "An invite link ends with #tdm_inv_… — copy the whole link you were sent and open it again.");
    return;
  }
  let preview;
  try {
    preview = await get("/v1/invites/preview", token);
  } catch (error) {
    const ended = error instanceof ApiError && error.code === "SESSION_INACTIVE";
    fail(ended ? "This session has ended" : "This invite link does not work", explain(error));
    return;
  }
  byId("join-title").textContent = preview.title;
  document.title = `Join “${preview.title}” · Tandem`;
  byId("join-role").textContent = words(preview.role);
  byId("join-role-help").textContent = preview.role === "viewer"
    ? "As a viewer you watch the agent work live."
    : "As a collaborator you watch the agent, comment, and suggest prompts.";
  const existing = sessionCredential.get(preview.sessionId);
  if (existing?.token) {
    const again = byId("join-existing");
    again.hidden = false;
    replace(again, "You already joined this session in this browser. ",
      h("a", { href: `/s/${preview.sessionId}`, text: "Open it" }), " or join again under another name.");
  }
  const form = byId("join-form");
  const name = byId("display-name");
  const error = byId("join-error");
  form.hidden = false;
  name.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = byId("join-button");
    button.disabled = true;
    error.textContent = "";
    try {
      const joined = await post("/v1/join", null, { inviteToken: token, displayName: name.value });
      sessionCredential.set(joined.session.id, { token: joined.token });
      sessionStorage.removeItem(KEPT);
      location.assign(`/s/${joined.session.id}`);
    } catch (failure) {
      error.textContent = explain(failure);
      button.disabled = false;
      name.focus();
    }
  });
}

main();
