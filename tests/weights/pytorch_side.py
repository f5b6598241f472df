"""The PyTorch side of the weights tests (tests/e2e/weights.rs).

write DIR                       a tiny timm ViT (vit-tiny's shape) saved by torch.save in MAE's,
                                timm's and MMEngine's layouts, plus files rsfm must refuse
equal A B                       every tensor of safetensors file A equals B's, bit for bit
grid FILE REF H W               FILE's pos_embed is REF's resampled bicubically to H x W
export CHECKPOINT TIMM MMENGINE rsfm's exports hold CHECKPOINT's backbone and load in timm
"""
import sys

import safetensors.torch
import timm
import torch
import torch.nn.functional as F


def tiny_vit():
    # rsfm's vit-tiny preset: patch 8, 32 px, width 64, 2 blocks, 2 heads, MLP ratio 4.
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, embed_dim=64,
        depth=2, num_heads=2, mlp_ratio=4.0, num_classes=0)


class Namespace:
    """A custom class, as MAE's training checkpoints keep their `args`."""


def write(out):
    torch.manual_seed(0)
    model = tiny_vit()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()  # distinct values everywhere, so a swapped tensor shows
    sd = model.state_dict()
    safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, f"{out}/reference.safetensors")
    mae = {"module." + k: v for k, v in sd.items()}
    mae["module.mask_token"] = torch.zeros(1, 1, 32)
    mae["module.decoder_embed.weight"] = torch.randn(32, 64)
    mae["module.decoder_pos_embed"] = torch.randn(1, 17, 32)
    mae["module.decoder_pred.weight"] = torch.randn(192, 32)
    torch.save({"model": mae}, f"{out}/mae.pth")
    torch.save(sd, f"{out}/timm.pth")
    mm = {"backbone." + k: v for k, v in sd.items()}
    mm["neck.lateral.weight"] = torch.randn(8, 64)
    mm["decode_head.conv_seg.weight"] = torch.randn(6, 8, 1, 1)
    meta = {"mmengine_version": "0.10.4", "epoch": 12, "iter": 960,
            "dataset_meta": {"classes": ("impervious", "building")}}
    torch.save({"state_dict": mm, "meta": meta}, f"{out}/mmengine.pth")
    torch.save({"model": sd, "args": Namespace()}, f"{out}/custom.pth")
    bad = dict(sd)
    bad["blocks.0.attn.scale"] = 0.125
    torch.save({"model": bad}, f"{out}/nontensor.pth")
    print(f"wrote {len(sd)} tensors in 5 files to {out}")


def equal(a, b):
    x, y = safetensors.torch.load_file(a), safetensors.torch.load_file(b)
    assert sorted(x) == sorted(y), (sorted(set(x) ^ set(y)))
    for k in x:
        assert x[k].dtype == y[k].dtype and torch.equal(x[k], y[k]), k
    print(f"{len(x)} tensors equal")


def grid(file, ref, h, w):
    got = safetensors.torch.load_file(file)["pos_embed"]
    pos = safetensors.torch.load_file(ref)["pos_embed"]
    cls, patches = pos[:, :1], pos[:, 1:]
    side = int(patches.shape[1] ** 0.5)
    grid = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    # MAE's util/pos_embed.py interpolate_pos_embed: bicubic, align_corners=False.
    mae = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
    mae = torch.cat([cls, mae.permute(0, 2, 3, 1).reshape(1, h * w, -1)], dim=1)
    # timm's resample_abs_pos_embed (bicubic, antialias=True by default).
    timm_table = timm.layers.resample_abs_pos_embed(pos, new_size=[h, w], num_prefix_tokens=1)
    diff = (got - mae).abs().max().item()
    print(f"pos_embed {tuple(got.shape)}: max |rsfm - MAE| = {diff:.3g}, "
          f"max |rsfm - timm| = {(got - timm_table).abs().max().item():.3g}")
    assert diff < 1e-5, diff


def export(checkpoint, timm_file, mm_file):
    rsfm = safetensors.torch.load_file(checkpoint)
    backbone = {k[len("backbone."):]: v for k, v in rsfm.items()
                if k.startswith("backbone.") and not k.startswith("backbone.neck.")}
    model = tiny_vit()
    names = set(model.state_dict())
    want = {k: v for k, v in backbone.items() if k in names}
    exported = safetensors.torch.load_file(timm_file)
    assert sorted(exported) == sorted(names), sorted(set(exported) ^ names)
    for k, v in want.items():
        assert torch.equal(exported[k], v), k
    mm = torch.load(mm_file, weights_only=True)
    assert sorted(mm) == ["meta", "state_dict"], sorted(mm)
    assert sorted(mm["state_dict"]) == sorted("backbone." + k for k in names)
    for k in names:
        assert torch.equal(mm["state_dict"]["backbone." + k], exported[k]), k
    model.load_state_dict(exported, strict=True)
    model.eval()
    reference = tiny_vit()
    reference.load_state_dict({k: mm["state_dict"]["backbone." + k] for k in names}, strict=True)
    reference.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model.forward_features(x), reference.forward_features(x)
    diff = (a - b).abs().max().item()
    print(f"timm loads both exports strictly ({len(names)} tensors); features differ by {diff:.3g}; "
          f"meta {dict(mm['meta'])}")
    assert diff <= 1e-5, diff


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "write":
        write(*args)
    elif command == "equal":
        equal(*args)
    elif command == "grid":
        grid(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "export":
        export(*args)
    else:
        sys.exit(f"unknown command {command}")
