// WebAuthn ceremonies against the server's options (webauthn-rs sends and
// expects base64url where the browser API speaks ArrayBuffers).

import { api, setCsrf } from './api';

const toBuffer = (text: string): ArrayBuffer => {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
};
const toText = (buffer: ArrayBuffer): string =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

interface Ceremony { ceremony: string; options: { publicKey: Record<string, any> } }
interface SignedIn { csrf_token: string; recovery_codes?: string[] }

function assertionJson(credential: PublicKeyCredential) {
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id, rawId: toText(credential.rawId), type: credential.type, extensions: credential.getClientExtensionResults(),
    response: {
      authenticatorData: toText(response.authenticatorData), clientDataJSON: toText(response.clientDataJSON),
      signature: toText(response.signature), userHandle: response.userHandle ? toText(response.userHandle) : null,
    },
  };
}

async function assert(options: Ceremony['options']): Promise<PublicKeyCredential> {
  const publicKey = { ...options.publicKey };
  publicKey.challenge = toBuffer(publicKey.challenge);
  publicKey.allowCredentials = (publicKey.allowCredentials || []).map((c: any) => ({ ...c, id: toBuffer(c.id) }));
  const credential = await navigator.credentials.get({ publicKey: publicKey as PublicKeyCredentialRequestOptions });
  if (!credential) throw new Error('no passkey was chosen');
  return credential as PublicKeyCredential;
}

/** Registers a passkey with a one-time enrolment token; signs in. */
export async function enrol(token: string): Promise<SignedIn> {
  const start = await api.post<Ceremony>('/api/v1/auth/enrol/start', { token });
  const publicKey = { ...start.options.publicKey };
  publicKey.challenge = toBuffer(publicKey.challenge);
  publicKey.user = { ...publicKey.user, id: toBuffer(publicKey.user.id) };
  publicKey.excludeCredentials = (publicKey.excludeCredentials || []).map((c: any) => ({ ...c, id: toBuffer(c.id) }));
  const created = (await navigator.credentials.create({ publicKey: publicKey as PublicKeyCredentialCreationOptions })) as PublicKeyCredential | null;
  if (!created) throw new Error('no passkey was created');
  const response = created.response as AuthenticatorAttestationResponse;
  const credential = {
    id: created.id, rawId: toText(created.rawId), type: created.type, extensions: created.getClientExtensionResults(),
    response: { attestationObject: toText(response.attestationObject), clientDataJSON: toText(response.clientDataJSON) },
  };
  const done = await api.post<SignedIn>('/api/v1/auth/enrol/finish', { ceremony: start.ceremony, credential });
  setCsrf(done.csrf_token);
  return done;
}

export async function signIn(email: string): Promise<SignedIn> {
  const start = await api.post<Ceremony>('/api/v1/auth/login/start', { email });
  const credential = await assert(start.options);
  const done = await api.post<SignedIn>('/api/v1/auth/login/finish', { ceremony: start.ceremony, credential: assertionJson(credential) });
  setCsrf(done.csrf_token);
  return done;
}

/** Confirms the signed-in member with their passkey (exports, reveals, approvals). */
export async function stepUp(): Promise<void> {
  const start = await api.post<Ceremony>('/api/v1/auth/step-up/start');
  const credential = await assert(start.options);
  await api.post('/api/v1/auth/step-up/finish', { ceremony: start.ceremony, credential: assertionJson(credential) });
}

/** Runs `action`; when the server asks for a fresh passkey confirmation, asks for it and runs it once more. */
export async function withStepUp<T>(action: () => Promise<T>, asking: (text: string) => void = () => undefined): Promise<T> {
  try {
    return await action();
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if (!/step-up/.test(message)) throw error;
    asking('Confirm with your passkey…');
    await stepUp();
    return action();
  }
}
