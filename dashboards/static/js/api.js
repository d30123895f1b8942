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
  const data = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const getJSON = (url) => call("GET", url);
export const postJSON = (url, body) => call("POST", url, body ?? {});

/**
 * Who is looking: ``{role}`` from /api/v1/me once security exists. Until then (or on any error) null,
 * meaning an operator. Probed with HEAD-free GET only when the endpoint is advertised in the OpenAPI
 * document, so a server without it sees no 404s in the console.
 */
export async function whoAmI() {
  try {
    const spec = await call("GET", "/openapi.json");
    if (!spec?.paths?.["/api/v1/me"]) return null;
    return await call("GET", "/api/v1/me");
  } catch {
    return null;
  }
}

export function enc(id) { return encodeURIComponent(id); }
