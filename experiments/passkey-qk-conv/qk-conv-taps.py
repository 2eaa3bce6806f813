"""How far back a qk_conv model's queries and keys look (docs/MODEL.md, "Short convolution of Q and K").

For each block's q_conv and k_conv and each head: the mean |tap j| over the channels (j = 0 the
token itself, 1 the one before, ...), and how many channels weigh an earlier token more than their
own (max |tap j>0| > |tap 0|).

python3 experiments/passkey-qk-conv/qk-conv-taps.py MODEL_DIR/model.safetensors
"""

import json
import struct
import sys


def main(argv):
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[0]
    try:
        with open(path, "rb") as f:
            blob = f.read()
        n = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8:8 + n])
    except (OSError, ValueError, struct.error) as e:
        print("qk-conv-taps: %s: not a safetensors file (%s)" % (path, e), file=sys.stderr)
        return 1
    names = sorted(k for k in header if k.endswith(".q_conv") or k.endswith(".k_conv"))
    if not names:
        print("qk-conv-taps: %s has no q_conv or k_conv tensors (not a qk_conv model)" % path, file=sys.stderr)
        return 1
    for name in names:
        info = header[name]
        if info.get("dtype") != "F32":
            print("qk-conv-taps: %s: %s is %s, not F32" % (path, name, info.get("dtype")), file=sys.stderr)
            return 1
        H, d, W = info["shape"]
        start, end = info["data_offsets"]
        vals = struct.unpack("<%df" % (H * d * W), blob[8 + n + start:8 + n + end])
        heads = []
        for h in range(H):
            taps = [vals[(h * d + c) * W:(h * d + c + 1) * W] for c in range(d)]
            mean = [sum(abs(t[j]) for t in taps) / d for j in range(W)]
            back = sum(max(abs(x) for x in t[1:]) > abs(t[0]) for t in taps)
            heads.append("h%d |tap| %s, %d/%d back" % (h, "/".join("%.2f" % m for m in mean), back, d))
        print("%s: %s" % (name, "; ".join(heads)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
