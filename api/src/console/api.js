// The REST API as the console uses it: same origin, JSON, the operator's
// bearer token (kept in this tab's sessionStorage) on every request, and
// every failure turned into an ApiFailure carrying the status and the
// JSON error body's `error` and `field`.

const BASE = '/api/v1';
const TOKEN_KEY = 'tierflow.token';

export class ApiFailure extends Error {
  constructor(method, path, status, error, field) {
    super(`${method} ${path}: ${status || 'no answer'} ${error}`);
    this.method = method;
    this.path = path;
    this.status = status;
    this.error = error;
    this.field = field ?? null;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export async function call(method, path, body) {
  const url = BASE + path;
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiFailure(method, url, 0, `the API did not answer (${e.message})`);
  }
  const text = await resp.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      if (resp.ok) throw new ApiFailure(method, url, resp.status, 'the answer is not JSON');
    }
  }
  if (!resp.ok) {
    const error = json?.error ?? (text.slice(0, 200) || resp.statusText);
    throw new ApiFailure(method, url, resp.status, error, json?.field);
  }
  return json;
}

export const get = (path) => call('GET', path);
export const put = (path, body) => call('PUT', path, body);
export const del = (path) => call('DELETE', path);
