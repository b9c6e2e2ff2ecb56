/**
 * The remote media of one peer connection: what the server says each receiver carries, and whose
 * frames each receiver actually decrypts. Pure bookkeeping (no browser API), owned by the call.
 *
 * Two sources of truth, of different worth:
 * - the **server's word** (a hint): the `slots` map's `source` for a receiver's mid (receive-slot
 *   rooms, docs/protocol.md §6), else the publisher `track_published` (or `joined.tracks`)
 *   announced for the receiver's track id, else the SDP's msid stream id or the `TR_<device>_<n>`
 *   track id;
 * - the **KID** (the fact): the slot in the SFrame KID of the frames the receiver's transform
 *   opened with a roster device's key (docs/e2ee.md §1.1), reported by the E2EE worker.
 *
 * A receiver is shown in a participant's tile only once the KID attributes it, and always in the
 * KID's sender's tile; frames that no roster key opens are dropped by the worker and attribute
 * nothing. Each time a receiver's KID sender and the server's word for it disagree (a new pair),
 * `sourceMismatches` grows by one. A reassigned video slot that keeps carrying its previous
 * source until the next keyframe (§6) can count one, briefly; a lying server counts them all.
 *
 * @module remote-media
 */

/** The `v` of the `slots` message this client reads. */
export const SLOTS_FORMAT = 1;

/** The device in a `TR_<device>_<n>` track id, or null. */
export function trackOwnerFromId(id) {
  const m = /^TR_(.+)_(\d+)$/.exec(id ?? '');
  return m ? m[1] : null;
}

/**
 * The receive transceivers a slot room asks for at join, from `joined.receive_slots`
 * (`{audio, video, screen}`): A audio, then V + S video, all `recvonly`. Null when the room has
 * no receive slots (per-track subscriptions instead).
 */
export function receiveSlotSections(receiveSlots) {
  if (!receiveSlots || typeof receiveSlots !== 'object') return null;
  const n = (x) => (Number.isInteger(x) && x >= 0 ? Math.min(x, 64) : 0);
  const audio = n(receiveSlots.audio);
  const video = n(receiveSlots.video) + n(receiveSlots.screen);
  return [...Array(audio).fill('audio'), ...Array(video).fill('video')];
}

/** What one peer connection receives, and from whom. */
export class RemoteMedia {
  constructor() {
    /** Track id -> the server's `TrackInfo` (`{id, publisher, kind, source}`). */
    this.announced = new Map();
    /** Transform id -> receiver record (see {@link RemoteMedia#addReceiver}). */
    this.receivers = new Map();
    /** The applied `slots` map: `{version, byMid: Map(mid -> {slot, kind, track, source})}`. */
    this.slots = null;
    /** Receivers whose KID sender differed from the server's word (one per new pair). */
    this.sourceMismatches = 0;
    /**
     * A receive-slot room (`joined.receive_slots`): a receiver's only server word is the
     * `slots` map (its msid names the subscriber's slot stream, `slots-<device>`, not a sender).
     */
    this.slotRoom = false;
  }

  /** `track_published` / `joined.tracks`: the server's word for a track. */
  announce(track) {
    if (!track?.id) return;
    this.announced.set(track.id, track);
    for (const r of this.receivers.values()) if (r.key === track.id) r.unpublished = false;
    for (const r of this.receivers.values()) if (r.key === track.id && track.source) r.source = track.source;
    this._recheck();
  }

  /** `track_unpublished`. */
  unannounce(id) {
    this.announced.delete(id);
    // Its receiver keeps the last frame it decoded: it is no longer placed in a tile.
    for (const r of this.receivers.values()) if (r.key === id) r.unpublished = true;
  }

  /** A device left: its announced tracks go, and its KID attributions with its keys. */
  forgetPublisher(device, slot) {
    for (const [id, t] of this.announced) if (t.publisher === device) this.announced.delete(id);
    for (const r of this.receivers.values()) {
      if (r.kidSlot === slot) {
        r.kidSlot = null;
        r.device = null;
      }
    }
  }

  /** The announced tracks not published by `self` (what a per-track room subscribes to). */
  subscribable(self) {
    return [...this.announced.values()].filter((t) => t.publisher !== self);
  }

  /**
   * A `slots` message (§6). Applied when its format is known and its version newer than the
   * applied one; returns whether it was.
   */
  applySlots(m) {
    if (m?.v !== SLOTS_FORMAT || !Array.isArray(m.slots) || !Number.isInteger(m.version)) return false;
    if (this.slots && m.version <= this.slots.version) return false;
    const byMid = new Map();
    for (const s of m.slots) {
      if (typeof s?.mid !== 'string') continue;
      byMid.set(s.mid, { slot: s.slot, kind: s.kind, track: s.track ?? null, source: s.source ?? null });
    }
    this.slots = { version: m.version, byMid };
    this._recheck();
    return true;
  }

  /** The filled receive slots: `[{slot, kind, mid, source}]` (empty slots are left out). */
  filledSlots() {
    if (!this.slots) return [];
    return [...this.slots.byMid].filter(([, s]) => s.source).map(([mid, s]) => ({ slot: s.slot, kind: s.kind, mid, source: s.source }));
  }

  /**
   * A receiver that got a track: `id` its transform id, `mid` its transceiver's mid, `track`
   * the `MediaStreamTrack` (or anything with `id` and `kind`), `streamOwner` the SDP msid stream
   * id. Returns the record: `{id, mid, kind, track, source, device, kidSlot, failures}`;
   * `device` stays null until the KID attributes the receiver. The same receiver again (a
   * renegotiation fires `track` again) keeps its record and attribution.
   */
  addReceiver({ id, mid = null, track, streamOwner = null, trackKey = null }) {
    const known = this.receivers.get(id);
    if (known && known.track === track) {
      known.mid = mid ?? known.mid;
      known.streamOwner = streamOwner ?? known.streamOwner;
      if (trackKey && trackKey !== known.key) known.unpublished = false;
      known.key = trackKey ?? known.key;
      const a = this.announced.get(known.key);
      if (a) known.source = a.source;
      return known;
    }
    // A transceiver this page created keeps its own track id: the server's track id is the
    // msid of its section in the remote description (`trackKey`).
    const key = trackKey ?? track.id;
    const announced = this.announced.get(key);
    const r = {
      id,
      mid,
      kind: track.kind,
      track,
      key,
      streamOwner,
      source: announced?.source ?? (track.kind === 'audio' ? 'microphone' : 'camera'),
      device: null,
      kidSlot: null,
      failures: 0,
      unpublished: false,
      _pairs: new Set(),
    };
    this.receivers.set(id, r);
    return r;
  }

  /** A receiver's track ended. */
  removeReceiver(id) {
    this.receivers.delete(id);
  }

  /** Forgets every receiver and the slot map (a fresh peer connection); announcements stay cleared too. */
  reset() {
    this.announced.clear();
    this.receivers.clear();
    this.slots = null;
  }

  /** The server's word on whose media receiver `r` carries, or null. */
  claimedDevice(r) {
    const slot = r.mid !== null && r.mid !== undefined ? this.slots?.byMid.get(r.mid) : null;
    if (slot) return slot.source;
    // Frames can open before the first map arrives: no word yet is no disagreement.
    if (this.slotRoom) return null;
    return this.announced.get(r.key)?.publisher ?? r.streamOwner ?? trackOwnerFromId(r.key);
  }

  /**
   * The worker says which KID slot's key opened receiver `id`'s latest frames (null: none yet,
   * or its sender left). `deviceOfSlot(slot)` names the roster device holding that slot (null:
   * none). Returns whether the receiver's device changed.
   */
  attribute(id, slot, deviceOfSlot) {
    const r = this.receivers.get(id);
    if (!r) return false;
    const device = slot === null || slot === undefined ? null : deviceOfSlot(slot);
    r.kidSlot = device ? slot : null;
    if (device === r.device) return false;
    r.device = device;
    this._check(r);
    return true;
  }

  _check(r) {
    if (!r.device) return;
    const claimed = this.claimedDevice(r);
    if (!claimed || claimed === r.device) return;
    const pair = `${claimed}\u0000${r.device}`;
    if (r._pairs.has(pair)) return;
    r._pairs.add(pair);
    this.sourceMismatches += 1;
  }

  _recheck() {
    for (const r of this.receivers.values()) this._check(r);
  }

  /** The device the receiver carrying track `trackId` is attributed to (by KID), or null. */
  deviceOfTrack(trackId) {
    for (const r of this.receivers.values()) if (r.key === trackId && r.device) return r.device;
    return null;
  }

  /**
   * Puts each KID-attributed receiver into its sender's participant (`audioTrack`,
   * `videoTrack`, `screenTrack`, `transformIds`), after clearing every remote participant's:
   * a receiver that moved to another sender leaves its old tile. The latest attributed wins
   * when two receivers carry the same sender's kind of media.
   */
  place(participants) {
    for (const p of participants.values()) {
      if (p.self) continue;
      p.audioTrack = p.videoTrack = p.screenTrack = null;
      p.transformIds = [];
    }
    for (const r of this.receivers.values()) {
      const p = r.device && participants.get(r.device);
      if (!p || p.self || r.unpublished) continue;
      if (r.kind === 'audio') p.audioTrack = r.track;
      else if (this._isScreen(r)) p.screenTrack = r.track;
      else p.videoTrack = r.track;
      p.transformIds.push(r.id);
    }
  }

  _isScreen(r) {
    const slot = r.mid !== null && r.mid !== undefined ? this.slots?.byMid.get(r.mid) : null;
    if (slot) return slot.kind === 'screen';
    return (this.announced.get(r.key)?.source ?? r.source) === 'screen';
  }

  /**
   * Every remote audio receiver's track, one audio element each (`[{id, track}]`). Audio plays
   * whoever speaks on it: only frames a roster key opened reach the decoder.
   */
  audioSinks() {
    return [...this.receivers.values()].filter((r) => r.kind === 'audio').map((r) => ({ id: r.id, track: r.track }));
  }
}

/** The msid track id of section `mid` in `sdp` (`a=msid:<stream> <track>`), or null. */
export function msidTrackOfMid(sdp, mid) {
  if (!sdp || mid === null || mid === undefined) return null;
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const lines = section.split(/\r?\n/);
    if (!lines.includes(`a=mid:${mid}`)) continue;
    const msid = lines.find((l) => l.startsWith('a=msid:'));
    const track = msid?.slice('a=msid:'.length).split(' ')[1];
    return track && track !== '-' ? track : null;
  }
  return null;
}
