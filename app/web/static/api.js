// The page's plumbing, shared by its modules: calls to the public JSON API with the user's
// credentials, either the token the user pasted (kept in sessionStorage, this tab only) or the
// session cookie of a sign-in with the identity provider (HttpOnly: no script sees it) plus the
// session's CSRF token on writes; and small DOM helpers.
export const TOKEN_KEY = "postrag.token";
const READS = ["GET", "HEAD"];
export const $ = (selector) => document.querySelector(selector);
let csrfToken = null;  // set while signed in with the provider (the cookie does the rest)

export function token() { return sessionStorage.getItem(TOKEN_KEY); }

export function useCsrfToken(value) { csrfToken = value; }

// The credentials of a request: the pasted token, or the session's CSRF token on writes.
export function authHeaders(method = "GET") {
  if (token()) return { Authorization: `Bearer ${token()}` };
  return csrfToken && !READS.includes(method.toUpperCase()) ? { "X-CSRF-Token": csrfToken } : {};
}

export async function api(path, options = {}) {
  const headers = { ...authHeaders(options.method), ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  if (response.status === 204) return null;
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    // Credentials refused (a session that ended, a revoked token): the app signs out.
    if (response.status === 401 && !path.startsWith("/auth/")) {
      window.dispatchEvent(new CustomEvent("postrag:unauthorized"));
    }
    const error = new Error(body?.detail || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.fields = body?.errors || [];  // a 422's invalid fields: where (loc) and what (msg)
    throw error;
  }
  return body;
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}
