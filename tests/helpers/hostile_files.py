"""Hostile files the tests make: zips that declare more than they hold."""

from __future__ import annotations

import struct
import zipfile


def keras_zip(path, members=None, compression=zipfile.ZIP_STORED):
    """A zip laid out as Keras writes a .keras (small, unreadable as a model)."""
    members = members or {"metadata.json": b'{"keras_version": "3.15.1"}',
                          "config.json": b'{"class_name": "Functional"}',
                          "model.weights.h5": b"\0" * 1024}
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def declare(path, member, size):
    """Patches the zip at ``path`` so that ``member`` declares ``size`` bytes unpacked
    (local header and central directory), the file staying a few KiB."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46:at + 46 + name_len] == member.encode():
            struct.pack_into("<I", data, at + 24, size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo(member).file_size == size
    return path
