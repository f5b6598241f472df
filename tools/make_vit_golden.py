#!/usr/bin/env python3
"""Writes the golden files that pin rsfm's ViT and MAE to timm and transformers.

Run by hand (CPU is enough), from the repository root:

    python3 -m venv .venv-golden
    .venv-golden/bin/pip install --find-links ~/.cache/rsfm/wheels torch==2.11.0 torchvision timm transformers safetensors
    .venv-golden/bin/python tools/make_vit_golden.py --out model/tests/golden

Outputs (each a small safetensors file, weights plus `golden.*` tensors):
- vit_plain.safetensors: timm VisionTransformer (2 blocks), input and `forward_features` output.
- vit_parallel.safetensors: the same with timm's ParallelThingsBlock (2 stages x 2 branches).
- mae.safetensors: transformers' ViTMAEForPreTraining, renamed to MAE/timm parameter names,
  with input, masking noise, loss, mask and predictions.
The tests in model/tests/torch_golden.rs load them and compare rsfm's outputs.
"""
import argparse
import json
import pathlib

import torch
from safetensors.torch import save_file

IMG, PATCH, DIM, HEADS = 16, 4, 32, 2


def timm_vit(parallel: bool):
    import timm.models.vision_transformer as tv

    kwargs = dict(img_size=IMG, patch_size=PATCH, embed_dim=DIM, depth=2, num_heads=HEADS,
                  mlp_ratio=4.0, qkv_bias=True, num_classes=0, global_pool="token")
    if parallel:
        kwargs["block_fn"] = tv.ParallelThingsBlock
    return tv.VisionTransformer(**kwargs).eval()


def perturb(model, generator):
    # Non-trivial values everywhere (timm zero-initialises biases and ones norms).
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)


def vit_golden(parallel: bool, out: pathlib.Path, seed: int):
    g = torch.Generator().manual_seed(seed)
    model = timm_vit(parallel)
    perturb(model, g)
    x = torch.randn(2, 3, IMG, IMG, generator=g)
    with torch.no_grad():
        y = model.forward_features(x)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["golden.input"] = x
    tensors["golden.output"] = y.contiguous()
    meta = {"depth": "2", "parallel": "2" if parallel else "1", "timm_config": json.dumps({"img": IMG, "patch": PATCH, "dim": DIM, "heads": HEADS})}
    save_file(tensors, str(out), metadata=meta)


HF_TO_MAE = [
    ("vit.embeddings.cls_token", "cls_token"),
    ("vit.embeddings.position_embeddings", "pos_embed"),
    ("vit.embeddings.patch_embeddings.projection", "patch_embed.proj"),
    ("vit.layernorm", "norm"),
    ("decoder.decoder_embed", "decoder_embed"),
    ("decoder.mask_token", "mask_token"),
    ("decoder.decoder_pos_embed", "decoder_pos_embed"),
    ("decoder.decoder_norm", "decoder_norm"),
    ("decoder.decoder_pred", "decoder_pred"),
]
LAYER_PARTS = [
    ("attention.o_proj", "attn.proj"),
    ("layernorm_before", "norm1"),
    ("layernorm_after", "norm2"),
    ("mlp.fc1", "mlp.fc1"),
    ("mlp.fc2", "mlp.fc2"),
]
ENCODER_LAYERS, DECODER_LAYERS = "vit.layers.", "decoder.decoder_layers."


def hf_to_mae(state):
    out = {}
    for name, t in state.items():
        if any(f".attention.{p}." in name for p in ("q_proj", "k_proj", "v_proj")):
            continue  # fused into qkv below
        new = None
        for src, dst in HF_TO_MAE:
            if name == src or name.startswith(src + "."):
                new = dst + name[len(src):]
        for prefix, target in ((ENCODER_LAYERS, "blocks."), (DECODER_LAYERS, "decoder_blocks.")):
            if name.startswith(prefix):
                idx, rest = name[len(prefix):].split(".", 1)
                for src, dst in LAYER_PARTS:
                    if rest.startswith(src + "."):
                        new = f"{target}{idx}.{dst}{rest[len(src):]}"
        if new is None:
            raise SystemExit(f"unmapped parameter {name}")
        out[new] = t
    for prefix, target in ((ENCODER_LAYERS, "blocks."), (DECODER_LAYERS, "decoder_blocks.")):
        indices = sorted({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)})
        for i in indices:
            for kind in ("weight", "bias"):
                parts = [state[f"{prefix}{i}.attention.{p}.{kind}"] for p in ("q_proj", "k_proj", "v_proj")]
                out[f"{target}{i}.attn.qkv.{kind}"] = torch.cat(parts, 0)
    return out


def mae_reference_sincos(dim, grid):
    """MAE's get_2d_sincos_pos_embed(dim, grid, cls_token=True): meshgrid(w, h), the first
    half of each row encodes grid[0] (the column), the second half the row."""
    import numpy as np

    gh = np.arange(grid, dtype=np.float32)
    gw = np.arange(grid, dtype=np.float32)
    mesh = np.stack(np.meshgrid(gw, gh), axis=0).reshape(2, 1, grid, grid)

    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    table = np.concatenate([one_d(dim // 2, mesh[0]), one_d(dim // 2, mesh[1])], axis=1)
    table = np.concatenate([np.zeros([1, dim]), table], axis=0)
    return torch.from_numpy(table).float().unsqueeze(0)


def mae_golden(out: pathlib.Path, seed: int):
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    cfg = ViTMAEConfig(hidden_size=DIM, num_hidden_layers=2, num_attention_heads=HEADS, intermediate_size=4 * DIM,
                       image_size=IMG, patch_size=PATCH, num_channels=3, qkv_bias=True, layer_norm_eps=1e-6,
                       hidden_act="gelu", decoder_hidden_size=16, decoder_num_hidden_layers=1,
                       decoder_num_attention_heads=2, decoder_intermediate_size=64, mask_ratio=0.75,
                       norm_pix_loss=True, attn_implementation="eager")
    g = torch.Generator().manual_seed(seed)
    model = ViTMAEForPreTraining(cfg).eval()
    # transformers leaves the tables zero until weights load, and its builder puts the row
    # index first; MAE's reference (util/pos_embed.py) puts the column first. Use MAE's.
    grid = IMG // PATCH
    with torch.no_grad():
        model.vit.embeddings.position_embeddings.copy_(mae_reference_sincos(DIM, grid))
        model.decoder.decoder_pos_embed.copy_(mae_reference_sincos(16, grid))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "position" not in name and "pos_embed" not in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    x = torch.randn(2, 3, IMG, IMG, generator=g)
    noise = torch.rand(2, (IMG // PATCH) ** 2, generator=g)
    with torch.no_grad():
        result = model(pixel_values=x, noise=noise)
    tensors = {k: v.contiguous() for k, v in hf_to_mae(model.state_dict()).items()}
    tensors["golden.input"] = x
    tensors["golden.noise"] = noise
    tensors["golden.loss"] = result.loss.reshape(1)
    tensors["golden.mask"] = result.mask.contiguous()
    tensors["golden.pred"] = result.logits.contiguous()
    save_file(tensors, str(out), metadata={"decoder_embed_dim": "16", "decoder_depth": "1", "decoder_num_heads": "2"})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="model/tests/golden", type=pathlib.Path)
    ap.add_argument("--seed", default=0, type=int)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    vit_golden(False, args.out / "vit_plain.safetensors", args.seed)
    vit_golden(True, args.out / "vit_parallel.safetensors", args.seed + 1)
    mae_golden(args.out / "mae.safetensors", args.seed + 2)
    for f in sorted(args.out.glob("*.safetensors")):
        print(f"{f}: {f.stat().st_size} bytes")


if __name__ == "__main__":
    main()
