// The session page (/s/{id}): finds this browser's credential for the session
// (a token just handed over in the fragment, or one kept from an earlier join),
// learns who it is, then builds everything from the live event stream.

import { ApiError, call, del, explain, get, patch, post, sessionCredential, apiKey,
  takeFragmentToken } from "./api.js";
import { byId, h, relative, replace, words } from "./dom.js";
import { EventStream } from "./stream.js";
import { Timeline } from "./timeline.js";
import { Composer } from "./composer.js";
import { Participants } from "./participants.js";
import { HostControls } from "./host.js";
import { AgentPanel } from "./agentpanel.js";

const sessionId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
const base = `/v1/sessions/${encodeURIComponent(sessionId)}`;

class SessionPage {
  constructor(token, kind) {
    this.id = sessionId;
    this.token = token;
    this.kind = kind;
    this.me = null;
    this.gone = null;
    this.replaying = true;
    this.replayUntil = 0;
    this.lastSeq = 0;
    this.session = {
      title: "", mode: "", permissionPolicy: "", status: "active", expiresAt: null,
    };
    this.participants = new Map();
    const t = token;
    const json = (method, path, body) => call(method, `${base}${path}`, { token: t, body });
    this.api = {
      comment: (text) => json("POST", "/comments", { text }),
      prompt: (text) => json("POST", "/prompts", { text }),
      approve: (id) => json("POST", `/prompts/${id}/approve`),
      reject: (id) => json("POST", `/prompts/${id}/reject`),
      withdraw: (id) => json("POST", `/prompts/${id}/withdraw`),
      cancel: (id) => json("POST", `/prompts/${id}/cancel`),
      retry: (id) => json("POST", `/prompts/${id}/retry`),
      editPrompt: (id, text) => json("PATCH", `/prompts/${id}`, { text }),
      answer: (requestId, optionId) => json("POST", `/permissions/${requestId}`, { optionId }),
      update: (changes) => json("PATCH", "", changes),
      close: (summary) => json("POST", "/close", summary.trim() ? { summary } : {}),
      invites: () => json("GET", "/invites?limit=200"),
      createInvite: (body) => json("POST", "/invites", body),
      revokeInvite: (id) => del(`${base}/invites/${id}`, t),
      setRole: (id, role) => json("PATCH", `/participants/${id}`, { role }),
      remove: (id) => del(`${base}/participants/${id}`, t),
      leave: () => json("POST", "/leave"),
      setAgentMode: (modeId) => json("PUT", "/agent-mode", { modeId }),
    };
    this.timeline = new Timeline(byId("timeline"), this);
    this.composer = new Composer(this);
    this.people = new Participants(this);
    this.host = new HostControls(this);
    this.agent = new AgentPanel(this);
    this.live = byId("announcer");
    this.errors = byId("errors");
  }

  // --- what the views ask -------------------------------------------------

  name(id) {
    if (!id) return "Someone";
    return this.participants.get(id)?.displayName ?? "Someone";
  }

  role() {
    return this.participants.get(this.me)?.role ?? null;
  }

  active() {
    return this.session.status === "active" && !this.gone && Boolean(this.me);
  }

  describeUpdate(data) {
    const changes = [];
    if (data.title !== this.session.title) changes.push(`renamed the session “${data.title}”`);
    if (data.mode !== this.session.mode) changes.push(`set the mode to ${words(data.mode)}`);
    if (data.permissionPolicy !== this.session.permissionPolicy) {
      changes.push(`set tool permissions to ${words(data.permissionPolicy)}`);
    }
    if (data.expiresAt !== this.session.expiresAt) changes.push("moved the session's end");
    return changes.length ? changes.join(", ") : "updated the session";
  }

  /** Runs an action; a failure is shown (and kept) in the error bar. */
  async act(label, action) {
    try {
      await action();
      replace(this.errors);
      return true;
    } catch (error) {
      replace(this.errors, h("p", { role: "alert", text: `${label} failed: ${explain(error)}` }));
      return false;
    }
  }

  announce(text) {
    // A polite live region: replacing its text makes screen readers read it.
    this.live.textContent = "";
    setTimeout(() => { this.live.textContent = text; }, 50);
  }

  // --- state ----------------------------------------------------------------

  applySession(session) {
    Object.assign(this.session, {
      title: session.title,
      mode: session.mode,
      permissionPolicy: session.permissionPolicy,
      status: session.status,
      expiresAt: session.expiresAt,
      agentProfile: session.agentProfile,
    });
  }

  setParticipant(p) {
    const known = this.participants.get(p.id) ?? {};
    this.participants.set(p.id, { ...known, ...p });
  }

  /** Applies one event to the page's state, after the timeline showed it. */
  apply(event) {
    const data = event.data ?? {};
    switch (event.type) {
      case "session.created":
        this.session.title = data.title;
        this.session.mode = data.mode;
        this.session.permissionPolicy = data.permissionPolicy;
        this.session.expiresAt = data.expiresAt;
        break;
      case "session.updated":
        Object.assign(this.session, {
          title: data.title, mode: data.mode,
          permissionPolicy: data.permissionPolicy, expiresAt: data.expiresAt,
        });
        this.host.sync();
        break;
      case "session.closed":
        this.session.status = data.status;
        this.session.closeReason = data.reason;
        this.session.summary = data.summary;
        break;
      case "participant.joined":
        this.setParticipant({ id: data.id, displayName: data.displayName, role: data.role, present: true });
        break;
      case "participant.left":
      case "participant.removed":
        this.setParticipant({ id: data.participantId, present: false });
        if (data.participantId === this.me) {
          this.gone = event.type === "participant.removed" ? "removed" : "left";
        }
        break;
      case "participant.updated":
        this.setParticipant({ id: data.participantId, role: data.role });
        if (data.participantId === this.me && !this.replaying) {
          this.announce(`The host made you a ${words(data.role)}.`);
        }
        break;
      default:
        if (this.agent.apply(event) && !this.replaying) this.agent.render();
        break;
    }
  }

  /** What decides which actions the page offers. */
  signature() {
    return `${this.role()}|${this.session.status}|${this.session.mode}|${this.gone}`;
  }

  onEvent(event) {
    const live = event.seq > this.replayUntil;
    const list = byId("timeline");
    const pinned = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const before = this.signature();
    let revealing = false;
    this.timeline.add(event, live);
    this.apply(event);
    this.lastSeq = event.seq;
    document.body.dataset.lastSeq = String(event.seq);
    if (this.replaying) {
      if (event.seq >= this.replayUntil) {
        this.replaying = false;
        this.renderAll();
        revealing = true;
      }
    } else {
      this.renderHeader();
      this.composer.render();
      if (before !== this.signature()) {
        this.timeline.refresh();
        this.host.render();
        this.people.render();
        this.agent.render();
      } else if (event.type.startsWith("participant.")) {
        this.people.render();
      }
    }
    if (pinned || this.replaying) list.scrollTop = list.scrollHeight;
    if (revealing) this.reveal();
  }

  /**
   * Scrolls to the prompt or permission request a link names
   * (`#prompt-<id>`, `#permission-<id>`, as webhook messages link them).
   */
  reveal() {
    const target = /^#(prompt|permission)-[0-9a-f-]{36}$/.test(location.hash)
      ? document.getElementById(location.hash.slice(1)) : null;
    if (!target) return;
    for (const shown of document.querySelectorAll(".revealed")) shown.classList.remove("revealed");
    target.classList.add("revealed");
    target.scrollIntoView({ block: "center" });
  }

  onState(state, error) {
    const badge = byId("connection");
    const labels = {
      connecting: "Connecting…",
      live: "Live",
      reconnecting: "Reconnecting…",
      ended: this.gone ? "Stopped" : "Ended",
      gone: "Disconnected",
    };
    badge.textContent = labels[state] ?? state;
    badge.dataset.state = state;
    document.body.dataset.connection = state;
    if (state === "gone") {
      if (error?.code === "PARTICIPANT_GONE" && !this.gone) this.gone = "removed or left";
      else if (!this.gone) this.gone = "no access";
      this.renderAll();
    }
    if (state === "ended") this.renderAll();
  }

  renderAll() {
    this.renderHeader();
    this.composer.render();
    this.people.render();
    this.host.render();
    this.agent.render();
    this.timeline.refresh();
  }

  renderHeader() {
    const { session } = this;
    byId("session-title").textContent = session.title || "Session";
    document.title = `${session.title || "Session"} · Tandem`;
    byId("session-mode").textContent = words(session.mode);
    byId("session-expiry").textContent = session.status === "active" && session.expiresAt
      ? `ends ${relative(session.expiresAt)}` : words(session.status);
    const me = this.participants.get(this.me);
    byId("whoami").textContent = this.me
      ? `You: ${me?.displayName ?? ""} (${words(me?.role ?? "")})` : "Watching with an API key";
    byId("leave").hidden = !(this.active() && this.role() !== "host");
    this.renderBanner();
  }

  renderBanner() {
    const banner = byId("banner");
    const { session } = this;
    let message = null;
    if (this.gone === "removed") {
      message = ["You were removed from this session.", "The host removed you; this page no longer receives updates."];
    } else if (this.gone === "left") {
      message = ["You left this session.", "This page no longer receives updates."];
    } else if (this.gone) {
      message = ["You are no longer in this session.", "Your access to it ended; this page no longer receives updates."];
    } else if (session.status !== "active") {
      message = [`This session has ${session.status === "closed" ? "been closed" : session.status === "expired" ? "expired" : "been ended"}.`,
        "It stays here as a transcript."];
    }
    banner.hidden = !message;
    banner.dataset.kind = this.gone ? "gone" : session.status;
    if (message) replace(banner, h("strong", { text: message[0] }), " ", message[1]);
  }
}

function noAccess(title, detail) {
  replace(byId("main"), h("section", { class: "panel center" },
    h("h1", { text: title }), h("p", { text: detail }),
    h("p", {}, h("a", { href: "/", text: "Go to the start page" }))));
}

async function main() {
  if (matchMedia("(max-width: 820px)").matches) {
    // On a phone the timeline comes first: people and controls start folded.
    for (const panel of document.querySelectorAll(".session-side details")) panel.open = false;
  }
  const fromFragment = takeFragmentToken("tdm_pt_");
  if (fromFragment) {
    sessionCredential.set(sessionId, { ...(sessionCredential.get(sessionId) ?? {}), token: fromFragment });
  }
  const stored = sessionCredential.get(sessionId);
  const key = apiKey.get();
  const token = stored?.token ?? key;
  if (!token) {
    noAccess("You are not in this session on this browser",
      "Open the invite link you were sent (it starts with /join#), or the host link of this session.");
    return;
  }
  let me;
  let details;
  try {
    me = await get("/v1/me", token);
    details = await get(base, token);
  } catch (error) {
    if (error instanceof ApiError && error.code === "PARTICIPANT_GONE") {
      noAccess("You are no longer in this session", "You left it or the host removed you. Ask for a new invite link to join again.");
    } else if (error instanceof ApiError && error.status === 404) {
      noAccess("This session cannot be found", "The link may be wrong, or your access to it has ended.");
    } else {
      noAccess("This session cannot be opened", explain(error));
    }
    return;
  }
  const page = new SessionPage(token, me.kind);
  if (me.kind === "participant") {
    if (me.participant.sessionId !== sessionId) {
      noAccess("This link is for another session", "Open the session's own invite link.");
      return;
    }
    page.me = me.participant.id;
  }
  page.applySession(details);
  page.agent.load(details.agent);
  for (const p of details.participants) {
    page.setParticipant({
      id: p.id, displayName: p.displayName, role: p.role, present: p.leftAt === null,
    });
  }
  page.replayUntil = details.lastSeq;
  page.renderAll();
  // A link to an entry of this session, followed while the page is open.
  addEventListener("hashchange", () => {
    if (!page.replaying) page.reveal();
  });
  byId("leave").addEventListener("click", () => page.act("Leaving", async () => {
    await page.api.leave();
  }));
  const stream = new EventStream({
    sessionId,
    token,
    onEvent: (event) => page.onEvent(event),
    onState: (state, error) => page.onState(state, error),
    isLast: (event) => Boolean(page.me)
      && (event.type === "participant.removed" || event.type === "participant.left")
      && event.data?.participantId === page.me,
  });
  if (details.lastSeq === 0) page.replaying = false;
  stream.start(0);
}

main().catch((error) => {
  noAccess("Something went wrong", String(error?.message ?? error));
});
