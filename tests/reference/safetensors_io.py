"""Minimal reader/writer for the safetensors file format, written from the format description.

Layout of a file:
    8 bytes        little-endian unsigned 64-bit integer n = length of the header in bytes
    n bytes        UTF-8 JSON object (padded with trailing spaces so that 8 + n is a multiple of 8):
                       { "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
                         ...,
                         "__metadata__": {"<str>": "<str>", ...}   # optional }
                   data_offsets are byte offsets relative to the start of the byte buffer below,
                   begin inclusive, end exclusive.
    rest           byte buffer: every tensor contiguous, row-major, little-endian.

Only plain torch is used (no numpy, no safetensors package).
"""

import json
import struct
import sys

import torch

# safetensors dtype string <-> torch dtype (the subset this project uses).
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "U8": torch.uint8,
}
_DTYPE_NAMES = {v: k for k, v in _DTYPES.items()}
_ITEMSIZE = {"F64": 8, "F32": 4, "BF16": 2, "I64": 8, "I32": 4, "U8": 1}

_METADATA_KEY = "__metadata__"


def _require_little_endian():
    if sys.byteorder != "little":
        raise RuntimeError("safetensors_io assumes a little-endian host")


def _tensor_bytes(t):
    """Raw little-endian bytes of a tensor, row-major (works for 0-d and empty tensors)."""
    t = t.detach().to("cpu").contiguous().reshape(-1)  # (numel,)
    n = t.numel() * t.element_size()
    if n == 0:
        return b""
    buf = bytearray(n)
    dst = torch.frombuffer(buf, dtype=torch.uint8)  # shares memory with buf
    dst.copy_(t.view(torch.uint8))
    return bytes(buf)


def save_file(tensors, path, metadata=None):
    """Write a dict name -> torch.Tensor to `path`. Tensors are written in sorted name order.

    metadata: optional dict str -> str stored under "__metadata__".
    """
    _require_little_endian()
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        if name == _METADATA_KEY:
            raise ValueError("tensor name %r is reserved" % name)
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError("%s: expected a torch.Tensor, got %s" % (name, type(t).__name__))
        if t.dtype not in _DTYPE_NAMES:
            raise TypeError("%s: unsupported dtype %s" % (name, t.dtype))
        data = _tensor_bytes(t)
        header[name] = {
            "dtype": _DTYPE_NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    if metadata is not None:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("metadata must map str to str (got %r: %r)" % (k, v))
        header[_METADATA_KEY] = dict(metadata)
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (-(8 + len(hbytes))) % 8
    hbytes += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for data in chunks:
            f.write(data)


def load_file(path):
    """Read a safetensors file. Returns (tensors: dict name -> torch.Tensor, metadata: dict or None)."""
    _require_little_endian()
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: file too short" % path)
    (hlen,) = struct.unpack("<Q", raw[:8])
    if 8 + hlen > len(raw):
        raise ValueError("%s: header length %d exceeds file size" % (path, hlen))
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("%s: header is not a JSON object" % path)
    buf = raw[8 + hlen:]
    metadata = header.pop(_METADATA_KEY, None)
    tensors = {}
    for name, info in header.items():
        dname = info["dtype"]
        if dname not in _DTYPES:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, dname))
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        numel = 1
        for s in shape:
            numel *= s
        if not (0 <= begin <= end <= len(buf)) or end - begin != numel * _ITEMSIZE[dname]:
            raise ValueError("%s: tensor %s has bad data_offsets %r" % (path, name, info["data_offsets"]))
        if numel == 0:
            t = torch.empty(shape, dtype=_DTYPES[dname])
        else:
            # copy into a fresh bytearray so the tensor owns writable memory
            t = torch.frombuffer(bytearray(buf[begin:end]), dtype=_DTYPES[dname]).reshape(shape)
        tensors[name] = t
    return tensors, metadata
