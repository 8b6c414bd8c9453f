// A small Markdown renderer that builds DOM nodes directly: it only ever
// creates elements and text nodes, so text from agents and people can never
// become markup, script or styles. Links are kept only for http(s) and mailto.
//
// Supported: paragraphs (single newlines are line breaks), ATX headings, fenced
// code blocks (unclosed fences render as code, so streaming text looks right),
// block quotes, ordered, bullet and task lists (nested by indentation), tables,
// rules; inline code, strong, emphasis, strike-through, links, autolinks and
// bare URLs. Images become links: a page never loads what an agent points at.

import { h } from "./dom.js";

/** The Markdown `source` as a fragment of DOM nodes. */
export function markdown(source) {
  const fragment = document.createDocumentFragment();
  fragment.append(...blocks(String(source ?? "").replace(/\r\n?/g, "\n").split("\n")));
  return fragment;
}

/** A link's target if it is safe to follow (http, https, mailto), else null. */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(String(raw).trim());
  } catch {
    return null;
  }
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

/** A link element, or plain text when the target is not safe. */
export function link(href, children, title) {
  const safe = safeHref(href);
  if (!safe) return h("span", { class: "unsafe-link", title: "link not followed" }, children);
  return h("a", {
    href: safe, rel: "noopener noreferrer nofollow", target: "_blank", title,
  }, children);
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const TABLE_RULE = /^ *\|? *:?-+:? *(\| *:?-+:? *)*\|? *$/;

function blocks(lines) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    let match;
    if ((match = FENCE.exec(line))) {
      const [, fence, language] = match;
      const body = [];
      i += 1;
      while (i < lines.length && !isClosingFence(lines[i], fence)) body.push(lines[i++]);
      i += 1;
      out.push(codeBlock(body.join("\n"), language));
    } else if ((match = HEADING.exec(line))) {
      out.push(h(`h${Math.min(match[1].length + 2, 6)}`, {}, inline(match[2] ?? "")));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (match = QUOTE.exec(lines[i]))) {
        quoted.push(match[1]);
        i += 1;
      }
      out.push(h("blockquote", {}, blocks(quoted)));
    } else if (ITEM.test(line)) {
      i = list(lines, i, out);
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])
      && lines[i + 1].includes("-")) {
      i = table(lines, i, out);
    } else {
      const paragraph = [];
      while (i < lines.length && lines[i].trim() && !startsBlock(lines[i])) {
        paragraph.push(lines[i].trim());
        i += 1;
      }
      if (!paragraph.length) {
        paragraph.push(lines[i].trim());
        i += 1;
      }
      out.push(h("p", {}, lineBreaks(paragraph)));
    }
  }
  return out;
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || ITEM.test(line);
}

function isClosingFence(line, fence) {
  const trimmed = line.trim();
  return trimmed.startsWith(fence) && /^([`~])\1*$/.test(trimmed) && trimmed[0] === fence[0];
}

function lineBreaks(lines) {
  const nodes = [];
  lines.forEach((line, index) => {
    if (index > 0) nodes.push(h("br"));
    nodes.push(...inline(line));
  });
  return nodes;
}

/** A fenced code block; `diff` blocks color their added and removed lines. */
export function codeBlock(code, language = "") {
  const lang = language.toLowerCase();
  const body = h("code", { class: lang ? `language-${lang}` : "" });
  if (lang === "diff" || lang === "patch") {
    for (const line of code.split("\n")) {
      const kind = line.startsWith("+") ? "add" : line.startsWith("-") ? "del"
        : line.startsWith("@@") ? "hunk" : "ctx";
      body.append(h("span", { class: `diff-${kind}`, text: `${line}\n` }));
    }
  } else {
    body.textContent = code;
  }
  return h("div", { class: "code" },
    lang ? h("span", { class: "code-language", text: lang }) : null,
    h("pre", { tabindex: "0" }, body));
}

function list(lines, start, out) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const element = h(ordered ? "ol" : "ul");
  if (ordered) {
    const number = parseInt(first[2], 10);
    if (number !== 1) element.start = number;
  }
  let i = start;
  while (i < lines.length) {
    const match = ITEM.exec(lines[i]);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    const content = [match[3]];
    const contentIndent = match[1].length + match[2].length + 1;
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      const next = ITEM.exec(line);
      if (next && next[1].length <= indent) break;
      if (!line.trim()) {
        const following = lines[i + 1] ?? "";
        if (following.trim() && leading(following) > indent) {
          content.push("");
          i += 1;
          continue;
        }
        break;
      }
      if (leading(line) <= indent && !next) {
        if (startsBlock(line)) break;
        content.push(line.trim()); // a lazy continuation line
      } else {
        content.push(line.slice(Math.min(leading(line), contentIndent)));
      }
      i += 1;
    }
    element.append(listItem(content));
  }
  out.push(element);
  return i;
}

function listItem(content) {
  const item = h("li");
  const task = /^\[([ xX])\][ \t]+/.exec(content[0]);
  if (task) {
    content[0] = content[0].slice(task[0].length);
    item.className = "task";
    item.append(h("input", {
      type: "checkbox", disabled: true, checked: task[1] !== " ", "aria-label": "done",
    }), " ");
  }
  const simple = content.every((line) => line.trim() && !startsBlock(line));
  if (simple) item.append(...lineBreaks(content.map((line) => line.trim())));
  else item.append(...blocks(content));
  return item;
}

function leading(line) {
  return line.length - line.trimStart().length;
}

function table(lines, start, out) {
  const cells = (line) => line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|")
    .map((cell) => cell.trim());
  const alignments = cells(lines[start + 1]).map((cell) =>
    cell.startsWith(":") && cell.endsWith(":") ? "center" : cell.endsWith(":") ? "right" : "");
  const row = (line, tag) => h("tr", {}, cells(line).map((cell, index) =>
    h(tag, { class: alignments[index] ? `align-${alignments[index]}` : "" }, inline(cell))));
  const body = h("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
    body.append(row(lines[i], "td"));
    i += 1;
  }
  out.push(h("div", { class: "table" },
    h("table", {}, h("thead", {}, row(lines[start], "th")), body)));
  return i;
}

const INLINE_RULES = [
  [/^\\([!-/:-@[-`{-~])/, (m) => [m[1]]],
  [/^(`+)([^`][\s\S]*?|[\s\S]*?[^`])\1(?!`)/, (m) => [h("code", { text: m[2] })]],
  [/^!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+"([^"]*)")?\s*\)/,
    (m) => [link(m[2], m[1] || m[2], m[3])]],
  [/^\[((?:[^[\]\\]|\\.|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+"([^"]*)")?\s*\)/,
    (m) => [link(m[2], inline(m[1]), m[3])]],
  [/^<((?:https?:\/\/|mailto:)[^>\s]+)>/, (m) => [link(m[1], m[1])]],
  [/^\*\*(?=\S)([\s\S]*?\S)\*\*/, (m) => [h("strong", {}, inline(m[1]))]],
  [/^__(?=\S)([\s\S]*?\S)__(?![A-Za-z0-9])/, (m) => [h("strong", {}, inline(m[1]))]],
  [/^~~(?=\S)([\s\S]*?\S)~~/, (m) => [h("del", {}, inline(m[1]))]],
  [/^\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)/, (m) => [h("em", {}, inline(m[1]))]],
  [/^_(?=[^\s_])([\s\S]*?[^\s_])_(?![A-Za-z0-9])/, (m) => [h("em", {}, inline(m[1]))]],
];

const BARE_URL = /^(?:https?:\/\/|mailto:)[^\s<>]*[^\s<>.,:;"')\]!?*_~]/;

/** Inline Markdown of one line (or a paragraph) as nodes. */
export function inline(text) {
  const nodes = [];
  let plain = "";
  let i = 0;
  const flush = () => {
    if (plain) nodes.push(document.createTextNode(plain));
    plain = "";
  };
  outer: while (i < text.length) {
    const char = text[i];
    if ("\\`![<*_~".includes(char)) {
      const previous = text[i - 1] ?? " ";
      for (const [rule, make] of INLINE_RULES) {
        if (char === "_" && /[A-Za-z0-9]/.test(previous)) break;
        const match = rule.exec(text.slice(i));
        if (match) {
          flush();
          nodes.push(...make(match));
          i += match[0].length;
          continue outer;
        }
      }
    } else if ((char === "h" || char === "m") && !/[A-Za-z0-9]/.test(text[i - 1] ?? " ")) {
      const match = BARE_URL.exec(text.slice(i));
      if (match) {
        flush();
        nodes.push(link(match[0], match[0]));
        i += match[0].length;
        continue;
      }
    }
    plain += char;
    i += 1;
  }
  flush();
  return nodes;
}
