// The /v1 API, through fetch: JSON in and out, the token in the Authorization
// header (never in a URL), problem+json errors as ApiError. The page's tokens
// are kept in localStorage, by session.

/** A failed call: `status` (0 when no server answered), the problem's `code`. */
export class ApiError extends Error {
  constructor(status, code, detail, errors = []) {
    super(detail || code);
    this.status = status;
    this.code = code;
    this.errors = errors;
  }

  /** Whether retrying cannot help: the credential or the session is gone. */
  get final() {
    return this.status === 401 || this.status === 403 || this.status === 404;
  }
}

/** Calls the API; resolves to the JSON body (null when empty). */
export async function call(method, path, { token, body, accept } = {}) {
  const headers = { accept: accept ?? "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, "NETWORK", "The server cannot be reached.");
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const problem = json ?? {};
    throw new ApiError(
      response.status,
      problem.code ?? `HTTP_${response.status}`,
      problem.detail ?? response.statusText,
      problem.errors ?? [],
    );
  }
  return json;
}

export const get = (path, token) => call("GET", path, { token });
export const post = (path, token, body) => call("POST", path, { token, body });
export const patch = (path, token, body) => call("PATCH", path, { token, body });
export const del = (path, token) => call("DELETE", path, { token });

/** A sentence for an error, for people. */
export function explain(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  const messages = {
    NETWORK: "The server cannot be reached. Check your connection and try again.",
    UNAUTHENTICATED: "This link or key is not valid (any more).",
    PARTICIPANT_GONE: "You are no longer in this session.",
    SESSION_INACTIVE: "This session has ended.",
    INVITE_NOT_FOUND: "This invite link is not valid.",
    INVITE_REVOKED: "The host revoked this invite link.",
    INVITE_EXHAUSTED: "This invite link has been used as often as it allows.",
    INVITE_EXPIRED: "This invite link has expired.",
    RATE_LIMITED: "Too many actions at once; wait a moment and try again.",
    INSUFFICIENT_SCOPE: "This API key may not do that.",
  };
  const fields = error.errors.map((field) => `${field.field} ${field.message}`).join("; ");
  return messages[error.code] ?? (fields || error.message);
}

const KEY = "tandem.apiKey";
const SESSION = (id) => `tandem.session.${id}`;

function read(name) {
  try {
    return JSON.parse(localStorage.getItem(name) ?? "null");
  } catch {
    return null;
  }
}

function write(name, value) {
  if (value === null) localStorage.removeItem(name);
  else localStorage.setItem(name, JSON.stringify(value));
}

/** The API key of the landing page, if signed in. */
export const apiKey = {
  get: () => read(KEY),
  set: (key) => write(KEY, key),
  clear: () => write(KEY, null),
};

/**
 * This browser's credential for a session: `{ token, invites: {id: url} }`,
 * the participant token from a join or a host link, and the invite links the
 * host created here (their tokens are shown once, so the page keeps them).
 */
export const sessionCredential = {
  get: (id) => read(SESSION(id)),
  set: (id, value) => write(SESSION(id), value),
  clear: (id) => write(SESSION(id), null),
  rememberInvite(id, inviteId, url) {
    const stored = read(SESSION(id));
    if (!stored) return;
    stored.invites = { ...(stored.invites ?? {}), [inviteId]: url };
    write(SESSION(id), stored);
  },
};

/**
 * Takes a token from the address bar's fragment (`#tdm_...`), removing it from
 * the address bar and history at once; null when there is none.
 */
export function takeFragmentToken(prefix) {
  const fragment = decodeURIComponent(location.hash.slice(1));
  if (!fragment.startsWith(prefix)) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return fragment;
}
