#!/usr/bin/env python3
"""Plants a NaN in one model tensor of a hyperadapt training checkpoint and re-seals its checksum, so the
file validates and only a check of the values can tell: the case a resume must pass over. Mirrors
detail::checksum64 / checkpoint_digest of include/hyperadapt/train/checkpoint.hpp (standard library only).

  poison_checkpoint.py FILE.safetensors   (prints the poisoned tensor's name)
"""
import json
import struct
import sys

M64 = (1 << 64) - 1
P1, P2 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F


def rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & M64


def mix64(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Checksum:
    def __init__(self):
        self.h, self.length = 0x27D4EB2F165667C5, 0

    def mix(self, w):
        self.h = (rotl(self.h ^ ((w * P2) & M64), 31) * P1) & M64

    def update(self, data):
        i = 0
        while i + 8 <= len(data):
            self.mix(struct.unpack_from("<Q", data, i)[0])
            i += 8
        rest = len(data) - i
        if rest:
            self.mix(int.from_bytes(data[i:], "little") ^ (rest << 56))
        self.length += len(data)

    def digest(self):
        return mix64(self.h ^ (self.length & M64))


def main(path):
    blob = bytearray(open(path, "rb").read())
    n = struct.unpack_from("<Q", blob, 0)[0]
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__")
    base = 8 + n
    target = sorted(k for k in header if k.startswith("model/"))[0]
    begin = base + header[target]["data_offsets"][0]
    struct.pack_into("<f", blob, begin, float("nan"))
    c = Checksum()
    c.update(meta["state"].encode())
    for name in sorted(header):
        e = header[name]
        c.update(name.encode())
        c.update(e["dtype"].encode())
        for d in e["shape"]:
            c.update(struct.pack("<Q", d))
        c.update(bytes(blob[base + e["data_offsets"][0]:base + e["data_offsets"][1]]))
    meta["checksum"] = "%016x" % c.digest()
    header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + bytes(blob[base:]))
    print(target[len("model/"):])


if __name__ == "__main__":
    main(sys.argv[1])
