#!/usr/bin/env python3
"""Writes a chat-like data set: a large compressible message log plus incompressible media.

Usage: make_chat_data.py DIR SIZE_MB. About 60% of the bytes are message text (compressible,
like a chat database), 40% are media files (random, like JPEG and Opus files).
"""
import os
import random
import sys

out, size_mb = sys.argv[1], int(sys.argv[2])
total = size_mb * 1000 * 1000
rng = random.Random(42)
words = ("hey are we still on for dinner tonight running late sorry see you at the station "
         "photos from the trip love these call me when free happy birthday ok thanks café "
         "tomorrow meeting moved to 3pm can you send the file lol 😂 👍 good night").split()
os.makedirs(os.path.join(out, "Databases"), exist_ok=True)
os.makedirs(os.path.join(out, "Media", "Images"), exist_ok=True)
os.makedirs(os.path.join(out, "Media", "Voice Notes"), exist_ok=True)

# Pre-build a pool of message lines, then stitch them: fast and still realistic to zstd.
pool = []
for i in range(20000):
    n = rng.randint(2, 18)
    pool.append("%d|%d|%d|%s\n" % (rng.randint(1, 300), 1700000000 + i * 37, rng.randint(0, 1),
                                   " ".join(rng.choice(words) for _ in range(n))))
text_target = total * 6 // 10
with open(os.path.join(out, "Databases", "msgstore.log"), "w", encoding="utf-8") as f:
    written = 0
    while written < text_target:
        block = "".join(rng.choices(pool, k=4096))
        f.write(block)
        written += len(block.encode())

media_target = total - text_target
i = 0
while media_target > 0:
    n = min(media_target, rng.randint(100_000, 4_000_000))
    sub = "Images" if i % 4 else "Voice Notes"
    ext = "jpg" if sub == "Images" else "opus"
    with open(os.path.join(out, "Media", sub, "IMG-%05d.%s" % (i, ext)), "wb") as f:
        f.write(os.urandom(n))
    media_target -= n
    i += 1
