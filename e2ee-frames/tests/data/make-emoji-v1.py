# Makes emoji-v1.json beside it: the emoji-sequence vectors of docs/e2ee.md §4.1, with Python's
# hashlib and hmac only (independent of the Rust crate and the browser module).
#   python3 e2ee-frames/tests/data/make-emoji-v1.py > e2ee-frames/tests/data/emoji-v1.json
import hashlib, hmac, json, sys

TABLE = [("🐶","Dog"),("🐱","Cat"),("🦁","Lion"),("🐎","Horse"),("🦄","Unicorn"),("🐷","Pig"),("🐘","Elephant"),("🐰","Rabbit"),("🐼","Panda"),("🐓","Rooster"),("🐧","Penguin"),("🐢","Turtle"),("🐟","Fish"),("🐙","Octopus"),("🦋","Butterfly"),("🌷","Flower"),("🌳","Tree"),("🌵","Cactus"),("🍄","Mushroom"),("🌏","Globe"),("🌙","Moon"),("☁️","Cloud"),("🔥","Fire"),("🍌","Banana"),("🍎","Apple"),("🍓","Strawberry"),("🌽","Corn"),("🍕","Pizza"),("🎂","Cake"),("❤️","Heart"),("😀","Smiley"),("🤖","Robot"),("🎩","Hat"),("👓","Glasses"),("🔧","Spanner"),("🎅","Santa"),("👍","Thumbs Up"),("☂️","Umbrella"),("⌛","Hourglass"),("⏰","Clock"),("🎁","Gift"),("💡","Light Bulb"),("📕","Book"),("✏️","Pencil"),("📎","Paperclip"),("✂️","Scissors"),("🔒","Lock"),("🔑","Key"),("🔨","Hammer"),("☎️","Telephone"),("🏁","Flag"),("🚂","Train"),("🚲","Bicycle"),("✈️","Aeroplane"),("🚀","Rocket"),("🏆","Trophy"),("⚽","Ball"),("🎸","Guitar"),("🎺","Trumpet"),("🔔","Bell"),("⚓","Anchor"),("🎧","Headphones"),("📁","Folder"),("📌","Pin")]
assert len(TABLE) == 64

def half(device, ik):
    h = hashlib.sha512(b"\x00\x00" + ik + device.encode()).digest()
    for _ in range(5200):
        h = hashlib.sha512(h + ik).digest()
    return "".join("%05d" % (int.from_bytes(h[5*i:5*i+5], "big") % 100000) for i in range(6))

def hkdf(ikm, info, length):
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t; i += 1
    return out[:length]

def indices(h):
    v = int.from_bytes(hkdf(h.encode(), b"e2ee-sfu/emoji/v1", 6), "big")
    return [(v >> (6 * (7 - i))) & 0x3f for i in range(8)]

cases = []
for (da, ka), (db, kb) in [
    (("dev-A", bytes(range(32))), ("dev-B", bytes(range(32, 64)))),
    (("dev-alice-laptop", bytes([0xff] * 32)), ("dev-bob", bytes([0] * 32))),
    (("d", bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")), ("Zq_9-x2Lm0cYvA3sTkB1wQ", bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))),
]:
    ha, hb = half(da, ka), half(db, kb)
    first, second = sorted([ha, hb])
    idx = indices(first) + indices(second)
    cases.append({
        "a": {"device": da, "identity_key": ka.hex()},
        "b": {"device": db, "identity_key": kb.hex()},
        "safety_number": first + second,
        "indices": idx,
        "emoji": " ".join(TABLE[i][0] for i in idx),
        "words": " ".join(TABLE[i][1] for i in idx),
    })

json.dump({
    "description": "docs/e2ee.md §4.1 emoji sequences, computed with Python's hashlib and hmac (SHA-512 halves as §4, HKDF-SHA256 per half), independently of the Rust crate and the browser module; keys are lowercase hex; emoji and words are joined by single spaces; the table is the Matrix specification's SAS emoji list (Apache-2.0)",
    "table": [{"emoji": e, "word": w} for e, w in TABLE],
    "cases": cases,
}, sys.stdout, ensure_ascii=False, indent=2)
print()
