"""Rebuild a student folder from fp16 shards written by gpu_student.py --export.

  python benchmarks/join_shards.py SHARD_DIR TOKENIZER_DIR OUT_DIR
Weights go back to fp32 (values stay those of the fp16 copy); the tokenizer is copied from
TOKENIZER_DIR (the same encoder the student was trained from).
"""

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
save_file({k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in sd.items()},
          str(out / "model.safetensors"))
for f in ("config.json", "ade_student.json", "relation_head.safetensors"):
    shutil.copy(src / f, out / f)
for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
    if (tok / f).exists():
        shutil.copy(tok / f, out / f)
print(f"{len(sd)} tensors -> {out}")
