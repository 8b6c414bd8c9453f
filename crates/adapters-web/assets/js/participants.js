// The people in the session, with their roles; the host changes roles and
// removes participants from here.

import { byId, h, replace, words } from "./dom.js";

export class Participants {
  constructor(page) {
    this.page = page;
    this.list = byId("participants");
    this.count = byId("participant-count");
    this.confirming = null;
  }

  render() {
    const page = this.page;
    const all = [...page.participants.values()];
    const present = all.filter((p) => p.present);
    this.count.textContent = String(present.length);
    const host = page.role() === "host" && page.active();
    replace(this.list, present.map((person) => {
      const me = person.id === page.me;
      const actions = [];
      if (host && person.role !== "host") {
        const other = person.role === "viewer" ? "collaborator" : "viewer";
        actions.push(h("button", {
          type: "button", class: "secondary small", text: `Make ${other}`,
          "aria-label": `Make ${person.displayName} a ${other}`,
          onclick: () => page.act("Changing the role", () => page.api.setRole(person.id, other)),
        }));
        if (this.confirming === person.id) {
          actions.push(h("button", {
            type: "button", class: "danger small", text: "Confirm removal",
            "aria-label": `Confirm removing ${person.displayName}`,
            onclick: () => {
              this.confirming = null;
              page.act("Removing the participant", () => page.api.remove(person.id));
            },
          }), h("button", {
            type: "button", class: "secondary small", text: "Keep",
            onclick: () => { this.confirming = null; this.render(); },
          }));
        } else {
          actions.push(h("button", {
            type: "button", class: "danger small", text: "Remove",
            "aria-label": `Remove ${person.displayName}`,
            onclick: () => { this.confirming = person.id; this.render(); },
          }));
        }
      }
      return h("li", { class: "participant", dataset: { participantId: person.id, role: person.role } },
        h("span", { class: "name", text: person.displayName }),
        me ? h("span", { class: "muted", text: " (you)" }) : null,
        h("span", { class: `badge role role-${person.role}`, text: words(person.role) }),
        actions.length ? h("span", { class: "actions" }, actions) : null);
    }));
    const gone = all.length - present.length;
    if (gone) this.list.append(h("li", { class: "muted", text: `${gone} left or removed` }));
  }
}
