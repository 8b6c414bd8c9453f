// A file change (an ACP tool call's `diff` content) shown as a unified diff:
// lines removed and added, computed with a longest-common-subsequence over
// lines. Very large files fall back to "everything removed, everything added".

import { h } from "./dom.js";

const MAX_CELLS = 4_000_000;
const CONTEXT = 3;

/** The line operations turning `before` into `after`: [kind, line] pairs. */
export function lineDiff(before, after) {
  const a = before === null || before === undefined ? [] : String(before).split("\n");
  const b = String(after ?? "").split("\n");
  // Common head and tail need no table.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head += 1;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head
    && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail += 1;
  const x = a.slice(head, a.length - tail);
  const y = b.slice(head, b.length - tail);
  const ops = a.slice(0, head).map((line) => ["ctx", line]);
  if (x.length * y.length > MAX_CELLS) {
    ops.push(...x.map((line) => ["del", line]), ...y.map((line) => ["add", line]));
  } else {
    const lengths = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
    for (let i = x.length - 1; i >= 0; i -= 1) {
      for (let j = y.length - 1; j >= 0; j -= 1) {
        lengths[i][j] = x[i] === y[j] ? lengths[i + 1][j + 1] + 1
          : Math.max(lengths[i + 1][j], lengths[i][j + 1]);
      }
    }
    let i = 0;
    let j = 0;
    while (i < x.length || j < y.length) {
      if (i < x.length && j < y.length && x[i] === y[j]) {
        ops.push(["ctx", x[i]]);
        i += 1;
        j += 1;
      } else if (j < y.length && (i === x.length || lengths[i][j + 1] >= lengths[i + 1][j])) {
        ops.push(["add", y[j]]);
        j += 1;
      } else {
        ops.push(["del", x[i]]);
        i += 1;
      }
    }
  }
  ops.push(...a.slice(a.length - tail).map((line) => ["ctx", line]));
  return ops;
}

/** A diff of one file as an element: its path, then the changed lines in context. */
export function diffView(path, oldText, newText) {
  const ops = lineDiff(oldText, newText);
  const keep = ops.map(() => false);
  ops.forEach(([kind], index) => {
    if (kind === "ctx") return;
    for (let k = Math.max(0, index - CONTEXT); k <= Math.min(ops.length - 1, index + CONTEXT); k += 1) {
      keep[k] = true;
    }
  });
  const code = h("code");
  let skipped = false;
  ops.forEach(([kind, line], index) => {
    if (!keep[index]) {
      if (!skipped) code.append(h("span", { class: "diff-hunk", text: "⋯\n" }));
      skipped = true;
      return;
    }
    skipped = false;
    const sign = kind === "add" ? "+" : kind === "del" ? "-" : " ";
    code.append(h("span", { class: `diff-${kind}`, text: `${sign}${line}\n` }));
  });
  const added = ops.filter(([kind]) => kind === "add").length;
  const removed = ops.filter(([kind]) => kind === "del").length;
  return h("div", { class: "diff" },
    h("div", { class: "diff-path" },
      h("span", { class: "path", text: path ?? "(file)" }),
      oldText === null || oldText === undefined ? h("span", { class: "badge", text: "new file" }) : null,
      h("span", { class: "diff-stat" },
        h("span", { class: "diff-add", text: `+${added}` }), " ",
        h("span", { class: "diff-del", text: `−${removed}` }))),
    h("pre", { tabindex: "0" }, code));
}
