"""PyTorch's DataLoader with torchvision's MAE pretraining transforms (as MAE's
main_pretrain.py composes them) over the files in DIR/files.txt: batches of 64, the given
number of worker processes, the same epochs as rsfm's loader bench. Prints one JSON line."""

import json
import sys
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

BATCH = 64


class Files(Dataset):
    def __init__(self, paths, transform):
        self.paths = paths
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with open(self.paths[index], "rb") as f:
            image = Image.open(f).convert("RGB")
        return self.transform(image)


def main():
    directory, workers, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(f"{directory}/files.txt") as f:
        paths = [line.strip() for line in f if line.strip()]
    transform = transforms.Compose([
        transforms.RandomResizedCrop(224, scale=(0.2, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    torch.manual_seed(0)
    loader = DataLoader(Files(paths, transform), batch_size=BATCH, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0)
    images = 0
    started = None
    batches = 0
    for _ in range(epochs):
        for batch in loader:
            batches += 1
            if started is None:
                # The first batch includes worker start-up: timing starts after it.
                started = time.perf_counter()
                continue
            images += batch.shape[0]
    seconds = time.perf_counter() - started
    print(json.dumps({"side": "pytorch", "workers": workers, "files": len(paths),
                      "batches": batches, "images_per_s": round(images / seconds, 1)}))


if __name__ == "__main__":
    main()
