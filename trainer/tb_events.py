"""A minimal TensorBoard event-file writer for scalars, in the standard library only.

The workbench must not pull in torch or TensorFlow to export metrics, and TensorBoard's own writer
comes with a large dependency; scalars need very little of the format:

- the file is a sequence of TFRecords: ``uint64 length``, ``uint32 masked crc32c(length)``, the
  data, ``uint32 masked crc32c(data)``, all little-endian;
- each record's data is an ``Event`` protocol buffer: ``wall_time`` (field 1, double), ``step``
  (field 2, int64), ``file_version`` (field 3, string, first event only) and ``summary`` (field 5), a
  ``Summary`` whose repeated ``value`` (field 1) holds ``tag`` (field 1) and ``simple_value``
  (field 2, float).

TensorBoard's ``EventAccumulator`` reads these as scalars (tests read them back with it).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from pathlib import Path

_CRC_TABLE: list[int] = []


def _crc_table() -> list[int]:
    """The byte table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    if not _CRC_TABLE:
        for byte in range(256):
            crc = byte
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    return _CRC_TABLE


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (the checksum TFRecords use)."""
    table = _crc_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked checksum: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields encode negatives as their two's complement
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
    return _varint((field << 3) | wire_type)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, *, file_version: str | None = None, summary: bytes | None = None) -> bytes:
    data = _key(1, 1) + struct.pack("<d", wall_time) + _key(2, 0) + _varint(step)
    if file_version is not None:
        data += _length_delimited(3, file_version.encode())
    if summary is not None:
        data += _length_delimited(5, summary)
    return data


def _scalar_summary(scalars: Iterable[tuple[str, float]]) -> bytes:
    values = b""
    for tag, value in scalars:
        value_message = _length_delimited(1, tag.encode("utf-8")) + _key(2, 5) + struct.pack("<f", float(value))
        values += _length_delimited(1, value_message)
    return values


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


class ScalarWriter:
    """Writes one event file of scalars under a log folder (``add`` then ``close``, or a ``with`` block)."""

    def __init__(self, log_dir: str | Path, *, filename_suffix: str = "") -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}{filename_suffix}"
        self.path = self.log_dir / name
        self._handle = self.path.open("wb")
        self._handle.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))

    def add(self, step: int, scalars: Iterable[tuple[str, float]], wall_time: float | None = None) -> None:
        """Record several tagged values at one step (non-finite values are written as they are)."""
        summary = _scalar_summary(scalars)
        if summary:
            self._handle.write(_record(_event(wall_time or time.time(), int(step), summary=summary)))

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            self._handle.close()

    def __enter__(self) -> ScalarWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
