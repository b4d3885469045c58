// Talking to the server: JSON in and out, the CSRF token on every change,
// errors turned into messages that say what went wrong.

const CSRF_KEY = 'hearth.csrf';

export class ApiError extends Error {
  constructor(public status: number, message: string, public body: unknown) {
    super(message);
  }
}

export function setCsrf(token: string | null): void {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
  else sessionStorage.removeItem(CSRF_KEY);
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  const csrf = sessionStorage.getItem(CSRF_KEY);
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const reason = (parsed && typeof parsed === 'object' && 'error' in parsed) ? String((parsed as { error: unknown }).error) : `HTTP ${response.status}`;
    throw new ApiError(response.status, reason, parsed);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown = {}) => call<T>('POST', path, body),
  put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
  delete: <T>(path: string) => call<T>('DELETE', path),
};

export interface Project { id: number; name: string; token: string; timezone: string }
export interface Me {
  member: { id: number; email: string | null; role: string; can_export: boolean; can_view_pii: boolean };
  session: { id: string; expires_ms: number; stepped_up: boolean };
  projects: Project[];
}

/** The path of an API call on the chosen project. */
export function onProject(path: string, project: number): string {
  return `${path}${path.includes('?') ? '&' : '?'}project_id=${project}`;
}
