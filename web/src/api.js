// SPDX-License-Identifier: Apache-2.0
// The JSON API (/api/v1/, documented in docs/web.md): the page uses
// nothing else.

export class APIError extends Error {
  constructor(body, status) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.body = body || {};
    this.status = status;
  }
}

// api calls an endpoint with params (an object; arrays repeat the name).
export async function api(endpoint, params = {}, signal) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x));
  }
  const resp = await fetch(`/api/v1/${endpoint}?${q}`, { signal, headers: { Accept: 'application/json' } });
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new APIError({ message: `HTTP ${resp.status}: not JSON` }, resp.status);
  }
  if (!resp.ok) throw new APIError(body.error, resp.status);
  return body;
}

// windowParams are a state's time window as API parameters.
export function windowParams(st) {
  return st.last ? { last: st.last } : { from: st.from, to: st.to };
}
