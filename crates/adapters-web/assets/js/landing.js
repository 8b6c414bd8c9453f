// The start page (/): a host signs in with an API key (kept in this browser),
// sees the workspace's sessions, creates one, and opens it as host. Creating a
// session keeps its host token here, so "Open" works from this browser; the
// host link carries it to another one.

import { ApiError, apiKey, explain, get, post, sessionCredential } from "./api.js";
import { byId, copyField, h, relative, replace, words } from "./dom.js";

let key = apiKey.get();
let next = null;

function show(signedIn) {
  byId("signin").hidden = signedIn;
  byId("workspace").hidden = !signedIn;
}

async function signIn(candidate) {
  const me = await get("/v1/me", candidate);
  if (me.kind !== "api_key") {
    throw new ApiError(400, "NOT_AN_API_KEY",
      "That is a participant token. Open your session's link instead, or sign in with an API key.");
  }
  return me.apiKey;
}

async function loadProfiles() {
  const select = byId("create-agent");
  try {
    const profiles = await get("/v1/agent-profiles", key);
    replace(select, profiles.profiles.map((name) => h("option", {
      value: name, selected: name === profiles.default,
      text: name === profiles.default ? `${name} (default)` : name,
    })));
  } catch {
    replace(select, h("option", { value: "", text: "the server's default" }));
  }
}

async function loadSessions(more = false) {
  const status = byId("session-filter").value;
  const params = new URLSearchParams({ limit: "20" });
  if (status) params.set("status", status);
  if (more && next) params.set("after", next);
  const body = byId("session-rows");
  try {
    const page = await get(`/v1/sessions?${params}`, key);
    next = page.next;
    const rows = page.sessions.map((session) => {
      const mine = sessionCredential.get(session.id)?.token;
      return h("tr", { dataset: { sessionId: session.id } },
        h("td", {}, h("a", { href: `/s/${session.id}`, text: session.title })),
        h("td", {}, h("span", { class: `badge status status-${session.status}`, text: words(session.status) })),
        h("td", { class: "number", text: String(session.participantCount) }),
        h("td", {}, h("time", {
          datetime: session.lastActivityAt, title: new Date(session.lastActivityAt).toLocaleString(),
          text: relative(session.lastActivityAt),
        })),
        h("td", {}, h("a", {
          class: "button small secondary", href: `/s/${session.id}`,
          text: mine ? "Open as host" : "Watch",
          "aria-label": `${mine ? "Open as host" : "Watch"}: ${session.title}`,
        })));
    });
    if (more) body.append(...rows);
    else replace(body, rows);
    byId("sessions-empty").hidden = body.children.length > 0;
    byId("more-sessions").hidden = !next;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signOut();
    replace(body, h("tr", {}, h("td", { colspan: 5, class: "error-text", text: explain(error) })));
  }
}

function signOut() {
  apiKey.clear();
  key = null;
  show(false);
  byId("api-key").focus();
}

async function enter(scopes) {
  show(true);
  byId("key-scopes").textContent = `${scopes.workspaceId} · ${scopes.scopes.join(", ")}`;
  const canCreate = scopes.scopes.includes("sessions:write") || scopes.scopes.includes("admin");
  byId("create").hidden = !canCreate;
  await Promise.all([canCreate ? loadProfiles() : null, loadSessions()]);
}

byId("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const candidate = byId("api-key").value.trim();
  const error = byId("signin-error");
  error.textContent = "";
  try {
    const scopes = await signIn(candidate);
    key = candidate;
    apiKey.set(key);
    byId("api-key").value = "";
    await enter(scopes);
  } catch (failure) {
    error.textContent = failure instanceof ApiError && failure.status === 401
      ? "This key is not valid." : explain(failure);
  }
});

byId("signout").addEventListener("click", signOut);
byId("session-filter").addEventListener("change", () => loadSessions());
byId("more-sessions").addEventListener("click", () => loadSessions(true));

byId("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = byId("create-error");
  const button = byId("create-button");
  error.textContent = "";
  button.disabled = true;
  const body = {
    mode: byId("create-mode").value,
    permissionPolicy: byId("create-policy").value,
    expiresIn: byId("create-expires").value,
  };
  const title = byId("create-title").value.trim();
  if (title) body.title = title;
  const name = byId("create-name").value.trim();
  if (name) body.hostDisplayName = name;
  if (byId("create-agent").value) body.agentProfile = byId("create-agent").value;
  try {
    const created = await post("/v1/sessions", key, body);
    sessionCredential.set(created.session.id, {
      token: created.host.token,
      invites: { [created.invite.invite.id]: created.invite.url },
    });
    replace(byId("created"),
      h("h3", { text: `“${created.session.title}” is ready` }),
      h("p", { text: "Send the invite link to your teammates: they join as collaborators." }),
      copyField("Invite link", created.invite.url, "invite-url"),
      h("p", { text: "Your host link opens the session as host in another browser. Keep it to yourself." }),
      copyField("Host link", created.host.url, "host-url"),
      h("p", {}, h("a", { class: "button", href: `/s/${created.session.id}`, text: "Open the session" })));
    byId("created").hidden = false;
    byId("create-form").reset();
    await loadSessions();
  } catch (failure) {
    error.textContent = explain(failure);
  } finally {
    button.disabled = false;
  }
});

if (key) {
  signIn(key).then(enter).catch((error) => {
    if (error instanceof ApiError && error.final) signOut();
    else {
      show(false);
      byId("signin-error").textContent = explain(error);
    }
  });
} else {
  show(false);
}
