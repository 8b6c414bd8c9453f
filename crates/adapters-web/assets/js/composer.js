// The composer: one text box, a Comment and a Prompt button, and a sentence
// saying why a button is off when the reader's role or the session's mode
// forbids it.

import { byId } from "./dom.js";

/** What the reader may do now, and why not: { comment, prompt, note, promptLabel }. */
export function permissions(page) {
  const role = page.role();
  const mode = page.session.mode;
  const off = (note) => ({ comment: false, prompt: false, note, promptLabel: "Send prompt" });
  if (page.gone) return off("You are no longer in this session.");
  if (page.session.status !== "active") return off("This session has ended; it stays readable as a transcript.");
  if (!page.me) return off("You are watching with an API key. Open the host link or an invite link to take part.");
  if (role === "viewer") return off("You are a viewer: you can watch, not comment or prompt.");
  if (role === "host") {
    return { comment: true, prompt: true, note: "Your prompts run at once.", promptLabel: "Run prompt" };
  }
  switch (mode) {
    case "view_only":
      return off("The host made this session view only.");
    case "comment_only":
      return { comment: true, prompt: false, note: "Prompts are off: the session is comment only.", promptLabel: "Send prompt" };
    case "prompt_with_approval":
      return { comment: true, prompt: true, note: "The host approves prompts before they run.", promptLabel: "Suggest prompt" };
    case "prompt_direct":
      return { comment: true, prompt: true, note: "Your prompts run at once.", promptLabel: "Run prompt" };
    default:
      return off(`This session's mode (${mode}) is not known to this page.`);
  }
}

export class Composer {
  constructor(page) {
    this.page = page;
    this.form = byId("composer");
    this.text = byId("composer-text");
    this.commentButton = byId("send-comment");
    this.promptButton = byId("send-prompt");
    this.note = byId("composer-note");
    this.commentButton.addEventListener("click", () => this.send("comment"));
    this.promptButton.addEventListener("click", () => this.send("prompt"));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send("comment");
    });
    this.text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        this.send(event.shiftKey ? "prompt" : "comment");
      }
    });
  }

  render() {
    const allowed = permissions(this.page);
    this.commentButton.disabled = !allowed.comment;
    this.promptButton.disabled = !allowed.prompt;
    this.promptButton.textContent = allowed.promptLabel;
    this.text.disabled = !allowed.comment && !allowed.prompt;
    this.note.textContent = allowed.note;
    this.form.dataset.locked = String(this.text.disabled);
  }

  /** Starts the text with `prefix` (an agent command), keeping what was typed. */
  insert(prefix) {
    if (this.text.disabled) return;
    const rest = this.text.value.replace(/^\/\S*\s?/, "");
    this.text.value = prefix + rest;
    this.text.focus();
    this.text.setSelectionRange(this.text.value.length, this.text.value.length);
  }

  async send(kind) {
    const allowed = permissions(this.page);
    const text = this.text.value;
    if (!text.trim() || !allowed[kind]) return;
    const ok = await this.page.act(kind === "comment" ? "Posting the comment" : "Sending the prompt",
      () => (kind === "comment" ? this.page.api.comment(text) : this.page.api.prompt(text)));
    if (ok) {
      this.text.value = "";
      this.text.focus();
    }
  }
}
