// Same-origin REST calls; credentials included so the session cookie of the security issue just works.
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function call(method, url, body) {
  const init = { method, credentials: "include", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(url, init);
  if (resp.status === 401) toLogin(); // the session ended (expired, logged out elsewhere, user disabled)
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const getJSON = (url) => call("GET", url);
export const postJSON = (url, body) => call("POST", url, body ?? {});
export const deleteJSON = (url) => call("DELETE", url);
export const putJSON = (url, body) => call("PUT", url, body ?? {});

/** Send the browser to the login page, coming back here afterwards. */
let loggingOut = false;

/** Logging out on purpose: the socket's 1008 close must not race the logout request to the login page. */
export function startLogout() { loggingOut = true; }

export function toLogin() {
  if (loggingOut) return; // the logout button navigates once its request has finished
  const here = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

export function enc(id) { return encodeURIComponent(id); }
