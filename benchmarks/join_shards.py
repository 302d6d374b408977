"""Rebuild a student folder from the fp16 shards written by gpu_student.py --export.

  python benchmarks/join_shards.py SHARD_DIR TOKENIZER_DIR OUT_DIR
Weights go back to fp32 (their values are those of the fp16 copy); the tokenizer is copied from
TOKENIZER_DIR (the encoder the student was trained from).
"""

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

src, tok, out = (Path(a) for a in sys.argv[1:4])
out.mkdir(parents=True, exist_ok=True)
sd = {}
for shard in sorted(src.glob("shard*.safetensors")):
    sd.update(load_file(str(shard)))
parts: dict[str, dict[int, object]] = {}
for k in [k for k in sd if "::part" in k]:
    base, i = k.split("::part")
    parts.setdefault(base, {})[int(i)] = sd.pop(k)
for base, ps in parts.items():
    sd[base] = torch.cat([ps[i] for i in sorted(ps)], dim=0)
fp32 = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
save_file({k: v for k, v in fp32.items() if not k.startswith("relation_head.")}, str(out / "model.safetensors"))
save_file({k.removeprefix("relation_head."): v for k, v in fp32.items() if k.startswith("relation_head.")},
          str(out / "relation_head.safetensors"))
for name, cfg in json.loads((src / "configs.json").read_text()).items():
    (out / name).write_text(json.dumps(cfg, indent=2) + "\n")
for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
    if (tok / f).exists():
        shutil.copy(tok / f, out / f)
print(f"{len(sd)} tensors -> {out}")
