/**
 * Recording policy (docs/architecture.md §3.5, docs/protocol.md §3 and `joined.recording`): a JSON document
 * naming the recorder devices, signed by an admin key. The client checks the signature, checks
 * that the admin key is one it trusts (when it was configured with any), and then wraps keys only
 * to recorders the policy names.
 *
 * @module recording-policy
 */
import { fromBase64Url, toBase64Url, utf8, concat } from './e2ee/bytes.mjs';
import { verifyEd25519 } from './e2ee/identity.mjs';

const LABEL = utf8('e2ee-sfu/recording-policy/v1');

/**
 * Verifies `recording` from `joined`. Returns `{room, recorders: [{device, identityKey}],
 * adminKey, trustedAdmin}` or throws (bad signature, wrong room, untrusted admin key).
 * @param {{v: number, document: string, admin_key: string, sig: string}} recording
 * @param {{room: string, trustedAdminKeys?: string[]}} o base64url admin keys this client trusts
 */
export async function verifyRecordingPolicy(recording, { room, trustedAdminKeys = [] }) {
  if (!recording || recording.v !== 1) throw new Error('recording policy: unsupported version');
  const document = fromBase64Url(recording.document);
  const adminKey = fromBase64Url(recording.admin_key);
  await verifyEd25519(adminKey, concat(LABEL, document), fromBase64Url(recording.sig));
  const adminB64 = toBase64Url(adminKey);
  if (trustedAdminKeys.length > 0 && !trustedAdminKeys.includes(adminB64)) {
    throw new Error('recording policy signed by an admin key this client does not trust');
  }
  const doc = JSON.parse(new TextDecoder().decode(document));
  if (doc.v !== 1 || doc.room !== room || !Array.isArray(doc.recorders)) {
    throw new Error('recording policy is for another room or malformed');
  }
  const recorders = doc.recorders.map((r) => ({ device: String(r.device), identityKey: String(r.identity_key) }));
  return { room: doc.room, recorders, adminKey: adminB64, trustedAdmin: trustedAdminKeys.length > 0, issuedAt: doc.issued_at };
}

/** True if roster entry `d` (role recorder) is named, device and identity key, by `policy`. */
export function recorderNamed(policy, d) {
  return !!policy?.recorders.some((r) => r.device === d.device && r.identityKey === d.bundle?.identity_key);
}
