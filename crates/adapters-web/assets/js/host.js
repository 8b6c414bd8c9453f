// The host's controls: the session's title, mode and permission policy;
// invite links (create with a role, uses and expiry, copy, list, revoke); and
// closing the session with a summary.

import { byId, copyField, dateTime, h, replace, words } from "./dom.js";
import { sessionCredential } from "./api.js";

const MODES = ["view_only", "comment_only", "prompt_with_approval", "prompt_direct"];
const POLICIES = ["ask_host", "allow_all", "reject_all"];

function select(id, label, values, current) {
  return [
    h("label", { for: id, text: label }),
    h("select", { id }, values.map((value) =>
      h("option", { value, selected: value === current, text: words(value) }))),
  ];
}

export class HostControls {
  constructor(page) {
    this.page = page;
    this.panel = byId("host-panel");
    this.body = byId("host-body");
    this.invites = [];
    this.newInvite = null;
    this.confirmClose = false;
    this.built = false;
  }

  render() {
    const page = this.page;
    const show = page.role() === "host" && page.active();
    this.panel.hidden = !show;
    if (!show) {
      this.built = false;
      return;
    }
    if (!this.built) {
      this.build();
      this.built = true;
      this.loadInvites();
    }
  }

  build() {
    const page = this.page;
    const { session } = page;
    const title = h("input", { id: "setting-title", type: "text", value: session.title, maxlength: 200 });
    title.value = session.title;
    const settings = h("form", { class: "stack", id: "settings-form" },
      h("label", { for: "setting-title", text: "Title" }), title,
      ...select("setting-mode", "Mode", MODES, session.mode),
      ...select("setting-policy", "Tool permissions", POLICIES, session.permissionPolicy),
      h("button", { type: "submit", text: "Save settings" }));
    settings.addEventListener("submit", (event) => {
      event.preventDefault();
      page.act("Saving the settings", () => page.api.update({
        title: title.value,
        mode: byId("setting-mode").value,
        permissionPolicy: byId("setting-policy").value,
      }));
    });

    const maxUses = h("input", { id: "invite-max-uses", type: "number", min: 1, placeholder: "no limit" });
    const inviteForm = h("form", { class: "stack", id: "invite-form" },
      ...select("invite-role", "Role", ["collaborator", "viewer"], "viewer"),
      h("label", { for: "invite-max-uses", text: "Uses (empty: no limit)" }), maxUses,
      h("label", { for: "invite-expires", text: "Works for" }),
      h("select", { id: "invite-expires" },
        h("option", { value: "", text: "as long as the session" }),
        ["1h", "8h", "24h", "7d"].map((value) => h("option", { value, text: value }))),
      h("button", { type: "submit", text: "Create invite link" }));
    inviteForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { role: byId("invite-role").value };
      if (maxUses.value) body.maxUses = Number(maxUses.value);
      if (byId("invite-expires").value) body.expiresIn = byId("invite-expires").value;
      page.act("Creating the invite", async () => {
        const created = await page.api.createInvite(body);
        sessionCredential.rememberInvite(page.id, created.invite.id, created.url);
        this.newInvite = created;
        await this.loadInvites();
      });
    });
    this.newInviteBox = h("div", { id: "new-invite" });
    this.inviteList = h("ul", { id: "invites", class: "invites" });

    const summary = h("textarea", { id: "close-summary", rows: 3, placeholder: "What was achieved (optional)" });
    this.closeActions = h("div", { class: "actions" });
    const closeForm = h("form", { class: "stack", id: "close-form" },
      h("label", { for: "close-summary", text: "Summary for everyone" }), summary, this.closeActions);
    closeForm.addEventListener("submit", (event) => event.preventDefault());
    this.summary = summary;
    this.renderClose();

    replace(this.body,
      h("section", {}, h("h3", { text: "Settings" }), settings),
      h("section", {}, h("h3", { text: "Invite links" }), inviteForm, this.newInviteBox, this.inviteList),
      h("section", {}, h("h3", { text: "Close the session" }), closeForm));
  }

  /** Keeps the settings form in step with changes made elsewhere. */
  sync() {
    if (!this.built) return;
    const { session } = this.page;
    const title = byId("setting-title");
    if (document.activeElement !== title) title.value = session.title;
    byId("setting-mode").value = session.mode;
    byId("setting-policy").value = session.permissionPolicy;
  }

  renderClose() {
    const page = this.page;
    if (this.confirmClose) {
      replace(this.closeActions,
        h("button", {
          type: "button", class: "danger", text: "Yes, close it for everyone",
          onclick: () => {
            this.confirmClose = false;
            page.act("Closing the session", () => page.api.close(this.summary.value));
          },
        }),
        h("button", {
          type: "button", class: "secondary", text: "Keep it open",
          onclick: () => { this.confirmClose = false; this.renderClose(); },
        }));
    } else {
      replace(this.closeActions, h("button", {
        type: "button", class: "danger", text: "Close session",
        onclick: () => { this.confirmClose = true; this.renderClose(); },
      }));
    }
  }

  async loadInvites() {
    try {
      const page = await this.page.api.invites();
      this.invites = page.invites;
    } catch (error) {
      this.invites = [];
    }
    this.renderInvites();
  }

  renderInvites() {
    const page = this.page;
    const known = sessionCredential.get(page.id)?.invites ?? {};
    replace(this.newInviteBox, this.newInvite
      ? h("div", { class: "callout" },
        h("p", { text: `New ${this.newInvite.invite.role} link — send it to whoever should join:` }),
        copyField("The new invite link", this.newInvite.url, "new-invite-url"))
      : null);
    replace(this.inviteList, [...this.invites].reverse().map((invite) => {
      const state = invite.revokedAt ? "revoked"
        : invite.maxUses !== null && invite.uses >= invite.maxUses ? "used up"
          : invite.expiresAt && new Date(invite.expiresAt) <= new Date() ? "expired" : "active";
      const url = known[invite.id];
      return h("li", { class: `invite invite-${state.replace(" ", "-")}`, dataset: { inviteId: invite.id } },
        h("div", {},
          h("span", { class: `badge role role-${invite.role}`, text: invite.role }),
          ` ${invite.uses}${invite.maxUses !== null ? `/${invite.maxUses}` : ""} used`,
          invite.expiresAt ? ` · until ${dateTime(invite.expiresAt)}` : "",
          h("span", { class: "muted", text: ` · ${state}` })),
        url && state === "active" ? copyField(`The ${invite.role} invite link`, url) : null,
        state === "active" ? h("button", {
          type: "button", class: "danger small", text: "Revoke",
          "aria-label": `Revoke the ${invite.role} invite link`,
          onclick: () => page.act("Revoking the invite", async () => {
            await page.api.revokeInvite(invite.id);
            if (this.newInvite?.invite.id === invite.id) this.newInvite = null;
            await this.loadInvites();
          }),
        }) : null);
    }));
  }
}
