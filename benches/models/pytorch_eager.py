"""PyTorch eager side of benches/models/pytorch_eager.sh: the same two ViT-B/16 training steps
as benches/models/train_step.rs, on the CPU, printed as one JSON line per model.

mae: transformers' ViTMAEForPreTraining configured as MAE ViT-B/16 (8-block 512-wide decoder,
75 % masking, normalised-pixel loss). vit: timm's vit_base_patch16_224 without a head, loss =
mean of the squared forward_features output. Each step is forward, backward and AdamW;
the mean and the fastest step are reported.
"""

import argparse
import json
import time

import torch


def mae_loss_fn():
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

    config = ViTMAEConfig(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        image_size=224,
        patch_size=16,
        num_channels=3,
        qkv_bias=True,
        layer_norm_eps=1e-6,
        hidden_act="gelu",
        decoder_hidden_size=512,
        decoder_num_hidden_layers=8,
        decoder_num_attention_heads=16,
        decoder_intermediate_size=2048,
        mask_ratio=0.75,
        norm_pix_loss=True,
    )
    model = ViTMAEForPreTraining(config).train()
    return model, lambda x: model(pixel_values=x).loss


def vit_loss_fn():
    import timm

    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0).train()
    return model, lambda x: model.forward_features(x).square().mean()


def time_steps(model, loss_of, images, warmup, steps):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(images)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="mae,vit")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="0: torch's choice")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(args.batch, 3, 224, 224)
    builders = {"mae": mae_loss_fn, "vit": vit_loss_fn}
    for name in filter(None, (m.strip() for m in args.models.split(","))):
        if name not in builders:
            raise SystemExit(f"--models: unknown model `{name}` (use mae, vit)")
        model, loss_of = builders[name]()
        times = time_steps(model, loss_of, images, args.warmup, args.steps)
        step_s = sum(times) / len(times)
        print(json.dumps({
            "impl": "pytorch",
            "model": name,
            "batch": args.batch,
            "threads": torch.get_num_threads(),
            "steps": args.steps,
            "step_s": step_s,
            "images_per_s": args.batch / step_s,
            "best_step_s": min(times),
            "best_images_per_s": args.batch / min(times),
            "params": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
        }), flush=True)


if __name__ == "__main__":
    main()
