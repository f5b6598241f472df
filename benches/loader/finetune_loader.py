"""PyTorch's DataLoader with torchvision doing what rsfm's fine-tuning loaders do, over the
files that `loader_finetune` lists in DIR/dota/files.txt and DIR/loveda/files.txt: read and
decode the PNG (and the label PNG), take a random CROP-pixel window (padded when the image
is smaller), detection: random horizontal/vertical flips and a random quarter turn;
segmentation: a random horizontal flip of image and labels (LoveDA's 0 mapped to the ignore
index, the others shifted down by one); ToTensor and the ImageNet Normalize. Batches of 8,
the given number of worker processes. The detection side draws the window and the turns but
does not move the objects' boxes (rsfm does; a few dozen polygons per image). Prints one
JSON line per task."""

import json
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import functional as F

BATCH = 8
IGNORE_INDEX = 255
NORMALIZE = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def window(image, crop):
    """A random crop x crop window of a PIL image, padded with 0 right and below."""
    width, height = image.size
    x = random.randint(0, max(width - crop, 0))
    y = random.randint(0, max(height - crop, 0))
    return (x, y, x + crop, y + crop)


class Detection(Dataset):
    def __init__(self, paths, crop):
        self.paths, self.crop = paths, crop

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        image = Image.open(self.paths[index]).convert("RGB")
        image = image.crop(window(image, self.crop))
        tensor = F.to_tensor(image)
        if random.random() < 0.5:
            tensor = tensor.flip(2)
        if random.random() < 0.5:
            tensor = tensor.flip(1)
        tensor = torch.rot90(tensor, random.randint(0, 3), (1, 2))
        return NORMALIZE(tensor)


class Segmentation(Dataset):
    def __init__(self, pairs, crop):
        self.pairs, self.crop = pairs, crop

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image_path, label_path = self.pairs[index]
        image = Image.open(image_path).convert("RGB")
        mask = np.asarray(Image.open(label_path), dtype=np.int64)
        labels = np.where(mask == 0, IGNORE_INDEX, mask - 1)
        box = window(image, self.crop)
        image = image.crop(box)
        x0, y0, _, _ = box
        cropped = np.full((self.crop, self.crop), IGNORE_INDEX, dtype=np.int64)
        part = labels[y0:y0 + self.crop, x0:x0 + self.crop]
        cropped[:part.shape[0], :part.shape[1]] = part
        tensor = F.to_tensor(image)
        labels = torch.from_numpy(cropped)
        if random.random() < 0.5:
            tensor, labels = tensor.flip(2), labels.flip(1)
        return NORMALIZE(tensor), labels


def images_per_s(dataset, workers, epochs):
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, drop_last=True,
                        num_workers=workers, persistent_workers=workers > 0,
                        worker_init_fn=lambda w: random.seed(w))
    images, batches, started = 0, 0, None
    for _ in range(epochs):
        for batch in loader:
            batches += 1
            if started is None:
                # The first batch includes worker start-up: timing starts after it.
                started = time.perf_counter()
                continue
            images += BATCH
    return images / (time.perf_counter() - started), batches


def main():
    directory, workers, epochs, crop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(1)
    with open(f"{directory}/dota/files.txt") as f:
        paths = [line.strip() for line in f if line.strip()]
    with open(f"{directory}/loveda/files.txt") as f:
        pairs = [tuple(line.strip().split("\t")) for line in f if line.strip()]
    for task, dataset, files in (("detection", Detection(paths, crop), len(paths)),
                                 ("segmentation", Segmentation(pairs, crop), len(pairs))):
        rate, batches = images_per_s(dataset, workers, epochs)
        print(json.dumps({"side": "pytorch", "task": task, "workers": workers, "files": files,
                          "crop": crop, "batches": batches, "images_per_s": round(rate, 1)}))


if __name__ == "__main__":
    main()
