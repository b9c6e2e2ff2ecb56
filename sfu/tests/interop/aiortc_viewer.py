"""A viewer on a second, independent WebRTC stack (aiortc) for the SFU's interop test.

Driven by the Rust test `aiortc_viewer` (sfu/tests/it/aiortc_viewer.rs) over stdin/stdout, one
JSON object per line:

  encode --frames N --out FILE
      Encodes N frames of a moving 160x120 test pattern with libvpx (PyAV, the encoder aiortc
      itself uses), one keyframe first and none after, and writes them to FILE as
      length-prefixed frames (u32 big-endian length, then the VP8 frame).

  view --frames N --loss P --seed S --timeout T
      -> {"offer": sdp}        a recvonly offer: one audio and one video section, as aiortc
                               1.16 viewers send
      <- {"answer": sdp}       the SFU's answer
      <- {"offer": sdp}        SFU renegotiations (a subscription), any number
      -> {"answer": sdp}
      -> {"track": "video"}    once a remote video track arrived
      -> {"connected": true}   once ICE and DTLS are up
      -> {"result": {...}}     once N frames were decoded or T seconds passed

Network rule: ICE gathers on 127.0.0.1 only, the ICE server list is explicitly empty, no mDNS
(aiortc never publishes .local names, and the SFU's candidate is an address).

Loss: a fraction P of the primary video RTP packets arriving at the viewer are dropped before
aiortc sees them, chosen by a random generator seeded with S (deterministic for one packet
order). Retransmissions (RTX), audio and RTCP always pass. The packets of the first frame are
never dropped: a receiver NACKs only what it knows it missed, so a stream whose very first
packet is lost starts with a frame nobody can repair (a real client then asks for a keyframe,
which the test's publisher does not send).
"""

import argparse
import asyncio
import json
import random
import struct
import sys
import time
import traceback
from fractions import Fraction

import aioice.ice

# Loopback only: aioice gathers host candidates on every interface (and skips 127.0.0.1).
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

import av  # noqa: E402
from aiortc import (  # noqa: E402
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.rtcdtlstransport import RTCDtlsTransport  # noqa: E402
from aiortc.rtcrtpreceiver import RTCRtpReceiver  # noqa: E402

WIDTH, HEIGHT = 160, 120


def encode(frames: int, out: str) -> None:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = WIDTH
    codec.height = HEIGHT
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = 400_000
    codec.framerate = Fraction(30, 1)
    codec.time_base = Fraction(1, 30)
    codec.gop_size = 1_000_000
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "auto-alt-ref": "0",
        "kf-max-dist": "1000000",
    }
    written = 0
    with open(out, "wb") as f:

        def write(packets):
            nonlocal written
            for packet in packets:
                data = bytes(packet)
                f.write(struct.pack(">I", len(data)))
                f.write(data)
                written += 1

        # A pattern taller than the picture, scrolled one row per frame: every frame differs
        # and the pixels are made once (slicing bytes is cheap).
        scroll = 256
        pattern = bytes(
            ((x * 3) ^ (y * 5)) & 0xFF for y in range(HEIGHT + scroll) for x in range(WIDTH)
        )
        for i in range(frames):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            top = (i % scroll) * WIDTH
            frame.planes[0].update(pattern[top : top + WIDTH * HEIGHT])
            frame.planes[1].update(bytes([(128 + i) & 0xFF]) * (WIDTH * HEIGHT // 4))
            frame.planes[2].update(bytes([(128 - i) & 0xFF]) * (WIDTH * HEIGHT // 4))
            frame.pts = i
            frame.time_base = codec.time_base
            write(codec.encode(frame))
        write(codec.encode(None))
    if written != frames:
        raise SystemExit(f"encoder wrote {written} frames for {frames}")


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def read_line() -> dict:
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if not line:
        raise EOFError("the test closed stdin")
    return json.loads(line)


class LossyReceivePath:
    """Drops a seeded fraction of primary video RTP packets; counts what passes."""

    def __init__(self, loss: float, seed: int) -> None:
        self.loss = loss
        self.rng = random.Random(seed)
        self.video_pts: set[int] = set()
        self.rtx_pts: set[int] = set()
        self.first_frame_done = False
        self.video_packets = 0
        self.dropped = 0
        self.rtx_received = 0
        self.nacks_sent = 0
        self.nacked_packets = 0

    def install(self) -> None:
        original = RTCDtlsTransport._handle_rtp_data
        path = self

        async def handle_rtp_data(transport, data: bytes, arrival_time_ms: int) -> None:
            if len(data) >= 12:
                pt = data[1] & 0x7F
                if pt in path.video_pts:
                    path.video_packets += 1
                    if path.first_frame_done and path.rng.random() < path.loss:
                        path.dropped += 1
                        return
                    if data[1] & 0x80:
                        path.first_frame_done = True
                elif pt in path.rtx_pts:
                    path.rtx_received += 1
            await original(transport, data, arrival_time_ms)

        RTCDtlsTransport._handle_rtp_data = handle_rtp_data

        original_nack = RTCRtpReceiver._send_rtcp_nack

        async def send_rtcp_nack(receiver, media_ssrc: int, lost: list) -> None:
            path.nacks_sent += 1
            path.nacked_packets += len(lost)
            await original_nack(receiver, media_ssrc, lost)

        RTCRtpReceiver._send_rtcp_nack = send_rtcp_nack

    def learn_payload_types(self, pc: RTCPeerConnection) -> None:
        for t in pc.getTransceivers():
            if t.kind != "video":
                continue
            for codec in t._codecs:
                name = codec.mimeType.lower()
                if name == "video/rtx":
                    self.rtx_pts.add(codec.payloadType)
                else:
                    self.video_pts.add(codec.payloadType)


async def view(frames: int, loss: float, seed: int, timeout: float) -> None:
    path = LossyReceivePath(loss, seed)
    path.install()
    # aiortc's default bundle policy (balanced), as its users run it. With max-bundle aiortc
    # 1.16 reads the remote candidates of a bundle from its last media section only, and an
    # answer that lists them once, in the first section (RFC 8843 allows it), never connects.
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    decoded: set[int] = set()
    extra_frames = 0
    decode_started = time.monotonic()
    done = asyncio.Event()
    video_tracks = []

    async def consume(track) -> None:
        nonlocal extra_frames
        base = None
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if base is None:
                base = frame.pts
            index = round((frame.pts - base) / 3000)
            if 0 <= index < frames:
                decoded.add(index)
            else:
                extra_frames += 1
            if len(decoded) >= frames:
                done.set()

    @pc.on("track")
    def on_track(track) -> None:
        if track.kind == "video":
            video_tracks.append(track)
            emit({"track": "video"})
            asyncio.ensure_future(consume(track))

    async def report_connected() -> None:
        # The DTLS transport's state: aiortc 1.16's connectionState can stay "connecting"
        # while a transport the bundle made redundant is still counted.
        while not any(
            t.receiver.transport.state == "connected" for t in pc.getTransceivers()
        ):
            await asyncio.sleep(0.02)
        emit({"connected": True})

    asyncio.ensure_future(report_connected())

    await pc.setLocalDescription(await pc.createOffer())
    emit({"offer": pc.localDescription.sdp})

    async def negotiate() -> None:
        while True:
            try:
                msg = await read_line()
            except EOFError:
                done.set()
                return
            if "answer" in msg:
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=msg["answer"], type="answer")
                )
            elif "offer" in msg:
                await pc.setRemoteDescription(
                    RTCSessionDescription(sdp=msg["offer"], type="offer")
                )
                await pc.setLocalDescription(await pc.createAnswer())
                emit({"answer": pc.localDescription.sdp})
            path.learn_payload_types(pc)

    async def negotiate_or_report() -> None:
        try:
            await negotiate()
        except Exception:
            traceback.print_exc()
            done.set()

    negotiation = asyncio.ensure_future(negotiate_or_report())
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except asyncio.TimeoutError:
        pass
    video_sections = sum(1 for t in pc.getTransceivers() if t.kind == "video")
    emit(
        {
            "result": {
                "frames_complete": len(decoded),
                "frames_expected": frames,
                "first_missing": next((i for i in range(frames) if i not in decoded), None),
                "frames_outside_range": extra_frames,
                "video_packets": path.video_packets,
                "video_packets_dropped": path.dropped,
                "nacks_sent": path.nacks_sent,
                "nacked_packets": path.nacked_packets,
                "rtx_received": path.rtx_received,
                "video_sections": video_sections,
                "video_tracks": len(video_tracks),
                "seconds": round(time.monotonic() - decode_started, 2),
            }
        }
    )
    negotiation.cancel()
    await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--frames", type=int, required=True)
    e.add_argument("--out", required=True)
    v = sub.add_parser("view")
    v.add_argument("--frames", type=int, required=True)
    v.add_argument("--loss", type=float, required=True)
    v.add_argument("--seed", type=int, required=True)
    v.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args()
    if args.mode == "encode":
        encode(args.frames, args.out)
    else:
        asyncio.run(view(args.frames, args.loss, args.seed, args.timeout))


if __name__ == "__main__":
    main()
