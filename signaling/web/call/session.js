/**
 * The signaling session (docs/protocol.md §1–§2): the `/v1/rtc` socket, `join` → `joined` and
 * what starts from it (roster, keys, chat, media), every server message dispatched in order to
 * the part of the call it is for, server `error`s, `leave` and the end of the call, and the
 * reconnect: when the socket closes without `left` and the close is worth another try
 * (`reconnect.js`), the call goes to phase `reconnecting` (the tiles stay), the session's parts
 * are kept (suspended), and after a jittered backoff (or at once when the browser is back
 * `online`) a new socket joins as the same device (same identity keys and bundle, same token),
 * asking to resume the lost session (`join.resume`: its call id and slot, docs/protocol.md §1
 * "Resume"). When the service still held the device (`joined.resumed`: within its grace
 * window, nobody else was told anything) the call goes on with the same key manager, worker,
 * chat keys and peer connection (restarted with the same keys when it is no longer
 * `connected`), and the roster in `joined` is applied as a diff. Otherwise the session's parts
 * are dropped and the whole join runs again (after a service restart the room comes back with
 * the same call id and slot, so the call security code is the same when the roster is).
 * `state.connection` says where it stands.
 *
 * @module call/session
 */
import { createBundle } from '../e2ee/identity.mjs';
import { ChatRoom } from '../chat.js';
import { mediaStateMessage } from '../media-state.js';
import { SignalingClient } from '../signaling-client.js';
import { isDepartureRace, isRacedSubscription, joinFailureText, serverErrorText } from '../call-errors.js';
import { Backoff, attemptVerdict, closeVerdict } from '../reconnect.js';

/** One device's signaling session, across reconnects. */
export class SignalingSession {
  /**
   * @param {import('../call.js').Call} call the coordinator (its store and parts)
   * @param {SignalingClient} [client] the client of the first session (default: one for
   *   `call.options.signalingUrl`); each reconnect opens a new one
   */
  constructor(call, client) {
    this.call = call;
    /** The current session's signaling client. */
    this.signaling = client ?? new SignalingClient(call.options.signalingUrl);
    /** The session's end-to-end encrypted chat (its keys go with the session, its messages stay). */
    this.chat = null;
    this.identity = null;
    this.bundle = null;
    this.joined = false;
    this.queue = null;
    this.backoff = new Backoff();
    this.reconnectRun = null;
    this.wake = null;
    this.network = null;
    /** The lost session's `{call, slot}` a reconnect asks to resume (null before any loss). */
    this.lost = null;
    /** The lost session's parts are kept, waiting for a reconnect to resume them. */
    this.suspended = false;
    /** The socket the current session's chat sends on (the socket it resumed on, after a resume). */
    this.chatRoute = null;
  }

  get state() {
    return this.call.state;
  }

  /** Sends `m` on the current socket. */
  send(m) {
    return this.signaling.send(m);
  }

  /** Runs async handlers one after another, in message order. */
  serial(fn) {
    this.queue = (this.queue ?? Promise.resolve()).then(fn).catch((err) => console.warn('call:', err));
    return this.queue;
  }

  /** Joins the room and starts media. Rejects with the server's error (code + message). */
  async join() {
    const s = this.state;
    const store = this.call.store;
    s.phase = 'joining';
    store.changed();
    try {
      this.identity = await this.call.options.identityStore.deviceIdentity();
      // The same bundle (device id and keys) on every reconnect: the room replaces the device.
      this.bundle = await createBundle(this.identity);
      await this._open();
      s.phase = 'in-call';
      this._watchNetwork();
      this.sendMediaState();
      store.changed();
    } catch (err) {
      // Leave the room at once: a device whose join failed must not stay in the others' roster.
      console.warn('join failed:', err.code ?? err.name, err.message);
      this._abandon();
      s.phase = 'error';
      s.error = { code: typeof err.code === 'string' ? err.code : (err.name ?? 'client'), message: err.message, text: joinFailureText(err) };
      store.changed();
      throw err;
    }
  }

  /**
   * One session on a fresh socket, for the first join and every reconnect: connect, `join` with
   * this device's bundle, verify the roster and start the keys, then media.
   */
  async _open() {
    const o = this.call.options;
    // The first join's client; a new one for each reconnect.
    if (this.signaling.ws) this.signaling = new SignalingClient(o.signalingUrl);
    const sig = this.signaling;
    await sig.connect();
    this._listen(sig);
    // A room with its lobby on: the page says so (phase `waiting`) until a moderator decides.
    const onWaiting = () => {
      if (this.state.phase === 'joining') this.state.phase = 'waiting';
      this.call.store.changed();
    };
    // A kept peer connection that is no longer connected will not come back: the service is
    // told (`media_lost`) so a resume starts a fresh media session at the next offer.
    const pc = this.call.negotiator.pc;
    const mediaLost = this.suspended && !!pc && pc.connectionState !== 'connected';
    const resume = this.lost ? { call: this.lost.call, slot: this.lost.slot, ...(mediaLost ? { media_lost: true } : {}) } : undefined;
    const joined = await sig.join({ room: o.room, token: o.token, name: o.name, bundle: this.bundle, onWaiting, resume });
    this.call.moderation.onJoined(joined);
    this.call.hands.onJoined(joined);
    if (this.suspended) {
      this.suspended = false;
      if (joined.resumed) {
        this._onResumed(joined, sig, mediaLost);
        // The roster diff and the missed notices run in message order (`serial`): messages
        // after `joined` queue behind them.
        await this.queue;
        this.joined = true;
        return;
      }
      // Not resumed (the grace window ended, the service restarted): a fresh session.
      this._dropSession();
    }
    // Key envelopes that arrive while the roster is still being verified wait for it (they
    // queue behind this): opened before, the sender would be unknown and the key refused.
    const onJoined = this._onJoined(joined, sig);
    this.queue = onJoined.catch(() => {});
    await onJoined;
    this.joined = true;
    if (joined.media) await this.call.negotiator.start();
    else this.call.store.warn('media', 'No media server is attached to this room: keys and the roster work, audio and video do not.');
  }

  /** `joined`: the session's roster, keys, worker and chat; the published tracks. */
  async _onJoined(j, sig) {
    const c = this.call;
    const s = this.state;
    c.hold.newKeys();
    c.negotiator.onJoined(j);
    s.call = j.call;
    s.kind = j.kind;
    s.self = { device: j.device, slot: j.slot, role: j.role, canPublish: !!j.can_publish && !c.options.watchOnly, canSubscribe: !!j.can_subscribe };
    await c.roster.onJoined(j);
    c.keySession.open(j, sig, this.identity);
    c.roster.addSelf(j, this.identity);
    const earlier = this.chat?.state;
    const route = { sig };
    this.chatRoute = route;
    this.chat = new ChatRoom({
      room: c.options.room,
      call: j.call,
      self: { device: j.device, slot: j.slot },
      participant: (d) => s.participants.get(d),
      senderKey: () => c.keySession.keys?.current ?? null,
      send: (m) => route.sig.send(m),
      changed: () => c.store.changed(),
      onReaction: (device, emoji) => {
        c.reactions.add(device, emoji, performance.now());
        c.store.changed();
      },
    });
    // After a rejoin the conversation so far stays on screen (its keys went with the session).
    if (earlier) Object.assign(this.chat.state, { messages: earlier.messages, unread: earlier.unread, open: earlier.open });
    s.chat = this.chat.state;
    for (const d of j.roster?.devices ?? []) await c.roster.addDevice(d);
    for (const ms of j.media_states ?? []) c.roster.onMediaState(ms);
    for (const t of j.tracks ?? []) c.negotiator.remote.announce(t);
    await c.roster.updateSecurityCode();
    await c.keySession.start();
  }

  /**
   * A resumed `joined`: the session's key manager, worker, chat and peer connection go on, now on
   * `sig`. What changed while the socket was down comes as a diff: devices that joined or left
   * (a roster delta, and the rekey or ratchet this device missed), media states and tracks. The
   * peer connection is restarted (same keys, as on `media_reset`) when it was no longer
   * `connected` at the join (`mediaLost`, told to the service), once the call is back in phase
   * `in-call`.
   */
  _onResumed(j, sig, mediaLost) {
    const c = this.call;
    const s = this.state;
    console.warn('signaling resumed: keys and media kept');
    s.connection.resumes += 1;
    c.negotiator.onJoined(j);
    c.keySession.resumeOn(sig);
    if (this.chatRoute) this.chatRoute.sig = sig;
    const present = new Map((j.roster?.devices ?? []).map((d) => [d.device, d]));
    const added = [...present.values()].filter((d) => d.device !== s.self.device && !s.participants.has(d.device));
    const removed = [...s.participants.keys()].filter((id) => id !== s.self.device && !present.has(id));
    if (added.length || removed.length) c.roster.onRoster({ version: j.roster.version, added, removed });
    // The membership notices this device missed while it was away (they went to the lost
    // socket): a rekey for those who left, a ratchet for those who joined, in that order.
    if (removed.length) c.keySession.onMembership({ action: 'rekey', joined: [], left: removed, roster_version: j.roster.version });
    if (added.length) c.keySession.onMembership({ action: 'ratchet', joined: added.map((d) => d.device), left: [], roster_version: j.roster.version });
    for (const ms of j.media_states ?? []) c.roster.onMediaState(ms);
    const tracks = new Set((j.tracks ?? []).map((t) => t.id));
    for (const id of [...c.negotiator.remote.announced.keys()]) if (!tracks.has(id)) c.negotiator.remote.unannounce(id);
    for (const t of j.tracks ?? []) c.negotiator.remote.announce(t);
    c.keySession.schedule();
    this.mediaAfterResume = j.media && mediaLost ? 'restart' : 'keep';
  }

  /** Every server message of `sig`'s session to the part of the call it is for. */
  _listen(sig) {
    const c = this.call;
    const keys = c.keySession;
    const neg = c.negotiator;
    sig.on('roster', (m) => c.roster.onRoster(m));
    sig.on('membership', (m) => keys.onMembership(m));
    sig.on('key_envelope', (m) => keys.onKeyEnvelope(m));
    sig.on('key_ack', (m) => keys.onKeyAck(m));
    sig.on('key_request', (m) => keys.onKeyRequest(m));
    sig.on('speakers', (m) => c.roster.onSpeakers(m));
    sig.on('media_state', (m) => c.roster.onMediaState(m));
    // After the key messages before it: the key a message is sealed under arrives first.
    sig.on('chat', (m) => this.serial(() => this.chat?.receive(m)));
    sig.on('track_published', (m) => neg.onTrackPublished(m.track));
    sig.on('track_unpublished', (m) => neg.onTrackUnpublished(m.track));
    sig.on('slots', (m) => neg.onSlots(m));
    sig.on('offer', (m) => {
      // Glare (docs/protocol.md §6 `offer`): an SFU offer that arrives while this device's own
      // offer waits for its answer crossed it. The SFU withdrew it and offers again once it
      // has answered ours, so it is dropped here (answering it would answer a withdrawn offer).
      // This page offers only to start a media session (a screen share is asked for with
      // `publish`), so this is the first offer of a session after a media reset.
      if (neg.offering) return;
      this.serial(() => neg.onRemoteOffer(m));
    });
    sig.on('recording_ready', (m) => c.hold.onRecordingReady(m));
    sig.on('media_reset', (m) => this.serial(() => neg.restart(m.reason)));
    sig.on('error', (m) => this._onServerError(m));
    sig.on('moderation', (m) => c.moderation.onModeration(m));
    sig.on('hand', (m) => c.hands.onHand(m));
    sig.on('mute_requested', (m) => this._onMuteRequested(m));
    // Only this session's socket can end the call (a lost one's `left` `replaced` is old news).
    sig.on('left', (m) => sig === this.signaling && this.ended(m.reason));
    sig.addEventListener('close', (e) => this._onSocketClosed(sig, e.detail));
  }

  /**
   * A server `error`: the code and the server's words go to the console and the quality panel
   * (the last 20); a banner, in words a user understands, only for a real problem. Refusals
   * that only say someone just left are normal races (`isDepartureRace`): a subscription that
   * named a departed track is sent again without it, a key message to a departed device is
   * simply dropped.
   */
  _onServerError(m) {
    console.warn(`server error ${m.code}: ${m.message}`);
    this.call.store.recordServerError(m);
    if (m.request_id !== undefined) this.call.negotiator.onRequestRefused(m);
    if (isRacedSubscription(m)) this.call.negotiator.resubscribeSoon();
    if (isDepartureRace(m)) {
      this.call.store.changed();
      return;
    }
    this.call.store.warn('server', serverErrorText(m), { code: m.code });
  }

  /**
   * A moderator asked this device to mute: the page mutes its own microphone (the service
   * cannot: it never holds the media keys) and says so with its `media_state`, and tells the
   * user, who may unmute again.
   */
  _onMuteRequested(m) {
    const by = this.state.participants.get(m.by)?.name ?? 'A moderator';
    if (this.state.local.micOn) this.call.setMic(false);
    this.call.store.note('mute-requested', `${by} asked you to mute. Your microphone is off; unmute when you want to speak.`);
  }

  /** Tells the others this device's microphone, camera and screen state. */
  sendMediaState() {
    if (!this.state.self?.canPublish || this.state.phase !== 'in-call') return;
    this.signaling.send(mediaStateMessage(this.state.local));
  }

  /** After a failed join: `leave` if the room has us, then media, timers and the socket closed. */
  _abandon() {
    const c = this.call;
    this._unwatchNetwork();
    c.keySession.stopTimer();
    c.statsReport.stop();
    c.negotiator.stopLocalTracks();
    try {
      if (this.joined) this.signaling.send({ type: 'leave' });
    } catch {
      // The socket is already gone: closing it below (or its loss) removes the device too.
    }
    c.negotiator.close();
    c.keySession.closeWorker();
    this.signaling.close();
  }

  /**
   * The socket closed. After `left` the call has ended already; in a call, a close worth
   * another try (`closeVerdict`) starts reconnecting, any other ends the call with its reason.
   * During a join or a reconnect attempt the attempt itself fails and decides.
   */
  _onSocketClosed(sig, { code, reason }) {
    if (sig !== this.signaling || this.state.phase !== 'in-call') return;
    const verdict = closeVerdict({ code, reason });
    console.warn(`signaling closed (${code}${reason ? ` ${reason}` : ''}): ${verdict.retry ? 'reconnecting' : 'not coming back'}`);
    if (!verdict.retry) {
      this.ended(verdict.why);
      return;
    }
    this.state.phase = 'reconnecting';
    this.state.connection.reconnects += 1;
    this._suspendSession();
    this.backoff.start(performance.now());
    this._runReconnect();
  }

  /**
   * The socket was lost: the session's parts (keys, worker, chat, peer connection) are kept for a
   * resume; only the key timer stops (nothing can be sent meanwhile). Remembers what to resume.
   */
  _suspendSession() {
    this.call.keySession.stopTimer();
    this.joined = false;
    if (this.state.call && this.state.self) this.lost = { call: this.state.call, slot: this.state.self.slot };
    this.suspended = true;
  }

  /**
   * Everything of the session that ended but the tiles, the local tracks and the identity: the
   * peer connection and its worker, the key manager (its keys were for that roster), timers,
   * the remote tracks. A screen share ends, as on `media_reset`.
   */
  _dropSession() {
    const c = this.call;
    this.suspended = false;
    c.keySession.stopTimer();
    c.statsReport.reset();
    this.joined = false;
    c.negotiator.drop();
    c.keySession.drop();
    c.roster.quiet();
    c.negotiator.placeAll();
  }

  /**
   * Reconnect attempts until one joins, one is refused for good (the call ends with the
   * reason), or the backoff gives up (`state.connection.status` `failed`: the view offers
   * `rejoin()`).
   */
  async _runReconnect() {
    const run = {};
    this.reconnectRun = run;
    const conn = this.state.connection;
    const store = this.call.store;
    for (;;) {
      const delay = this.backoff.next(performance.now());
      if (delay === null) {
        console.warn('reconnect: giving up');
        Object.assign(conn, { status: 'failed', retryAt: null });
        store.changed();
        return;
      }
      Object.assign(conn, { status: 'reconnecting', attempt: this.backoff.attempts, retryAt: Date.now() + delay });
      store.changed();
      await this._pause(delay);
      if (this.reconnectRun !== run || this.state.phase !== 'reconnecting') return;
      let failure = null;
      conn.lastAttemptAt = Date.now();
      try {
        await this._open();
        // A socket lost again while the join ran is one more failed attempt.
        if (this.signaling.ws?.readyState !== WebSocket.OPEN) failure = { code: 'closed', message: 'signaling closed during the rejoin' };
      } catch (err) {
        failure = err;
      }
      if (this.reconnectRun !== run || this.state.phase !== 'reconnecting') {
        // Left while the attempt ran: what it opened goes too.
        if (this.state.phase === 'left') {
          this.call.negotiator.close();
          this.call.keySession.closeWorker();
          this.signaling.close();
        }
        return;
      }
      if (!failure) break;
      console.warn('reconnect attempt failed:', failure.code ?? failure.name, failure.message);
      // A session still suspended stays so for the next attempt, and so does one this attempt
      // joined (or resumed) before its socket was lost again; one a fresh join began goes.
      if (!this.suspended && this.joined) this._suspendSession();
      else if (!this.suspended) this._dropSession();
      this.signaling.close();
      const verdict = attemptVerdict(failure);
      if (!verdict.retry) {
        this.ended(verdict.why);
        return;
      }
    }
    this.state.phase = 'in-call';
    Object.assign(conn, { status: 'connected', attempt: 0, retryAt: null });
    const media = this.mediaAfterResume;
    this.mediaAfterResume = null;
    // Resumed with a peer connection that did not survive: a fresh one, with the same keys.
    if (media === 'restart') await this.call.negotiator.restart('signaling_resumed');
    this.sendMediaState();
    this.call.negotiator.subscribe();
    store.changed();
  }

  /** Waits `ms`, or less when the browser comes back `online` (or `rejoin()` is pressed). */
  _pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => wake(), ms);
      const wake = () => {
        clearTimeout(timer);
        if (this.wake === wake) this.wake = null;
        resolve();
      };
      this.wake = wake;
    });
  }

  /** After the retries gave up: try again (the same device, the same token), from a fresh backoff. */
  rejoin() {
    if (this.state.phase !== 'reconnecting' || this.state.connection.status !== 'failed') return;
    this.backoff.start(performance.now());
    this._runReconnect();
  }

  /**
   * The reconnect backoff's limits (`reconnect.js` `BACKOFF`: `{firstMs, maxMs, giveUpMs}`),
   * e.g. a give-up time of seconds for a test; the next loss of the socket uses them.
   */
  setBackoffLimits(limits) {
    this.backoff = new Backoff({ limits });
  }

  /** `online` wakes a waiting reconnect at once; `offline` is shown with the status. */
  _watchNetwork() {
    if (this.network || typeof addEventListener !== 'function') return;
    const online = () => {
      this.state.connection.offline = false;
      this.call.store.changed();
      this.wake?.();
    };
    const offline = () => {
      this.state.connection.offline = true;
      this.call.store.changed();
    };
    addEventListener('online', online);
    addEventListener('offline', offline);
    this.network = { online, offline };
  }

  _unwatchNetwork() {
    if (!this.network) return;
    removeEventListener('online', this.network.online);
    removeEventListener('offline', this.network.offline);
    this.network = null;
  }

  /** Leaves the call (`leave`, then `left`), stops media and closes everything. */
  async leave() {
    this.reconnectRun = null;
    if (this.state.phase === 'in-call') {
      const left = this.signaling.next(['left'], 3000).catch(() => null);
      this.signaling.send({ type: 'leave' });
      await left;
    }
    this.ended('leave');
  }

  /** The call ended with `reason` (a `left` reason, a close not retried, a refused rejoin). */
  ended(reason) {
    const s = this.state;
    if (s.phase === 'left') return;
    s.phase = 'left';
    s.leftReason = reason;
    this.reconnectRun = null;
    this.wake?.();
    this._unwatchNetwork();
    this.call.keySession.stopTimer();
    this.call.statsReport.stop();
    this.call.negotiator.stopLocalTracks();
    this.call.negotiator.close();
    this.call.keySession.closeWorker();
    this.signaling.close();
    this.call.store.changed();
  }
}
