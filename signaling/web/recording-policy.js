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
/** Bounds of a document's `retention_days` (call_client's MIN_/MAX_RETENTION_DAYS). */
const MIN_RETENTION_DAYS = 1;
const MAX_RETENTION_DAYS = 36500;

/**
 * Verifies `recording` from `joined`. Returns `{room, recorders: [{device, identityKey}],
 * adminKey, trustedAdmin, issuedAt, retentionDays}` or throws (bad signature, wrong room, untrusted admin key).
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
  // Required, as the service and native clients require it (docs/protocol.md §3): a document
  // signed before retention existed is refused like any malformed policy.
  if (!Number.isInteger(doc.retention_days) || doc.retention_days < MIN_RETENTION_DAYS || doc.retention_days > MAX_RETENTION_DAYS) {
    throw new Error(`recording policy has no valid retention_days (${MIN_RETENTION_DAYS}-${MAX_RETENTION_DAYS})`);
  }
  const recorders = doc.recorders.map((r) => ({ device: String(r.device), identityKey: String(r.identity_key) }));
  return { room: doc.room, recorders, adminKey: adminB64, trustedAdmin: trustedAdminKeys.length > 0, issuedAt: doc.issued_at, retentionDays: doc.retention_days };
}

/** True if roster entry `d` (role recorder) is named, device and identity key, by `policy`. */
/** The badge text of a verified policy: "Recorded · kept 90 days". */
export function recordedLabel(retentionDays) {
  if (!Number.isInteger(retentionDays)) return 'Recorded';
  return `Recorded · kept ${retentionDays} ${retentionDays === 1 ? 'day' : 'days'}`;
}

export function recorderNamed(policy, d) {
  return !!policy?.recorders.some((r) => r.device === d.device && r.identityKey === d.bundle?.identity_key);
}
