// Building the page from data without ever parsing markup: every element is
// created with createElement, every piece of user or agent text becomes a text
// node. No module of this app hands a string to the HTML parser.

/**
 * Creates an element. `attrs` sets properties and attributes: `class`, `text`
 * (the text content), `on<event>` (a listener), `dataset`, `aria-*`/`data-*` and
 * any other attribute by name. Children may be nodes, strings (text nodes),
 * arrays, or null/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (/html|srcdoc/i.test(name)) throw new Error(`h() does not set ${name}`);
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = String(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name in element && !name.includes("-") && typeof value !== "string") {
      element[name] = value;
    } else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

/** Appends children (nodes, strings as text, arrays; null/false skipped). */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces all children of `parent`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** The element with this id (the pages' fixed landmarks). */
export function byId(id) {
  return document.getElementById(id);
}

/** A time as the reader's clock shows it. */
export function clock(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A date and time, for things further away than today. */
export function dateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString([], {
    month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

/** "3 min ago", "in 2 h": a rough distance from now. */
export function relative(iso) {
  const then = new Date(iso).getTime();
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const [amount, unit] =
    abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"]
      : abs < 86400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86400), "d"];
  if (abs < 10) return "just now";
  return seconds < 0 ? `${amount} ${unit} ago` : `in ${amount} ${unit}`;
}

/** A <time> element showing `iso` with `format`, its full value as a tooltip. */
export function time(iso, format = clock) {
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString(), text: format(iso) });
}

/** Words for the wire's snake_case values: `prompt_with_approval` → "prompt with approval". */
export function words(value) {
  return String(value ?? "").replaceAll("_", " ");
}

/** Puts `text` on the clipboard; falls back to selecting `input` for ctrl-c. */
export async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) {
      input.focus();
      input.select();
    }
    return false;
  }
}

/** A text field with its link and a Copy button that says when it copied. */
export function copyField(label, value, testId) {
  const input = h("input", {
    type: "text", readOnly: true, value, "aria-label": label, class: "copy-value",
    "data-test": testId,
    onfocus: (event) => event.target.select(),
  });
  const button = h("button", { type: "button", class: "secondary", text: "Copy" });
  button.addEventListener("click", async () => {
    const copied = await copy(value, input);
    button.textContent = copied ? "Copied" : "Press Ctrl+C";
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  return h("div", { class: "copy-field" }, input, button);
}
